"""Gate verdicts by tree: (gate command, tree id) -> passed.  A tree that passed a gate is
never gated again, and the publication point reads its proof here."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..repo import Ctx


def _path(ctx: Ctx) -> Path:
    return ctx.store.ensure_dir() / "verdicts.json"


def _key(gate: str, tree: str) -> str:
    return hashlib.sha1(f"{gate}\0{tree}".encode()).hexdigest()


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (int, float))}


def passed(ctx: Ctx, gate: str, tree: str) -> bool:
    """Whether ``tree`` passed ``gate`` (a damaged record proves nothing: the gate runs again)."""
    return _key(gate, tree) in _read(_path(ctx))


def record(ctx: Ctx, gate: str, tree: str) -> None:
    """Remember that ``tree`` passed ``gate`` (the newest 500 verdicts are kept)."""
    path = _path(ctx)
    data = _read(path)
    data[_key(gate, tree)] = time.time()
    kept = dict(sorted(data.items(), key=lambda kv: kv[1])[-500:])
    tmp = path.with_name(f".verdicts-{os.getpid()}.tmp")
    tmp.write_text(json.dumps(kept))
    os.replace(tmp, path)


class Proofs:
    """The verdicts as read once, for the publication point to prove several tasks at once."""

    def __init__(self, ctx: Ctx) -> None:
        self.keys = set(_read(_path(ctx)))

    def passed(self, gate: str, tree: str) -> bool:
        return _key(gate, tree) in self.keys
