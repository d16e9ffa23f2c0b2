"""``wtp doctor [--fix]``: find drift between the registry, git and the processes, and
repair it without losing work.

It never removes a live task's worktree, never deletes a branch holding commits
that are not on the base, and never takes a task for dead because the wtp process
that created it exited: only an operation in flight (a phase with a holder) can be
interrupted, and only a dead holder makes it so.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from . import adoption, atomic, crashpoints, gitops, guard, locks, procs, queued, records, removal, tasks
from .errors import StateError, WouldLoseWork, WtpError, count
from .repo import Ctx
from .state import (
    ABANDONED,
    CREATING,
    FINAL,
    LANDED,
    LANDING,
    LANDING_PHASE,
    QUEUED,
    REMOVING,
    State,
    Task,
    interrupted,
)


class Finding:
    def __init__(self, problem: str, fix: Callable[[], str] | None = None) -> None:
        self.problem = problem
        self.fix = fix  # returns what it did
        self.fixed = ""


def _alive_ticket(ticket: object) -> bool:
    try:
        return isinstance(ticket, dict) and locks.is_alive(locks.Holder.from_json(ticket.get("holder")))
    except ValueError:
        return False


def _gate_findings(ctx: Ctx) -> list[Finding]:
    from .gates import Gate

    found: list[Finding] = []
    gates_dir = ctx.store.dir / "gates"
    if not gates_dir.is_dir():
        return found
    for d in sorted(gates_dir.iterdir()):
        f = d / "tickets.json"
        try:
            data = json.loads(atomic.read_regular(f))
        except (OSError, ValueError, RecursionError):
            continue
        tickets = data.get("tickets", []) if isinstance(data, dict) else []
        dead = [t for t in tickets if not _alive_ticket(t)]
        if dead:
            name = str(data.get("name", d.name))
            title = "the land queue" if name == "#land" else f"gate '{name}'"

            def prune(name: str = name, title: str = title, n: int = len(dead)) -> str:
                Gate(ctx.store, name).tickets()  # reading under the lock drops dead tickets
                return f"dropped {count(n, 'ticket')} of dead processes from {title}"

            found.append(Finding(f"{title} has {count(len(dead), 'ticket')} of dead processes", prune))
    return found


def _claim_findings(ctx: Ctx, st: State, stale_days: float | None) -> tuple[list[Finding], bool]:
    """Shared claims on the remote (remote/sharing.py says what is wrong with them); False
    when the remote did not answer."""
    from .remote import sharing

    found, reached = sharing.findings(ctx, st, stale_days)
    return [Finding(problem, fix) for problem, fix in found], reached


def _state_dir_problem(ctx: Ctx) -> str:
    """What keeps wtp from writing its state dir (every command that records anything fails
    there), or ''.  Not fixed here: its permissions or mount are the user's."""
    d = ctx.store.dir
    if d.is_symlink() and not d.exists():
        return f"the state dir {d} is a link to {os.readlink(d)}, which does not exist: create it or remove the link"
    if d.exists() and not os.access(d, os.W_OK | os.X_OK):
        return f"the state dir {d} cannot be written: fix its permissions (or its mount, if read-only)"
    if ctx.store.file.is_dir():
        return f"{ctx.store.file} is a directory, not the registry: move it aside"
    return ""


