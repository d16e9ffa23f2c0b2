"""The land queue's depth: how many candidates are in flight (speculative) or per batch.

``[land] depth = N`` fixes it.  ``depth = 0`` (the default) makes it adaptive, as Zuul's
window: it starts at the cap, grows by one for each task landed, is halved by a red that
held (never below the floor, 2), and is kept between conductors in a small file under the
state dir (a courtesy: losing it starts at the cap).

The cap is what the machine can run: ``max_active`` (each task gating in its own worktree
is what the repository was set up for), and, in speculative mode, no more gates at once
than the cores can keep busy.  Each gate run of a second or more says how much of a core it kept busy (its CPU
seconds over its wall seconds); the most any of the last few did is a gate's demand, and
the cap is the cores over it.  A gate that waits on the network or a remote CI uses
almost nothing and leaves the cap at ``max_active``; a test suite that keeps a core busy
caps it at the cores.  A run slowed by others running beside it shows less than its
demand, so the highest recent figure is the one kept.
"""

from __future__ import annotations

import json
import os
import time
from typing import NamedTuple

from .. import atomic
from ..repo import Ctx

FLOOR = 2
FORGET_AFTER = 24 * 3600  # a window older than this starts again at the cap
MEASURED_FROM = 1.0  # wall seconds: a shorter gate leaves the machine before it could crowd it
SAMPLES = 8  # gate runs remembered


class Window:
    """One conductor's depth: ``value`` now, ``fixed`` when the config sets it."""

    def __init__(self, ctx: Ctx, mode: str = "speculative") -> None:
        self.ctx, self.mode = ctx, mode
        self.limit = max(1, ctx.cfg.max_active)
        self.cores = _cores()
        self.fixed = mode == "serial" or ctx.cfg.land_depth > 0
        stored = _stored(ctx)
        self.demands = stored.demands
        self.cap = self._cap()
        if mode == "serial":
            self.value = 1
        elif ctx.cfg.land_depth > 0:
            self.value = ctx.cfg.land_depth
        else:
            w = stored.window
            self.value = self.cap if w is None else max(self.floor, min(self.cap, w))

    @property
    def floor(self) -> int:
        return min(FLOOR, self.limit)

    @property
    def demand(self) -> float | None:
        """The cores one gate run keeps busy, as measured (None: not yet)."""
        return max(self.demands) if self.demands else None

    def _cap(self) -> int:
        d = self.demand
        if not d or self.mode != "speculative":  # a batch's size is not gates at once: one gate runs it
            return self.limit
        return max(self.floor, min(self.limit, int(self.cores / d)))

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

    def gate_ran(self, cpu: float, wall: float) -> None:
        """A gate run ended by itself after ``wall`` seconds, having used ``cpu`` seconds of CPU."""
        if wall < MEASURED_FROM:
            return
        self.demands = [*self.demands, round(cpu / wall, 3)][-SAMPLES:]
        self.cap = self._cap()
        if not self.fixed:
            self.value = min(self.value, self.cap)
        self._save()

    def to_json(self) -> dict[str, object]:
        d = self.demand
        return {
            "window": self.value,
            "adaptive": not self.fixed,
            "floor": self.floor,
            "cap": self.cap,
            "cores": self.cores,
            "gate_cores": None if d is None else round(d, 2),
        }

    def _save(self) -> None:
        path = self.ctx.store.ensure_dir() / "land-window.json"
        data: dict[str, object] = {"at": time.time(), "demands": self.demands}
        if not self.fixed:
            data["window"] = self.value
        try:
            atomic.replace(path, json.dumps(data).encode(), durable=False)
        except OSError:
            pass  # a courtesy: the next conductor starts at the cap


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class Stored(NamedTuple):
    window: int | None
    demands: list[float]


def _stored(ctx: Ctx) -> Stored:
    """The window and the gates' demands the last conductor left (none if stale or damaged)."""
    none = Stored(None, [])
    try:
        data = json.loads(atomic.read_regular(ctx.store.dir / "land-window.json"))
        at = data["at"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return none
    if not isinstance(at, (int, float)) or isinstance(at, bool) or time.time() - at > FORGET_AFTER:
        return none
    w, ds = data.get("window"), data.get("demands")
    return Stored(
        w if isinstance(w, int) and not isinstance(w, bool) else None,
        [float(d) for d in ds[-SAMPLES:] if isinstance(d, (int, float)) and not isinstance(d, bool) and 0 < d < 1e6]
        if isinstance(ds, list)
        else [],
    )


def describe(ctx: Ctx) -> dict[str, object]:
    """The depth a conductor starting now would use (for 'wtp queue')."""
    return Window(ctx, ctx.cfg.land_mode).to_json()
