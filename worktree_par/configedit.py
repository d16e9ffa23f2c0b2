"""Editing the committed ``.wtp.toml`` in place: 'wtp cochange --calibrate' sets [check]
cochange.  The file is edited as text, so the user's comments, order and spelling stay; and
TOML has many spellings of one setting (``[check] # note``, ``["check"]``, a dotted
``check.cochange = ...`` at the top, an inline ``check = { ... }``, a quoted key), so each
edit is checked before anything is written: the new text must parse, load as a wtp config,
and hold exactly what the old one held with only that setting changed.  An edit that fails
the check is never written (review 36: a second [check] table made every command exit 2)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import atomic, config
from .errors import ConfigError

_PROBE = json.dumps("wtp\0probe")  # a value no config holds: where it lands, the setting was


def write_cochange(path: Path, mode: str, why: str) -> None:
    """Set [check] cochange to ``mode`` in the .wtp.toml at ``path`` (made when missing), with
    the figures that chose it as a comment above; written whole or not at all."""
    import tomllib

    real = Path(os.path.realpath(path))  # a linked config is edited where it points, as before
    try:
        text = real.read_bytes().decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e}): nothing was changed") from None
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}): fix the file or move it aside") from None
    new = cochange_text(text, before, mode, why, str(path))
    if new is None:
        raise ConfigError(
            f"{path}: [check] cochange cannot be set safely in the form this file gives it, so the file "
            f'is left as it was: set cochange = "{mode}" in its [check] table by hand '
            f"(co-change calibration: {why})"
        )
    _replace(real, new.encode("utf-8"))


def cochange_text(text: str, before: dict[str, Any], mode: str, why: str, where: str) -> str | None:
    """``text`` (parsed: ``before``) with [check] cochange set to ``mode``, or None when no
    edit was checked to mean exactly that."""
    want = copy.deepcopy(before)
    want.setdefault("check", {})["cochange"] = mode
    nl = "\r\n" if "\r\n" in text else "\n"  # lines added in the file's own line endings
    text = _without_notes(text)
    for candidate in _edits(text, before, mode, why, nl):
        if _means(candidate, want, mode, where):
            return candidate
    return None


def _edits(text: str, before: dict[str, Any], mode: str, why: str, nl: str) -> Iterator[str]:
    """Edits that may set the value, most natural first; each is checked by the caller."""
    strings, starts = _scan(text)
    note = config.cochange_lines(mode, why).splitlines()
    notes = "".join(line + nl for line in note[:2])
    value = json.dumps(mode)
    check = before.get("check")
    if not isinstance(check, dict):  # no [check] at all: a table of its own, at the end
        gap = "" if not text.strip() else (nl if text.endswith("\n") else nl + nl)
        yield f"{text}{gap}[check]{nl}{notes}cochange = {value}{nl}"
        return
    if "cochange" in check:  # the string that holds the value, however it is spelt
        for s, e in strings:
            if _cochange(text[:s] + _PROBE + text[e:]) == json.loads(_PROBE):
                line = text.rfind("\n", 0, s) + 1
                yield text[:line] + notes + text[line:s] + value + text[e:]
                return
        return
    tops = [s for s, depth in starts if depth == 0]  # lines that begin a statement
    headers = [s for s in tops if _line(text, s).lstrip().startswith("[")]
    for s in headers:  # [check], ["check"], [ check ] # note ...
        if _loads(_line(text, s)) == {"check": {}}:
            end = text.find("\n", s)
            end = len(text) if end < 0 else end + 1
            yield (
                text[:end] + ("" if text[:end].endswith("\n") else nl) + notes + f"cochange = {value}{nl}" + text[end:]
            )
    first_table = headers[0] if headers else len(text)
    for s in tops:  # the top level: check.hot = ..., "check".hot = ..., check = { ... }
        if s >= first_table:
            break
        eq = _equals(text, s, strings)
        key = _loads(text[s:eq] + "= 0") if eq is not None else None
        if eq is None or not key or "check" not in key:
            continue
        if isinstance(key["check"], dict):
            yield text[:s] + notes + f"check.cochange = {value}{nl}" + text[s:]
            continue
        brace = eq + 1 + len(text[eq + 1 :]) - len(text[eq + 1 :].lstrip(" \t"))
        if text.startswith("{", brace):
            empty = text[brace + 1 :].lstrip(" \t").startswith("}")
            inner = f" cochange = {value}" + (" " if empty else ",")
            yield text[:s] + notes + text[s : brace + 1] + inner + text[brace + 1 :]


def _means(candidate: str, want: dict[str, Any], mode: str, where: str) -> bool:
    """Does ``candidate`` parse to ``want`` and load as a wtp config with that mode?"""
    import tomllib

    try:
        data = tomllib.loads(candidate)
    except tomllib.TOMLDecodeError:
        return False
    if data != want:
        return False
    try:
        return config.parse(data, where).check_cochange == mode
    except ConfigError:
        return False


def _cochange(text: str) -> object:
    data = _loads(text)
    check = data.get("check") if data else None
    return check.get("cochange") if isinstance(check, dict) else None


def _loads(text: str) -> dict[str, Any] | None:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _without_notes(text: str) -> str:
    """``text`` without the comment lines an earlier calibration wrote (they are written anew)."""
    _, starts = _scan(text)
    drop = []
    for s, _depth in starts:
        line = _line(text, s).lstrip()
        if line.startswith((config.COCHANGE_NOTE, config.COCHANGE_ABOUT)):
            end = text.find("\n", s)
            drop.append((s, len(text) if end < 0 else end + 1))
    for s, e in reversed(drop):
        text = text[:s] + text[e:]
    return text


def _line(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start : len(text) if end < 0 else end].rstrip("\r")


def _equals(text: str, start: int, strings: list[tuple[int, int]]) -> int | None:
    """The offset of the '=' of the key/value line at ``start`` (not one in a quoted key)."""
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    at = start
    while (eq := text.find("=", at, end)) >= 0:
        inside = next((e for s, e in strings if s < eq < e), None)
        if inside is None:
            return eq
        at = inside
    return None


def _scan(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The spans of the strings outside comments, and (offset, bracket depth) of each line
    that does not begin inside a string: depth 0 begins a statement (a key or a table)."""
    strings: list[tuple[int, int]] = []
    starts = [(0, 0)]
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "\"'":
            end = _string_end(text, i)
            strings.append((i, end))
            i = end
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "\n":
            starts.append((i + 1, depth))
        i += 1
    return strings, starts


def _string_end(text: str, i: int) -> int:
    """Where the TOML string opening at ``i`` ends: basic "..." and literal '...', and their
    multi-line forms (which may end in up to two quotes of their own)."""
    q, n = text[i], len(text)
    if text.startswith(q * 3, i):
        j = i + 3
        while j < n:
            if q == '"' and text[j] == "\\":
                j += 2
                continue
            if text.startswith(q * 3, j):
                run = 3
                while run < 5 and j + run < n and text[j + run] == q:
                    run += 1
                return j + run
            j += 1
        return n
    j = i + 1
    while j < n and text[j] not in (q, "\n"):
        j += 2 if q == '"' and text[j] == "\\" else 1
    return min(j + 1, n)


def _replace(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a new file beside it, then os.replace),
    keeping its permissions; nothing is changed when it cannot be written."""
    try:
        atomic.replace(path, data, keep_mode=True)
    except OSError as e:
        raise ConfigError(f"cannot write {path} ({e.strerror}); nothing was changed") from None