def diagnose(ctx: Ctx, adopt: bool = False, stale_claims: float | None = None) -> list[Finding]:
    findings: list[Finding] = []
    if problem := _state_dir_problem(ctx):
        return [Finding(problem)]  # nothing else can be fixed, or trusted, until it is
    try:
        st = ctx.store.read()
    except StateError as e:

        def restore() -> str:
            if ctx.store.restore_backup():
                return f"restored {ctx.store.file} from {ctx.store.backup}"
            aside = ctx.store.quarantine()
            return f"set the corrupt file aside as {aside}; " + adoption.rebuild(ctx)

        findings.append(Finding(str(e).split(": run")[0], restore))
        return findings  # diagnose the rest once restored
    wts = {w.path: w for w in ctx.worktrees()}
    # A folder that is still there lost only its .git file: mended, never pruned (its admin
    # folder holds its HEAD, index and any stopped operation).
    if any(w.prunable and not w.path.is_dir() for w in wts.values()):
        n = sum(w.prunable and not w.path.is_dir() for w in wts.values())
        findings.append(Finding(f"git lists {n} worktree(s) whose folder is gone", lambda: _prune(ctx)))
    for t in sorted(st.tasks.values(), key=lambda t: t.seq):
        findings += _task_findings(ctx, t, wts)
    known = {Path(t.path) for t in st.tasks.values() if t.path and (t.state not in FINAL or t.state == LANDED)}
    root = ctx.worktree_root()
    prefix = f"refs/heads/{ctx.cfg.branch_prefix}"
    for path, w in wts.items():
        if path in known or path == ctx.root or w.prunable:
            continue
        if path.parent == root and w.branch and w.branch.startswith(prefix):
            name = w.branch[len(prefix) :]
            if not adoption.could_be_task(ctx, name):  # 'wtp/x/y', 'wtp/a@b', the base: not a worktree of wtp's
                continue
            if name in st.tasks and st.tasks[name].state not in FINAL:  # not adoptable: say what it is
                findings.append(
                    Finding(
                        f"worktree {path} ({w.branch}) is where task '{name}' ({st.tasks[name].state}) will start, "
                        f"on its branch: that task takes it as it is when it starts; move it away if it is not its"
                    )
                )
                continue
            if adopt:
                findings.append(
                    Finding(
                        f"worktree {path} ({w.branch}) is not in the registry",
                        functools.partial(adoption.adopt, ctx, name, path),
                    )
                )
            else:
                findings.append(
                    Finding(
                        f"worktree {path} ({w.branch}) is not in the registry: 'wtp doctor --fix --adopt' adopts it"
                    )
                )
    if root.is_dir():
        for trash in sorted(root.glob(f"{guard.TRASH_PREFIX}*")):
            pid = trash.name.rsplit("-", 1)[-1]
            if pid.isdigit() and procs.pid_alive(int(pid)) and not procs.dying(int(pid)):
                continue  # a removal still under way (a zombie, or a process being killed, never finishes it)
            findings.append(
                Finding(
                    f"{trash} is the leftover of an interrupted worktree removal (its record was already removed)",
                    functools.partial(_delete_trash, trash),
                )
            )
    from .semantic import trees

    for left in trees.leftovers(ctx):
        findings.append(
            Finding(
                f"{left} is the throw-away worktree of a 'wtp check --test' run that was killed",
                functools.partial(_remove_scratch, ctx, left),
            )
        )
    findings += _gate_findings(ctx)
    for d in records.folders_in_the_way(ctx.store.dir):
        findings.append(Finding(f"a folder stands where wtp keeps a file: {d}", functools.partial(_move_aside, d)))
    findings += _main_worktree_findings(ctx)
    claimed, reached = _claim_findings(ctx, st, stale_claims)
    findings += claimed
    if st.queued():  # what 'wtp next' would start, in queue order (none while setup.run is untrusted)
        try:  # other clones' claims hold tasks back too (share = true), as for 'wtp next'
            remote = tasks.remote_tasks(ctx) if reached else None
        except WtpError:  # they cannot be read: nothing is said to start blind
            remote = None
        can = (
            [t.name for t, d in queued.order(ctx, st, remote) if d.admit]
            if remote is not None or not tasks.shared(ctx)
            else []
        )
        if can:
            findings.append(Finding(f"queued task(s) {', '.join(can)} can start now", lambda: _promote(ctx)))
        for t in st.queued():  # tried again only when asked: said with what to run
            if t.note.startswith(tasks.CANNOT_START):
                findings.append(Finding(f"queued task '{t.name}' {t.note}"))
    return findings


def _broken(ctx: Ctx, t: Task, what: str, problem: str) -> Finding:
    """A broken link: mended by --fix, or what to do first when what is at .git is the user's."""
    fix = gitops.link_fix(Path(t.path or ""))
    if fix != gitops.DOCTOR_FIX:
        return Finding(f"{what} is broken: {problem}: {fix}")
    return Finding(f"{what} is broken: {problem}", lambda: guard.mend(ctx, t))


