"""Admission control: the cap on active tasks and declared collisions.

Pure functions over the registry: no git, no I/O.  A task waits when the cap is
reached or when its declared paths (``--touch`` globs) or resources (``--use``)
collide with a task in flight or with one queued before it (FIFO: a newcomer
never overtakes an earlier task it collides with).  The cap counts the tasks being
worked on (active or blocked), not those landing: their work is done, and whoever did
it has moved on.  A task whose only collisions are on paths with a task landing starts
on that task's work instead of waiting (stacking.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .errors import UsageError, count
from .globs import globs_intersect
from .names import shown
from .stacking import beneath
from .state import LANDING, LIVE, QUEUED, State, Task

CANNOT_START = "cannot start: "  # the note of a queued task whose start failed


class Clash(NamedTuple):
    """A declared collision between a task and one in flight (admission's word; check has its own)."""

    other: str  # the other task's name
    kind: str  # "declared" (paths) or "resource"
    what: str  # the path pair or resource
    queued: bool = False  # the other task is queued too: it holds nothing yet, it is ahead in line

    def describe(self) -> str:
        if self.kind == "likely":
            return f"{self.what} with task '{self.other}' (its history; [check] cochange = \"hold\")"
        noun = "path" if self.kind == "declared" else "resource"
        # A queued task holds nothing until it starts: say it is ahead, not that it holds it.
        ahead = ", queued ahead of it" if self.queued else ""
        return f"{noun} {self.what} with task '{self.other}'{ahead}"


def normalize_resource(r: str) -> str:
    s = r.strip()
    if not s or len(s) > 100 or any(ord(c) < 32 for c in s):
        raise UsageError(f"--use '{shown(r)}' is not a resource name: use a short name such as 'deploy:prod'")
    return s


def resources_collide(a: str, b: str) -> bool:
    """Same resource, or one names a whole family of the other ('deploy' covers 'deploy:prod')."""
    return a == b or a.startswith(b + ":") or b.startswith(a + ":")


def collisions(task: Task, others: list[Task], recorded: dict[str, list[str]] | None = None) -> list[Clash]:
    """Declared collisions of ``task`` with ``others``; ``recorded``: paths the agent hook
    recorded per task (as globs), which count like declared ones."""
    found: list[Clash] = []
    extra = recorded or {}
    mine = [*task.touch, *extra.get(task.name, ())]
    pool = [task, *others]
    under = beneath(task, pool)  # started on their work: its edits are on top of theirs
    for o in others:
        if o.name == task.name or o.name in under or task.name in beneath(o, pool):
            continue
        queued = o.state == QUEUED
        for g in mine:
            for h in [*o.touch, *extra.get(o.name, ())]:
                if globs_intersect(g, h):
                    found.append(Clash(o.name, "declared", g if g == h else f"{g} ~ {h}", queued))
        for r in task.use:
            for s in o.use:
                if resources_collide(r, s):
                    found.append(Clash(o.name, "resource", r if r == s else f"{r} ~ {s}", queued))
        if o.name in task.held:  # held at start: the history says they likely collide
            found.append(Clash(o.name, "likely", "files that usually change together"))
    return list(dict.fromkeys(found))  # a path both declared and recorded by the hook is one clash


class Decision(NamedTuple):
    admit: bool
    full: bool  # the cap is reached
    collisions: list[Clash]
    on: str | None = None  # admitted on the work of this landing task (its paths collide; stacking.py)
    taken: int = 0  # slots taken (active and blocked tasks): above max_active after failed or withdrawn lands
    ahead: int = 0  # of those, by queued tasks before it that start first (in_order)

    def reason(self, max_active: int) -> str:
        why = []
        if self.full:
            by = f", {count(self.ahead, 'task')} queued before it starting in them" if self.ahead else ""
            why.append(f"no slot is free: {max(self.taken, max_active)} of {max_active} taken{by}")
        why += [c.describe() for c in self.collisions]
        return "; ".join(why)


def decide(
    state: State,
    task: Task,
    max_active: int,
    earlier_queued: list[Task] | None = None,
    recorded: dict[str, list[str]] | None = None,
    remote: list[Task] | None = None,
    tips: dict[str, str] | None = None,
    started: list[Task] | None = None,
) -> Decision:
    """May ``task`` become active now?  (``recorded``: as for ``collisions``; ``remote``: the
    live tasks of other clones, from their shared claims: they collide, but take no slot;
    ``tips``: the work of each landing task it may start on (isolate.landing_tips), none if omitted;
    ``started``: queued tasks ahead of it that start first (``in_order``): they count as active.)"""
    live = [t for t in state.tasks.values() if t.state in LIVE and t.name != task.name]
    first = [t for t in started or () if t.name != task.name]
    live += first
    if earlier_queued is None:
        earlier_queued = [t for t in state.queued() if t.seq < task.seq and t.name != task.name]
    coll = collisions(task, live + earlier_queued, recorded)
    far = collisions(task, remote or [], recorded)
    taken = sum(t.state != LANDING for t in live)
    full = taken >= max_active
    on = None if full or far else _on(state, task, coll, tips or {})
    admit = not full and (not coll or on is not None) and not far
    return Decision(admit=admit, full=full, collisions=coll + far, on=on, taken=taken, ahead=len(first))


def in_order(
    state: State,
    max_active: int,
    *,
    recorded: dict[str, list[str]] | None = None,
    remote: list[Task] | None = None,
    tips: dict[str, str] | None = None,
    startable: Callable[[Task], bool] = lambda _: True,
) -> list[tuple[Task, Decision]]:
    """The decision for each queued task, in queue order, as 'wtp next' (tasks.promote) makes
    them: a task admitted that can start (``startable``: its --base resolves) takes its slot,
    and counts as active, for the ones after it; a task left waiting is ahead of them in line.
    A task whose start failed is left out: it waits for 'wtp start NAME' to try it again, and
    neither takes a slot nor holds anyone back.  So is one admitted that cannot start."""
    started: list[Task] = []
    waiting: list[Task] = []
    out = []
    for q in state.queued():
        if q.note.startswith(CANNOT_START):
            continue
        d = decide(
            state, q, max_active, earlier_queued=waiting, recorded=recorded, remote=remote, tips=tips, started=started
        )
        if not d.admit:
            waiting.append(q)
        elif not startable(q):
            continue
        else:
            started.append(q)
        out.append((q, d))
    return out


def _on(state: State, task: Task, coll: list[Clash], tips: dict[str, str]) -> str | None:
    """The landing task ``task`` may start on: every collision is on paths, with tasks landing
    onto its base, and one of them (whose work is known) was started on all the others."""
    if not coll or task.start_ref:  # a start point asked for is kept
        return None
    names = set()
    for c in coll:
        o = state.tasks.get(c.other)
        if c.kind not in ("declared", "likely") or c.queued or o is None or o.state != LANDING or o.base != task.base:
            return None
        names.add(o.name)
    tasks = list(state.tasks.values())
    return next((n for n in sorted(names) if n in tips and names <= {n} | beneath(state.tasks[n], tasks)), None)


def free_port(state: State, port_base: int) -> int:
    """The first port from ``port_base`` that no live task holds and nothing on this machine
    listens on (a dev server of the main worktree, one a gate left running): a task's PORT
    that its server cannot bind fails it for a reason that is not its own."""
    used = {t.port for t in state.tasks.values() if t.state in LIVE and t.port is not None}
    port = port_base
    while port in used or (port < port_base + 1000 and not bindable(port)):
        port += 1
    return port


def bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` on this machine now (loopback, IPv4 and IPv6,
    as a dev server or a test's server binds it; a server on every address holds it there too)."""
    import errno
    import socket

    if not 0 < port < 65536:
        return False
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):  # 'localhost' is either
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 here: nothing can listen there
        with s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                s.bind((host, port))
            except OSError as e:
                if e.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):  # ::1 not configured: not held
                    return False
    return True
