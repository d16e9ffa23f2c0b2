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

from ..locks import Lock
from ..repo import Ctx

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
        data = json.loads((ctx.store.dir / "flaky.json").read_text())
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
            tmp = path.with_name(f".flaky-{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": 1, "gates": kept}))
            os.replace(tmp, path)
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
