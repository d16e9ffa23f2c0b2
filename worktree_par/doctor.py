"""``wtp doctor [--fix]``: find drift between the registry, git and the processes, and
repair it without losing work.

It never removes a live task's worktree, never deletes a branch holding commits
that are not on the base, and never takes a task for dead because the wtp process
that created it exited: only an operation in flight (a phase with a holder) can be
interrupted, and only a dead holder makes it so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from . import gitops, locks, tasks
from .errors import StateError
from .repo import Ctx
from .state import ABANDONED, ACTIVE, FINAL, LANDING, QUEUED, Task


class Finding:
    def __init__(self, problem: str, fix: Callable[[], str] | None = None) -> None:
        self.problem = problem
        self.fix = fix  # returns what it did
        self.fixed = ""


def _gate_findings(ctx: Ctx) -> list[Finding]:
    from .gates import Gate

    found = []
    gates_dir = ctx.store.dir / "gates"
    if not gates_dir.is_dir():
        return found
    for d in sorted(gates_dir.iterdir()):
        f = d / "tickets.json"
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        dead = [t for t in data.get("tickets", []) if not locks.is_alive(locks.Holder.from_json(t.get("holder")))]
        if dead:
            name = data.get("name", d.name)
            title = "the land queue" if name == "#land" else f"gate '{name}'"

            def prune(name: str = name, title: str = title, n: int = len(dead)) -> str:
                Gate(ctx.store, name).tickets()  # reading under the lock drops dead tickets
                return f"dropped {n} ticket(s) of dead processes from {title}"

            found.append(Finding(f"{title} has {len(dead)} ticket(s) of dead processes", prune))
    return found


def diagnose(ctx: Ctx, adopt: bool = False) -> list[Finding]:
    findings: list[Finding] = []
    try:
        st = ctx.store.read()
    except StateError as e:
        if not ctx.store.backup.exists():
            return [Finding(f"{e}; no previous copy is kept")]

        def restore() -> str:
            ctx.store.restore_backup()
            return f"restored {ctx.store.file} from {ctx.store.backup}"

        findings.append(Finding(str(e).split(":")[0] + " is corrupt", restore))
        return findings  # diagnose the rest once restored
    wts = {w.path: w for w in gitops.worktrees(ctx.root)}
    if any(w.prunable for w in wts.values()):
        n = sum(w.prunable for w in wts.values())
        findings.append(Finding(f"git lists {n} worktree(s) whose folder is gone", lambda: _prune(ctx)))
    for t in sorted(st.tasks.values(), key=lambda t: t.seq):
        findings += _task_findings(ctx, t, wts)
    known = {Path(t.path) for t in st.tasks.values() if t.path and t.state not in FINAL}
    root = ctx.worktree_root()
    prefix = f"refs/heads/{ctx.cfg.branch_prefix}"
    for path, w in wts.items():
        if path in known or path == ctx.root or w.prunable:
            continue
        if path.parent == root and w.branch and w.branch.startswith(prefix):
            name = w.branch[len(prefix) :]
            if adopt:
                findings.append(
                    Finding(
                        f"worktree {path} ({w.branch}) is not in the registry", lambda n=name, p=path: _adopt(ctx, n, p)
                    )
                )
            else:
                findings.append(
                    Finding(
                        f"worktree {path} ({w.branch}) is not in the registry: 'wtp doctor --fix --adopt' adopts it"
                    )
                )
    if root.is_dir():
        for trash in sorted(root.glob(f"{tasks.TRASH_PREFIX}*")):
            pid = trash.name.rsplit("-", 1)[-1]
            if pid.isdigit() and locks.pid_alive(int(pid)):
                continue  # a removal still under way
            findings.append(
                Finding(
                    f"{trash} is the leftover of an interrupted worktree removal (its record was already removed)",
                    lambda p=trash: _delete_trash(p),
                )
            )
    findings += _gate_findings(ctx)
    waiting = [t for t in st.queued()]
    if waiting:
        from . import schedule

        can = [t.name for t in waiting if schedule.decide(st, t, ctx.cfg.max_active).admit]
        if can:
            findings.append(Finding(f"queued task(s) {', '.join(can)} can start now", lambda: _promote(ctx)))
    return findings


def _task_findings(ctx: Ctx, t: Task, wts: dict[Path, gitops.Worktree]) -> list[Finding]:
    out: list[Finding] = []
    if t.state in FINAL or t.state == QUEUED:
        if t.state == QUEUED and t.phase:
            out.append(Finding(f"queued task '{t.name}' has a stale phase '{t.phase}'", lambda: _clear_phase(ctx, t)))
        return out
    holder = locks.Holder.from_json(t.holder)
    interrupted = bool(t.phase) and not locks.is_alive(holder)
    if t.phase and not interrupted:
        return out  # an operation is running right now: leave it alone
    if interrupted and t.phase == "creating":
        out.append(Finding(f"the start of task '{t.name}' was interrupted", lambda: _complete_start(ctx, t)))
        return out
    if interrupted and t.phase == "landing":
        from . import land

        out.append(
            Finding(f"the land of task '{t.name}' was interrupted", lambda: land.recover(ctx, t, lambda _m: None))
        )
        return out
    if interrupted and t.phase == "removing":
        out.append(Finding(f"the removal of task '{t.name}' was interrupted", lambda: _complete_rm(ctx, t)))
        return out
    if t.state == LANDING:
        out.append(
            Finding(f"task '{t.name}' is marked landing but no lander holds it", lambda: _set_state(ctx, t, ACTIVE))
        )
    path = Path(t.path) if t.path else None
    ref = f"refs/heads/{t.branch}"
    tip = gitops.ref_value(ctx.root, ref)
    if path is None or not path.is_dir():
        if tip is not None:
            out.append(
                Finding(
                    f"the worktree of task '{t.name}' ({path}) is gone; its branch is kept", lambda: _recreate(ctx, t)
                )
            )
        else:
            archived = gitops.ref_value(ctx.root, f"refs/wtp/archive/{t.name}")
            note = f" (archived at {archived[:12]})" if archived else ""
            out.append(
                Finding(
                    f"task '{t.name}' has neither worktree nor branch{note}",
                    lambda: _set_state(ctx, t, ABANDONED, clear_path=True),
                )
            )
        return out
    w = wts.get(path)
    if w is None:
        out.append(
            Finding(
                f"{path} of task '{t.name}' exists but git does not know it as a worktree: move it aside and run 'wtp doctor --fix'"
            )
        )
    elif w.branch != ref:
        out.append(
            Finding(
                f"the worktree of task '{t.name}' has {w.branch or 'a detached HEAD'} checked out instead of {t.branch}: 'git -C {path} switch {t.branch}'"
            )
        )
    from .land import _rebase_in_progress

    if _rebase_in_progress(path):
        out.append(
            Finding(
                f"task '{t.name}' has a rebase in progress in {path}: finish it or run 'git -C {path} rebase --abort'"
            )
        )
    if t.setup.startswith("failed"):
        out.append(Finding(f"setup of task '{t.name}' {t.setup}: 'wtp start {t.name}' retries it"))
    return out


def _delete_trash(path: Path) -> str:
    tasks.delete_tree(path)
    return f"deleted {path}"


def _prune(ctx: Ctx) -> str:
    tasks.git_worktree(ctx, ["prune"])
    return "pruned git's records of worktrees whose folder is gone"


def _promote(ctx: Ctx) -> str:
    started = tasks.promote(ctx)
    return "started " + ", ".join(t.name for t in started) if started else "nothing could start"


def _clear_phase(ctx: Ctx, t: Task) -> str:
    with ctx.store.transaction() as st:
        cur = st.tasks[t.name]
        cur.phase, cur.holder = "", None
    return f"cleared the stale phase of '{t.name}'"


def _set_state(ctx: Ctx, t: Task, state: str, clear_path: bool = False) -> str:
    with ctx.store.transaction() as st:
        cur = st.tasks[t.name]
        cur.state, cur.phase, cur.holder = state, "", None
        if clear_path:
            cur.path, cur.port = None, None
    return f"marked task '{t.name}' {state}"


def _complete_start(ctx: Ctx, t: Task) -> str:
    with ctx.store.transaction() as st:
        cur = st.tasks[t.name]
        cur.holder = locks.me().to_json()
    tasks.materialize(ctx, t)
    return f"completed the start of '{t.name}'"


def _complete_rm(ctx: Ctx, t: Task) -> str:
    # rm sets 'removing' only after its checks passed and any archive was written.
    if t.path and Path(t.path).is_dir():
        tasks.delete_worktree(ctx, Path(t.path), strict=False)
    tasks.git_worktree(ctx, ["prune"])
    tip = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
    if tip and (
        t.state == "landed"
        or tasks.unlanded_commits(ctx, tip, t.base) == 0
        or gitops.ref_value(ctx.root, f"refs/wtp/archive/{t.name}")
    ):
        gitops.delete_ref(ctx.root, f"refs/heads/{t.branch}", tip)
    _set_state(ctx, t, ABANDONED if t.state != "landed" else "landed", clear_path=True)
    return f"completed the removal of '{t.name}'"


def _recreate(ctx: Ctx, t: Task) -> str:
    tasks.git_worktree(ctx, ["prune"])
    assert t.path is not None
    Path(t.path).parent.mkdir(parents=True, exist_ok=True)
    tasks.git_worktree(ctx, ["add", "--quiet", t.path, t.branch])
    return f"recreated the worktree of '{t.name}' at {t.path} from its branch"


def _adopt(ctx: Ctx, name: str, path: Path) -> str:
    from . import schedule
    from .repo import validate_name

    validate_name(name)
    with ctx.store.transaction() as st:
        if name in st.tasks and st.tasks[name].state not in FINAL:
            return f"'{name}' is already registered"
        base = ctx.detect_base()
        fork = gitops.merge_base(ctx.root, ctx.base_tip_ref(base), str(path))
        st.tasks[name] = Task(
            name=name,
            state=ACTIVE,
            branch=ctx.branch_of(name),
            base=base,
            seq=st.next_seq(),
            path=str(path),
            fork=fork,
            port=schedule.free_port(st, ctx.cfg.port_base),
        )
    return f"adopted {path} as task '{name}'"


def doctor(ctx: Ctx, fix: bool, adopt: bool = False) -> list[Finding]:
    findings = diagnose(ctx, adopt)
    if not fix:
        return findings
    done: list[Finding] = []
    rounds = 0
    while findings and rounds < 3:  # a restored state file is diagnosed again
        rounds += 1
        for f in findings:
            if f.fix is not None:
                try:
                    f.fixed = f.fix()
                except Exception as e:  # noqa: BLE001 - report and go on with the other repairs
                    f.fixed = f"could not fix: {e}"
            done.append(f)
        if not any("restored" in f.fixed for f in findings):
            break
        findings = diagnose(ctx, adopt)
    return done
