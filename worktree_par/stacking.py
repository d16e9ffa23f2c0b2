"""Starting a task on the work of a task that is landing.

A task whose declared paths collide with a task in flight waits (schedule.py).  When that
task is landing, its work is done and committed: what it lands is fixed.  A careful person
does not wait for the land queue then; they start the next change on top of the first.
wtp does the same: the newcomer starts on the landing task's work (its branch forks from
that task's pre-land tip) and records it (``stacked_on``, ``stacked_seq``).  From then on:

- its own commits are the ones after that fork (candidate.fork), so its land replays only
  them, onto a base that has the task below (landed, or stacked below it in the queue);
- it never lands before, or without, the task below: its land is refused while that task is
  neither landed nor landing ahead of it (``unmet``); removing the task below lets it land
  its own commits without it ('wtp rm' of that task archives its work first: this task's branch
  holds it, but its land drops it: ``above``);
- the two do not count as colliding with each other while the one below is landing
  (``beneath``): its edits of the shared paths are made on the other's, not beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .state import ABANDONED, LANDED, LANDING, REMOVING, State, Task, interrupted

if TYPE_CHECKING:
    from .schedule import Clash


def chain(t: Task) -> list[tuple[int, str]]:
    """The tasks ``t`` was started on, nearest first, as (seq, name), as recorded when it
    started: a task below that was removed, and its name reused since, still counts."""
    out = []
    for link in t.stacked_under or ([f"{t.stacked_seq}:{t.stacked_on}"] if t.stacked_on else []):
        seq, _, name = link.partition(":")
        if seq.isascii() and seq.isdigit() and name:  # as checked when the record was read
            out.append((int(seq), name))
    return out


def beneath(t: Task, tasks: Iterable[Task]) -> set[str]:
    """The tasks ``t`` was started on, directly or through one another, while they are the
    same tasks (their seq) and landing: their work is fixed, and under its own.  One that is
    being worked on again (its land failed or was withdrawn) may change what ``t`` built on:
    the two collide again."""
    by_name = {o.name: o for o in tasks}
    return {n for seq, n in chain(t) if (b := by_name.get(n)) is not None and b.seq == seq and b.state == LANDING}


def above(st: State, t: Task) -> list[Task]:
    """The unfinished tasks started on the work of ``t``, directly or through one another
    (removed ones included: what they were started on is under the tasks started on them).
    Their branches hold its commits, but their lands replay only their own: they do not keep
    its work (guard.losses)."""
    me = (t.seq, t.name)
    return [o for o in st.tasks.values() if o.state not in (LANDED, ABANDONED) and me in chain(o)]


def below(st: State, t: Task) -> Task | None:
    """The task ``t`` lands after: the nearest task it was started on that is still that task
    (its seq) and was not removed; past one removed (or whose record is gone: removed, and
    its name reused; or landed long ago, and then so was everything below it), the task that
    one was started on: its work is still under ``t``'s.  None when there is none."""
    return next((b for b in _records(st, t) if b.state != ABANDONED), None)


def _records(st: State, t: Task) -> list[Task]:
    """The tasks ``t`` was started on whose records are still theirs (their seq), nearest first."""
    return [b for seq, name in chain(t) if (b := st.tasks.get(name)) is not None and b.seq == seq]


def unmet(st: State, t: Task, ahead: Iterable[str] | None = None) -> str | None:
    """Why ``t`` may not land now, or None: the task it was started on has neither landed
    nor been removed, and is not landing ahead of it (``ahead``: the tasks below it in the
    land queue's stack; None: a task landing is ahead of a land that joins now)."""
    b = below(st, t)
    if b is None or b.state in (LANDED, ABANDONED):
        return None
    if b.state == LANDING and (ahead is None or b.name in set(ahead)):
        return None
    via = f" (through the removed '{t.stacked_on}')" if b.name != t.stacked_on else ""
    if b.phase == REMOVING and not interrupted(b):  # 'wtp rm' under way: the way out it would advise
        return (
            f"task '{t.name}' was started on the work of task '{b.name}'{via}, which is being removed by another "
            f"wtp command: land '{t.name}' again once it is gone ('wtp list' shows it)"
        )
    unlanded = [o.name for o in _records(st, t) if o.state not in (LANDED, ABANDONED)]
    both = f"'wtp land {' '.join([*reversed(unlanded), t.name])}' lands {'both' if len(unlanded) == 1 else 'them all'}"
    return (
        f"task '{t.name}' was started on the work of task '{b.name}'{via}, which has not landed (it is {b.state}): "
        f"land '{b.name}' first ({both}), or remove it ('wtp rm {b.name} --force' "
        f"archives its work) to land '{t.name}' without it"
    )


def start_on(
    st: State, t: Task, on: str | None, clashes: list[Clash], tips: dict[str, str], said: list[str]
) -> str | None:
    """Where a task admitted on the work of landing task ``on`` starts (its pre-land tip),
    recorded in ``t`` and said; None for any other start."""
    if on is None:
        return None
    b = st.tasks[on]
    t.stacked_on, t.stacked_seq = b.name, b.seq
    t.stacked_under = [f"{b.seq}:{b.name}", *(f"{q}:{n}" for q, n in chain(b))]
    what = "; ".join(c.what for c in clashes if c.other == b.name) or "paths"
    said.append(
        f"task '{t.name}' shares {what} with task '{b.name}', which is landing: it starts on the work of "
        f"'{b.name}' ({tips[on][:12]}) and lands after it"
    )
    return tips[on]
