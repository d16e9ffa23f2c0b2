"""A lander before it joins the queue: the worktree is fit to land, its tip is kept, the
task is marked waiting (``prepare``); and a land that waits with other options than ours
is not joined (``other_options``: checked early, and again as the ticket joins, under the
queue's ticket lock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import atomic, crashpoints, guard, queued, stacking, tasks
from ..errors import Refusal, Say, UsageError, os_said
from ..gates import Gate, Refuse
from ..locks import me
from ..repo import Ctx
from ..state import ACTIVE, LANDED, LANDING, Task
from .candidate import check_worktree, keep_tip
from .entry import gate_log
from .request import QUEUE, LandRequest
from .withdraw import WAITING_NOTE, running


def prepare(ctx: Ctx, t: Task, req: LandRequest, say: Say) -> Task:
    """Before joining the queue: the worktree is fit to land, its tip is kept under the
    backup ref, and the task is marked waiting to land (the task as it was read is returned).  A task another
    'wtp land' still waits to land with another gate, strategy or push is refused:
    that land's options would hold, not ours; with the same ones, both wait for the one land
    while it waits in the queue.  Once a conductor has taken it, a second land is refused
    as busy, and changes nothing."""
    if t.state == LANDING:  # refused before anything is done (and as the ticket joins: landers racing)
        why = other_options(t, req)(Gate(ctx.store, QUEUE).tickets())
        if why:
            raise Refusal(why)
    if t.stacked_on and (why := stacking.unmet(ctx.store.read(), t)):  # never before the task it was started on
        raise Refusal(why)
    try:
        tip = check_worktree(ctx, t, Path(t.path or ""))
    except Refusal:
        cur = ctx.store.read().tasks.get(t.name)
        if cur is not None and cur.seq == t.seq and cur.phase:  # a conductor took it meanwhile: its worktree
            raise Refusal(f"task '{t.name}' is busy ({cur.phase}): wait for it") from None
        raise
    crashpoints.step("land:checked")
    if req.gate and atomic.in_the_way(log := gate_log(ctx, t.name)):
        # (refused here, by its own lander: met by the conductor, it would end the lands beside it too)
        raise UsageError(f"{log} is not a regular file, so not a log: move it away, then land again")
    if not req.gate:
        say(f"warning: landing '{t.name}' untested: no gate (pass --gate CMD, or set [land] gate in .wtp.toml)")
    mine = me().to_json()
    with ctx.store.transaction() as st:
        # As read, or waiting to land by another lander since (which we join): a land under
        # way meanwhile (a conductor took the task) keeps its record and its pre-land tip.
        cur = st.tasks.get(t.name)
        if cur is None or cur.seq != t.seq:
            raise Refusal(f"task '{t.name}' changed meanwhile: see 'wtp list'")
        if cur.phase:
            raise Refusal(f"task '{t.name}' is busy ({cur.phase}): wait for it")
        if cur.state not in (t.state, LANDING):
            raise Refusal(f"task '{t.name}' changed meanwhile (now {cur.state}): see 'wtp list'")
        was = (cur.state, cur.note, cur.candidate, cur.ticket, cur.intent, cur.request, cur.holder)
        # the lander is the holder while it waits: one gone is seen (state.lander_gone)
        cur.state, cur.note, cur.candidate, cur.ticket, cur.intent, cur.request, cur.holder = (
            LANDING,
            WAITING_NOTE,
            None,
            None,
            "",
            None,
            mine,
        )
    # The pre-land tip is kept before anything can change the branch, outside the state lock
    # (no git under it) and before our ticket joins: no conductor takes the task until then.
    try:
        crashpoints.step("land:marked")
        keep_tip(ctx, t, tip)
    except BaseException:
        with ctx.store.transaction() as st:  # as it was, unless another lander took it up since
            cur = st.tasks.get(t.name)
            if cur is not None and cur.seq == t.seq and not cur.phase and cur.holder == mine:
                cur.state, cur.note, cur.candidate, cur.ticket, cur.intent, cur.request, cur.holder = was
                if cur.state == LANDING and not running(ctx, cur):  # another lander's mark, that lander gone too
                    cur.state, cur.note, cur.holder = ACTIVE, "", None
        raise
    cur = ctx.store.read().tasks.get(t.name)
    if cur is not None and cur.seq == t.seq and cur.state == LANDED:
        # Another land of it landed it meanwhile and tidied: that land superseded this tip, as its
        # clean-up says (a conductor blocks a branch that gained commits, so none is left out).
        guard.forget_backup(ctx, t.name, tip)
    elif cur is None or cur.seq != t.seq:  # gone: kept only while no other ref holds its commits
        guard.forget_backup(ctx, t.name, tip, landed=False)
    return t


def other_options(t: Task, req: LandRequest) -> Refuse:
    """A land of ``t`` does not join a queue where another land of it waits with another gate,
    strategy or push (what is tested and published; not how, nor the clean-up): that land's
    options would hold, not ours.  The line saying so, or None."""
    same = ("gate", "strategy", "push")
    ours = {k: v for k, v in req.to_json().items() if k in same}

    def refuse(tickets: list[dict[str, Any]]) -> str | None:
        for k in tickets:
            theirs = k.get("data")
            if k.get("label") == t.name and isinstance(theirs, dict) and {x: theirs.get(x) for x in same} != ours:
                return (
                    f"task '{t.name}' is already waiting to land with other options ({Gate.describe(k)}): "
                    f"let that land finish, or interrupt it first"
                )
        return None

    return refuse


def marked(ctx: Ctx, landing: list[str], say: Say) -> None:
    """Tasks now wait to land (``landing``): their slots are free, and a queued task whose
    declared paths collide only with tasks landing may start on their work (stacking.py).
    'wtp next' starts what can start, in the background (queued.start_behind), so that neither
    this land nor its report waits for a setup; it starts in queue order, and what is said
    here is worked out the same way.  Other clones' claims (share = true) are not asked here,
    on the network, before the land: 'wtp next' asks them, so no task is named then."""
    if not ctx.store.read().queued():
        return
    starting = _forecast(ctx)
    if not starting:
        return
    names = ", ".join(f"'{n}'" for n in landing)
    try:
        log = queued.start_behind(ctx, f"{names} began to land")
    except OSError as e:
        say(f"could not start queued tasks now ({os_said(e)}): 'wtp next' starts them")
        return
    if tasks.shared(ctx):  # what other clones' claims allow is known only once 'wtp next' asks
        say(f"'wtp next' starts the queued tasks that can start now, in the background (log: {log})")
        return
    for n, on in starting.items():
        how = f"on the work of '{on}' while it lands" if on else "in the slot that is free"
        say(f"queued task '{n}' starts {how}, in the background (log: {log})")


def _forecast(ctx: Ctx) -> dict[str, str | None]:
    """What 'wtp next' would start now, in queue order, and on whose work (as promote decides),
    other clones' claims aside."""
    order = queued.order(ctx, ctx.store.read())
    return {q.name: d.on for q, d in order if d.admit}
