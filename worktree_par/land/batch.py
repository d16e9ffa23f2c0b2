"""Batch verification: only the top of the stack is gated (one run for k tasks); when it
fails, probes spread over the stack are gated side by side until the culprit is found,
and the green prefix is published.  A batch only ever holds tasks with the same gate (the
queue takes no follower whose gate differs), so the top's verdict is each task's own."""

from __future__ import annotations

from .candidate import gate_passed, halt, start_gate
from .entry import Entry
from .round import Round


def verify(r: Round) -> tuple[list[Entry], bool]:
    """(the entries kept out, False when the push lost the race to another clone)."""
    if not r.stack:
        return [], True
    lo = 0
    if len(r.stack) == 1 and r.can_grow:
        # A first batch of one task: what joins the queue while its gate runs is gated at
        # once as the next batch, on top of it, not after it (never two runs in series).
        first = r.stack[0]
        start_gate(r.ctx, first, r.say, r.status)
        passed = gate_passed(r.ctx, first, r.status, meanwhile=lambda: _second_batch(r))
        if not passed:
            halt_above = r.stack[1:]
            for e in halt_above:
                halt(e)
            return [first], True  # the batch above contains it: rebuilt without it
        out = r.publish(1)
        if out.race:
            return [], False
        if out.refused is not None:
            return [out.refused], True
        if len(r.stack) == 1:
            return [], True
        lo = 1
    green, failed = _bisect(r, lo)
    if green <= r.done:
        return failed, True
    out = r.publish(green)
    if out.race:
        return [], False
    if out.refused is not None:
        return [out.refused], True
    return failed, True


def _second_batch(r: Round) -> None:
    """Stack what joined the queue meanwhile on the first batch, once, and gate its top."""
    if len(r.stack) == 1:
        r.grow(r.window.value)
        if len(r.stack) > 1:
            start_gate(r.ctx, r.stack[-1], r.say, r.status)


def _bisect(r: Round, lo: int = 0) -> tuple[int, list[Entry]]:
    """Gate the top; on failure, gate probes spread over the rest side by side (up to the
    depth, less the failed top) until the first failing candidate is found.  The candidates
    below it are green: each contains the ones before it."""
    stack, ctx = r.stack, r.ctx
    top = stack[-1]
    if top.run is None and not top.cached:  # not started yet (a second batch's top is)
        start_gate(ctx, top, r.say, r.status)
    if gate_passed(ctx, top, r.status):
        return len(stack), []
    width = max(1, r.window.value - 1)
    green, failing = lo, len(stack) - 1  # stack[:green] passed; stack[failing] failed
    while green < failing:
        span = failing - green
        probes = sorted({green + (span * (k + 1)) // (min(width, span) + 1) for k in range(min(width, span))})
        probes = [p for p in probes if green <= p < failing] or [green]
        for p in probes:
            start_gate(ctx, stack[p], r.say, r.status)
        for p in probes:  # in order: the first failure bounds the search, the passes below it raise 'green'
            if gate_passed(ctx, stack[p], r.status):
                green = max(green, p + 1)
            else:
                failing = p
                break
        for p in probes:
            halt(stack[p])  # above the failure: its verdict is not needed
    return green, [stack[failing]]
