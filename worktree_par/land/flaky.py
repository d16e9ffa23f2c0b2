"""The flaky-gate ledger: per gate command, the reds that did not hold (a re-run passed, or
a candidate above that contains the task passed).  A small courtesy file under the state
dir ('wtp queue --flaky' shows it): written whole and atomically, bounded in size; losing
it, or a damaged copy, loses nothing but the history."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .. import atomic, disposable, gitops
from ..locks import Lock
from ..repo import Ctx, few
from .entry import Entry

MAX_GATES = 50  # gate commands kept (the ones flaky most recently)
MAX_EVENTS = 20  # events kept per gate command


def _path(ctx: Ctx) -> Path:
    return ctx.store.ensure_dir() / "flaky.json"


def _valid_event(v: object) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("task"), str)
        and isinstance(v.get("how"), str)
        and isinstance(v.get("at"), (int, float))
        and 0 <= v["at"] < 1e11  # a time wtp could have written (not NaN, infinite or out of range)
        and isinstance(v.get("tree", ""), str)
        and isinstance(v.get("code", 0), int)
    )


def read(ctx: Ctx) -> dict[str, dict[str, Any]]:
    """Gate command -> {"count": n, "events": [{"task", "tree", "code", "how", "at"}, ...]}
    (oldest first); malformed parts are left out."""
    try:
        data = json.loads(atomic.read_regular(ctx.store.dir / "flaky.json"))
    except (OSError, ValueError, RecursionError):
        return {}
    gates = data.get("gates") if isinstance(data, dict) else None
    if not isinstance(gates, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for gate, rec in gates.items():
        if not isinstance(gate, str) or not isinstance(rec, dict):
            continue
        count, events = rec.get("count"), rec.get("events")
        if not isinstance(count, int) or isinstance(count, bool) or not isinstance(events, list):
            continue
        out[gate] = {"count": count, "events": [e for e in events if _valid_event(e)]}
    return out


def record(ctx: Ctx, gate: str, task: str, tree: str, code: int, how: str) -> None:
    """Note that ``gate`` was red (exit ``code``) on ``task``'s candidate (``tree``) and that
    the red did not hold (``how``: 're-run' or 'vouched by ...')."""
    path = _path(ctx)
    try:
        with Lock(path.with_name("flaky.lock"), what="the flaky-gate ledger"):
            gates = read(ctx)
            rec = gates.pop(gate, {"count": 0, "events": []})
            rec["count"] += 1
            rec["events"] = [*rec["events"], {"task": task, "tree": tree, "code": code, "how": how, "at": time.time()}][
                -MAX_EVENTS:
            ]
            gates[gate] = rec  # last: the most recently flaky
            kept = dict(list(gates.items())[-MAX_GATES:])
            atomic.replace(path, json.dumps({"version": 1, "gates": kept}).encode(), durable=False)
    except OSError:
        pass  # a ledger that cannot be written loses history, never a land


def rows(ctx: Ctx) -> list[dict[str, Any]]:
    """What 'wtp queue --flaky --json' shows: one row per gate command, most recent first."""
    out = []
    for gate, rec in reversed(read(ctx).items()):
        last = rec["events"][-1] if rec["events"] else None
        out.append(
            {
                "gate": gate,
                "count": rec["count"],
                "last": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last["at"])) if last else None,
                "events": [
                    {**e, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))} for e in rec["events"]
                ],
            }
        )
    return out


def left_by_run(ctx: Ctx, e: Entry) -> str:
    """What the red run left in the candidate's worktree that a re-run would see, as a snapshot
    test passes once the run before wrote the output it expected: untracked files (the worktree
    holds none when its gate starts: a land refuses them), and ignored files or folders made or
    changed since the run began (an 'out/' it wrote), but for the caches and build outputs any
    run refills (__pycache__, .pytest_cache, coverage: disposable.py, and [rm] disposable, as
    the guard judges them), which would leave no red of most gates confirmable.  Then the red is
    not confirmed by running it again.  A phrase naming them, or '' (the tracked files
    unchanged, as the caller checked); the phrase is kept for the red's line."""
    untracked, ignored = gitops.worktree_contents(e.wt)
    theirs, _refilled = disposable.split(ignored, ctx.cfg.rm_disposable, lambda ps: gitops.check_ignore(e.wt, ps))
    left = untracked + [p for p in theirs if _changed_since(e.wt / p, e.gate_began)]
    if left:
        e.kept_red = (
            f"not run again: its run left {len(left)} file{'s' * (len(left) != 1)} behind ({few(left)}), which a "
            "re-run would see; an output any run makes anew goes in [rm] disposable"
        )
    return e.kept_red if left else ""


LOOK_LIMIT = 20_000  # entries of ignored folders looked at for a red's leftovers; past it, assumed changed


def _changed_since(path: Path, began: float) -> bool:
    """``path``, or anything under it (a folder's own times change only when an entry is added
    or removed right in it), made or changed since ``began``.  A folder too big to look through
    counts as changed: the red then holds, which never lands a red."""
    if not path.is_dir() or path.is_symlink():
        return _new(str(path), began)
    looked = 0
    for top, dirs, files in os.walk(path):
        for name in [".", *dirs, *files]:
            looked += 1
            if looked > LOOK_LIMIT or _new(os.path.join(top, name), began):
                return True
    return False


def _new(path: str, began: float) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return max(st.st_mtime, st.st_ctime) >= began