def _task_findings(ctx: Ctx, t: Task, wts: dict[Path, gitops.Worktree]) -> list[Finding]:
    out: list[Finding] = []
    if t.state in FINAL or t.state == QUEUED:
        if t.state == QUEUED and t.phase:
            out.append(Finding(f"queued task '{t.name}' has a stale phase '{t.phase}'", lambda: _clear_phase(ctx, t)))
        if t.state == LANDED and t.path and not Path(t.path).is_dir():
            out.append(Finding(f"landed task '{t.name}' kept a worktree that is gone", lambda: _forget(ctx, t)))
        elif t.state == LANDED and t.path and (problem := gitops.link_problem(Path(t.path))):
            out.append(_broken(ctx, t, f"the worktree landed task '{t.name}' kept ({t.path})", problem))
        return out  # a landed task whose worktree was kept is not a problem: 'wtp rm' removes it
    if t.phase and not interrupted(t):
        return out  # an operation is running right now (here or where we cannot see): leave it alone
    if t.phase == CREATING:
        out.append(Finding(f"the start of task '{t.name}' was interrupted", lambda: _complete_start(ctx, t)))
        return out
    if t.phase == LANDING_PHASE:
        from .land import recovery

        problem = gitops.link_problem(Path(t.path)) if t.path and Path(t.path).is_dir() else ""
        first = gitops.link_fix(Path(t.path or "")) if problem else gitops.DOCTOR_FIX  # (recovery mends the link)
        why = f"the land of task '{t.name}' was interrupted" + (
            f", and its worktree is broken ({problem})" if problem else ""
        )
        if first != gitops.DOCTOR_FIX:  # the user's to mend first: said, not tried
            out.append(Finding(f"{why}: {first}"))
        else:
            out.append(Finding(why, lambda: recovery.recover(ctx, t, lambda _m: None)))
        return out
    if t.phase == REMOVING:
        out.append(Finding(f"the removal of task '{t.name}' was interrupted", lambda: _complete_rm(ctx, t)))
        return out
    if t.state == LANDING and not t.phase:
        from .land.withdraw import give_back_gone, running

        if not running(ctx, t):
            out.append(
                Finding(f"task '{t.name}' is marked landing but no lander holds it", lambda: give_back_gone(ctx, t))
            )
    try:
        ctx.task_worktree(t.name, t.path)
    except WtpError:  # a damaged record: its task set aside, the folder and the branch left as they are
        why = f"task '{t.name}' is recorded with its worktree at {t.path}, in the main worktree (a damaged record)"
        out.append(Finding(why, lambda: _set_state(ctx, t, ABANDONED, clear_path=True)))
        return out
    path = Path(t.path) if t.path else None
    ref = f"refs/heads/{t.branch}"
    tip = gitops.ref_value(ctx.root, ref)
    if path is None or not path.is_dir():
        if tip is not None:
            on, moved = adoption.checked_out(ctx, t)
            gone = f"was moved to {on} (not recorded yet)" if moved else f"({path}) is gone; its branch is kept"
            out.append(Finding(f"the worktree of task '{t.name}' {gone}", lambda: adoption.recreate(ctx, t)))
        else:
            archived = gitops.ref_value(ctx.root, guard.archive_ref(t.name))
            note = f" (archived at {archived[:12]})" if archived else ""
            out.append(
                Finding(
                    f"task '{t.name}' has neither worktree nor branch{note}",
                    lambda: _set_state(ctx, t, ABANDONED, clear_path=True),
                )
            )
        return out
    problem = gitops.link_problem(path)
    if problem:
        out.append(_broken(ctx, t, f"the worktree of task '{t.name}' ({path})", problem))
        return out  # git cannot read it until it is mended
    w = wts.get(path)
    op, _ = gitops.in_progress(path)
    if w is None:
        out.append(
            Finding(
                f"{path} of task '{t.name}' exists but git does not know it as a worktree: move it aside and run 'wtp doctor --fix'"
            )
        )
    elif w.branch != ref and not (w.branch is None and op in ("rebase", "am", "bisect")):
        # (a rebase or a bisect detaches HEAD until it ends: ending it is the advice, not a switch)
        switch = f"'git -C {path} switch {t.branch}'"
        if w.branch is None and w.head and tip and not gitops.is_ancestor(ctx.root, w.head, tip):
            # Its detached commits would be left to the reflog alone: a branch keeps them first.
            switch = f"'git -C {path} branch {t.name}-detached-{w.head[:7]}' (keeps its commits), then {switch}"
        out.append(
            Finding(
                f"the worktree of task '{t.name}' has {w.branch or 'a detached HEAD'} checked out instead of {t.branch}: {switch}"
            )
        )
    elif tip is None and not (w.head or "").strip("0"):  # its branch deleted under it: HEAD names no commit
        last = gitops.head_last_logged(path)
        fix = functools.partial(guard.rebranch, ctx, t, last) if last else None
        where = (
            f"; its worktree's HEAD last had {last[:12]}, where --fix puts the branch back"
            if last
            else f": no commit of it is known; 'wtp rm {t.name} --force' archives its files"
        )
        out.append(Finding(f"the branch '{t.branch}' of task '{t.name}' is gone under its worktree{where}", fix))
    if op:
        out.append(Finding(f"task '{t.name}' has a {op} in progress in {path}: end it with {gitops.ending(op, path)}"))
    if t.setup.startswith("failed"):
        out.append(Finding(f"setup of task '{t.name}' {t.setup}: 'wtp start {t.name}' retries it"))
    return out


