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
    green, failed = _bisect(r)
    if not green:
        return failed, True
    out = r.publish(green)
    if out.race:
        return [], False
    if out.refused is not None:
        return [out.refused], True
    return failed, True


def _bisect(r: Round) -> tuple[int, list[Entry]]:
    """Gate the top; on failure, gate probes spread over the rest side by side (up to the
    depth, less the failed top) until the first failing candidate is found.  The candidates
    below it are green: each contains the ones before it."""
    stack, ctx = r.stack, r.ctx
    top = stack[-1]
    start_gate(ctx, top, r.say, r.status)
    if gate_passed(ctx, top, r.status):
        return len(stack), []
    width = max(1, r.window.value - 1)
    green, failing = 0, len(stack) - 1  # stack[:green] passed; stack[failing] failed
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
