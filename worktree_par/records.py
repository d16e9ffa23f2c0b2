"""Records read from another machine (shared claims, remote gate tickets), checked field by
field before any of it is used: a record is data another clone, or anyone who can push to
the remote, wrote.  A checker returns the record's fields with their types proven, or
raises ``Malformed`` saying which field is wrong; the caller then reports the ref in one
line, with how to reset it, and goes on without it (issue 24).  wtp's own files get the
same suspicion (anything can write under .git): one that is not what wtp writes is set
aside with one line (``set_aside``), never a traceback."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

MAX_TEXT = 65536  # longest string field we take (a path, a glob, a command line)
MAX_ITEMS = 10_000  # longest list we take (globs, recorded paths, tickets)


class Malformed(ValueError):
    """A record that is not what wtp writes: ``str(e)`` says which field and why."""


def parse_object(text: str) -> dict[str, Any]:
    """A JSON object, or Malformed (not JSON, nested past reason, not an object)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise Malformed("it is not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("it is not a JSON object")
    return data


def set_aside(path: Path, what: str, then: str) -> None:
    """One of wtp's own files that is not what wtp writes (hand-edited, truncated, planted):
    renamed aside, kept for a look, and said in one line; the caller starts afresh."""
    from . import locks

    aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
    try:
        os.replace(path, aside)
        where = f"set aside as {aside.name}"
    except OSError:
        where = "left as it is"
    locks.notify(f"wtp: {what} {path} is not one wtp wrote ({where}): {then}")


FILE_NAMES = (".json", ".lock", ".log", ".bak")  # how the files wtp keeps in its state dir end
SCRATCH = "scratch"  # the state dir's folder for throw-away worktrees (land/basecheck.py)


def folders_in_the_way(state_dir: Path) -> list[Path]:
    """Folders where wtp keeps its files (a record, a lock, a log): in its state dir, in a
    folder of it (logs, copied, ...) or in a gate's folder.  Every command that writes one of
    them refuses ("a folder stands where wtp keeps a file").  A scratch worktree's own
    folders are not looked at."""
    found: list[Path] = []
    for top in [state_dir, *_folders(state_dir), *_folders(state_dir / "gates")]:
        if top.name != SCRATCH:
            found += [d for d in _folders(top) if d.name.endswith(FILE_NAMES)]
    return sorted(set(found))


def _folders(top: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(top) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def text(data: dict[str, Any], key: str, *, required: bool = True, empty: bool = False) -> str:
    v = data.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (not v and not empty) or len(v) > MAX_TEXT:
        raise Malformed(f"'{key}' must be a {'' if empty else 'non-empty '}string, not {_shown(v)}")
    return v


def shown(s: str) -> str:
    """A string another machine wrote, safe to print in one line: control characters (a
    newline that would forge a second line, a terminal escape) written as escapes."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def claimable(paths: object) -> list[str]:
    """The recorded paths of a claim that others can take (another clone's, or ours to publish):
    the strings that are printable (no line break, terminal escape, or format character) and
    not too long, at most MAX_ITEMS of them.  The rest is left out, never the whole claim:
    the agent hook records any file name a task writes."""
    if not isinstance(paths, list):
        return []
    good = [p for p in paths if isinstance(p, str) and p and len(p) <= MAX_TEXT and p.isprintable()]
    return good[:MAX_ITEMS]


def texts(data: dict[str, Any], key: str, *, printable: bool = False) -> list[str]:
    """A list of non-empty strings (absent: empty).  A string is not a list of its letters.
    ``printable``: none holds a control character (paths and globs: wtp writes none)."""
    v = data.get(key, [])
    if (
        not isinstance(v, list)
        or len(v) > MAX_ITEMS
        or not all(isinstance(x, str) and x and len(x) <= MAX_TEXT for x in v)
    ):
        raise Malformed(f"'{key}' must be a list of non-empty strings, not {_shown(v)}")
    if printable and not all(x.isprintable() for x in v):
        raise Malformed(f"'{key}' must hold no control characters")
    return list(v)


def integer(data: dict[str, Any], key: str, lo: int = 0, hi: int = 2**53, *, default: int | None = None) -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise Malformed(f"'{key}' must be a whole number from {lo} to {hi}, not {_shown(v)}")
    return v


def number(data: dict[str, Any], key: str, lo: float, hi: float, *, default: float | None = None) -> float:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise Malformed(f"'{key}' must be a number from {lo:g} to {hi:g}, not {_shown(v)}")
    return float(v)


def _shown(v: object) -> str:
    s = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return s if len(s) <= 40 else s[:37] + "..."