def _main_worktree_findings(ctx: Ctx) -> list[Finding]:
    """The main worktree left detached by a land interrupted while its files were brought along."""
    from .land.publish import DETACH_WHY

    if ctx.repo.bare:
        return []
    head, attached = gitops.head(ctx.root)
    if attached is not None or head is None:
        return []
    last = gitops.last_reflog_message(ctx.root, "HEAD")
    if DETACH_WHY not in last:
        return []
    base = ctx.detect_base()
    return [
        Finding(
            f"{ctx.root} was left detached at {head[:12]} by an interrupted land onto '{base}'",
            lambda: _reattach(ctx, base, head),
        )
    ]


def _reattach(ctx: Ctx, base: str, old: str) -> str:
    new = gitops.ref_value(ctx.root, f"refs/heads/{base}")
    if new is None:
        return f"could not fix: '{base}' is gone"
    if new == old:
        gitops.attach_head(ctx.root, f"refs/heads/{base}", f"back on {base}")
        return f"switched {ctx.root} back to '{base}'"
    ok, touched = gitops.read_tree_2way(ctx.root, old, new)
    if not ok:
        return f"could not fix: uncommitted changes to {', '.join(touched[:3])}; stash them and 'git switch {base}'"
    gitops.attach_head(ctx.root, f"refs/heads/{base}", f"follow {base}")
    return f"brought {ctx.root} along to '{base}' ({new[:12]})"


def _remove_scratch(ctx: Ctx, path: Path) -> str:
    from .semantic import trees

    kept = trees.remove(ctx, path, "")
    return f"removed {path}" + (f"; {kept}" if kept else "")


def _move_aside(path: Path) -> str:
    aside = path.with_name(f"{path.name}.folder-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(path, aside)  # (kept, with what it holds: nothing of it is wtp's to delete)
    return f"moved the folder {path} aside to {aside.name}"


def _delete_trash(path: Path) -> str:
    guard.delete_tree(path)
    return f"deleted {path}"


def _prune(ctx: Ctx) -> str:
    for w in ctx.worktrees():
        if w.prunable and w.path.is_dir():  # its .git file is missing: write it back, never prune it
            gitops.relink(ctx.root, ctx.repo.common_dir, w.path, "", ctx.worktree_lock)
    gitops.worktree(ctx.root, ["prune"], ctx.worktree_lock)
    return "pruned git's records of worktrees whose folder is gone"


def _forget(ctx: Ctx, t: Task) -> str:
    ctx.store.update(t, path=None, port=None)
    return f"forgot the worktree path of landed task '{t.name}'"


def _promote(ctx: Ctx) -> str:
    started = tasks.promote(ctx)
    return "started " + ", ".join(t.name for t in started) if started else "nothing could start"


def _clear_phase(ctx: Ctx, t: Task) -> str:
    ctx.store.update(t, phase="", holder=None)
    return f"cleared the stale phase of '{t.name}'"


def _set_state(ctx: Ctx, t: Task, state: str, clear_path: bool = False) -> str:
    if clear_path:
        ctx.store.update(t, state=state, phase="", holder=None, path=None, port=None)
    else:
        ctx.store.update(t, state=state, phase="", holder=None)
    return f"marked task '{t.name}' {state}"


def _complete_start(ctx: Ctx, t: Task) -> str:
    held = ctx.store.update(t, holder=locks.me().to_json())
    if held is None:
        return f"could not fix: task '{t.name}' changed meanwhile"
    notes = tasks.materialize(ctx, held)
    return "; ".join([f"completed the start of '{t.name}'", *notes])


def _complete_rm(ctx: Ctx, t: Task) -> str:
    # rm sets 'removing' only after its checks passed; an archive it made is a ref that stays.
    try:
        with ctx.store.phase(t, REMOVING) as held:
            guard.remove(ctx, held)
            removal.forget_path(ctx, held)
    except WouldLoseWork as e:
        return f"could not fix: {e.message}"
    return f"completed the removal of '{t.name}'"


def doctor(ctx: Ctx, fix: bool, adopt: bool = False, stale_claims: float | None = None) -> list[Finding]:
    findings = diagnose(ctx, adopt, stale_claims)
    if not fix:
        return findings
    crashpoints.step("doctor:found")  # a fix judges again what it fixes: commands ran meanwhile
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
        findings = diagnose(ctx, adopt, stale_claims)
    return done
