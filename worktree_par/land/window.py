"""The land queue's depth: how many candidates are in flight (speculative) or per batch.

``[land] depth = N`` fixes it.  ``depth = 0`` (the default) makes it adaptive, as Zuul's
window: it starts at the cap (``max_active``: the tasks that may be live at once, each
gating in its own worktree, is what the machine was set up to run), grows by one for each
task landed, is halved by a red that held (never below the floor, 2), and is kept between
conductors in a small file under the state dir (a courtesy: losing it starts at the cap).
"""

from __future__ import annotations

import json
import os
import time

from ..repo import Ctx

FLOOR = 2
FORGET_AFTER = 24 * 3600  # a window older than this starts again at the cap


class Window:
    """One conductor's depth: ``value`` now, ``fixed`` when the config sets it."""

    def __init__(self, ctx: Ctx, mode: str = "speculative") -> None:
        self.ctx = ctx
        self.cap = max(1, ctx.cfg.max_active)
        self.fixed = mode == "serial" or ctx.cfg.land_depth > 0
        if mode == "serial":
            self.value = 1
        elif ctx.cfg.land_depth > 0:
            self.value = ctx.cfg.land_depth
        else:
            self.value = _stored(ctx, self.cap)

    @property
    def floor(self) -> int:
        return min(FLOOR, self.cap)

    def landed(self, n: int = 1) -> None:
        """``n`` tasks landed: one more in flight for each (up to the cap)."""
        if not self.fixed and n > 0:
            self.value = min(self.cap, self.value + n)
            self._save()

    def red(self) -> None:
        """A red that held: half as many in flight (not below the floor)."""
        if not self.fixed:
            self.value = max(self.floor, self.value // 2)
            self._save()

    def to_json(self) -> dict[str, object]:
        return {"window": self.value, "adaptive": not self.fixed, "floor": self.floor, "cap": self.cap}

    def _save(self) -> None:
        path = self.ctx.store.ensure_dir() / "land-window.json"
        tmp = path.with_name(f".land-window-{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"window": self.value, "at": time.time()}))
            os.replace(tmp, path)
        except OSError:
            pass  # a courtesy: the next conductor starts at the cap


def _stored(ctx: Ctx, cap: int) -> int:
    try:
        data = json.loads((ctx.store.dir / "land-window.json").read_text())
        w, at = data["window"], data["at"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return cap
    if not isinstance(w, int) or isinstance(w, bool) or not isinstance(at, (int, float)):
        return cap
    if time.time() - at > FORGET_AFTER:
        return cap
    return max(min(FLOOR, cap), min(cap, w))


def describe(ctx: Ctx) -> dict[str, object]:
    """The depth a conductor starting now would use (for 'wtp queue')."""
    return Window(ctx, ctx.cfg.land_mode).to_json()
