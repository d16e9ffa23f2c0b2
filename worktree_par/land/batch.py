"""Batch verification: only the top of the stack is gated (one run for k tasks); when it
fails, probes spread over the stack are gated side by side until the culprit is found,
and the green prefix is published.  Batches that join meanwhile are gated speculatively on
top of the one below (speculation over batches).  A batch only ever holds tasks with the
same gate (the queue takes no follower whose gate differs), so the top's verdict is each
task's own."""

from __future__ import annotations

from .entry import Entry
from .gating import gate_passed, start_gate
from .round import Round


def verify(r: Round) -> tuple[list[Entry], bool]:
    """(the entries kept out, False when the push lost the race to another clone).

    The top of the stack is gated; while it runs, what joins the queue is stacked on it as
    the next batch and that batch's top is gated at once, speculating that the batch below
    passes; what joins while both run forms the batch after them, gated as soon as the lower
    one passes.  Each batch is published as soon as its top and the ones below it
    have passed; one that fails is bisected, and the batches above it, which contain its
    culprit, are stopped and rebuilt without it."""
    if not r.stack:
        return [], True
    tops = [len(r.stack) - 1]  # the batches' tops whose gate runs, bottom first
    start_gate(r.ctx, r.stack[-1], r.say, r.status)
    while tops:
        top = tops[0]
        if not gate_passed(r.ctx, r.stack[top], r.status, meanwhile=lambda: _next_batch(r, tops)):
            _halt(r, tops[1:])
            green, failed = _bisect(r, r.done, top)
            if green > r.done:
                out = r.publish(green)
                if out.race:
                    return [], False
                if out.refused is not None:  # the culprit is kept out too; what is between, rebuilt
                    return [out.refused, *(f for f in failed if f is not out.refused)], True
            return failed, True
        out = r.publish(top + 1)
        if out.race:
            _halt(r, tops[1:])
            return [], False
        if out.refused is not None:
            _halt(r, tops[1:])
            return [out.refused], True
        tops.pop(0)
        _next_batch(r, tops)  # what joined while two batches were in flight: the next batch, now
    return [], True


SPECULATIVE_BATCHES = 1  # batches gated above the lowest one in flight


def _next_batch(r: Round, tops: list[int]) -> None:
    """Stack what joined the queue meanwhile on the top as one more batch (up to the window's
    size), and gate its top now, while only the lowest batch is in flight: one speculative
    batch at a time, so that landers trickling in during a gate form one batch above it, not
    a gate run each (batch mode is chosen to spend few gate runs)."""
    if len(tops) > min(SPECULATIVE_BATCHES, r.window.value - 1) or not r.can_grow:
        return
    n = len(r.stack)
    r.grow(n + r.window.value)
    if len(r.stack) > n:
        start_gate(r.ctx, r.stack[-1], r.say, r.status)
        tops.append(len(r.stack) - 1)


def _halt(r: Round, tops: list[int]) -> None:
    for t in tops:
        r.stack[t].halt()


def _bisect(r: Round, lo: int, failing: int) -> tuple[int, list[Entry]]:
    """stack[failing] failed and stack[:lo] passed: gate probes spread between them side by
    side (up to the depth, less one) until the first failing candidate is found.  The
    candidates below it are green: each contains the ones before it."""
    stack, ctx = r.stack, r.ctx
    width = max(1, r.window.value - 1)
    green = lo
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
            stack[p].halt()  # above the failure: its verdict is not needed
    return green, [stack[failing]]
