"""What the conductor is doing with each entry, for 'wtp queue' and a lander's live line (a
courtesy file: losing it loses nothing)."""

from __future__ import annotations

import json
import os
import time

from .. import atomic
from ..guarded import Guarded
from ..repo import Ctx
from .entry import Entry
from .window import Window


class QueueStatus:
    """The conductor's side: one record per entry (building, gating, passed, failed, publishing)."""

    def __init__(self, ctx: Ctx, window: Window | None = None) -> None:
        self.path = ctx.store.ensure_dir() / "queue-status.json"
        self.entries: dict[str, dict[str, object]] = {}
        self.window = window

    def set(self, e: Entry, what: str) -> None:
        self.entries[e.name] = {"gate": what, "since": time.time(), "candidate": e.cand}
        self._write()

    def show_window(self) -> None:
        self._write()

    def gate_ran(self, run: Guarded) -> None:
        """A gate ended by itself: the window learns how much of the machine one takes."""
        if self.window is not None and run.cpu is not None and run.wall is not None:
            self.window.gate_ran(run.cpu, run.wall)
            self._write()

    def _write(self) -> None:
        data: dict[str, object] = {"conductor": os.getpid(), "entries": self.entries}
        if self.window is not None:
            data["depth"] = self.window.to_json()
        try:
            atomic.replace(self.path, json.dumps(data).encode(), durable=False)
        except OSError:
            pass

    def clear(self) -> None:
        try:
            data = json.loads(atomic.read_regular(self.path))
            if data.get("conductor") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, AttributeError, RecursionError):
            pass


def read(ctx: Ctx) -> dict[str, object]:
    try:
        data = json.loads(atomic.read_regular(ctx.store.dir / "queue-status.json"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def doing(ctx: Ctx) -> dict[str, dict[str, object]]:
    """Entry name -> what the conductor does with it now."""
    entries = read(ctx).get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}


def describe(now: dict[str, object] | None) -> str:
    """'gating 12s', 'publishing', ...; '' when the conductor has said nothing."""
    if not now:
        return ""
    what, since = str(now.get("gate", "")), now.get("since")
    if what == "gating" and isinstance(since, (int, float)):
        return f"gating {int(time.time() - since)}s"
    return what
