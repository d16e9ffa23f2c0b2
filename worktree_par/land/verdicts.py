"""Gate verdicts by tree: (gate command, tree id) -> verdict, shared by ``land`` and
``check --test``.  A tree that passed a gate is never gated again, and the publication
point reads its proof here.

A record says where it came from (``by``: "land" or "check") and, for ``check --test``,
which tasks' merge it was and the log, so a land that reuses it can say so.  Failures are
recorded too (``ok`` false), for the report; they never prove anything: ``passed`` and
``Proofs`` count only records that passed, so a failed verdict can never let a task land.
Records written before this shape (a bare timestamp) were land's passes and still count."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

from .. import atomic
from ..locks import Lock
from ..repo import Ctx

LAND, CHECK = "land", "check"
KEEP = 500  # newest verdicts kept


class Verdict(NamedTuple):
    ok: bool
    by: str  # LAND | CHECK
    when: float
    tasks: list[str] = []  # check --test: the tasks whose merge the tree is
    log: str = ""


def _path(ctx: Ctx) -> Path:
    return ctx.store.ensure_dir() / "verdicts.json"


def _key(gate: str, tree: str) -> str:
    return hashlib.sha1(f"{gate}\0{tree}".encode()).hexdigest()


def _parse(v: Any) -> Verdict | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return Verdict(True, LAND, float(v))  # the first shape: only land's passes were kept
    if not isinstance(v, dict):
        return None
    ok, by, when = v.get("ok"), v.get("by"), v.get("t")
    tasks, log = v.get("tasks", []), v.get("log", "")
    if (
        not isinstance(ok, bool)
        or by not in (LAND, CHECK)
        or not isinstance(when, (int, float))
        or isinstance(when, bool)
        or not isinstance(tasks, list)
        or not all(isinstance(t, str) for t in tasks)
        or not isinstance(log, str)
    ):
        return None  # a damaged record proves nothing
    return Verdict(ok, by, float(when), tasks, log)


def _read(path: Path) -> dict[str, Verdict]:
    try:
        data = json.loads(atomic.read_regular(path))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for k, v in data.items():
        parsed = _parse(v)
        if isinstance(k, str) and parsed is not None:
            out[k] = parsed
    return out


def lookup(ctx: Ctx, gate: str, tree: str) -> Verdict | None:
    """The verdict recorded for ``tree`` under ``gate``, passed or failed (None: never gated)."""
    return _read(_path(ctx)).get(_key(gate, tree))


def passed(ctx: Ctx, gate: str, tree: str) -> bool:
    """Whether ``tree`` passed ``gate`` (a damaged record proves nothing: the gate runs again)."""
    v = lookup(ctx, gate, tree)
    return v is not None and v.ok


def record(
    ctx: Ctx, gate: str, tree: str, *, ok: bool = True, by: str = LAND, tasks: list[str] | None = None, log: str = ""
) -> None:
    """Remember the verdict of ``gate`` on ``tree`` (the newest KEEP verdicts are kept).  A
    failure never replaces a pass of the same tree: the pass stays the proof (a flaky gate
    that passed once on exactly this tree passed it)."""
    path = _path(ctx)
    with Lock(path.with_name("verdicts.lock"), what="the verdict cache"):  # two writers lose no record
        data = _read(path)
        key = _key(gate, tree)
        old = data.get(key)
        if not ok and old is not None and old.ok:
            return
        data[key] = Verdict(ok, by, time.time(), list(tasks or []), log)
        kept = dict(sorted(data.items(), key=lambda kv: kv[1].when)[-KEEP:])
        out = {
            k: {
                "ok": v.ok,
                "by": v.by,
                "t": v.when,
                **({"tasks": v.tasks} if v.tasks else {}),
                **({"log": v.log} if v.log else {}),
            }
            for k, v in kept.items()
        }
        atomic.replace(path, json.dumps(out).encode(), durable=False)


def reused_from_check(v: Verdict | None) -> str:
    """What a land says when it reuses ``v`` instead of running its gate."""
    if v is not None and v.by == CHECK:
        merged = " + ".join(v.tasks)
        return "verdict reused from check --test" + (f" (the merge of {merged} passed)" if merged else "")
    return "gate passed earlier on this tree"


def queue_note(ctx: Ctx, gate: str, candidate: str) -> str:
    """'wtp queue''s gate column for a candidate whose verdict came from check --test."""
    from .. import gitops

    v = lookup(ctx, gate, gitops.tree_of(ctx.root, candidate))
    return "passed: verdict reused from check --test" if v is not None and v.ok and v.by == CHECK else ""


class Proofs:
    """The passing verdicts as read once, for the publication point to prove several tasks at once."""

    def __init__(self, ctx: Ctx) -> None:
        self.keys = {k for k, v in _read(_path(ctx)).items() if v.ok}

    def passed(self, gate: str, tree: str) -> bool:
        return _key(gate, tree) in self.keys
