"""Speculative verification (serial is a stack of one): every candidate's gate runs side by
side, and the green prefix is published as soon as it is known, C1 while C2 still runs,
so a task never waits for the gates of the tasks queued behind it; candidates that pass
together go in one push.  A failing (or withdrawn) Ci stops the gates above it, whose
candidates contain it: they are rebuilt without it."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from .. import crashpoints, gitops, interrupts
from . import settle
from .entry import Entry, Withdrawn
from .gating import WITHDRAW_LOOK, confirm_reds, note_flaky, poll_gate, start_gate, stop_gates
from .round import Round


def verify(r: Round) -> tuple[list[Entry], bool]:
    """Gate and publish the stack: (the entries kept out, False when a push lost the race
    to another clone and the rest must be rebuilt on the new base)."""
    stack = r.stack
    if not stack:
        return [], True
    if not r.started:
        crashpoints.step("land:before-gate")
    started = r.started  # the conductor starts each gate as its candidate is built; the rest here
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
                if gone is stack[i]:
                    verdict = False
                elif gone is not None:  # above: given back now; what stands on it leaves this round
                    j = stack.index(gone)
                    stop_gates(stack[j:], r.status)
                    settle.blocked(r.ctx, gone, gone.error or Withdrawn(f"task '{gone.name}' was withdrawn"))
                    del stack[j:]
                    continue
            if verdict is None:
                above = _voucher(r, i)
                if above is None:
                    confirm_reds(r.ctx, stack[i:], r.status)
                    r.grow(r.window.value)
                    interrupts.check()
                    time.sleep(0.01)
                    continue
                i, verdict = above, True
        if not verdict:
            kept, ok = _kept_out(r, i)
            return kept, ok
        i += 1
        while i < len(stack) and poll_gate(r.ctx, stack[i], r.status):  # passed meanwhile: the same push
            i += 1
        out = r.publish(i)
        if out.race:
            stop_gates(stack[r.done :], r.status)
            return [], False
        if out.refused is not None and out.refused is not stack[out.done]:
            return _cut(r, out.refused), True
        if out.refused is not None:
            kept, ok = _kept_out(r, out.done)
            return kept, ok
    return [], True


def _cut(r: Round, refused: Entry, *failed: Entry) -> list[Entry]:
    """A withdrawn entry (or one whose branch moved) cut the push above entries that only a
    candidate above it had vouched for: it is kept out (and ``failed`` with it), and every
    unpublished entry is rebuilt and gated again in the next round."""
    stop_gates(r.stack[r.done :], r.status)
    return [refused, *(e for e in failed if e is not refused)]


def _voucher(r: Round, i: int) -> int | None:
    """With ``[land] vouch = true`` (off by default: a task above that fixes the red one in
    another file passes too, review 45), while stack[i]'s red is being confirmed: the highest candidate above it that passed
    the same gate (as every candidate between them is gated by) contains it and vouches
    for it, and for those between, as the publication point's proof allows (a candidate's
    tree above it in the same push); not one whose tasks above the red one change a path it
    changes (review 44: 'b' fixing what 'a' broke vouched for a red 'a').  Its index, the
    ones below noted and their runs stopped; None when there is none yet."""
    low = r.stack[i]
    if not r.ctx.cfg.land_vouch or not low.reds or low.flaky or low.halted:
        return None
    own: frozenset[str] | None = None  # the paths the red task's own commits change
    for j in range(len(r.stack) - 1, i, -1):
        top = r.stack[j]
        if any(e.gate != low.gate for e in r.stack[i : j + 1]):
            continue
        done = top.cached or (top.run is not None and not top.halted and top.run.poll() == 0)
        if not done or not poll_gate(r.ctx, top, r.status):
            continue
        assert low.cand is not None and top.cand is not None  # (both built: their gates ran)
        if own is None:
            own = _changed(r.ctx.root, (r.stack[i - 1].cand if i > 0 else None) or r.base_tip, low.cand)
        if own & _changed(r.ctx.root, low.cand, top.cand):
            continue  # a task above changes what the red one changed: it may have fixed it, no sign of a flake
        for e in r.stack[i:j]:
            if e.reds and not e.flaky:
                note_flaky(r.ctx, e, e.tree(r.ctx.root), f"vouched by '{top.name}'")
            e.halt()
            r.status.set(e, "passed")
        return j
    return None


@functools.lru_cache(maxsize=256)
def _changed(root: Path, a: str, b: str) -> frozenset[str]:
    """The paths that differ between commits a and b (asked once: the vouch is looked for
    every few milliseconds while a red is confirmed)."""
    return frozenset(p for _, p in gitops.diff_names(root, a, b))


def _kept_out(r: Round, i: int) -> tuple[list[Entry], bool]:
    """stack[i] failed: publish the green prefix below it, stop the gates above it."""
    if i > r.done:
        out = r.publish(i)
        if out.race:
            stop_gates(r.stack[r.done :], r.status)
            return [], False
        if out.refused is not None and out.refused is not r.stack[out.done]:
            return _cut(r, out.refused, r.stack[i]), True
        if out.refused is not None and out.done < i:
            i = out.done
    stop_gates(r.stack[i + 1 :], r.status)  # their candidates contain the failed task: rebuilt without it
    return [r.stack[i]], True
