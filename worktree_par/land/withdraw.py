"""A lander taking its task back: Ctrl-C or a timeout while it waits, or 'wtp rm' of a task
a conductor holds.  Below the rest of the wing, so that removal can withdraw too."""

from __future__ import annotations

import time

from ..repo import Ctx
from ..state import ACTIVE, LANDED, LANDING, LANDING_PHASE, PUBLISHING, WITHDRAWN, Task, interrupted, lander_gone

WAITING_NOTE = "waiting in the land queue"  # what prepare.py notes on a task that joins the queue


def withdraw(ctx: Ctx, t: Task) -> str:
    """The lander gives up (timeout, Ctrl-C) or 'wtp rm' takes the task back: the task is
    active again when no conductor holds it; a conductor that holds it is told (the intent
    'withdrawn') and gives it back before publishing anything of it.  Once the publication
    point has committed to it, it can no longer be withdrawn.  What happened, in a line."""
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is None or cur.seq != t.seq:
            return ""
        if cur.state == LANDED:
            return "publishing"  # settled: interrupted() says it landed anyway
        if cur.state != LANDING:
            return ""
        if cur.intent == PUBLISHING:
            return "publishing"
        if not cur.phase and (_others_wait(ctx, t) or _marked_by_another(cur)):
            return f"task '{t.name}' stays in the land queue: another 'wtp land' of it waits there"
        if not cur.phase:
            # Given back by a conductor already: a note it wrote for the user (edits kept aside,
            # a forge request left open) stays; the lander's own "waiting" note goes.
            cur.state, cur.intent, cur.holder = ACTIVE, "", None
            cur.note = "" if cur.note == WAITING_NOTE else cur.note
            more = f"; {cur.note}" if cur.note else ""
            return f"'{t.base}' untouched by this land, task '{t.name}' is active again{more}"
        cur.intent = WITHDRAWN
    return f"task '{t.name}' is withdrawn: the conductor gives it back to its pre-land tip, '{t.base}' untouched by it"


def given_back(ctx: Ctx, t: Task, wait: float) -> bool:
    """Wait (up to ``wait`` seconds) until no conductor holds the task's land any more."""
    deadline = time.monotonic() + wait
    while True:
        cur = ctx.store.read().tasks.get(t.name)
        if cur is None or cur.seq != t.seq or cur.phase != LANDING_PHASE:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _others_wait(ctx: Ctx, t: Task) -> bool:
    """Another live 'wtp land' of the task has its ticket in the queue (ours has left it)."""
    from ..gates import Gate
    from .request import QUEUE

    return Gate(ctx.store, QUEUE).waiting(t.name)


def _marked_by_another(t: Task) -> bool:
    """Another live 'wtp land' marked the task waiting (its ticket about to join)."""
    from ..gates import live_other

    return live_other(t.holder)


def running(ctx: Ctx, t: Task) -> bool:
    """A land of ``t`` is under way: a live process holds it (a conductor, a recovery), or a
    live 'wtp land' waits for it (its own, or a detached land's ticket in the queue).  A land
    whose process died is not, though the task stays marked landing until it is taken up."""
    if t.state != LANDING:
        return False
    if t.phase:
        return not interrupted(t)
    return not lander_gone(t) or _others_wait(ctx, t)


def give_back_gone(ctx: Ctx, t: Task) -> str:
    """(doctor --fix) A task marked landing whose land is gone is active again, judged once
    more under the state lock: a 'wtp land' run again since keeps it."""
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is None or cur.seq != t.seq or cur.state != LANDING or running(ctx, cur):
            return f"could not fix: task '{t.name}' changed meanwhile (a land of it runs again)"
        cur.state, cur.phase, cur.holder, cur.intent = ACTIVE, "", None, ""
        cur.note = "" if cur.note == WAITING_NOTE else cur.note
    return f"marked task '{t.name}' active"
