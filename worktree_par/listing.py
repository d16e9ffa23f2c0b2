"""What ``wtp list`` shows: every task with its state, and for the live ones ahead/behind
the base, dirty and changed files and the processes inside, gathered side by side."""

from __future__ import annotations

from pathlib import Path

from . import gitops
from .locks import STOPPED, Holder
from .repo import Ctx
from .state import (
    CREATING,
    FINAL,
    LANDED,
    LANDING,
    LANDING_PHASE,
    LIVE,
    QUEUED,
    REMOVING,
    Task,
    interrupted,
    lander_gone,
)


class TaskInfo:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.ahead: int | None = None
        self.behind: int | None = None
        self.dirty: int | None = None
        self.changed: int | None = None
        self.processes: list[int] = []
        self.problem = ""
        self.op = ""  # a git operation stopped in its worktree: rebase, merge, cherry-pick, revert, am
        self.place: int | None = None  # its place in the land queue, while it is landing
        self.subject = ""  # the branch's last commit, and when it was made
        self.when = 0


# What takes an interrupted operation up again, by its phase: the command that was interrupted
# completes it (a land rolls back what it had begun and lands again), or doctor settles it.
_DOCTOR = "'wtp doctor --fix' to settle it"
_RESUME = {
    CREATING: "run 'wtp start {t}' to complete it, or {doctor}",
    LANDING_PHASE: "run 'wtp land {t}' to land it again, or {doctor}",
    REMOVING: "run 'wtp rm {t}' to complete it, or {doctor}",
}


def _info(ctx: Ctx, t: Task, base_refs: dict[str, str]) -> TaskInfo:
    info = TaskInfo(t)
    if t.state not in LIVE or not t.path:
        if t.state == LANDED and t.path and Path(t.path).is_dir():
            broken = gitops.link_problem(Path(t.path))
            info.problem = (
                f"landed; its worktree was kept, and is broken: {broken} ({gitops.link_fix(Path(t.path))})"
                if broken
                else f"landed; its worktree was kept ('wtp rm {t.name}' removes it)"
            )
        return info
    path = Path(t.path)
    if not path.is_dir():
        info.problem = "worktree missing (run 'wtp doctor')"
        return info
    broken = gitops.link_problem(path)
    if broken:  # git cannot read it: nothing is shown as clean
        info.problem = f"broken: {broken} ({gitops.link_fix(path)})"
        return info
    if interrupted(t):
        info.problem = (
            f"interrupted while {t.phase} ({_RESUME.get(t.phase, 'run {doctor}').format(t=t.name, doctor=_DOCTOR)})"
        )
    elif t.phase:  # its process runs, but stopped (Ctrl-Z) it does nothing until resumed
        info.problem = _stopped(t)
    info.op, _ = gitops.in_progress(path)
    if info.op and not info.problem:
        info.problem = f"a {info.op} is in progress in its worktree: end it with {gitops.ending(info.op, path)}"
    base_ref = base_refs.get(t.base) or f"refs/heads/{t.base}"
    ref = f"refs/heads/{t.branch}"
    summary = gitops.branch_summary(path, ctx.root, base_ref, ref)
    dirty, committed = summary.dirty, summary.committed
    info.ahead, info.behind = summary.ahead, summary.behind
    info.subject, info.when = summary.subject, summary.when
    info.dirty = len(dirty)
    info.changed = len(committed | set(dirty))
    return info


def _stopped(t: Task) -> str:
    try:
        h = Holder.from_json(t.holder)
    except ValueError:
        return ""
    return f"{t.phase} by pid {h.pid}, which is {STOPPED}" if h is not None and h.stopped() else ""


def list_tasks(ctx: Ctx, *, all_tasks: bool = False, details: bool = True) -> list[TaskInfo]:
    st = ctx.store.read()
    shown = [t for t in st.tasks.values() if all_tasks or t.state not in FINAL or (t.state == LANDED and t.path)]
    tasks = sorted(shown, key=lambda t: t.seq)
    if not details:
        return [TaskInfo(t) for t in tasks]
    base_refs = {b: ctx.base_tip_ref(b) for b in {t.base for t in tasks if t.state in LIVE}}
    from .fanout import map_threads  # only list needs threads

    infos = map_threads(lambda t: _info(ctx, t, base_refs), tasks)
    live_paths = [
        Path(i.task.path) for i in infos if i.task.state in LIVE and i.task.path and Path(i.task.path).is_dir()
    ]
    if live_paths:
        from .procs import processes_in

        found = processes_in(live_paths)
        for i in infos:
            if i.task.path and Path(i.task.path) in found:
                i.processes = [p.pid for p in found[Path(i.task.path)]]
    held = []
    if any(t.state == QUEUED for t in tasks):
        from . import trust

        held = trust.untrusted(ctx, st, "setup.run")
    for i in infos:  # no command starts them until then, whatever their note says of slots
        if held and i.task.state == QUEUED:
            i.problem = f"waits for 'wtp trust': setup.run in {ctx.cfg.source} has commands not trusted yet"
    if any(i.task.state == LANDING for i in infos):
        from .gates import Gate
        from .land.request import QUEUE

        places = {str(k.get("label")): n for n, k in reversed(list(enumerate(Gate(ctx.store, QUEUE).tickets(), 1)))}
        for i in infos:
            if i.task.state == LANDING:
                i.place = places.get(i.task.name)
                if i.place is None and not i.problem and lander_gone(i.task):
                    i.problem = (
                        f"its 'wtp land' is gone ({_RESUME[LANDING_PHASE].format(t=i.task.name, doctor=_DOCTOR)})"
                    )
    return infos


def semantic_last(ctx: Ctx) -> dict[str, object] | None:
    """With [check] test = "auto": the background check's last result and its age (a new
    run is started when the tasks' commits changed since): semantic next to conflict."""
    if ctx.cfg.check_test.strip() != "auto":
        return None
    from .semantic import background

    return background.observe(ctx)


def semantic_line(last: dict[str, object]) -> str:
    from .semantic import result

    return result.summary(last)


def list_json(infos: list[TaskInfo], semantic: dict[str, object] | None = None) -> dict[str, object]:
    """What 'wtp list --json' prints."""
    out = []
    for i in infos:
        d = task_json(i.task)
        d.update(
            ahead=i.ahead,
            behind=i.behind,
            dirty=i.dirty,
            changed=i.changed,
            processes=i.processes,
            problem=i.problem or None,
            operation=i.op or None,
            queue_place=i.place,
        )
        out.append(d)
    return {"tasks": out, **({"semantic": semantic} if semantic is not None else {})}


def task_json(t: Task) -> dict[str, object]:
    return {
        "name": t.name,
        "state": t.state,
        "branch": t.branch,
        "path": t.path if t.state in LIVE or (t.state == LANDED and t.path) else None,
        "base": t.base,
        "port": t.port if t.state in LIVE else None,
        "touch": list(t.touch),
        "use": list(t.use),
        "setup": t.setup or None,
        "commit": t.commit,
        "note": t.note or None,
        "request": t.request,  # the forge's pull/merge request number ([land] via a forge), else null
        "stacked_on": t.stacked_on,  # started on the work of this task, which was landing (it lands first)
    }
