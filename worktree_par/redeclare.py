"""Declarations added to a task that exists: ``wtp start TASK --touch/--use`` again."""

from __future__ import annotations

from . import claims, schedule
from .errors import Refusal
from .repo import Ctx
from .state import LIVE, QUEUED, State, Task


def add(ctx: Ctx, st: State, t: Task, globs: list[str], res_names: list[str], force: bool) -> list[str]:
    """``wtp start TASK --touch/--use`` on a task that exists adds to its declarations, after
    the same collision check as admission: a live task's new declarations must not collide
    with another live task's (refused, exit 1, unless --force); a queued task's are simply
    taken and its place re-decided."""
    touch = sorted(set(t.touch) | set(globs))
    use = sorted(set(t.use) | set(res_names))
    if (touch, use) == (sorted(t.touch), sorted(t.use)):
        return []
    if t.state in LIVE:
        # Only what is added is checked: a collision the task already had (forced, or
        # declared before the other task started) does not refuse an unrelated addition.
        new_touch = [g for g in touch if g not in t.touch]
        new_use = [r for r in use if r not in t.use]
        trial = Task(name=t.name, state=t.state, branch=t.branch, base=t.base, seq=t.seq, touch=new_touch, use=new_use)
        others = [o for o in st.tasks.values() if o.state in LIVE and o.name != t.name]
        recorded = {k: v for k, v in claims.declarations(ctx, st).items() if k != t.name}
        clashes = schedule.collisions(trial, others, recorded)
        if clashes and not force:
            raise Refusal(
                f"cannot add to the declarations of '{t.name}': "
                + "; ".join(c.describe() for c in clashes)
                + ": land or remove the other task first, or pass --force"
            )
    added = [f"--touch {g}" for g in touch if g not in t.touch] + [f"--use {r}" for r in use if r not in t.use]
    t.touch, t.use = touch, use
    if t.state == QUEUED and not t.note.startswith(schedule.CANNOT_START):
        t.note = schedule.decide(st, t, ctx.cfg.max_active, recorded=claims.declarations(ctx, st)).reason(
            ctx.cfg.max_active
        )
    return [f"task '{t.name}' now also declares {', '.join(added)}"]
