"""Speculative verification (serial is a stack of one): every candidate's gate runs side by
side, and the green prefix is published as soon as it is known, C1 while C2 still runs,
so a task never waits for the gates of the tasks queued behind it; candidates that pass
together go in one push.  A failing (or withdrawn) Ci stops the gates above it, whose
candidates contain it: they are rebuilt without it."""

from __future__ import annotations

import time

from .. import crashpoints
from .candidate import poll_gate, start_gate, stop_gates
from .entry import Entry
from .round import Round

WITHDRAW_LOOK = 0.2  # seconds between looks for a withdrawn entry while gates run


def verify(r: Round) -> tuple[list[Entry], bool]:
    """Gate and publish the stack: (the entries kept out, False when a push lost the race
    to another clone and the rest must be rebuilt on the new base)."""
    stack = r.stack
    if not stack:
        return [], True
    crashpoints.step("land:before-gate")
    depth = r.ctx.cfg.land_depth or r.ctx.cfg.max_active
    started: set[str] = set()
    i = 0
    looked = time.monotonic()
    while i < len(stack):
        for e in stack:
            if e.name not in started:
                start_gate(r.ctx, e, r.say, r.status)
                started.add(e.name)
        verdict = poll_gate(r.ctx, stack[i], r.status)
        if verdict is None:
            if time.monotonic() - looked > WITHDRAW_LOOK:
                looked = time.monotonic()
                gone = r.withdrawn()
                if gone is not None:
                    verdict, i = False, stack.index(gone)
            if verdict is None:
                r.grow(depth)
                time.sleep(0.01)
                continue
        if not verdict:
            return _kept_out(r, i)
        i += 1
        while i < len(stack) and poll_gate(r.ctx, stack[i], r.status):  # passed meanwhile: the same push
            i += 1
        out = r.publish(i)
        if out.race:
            stop_gates(stack[r.done :], r.status)
            return [], False
        if out.refused is not None:
            return _kept_out(r, out.done)
    return [], True


def _kept_out(r: Round, i: int) -> tuple[list[Entry], bool]:
    """stack[i] failed: publish the green prefix below it, stop the gates above it."""
    if i > r.done:
        out = r.publish(i)
        if out.race:
            stop_gates(r.stack[r.done :], r.status)
            return [], False
        if out.refused is not None and out.done < i:
            i = out.done
    stop_gates(r.stack[i + 1 :], r.status)  # their candidates contain the failed task: rebuilt without it
    return [r.stack[i]], True
