"""The task lifecycle: start (admit, queue or refuse), next, rm, and what list shows.

Each operation that changes git runs in phases recorded in the registry with
their holder, so an interrupted one (a killed process) is completed or rolled
back by the next command that meets it, never left half-done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from . import gitops, hooks, isolate, locks, schedule
from .errors import Refusal, TaskNotFound, UsageError, WaitTimeout
from .repo import Ctx, shown, validate_branch, validate_name
from .state import ABANDONED, ACTIVE, FINAL, LANDED, LIVE, QUEUED, State, Task

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class StartResult:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.messages: list[str] = []
        self.place = 0  # 1-based place in the queue when queued
        self.pending = False  # activated here: the worktree is still to be made


def get(state: State, name: str) -> Task:
    validate_name(name)
    t = state.tasks.get(name)
    if t is None:
        known = ", ".join(sorted(n for n, t in state.tasks.items() if t.state not in FINAL)) or "none"
        raise TaskNotFound(f"no task named '{name}' (tasks: {known}): see 'wtp list'")
    return t


def _interrupted(t: Task) -> bool:
    return bool(t.phase) and not locks.is_alive(locks.Holder.from_json(t.holder))


def git_worktree(ctx: Ctx, args: list[str], check: bool = True) -> gitops.Result:
    """Run 'git worktree add/remove/prune' under our repo-wide worktree lock: git reads
    every worktree's admin folder while adding one, and fails ('failed to read
    .git/worktrees/x/commondir') when another process is creating or deleting one."""
    opts = []
    if args[0] == "add" and ctx.git_setting("checkout.workers") is None:
        # git's parallel checkout (one worker per core; git itself keeps small checkouts
        # sequential), unless the user chose a setting of their own.
        opts = ["-c", "checkout.workers=0"]
    with locks.Lock(ctx.store.ensure_dir() / "worktrees.lock"):
        return gitops.run([*opts, "worktree", *args], ctx.root, check=check)


def worktree_path(ctx: Ctx, name: str) -> Path:
    root = ctx.worktree_root()
    path = (root / name).resolve()
    # Names are validated, but a planted symlink under the root must not lead elsewhere.
    if path.parent != root:
        raise UsageError(f"worktree path for '{name}' resolves outside {root}: remove the link at {root / name}")
    return path


def check_worktree_root(ctx: Ctx) -> Path:
    root = ctx.worktree_root()
    for wt_top in {ctx.root, ctx.repo.toplevel}:
        if root == wt_top or wt_top in root.parents:
            raise UsageError(
                f"worktree_root {ctx.cfg.worktree_root!r} is inside the worktree {wt_top}: "
                "worktrees must not nest; use a path outside it, like '../{repo}.worktrees'"
            )
    return root


# --- start ---------------------------------------------------------------------------


def start(
    ctx: Ctx,
    name: str,
    *,
    base_ref: str | None = None,
    touch: list[str] | None = None,
    use: list[str] | None = None,
    force: bool = False,
    say: Say = _quiet,
) -> StartResult:
    """Admit, queue or resume a task.  Everything is validated before anything is written."""
    validate_name(name)
    validate_branch(ctx, name)
    globs = sorted({schedule.normalize_glob(g) for g in touch or []})
    res_names = sorted({schedule.normalize_resource(r) for r in use or []})
    check_worktree_root(ctx)
    base, fork = ctx.resolve_start(base_ref)
    path = worktree_path(ctx, name)
    if ctx.cfg.setup_run:
        isolate.require_trust(ctx, ctx.store.read(), "setup.run")

    with ctx.store.transaction() as st:
        t = st.tasks.get(name)
        if t is not None and t.state not in FINAL:
            result = _resume(st, t)
        else:
            if t is not None and t.path and Path(t.path).exists():
                raise Refusal(f"finished task '{name}' still has its worktree at {t.path}: run 'wtp rm {name}' first")
            t = Task(
                name=name,
                state=QUEUED,
                branch=ctx.branch_of(name),
                base=base,
                seq=st.next_seq(),
                start_ref=base_ref,
                touch=globs,
                use=res_names,
                created=time.time(),
            )
            decision = schedule.decide(st, t, ctx.cfg.max_active)
            result = StartResult(t)
            st.tasks[name] = t
            if decision.admit or force:
                if not decision.admit:
                    result.messages.append(f"--force: started despite {decision.reason(ctx.cfg.max_active)}")
                _activate(ctx, st, t, path, fork)
                result.pending = True
            else:
                result.place = [q.name for q in st.queued()].index(name) + 1
                t.note = decision.reason(ctx.cfg.max_active)
                result.messages.append(f"task '{name}' is queued (place {result.place}): waits because {t.note}")
    if result.pending:
        result.messages += materialize(ctx, result.task, say)
    return result


def _resume(st: State, t: Task) -> StartResult:
    """``wtp start`` on a task that exists: report it, or take over what was interrupted."""
    result = StartResult(t)
    if t.state == QUEUED:
        result.place = [q.name for q in st.queued()].index(t.name) + 1
        result.messages.append(f"task '{t.name}' is already queued (place {result.place}): {t.note}")
    elif (
        t.phase == "creating"
        and _interrupted(t)
        or (t.state == ACTIVE and not t.phase and t.setup.startswith("failed"))
    ):
        t.phase, t.holder = "creating", locks.me().to_json()
        result.messages.append(f"resuming the interrupted start of task '{t.name}'")
        result.pending = True
    else:
        result.messages.append(f"task '{t.name}' is already {t.state}")
    return result


def _activate(ctx: Ctx, st: State, t: Task, path: Path, fork: str | None) -> None:
    t.state = ACTIVE
    t.path = str(path)
    t.fork = fork
    t.port = schedule.free_port(st, ctx.cfg.port_base)
    t.phase, t.holder = "creating", locks.me().to_json()
    t.note = ""


def materialize(ctx: Ctx, t: Task, say: Say = _quiet) -> list[str]:
    """Create the branch and worktree of an activated task and prepare it.  Idempotent,
    so an interrupted start is completed by running it again."""
    assert t.path is not None
    path = Path(t.path)
    messages: list[str] = []
    hooks.step("start:before-worktree")
    try:
        # The usual case, a new task: one 'worktree add', which itself refuses an existing
        # branch or a registered path; only when it does, look closer.
        add = ["add", "--quiet", "--no-track", "-b", t.branch, str(path), str(t.fork)]
        if not (t.fork and not path.exists() and git_worktree(ctx, add, check=False).code == 0):
            _make_worktree(ctx, t, path, messages)
    except BaseException:
        _rollback_start(ctx, t)
        raise
    hooks.step("start:before-setup")
    failure = None
    if ctx.cfg.setup_copy or ctx.cfg.setup_run:
        log = ctx.store.subdir("logs") / f"setup-{t.name}.log"
        try:
            isolate.copy_ignored(ctx, t, say)
            failure = isolate.run_setup(ctx, t, log, say)
        except OSError as e:
            failure = f"copy failed: {e}"
        if failure:
            messages.append(
                f"setup of task '{t.name}' failed: {failure} (log: {log}); the worktree is ready to inspect: "
                f"fix it and run 'wtp start {t.name}' to retry setup, or 'wtp rm {t.name}'"
            )
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is not None and cur.seq == t.seq:
            cur.phase, cur.holder = "", None
            cur.setup = f"failed: {failure}" if failure else ("done" if ctx.cfg.setup_run or ctx.cfg.setup_copy else "")
            t.setup = cur.setup
            t.phase = ""
    return messages


def _make_worktree(ctx: Ctx, t: Task, path: Path, messages: list[str]) -> None:
    """Create the task's worktree whatever is already there: its registered worktree
    (nothing to do), its branch without a worktree, or nothing yet."""
    ref = f"refs/heads/{t.branch}"
    wt = {w.path: w for w in gitops.worktrees(ctx.root)}.get(path)
    if wt is not None:
        if wt.branch != ref:
            raise Refusal(
                f"{path} is a worktree of '{wt.branch or 'a detached HEAD'}', not of '{t.branch}': remove it first"
            )
        return
    if path.exists() and any(path.iterdir()):
        raise Refusal(
            f"{path} already exists and is not a worktree of this repository: move it away, then run 'wtp start {t.name}' again"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if gitops.ref_value(ctx.root, ref):
        messages.append(f"using the existing branch '{t.branch}'")
        git_worktree(ctx, ["add", "--quiet", str(path), t.branch])
    else:
        fork = t.fork or gitops.rev_parse(ctx.root, ctx.base_tip_ref(t.base))
        git_worktree(ctx, ["add", "--quiet", "--no-track", "-b", t.branch, str(path), str(fork)])


def _rollback_start(ctx: Ctx, t: Task) -> None:
    """Undo a start whose worktree could not be made: no half-registered task stays."""
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is not None and cur.seq == t.seq and cur.state == ACTIVE:
            del st.tasks[t.name]


# --- the queue ---------------------------------------------------------------------


def promote(ctx: Ctx, say: Say = _quiet) -> list[Task]:
    """Start queued tasks whose slot and collisions have cleared, in queue order;
    also complete starts whose process died mid-way."""
    started: list[Task] = []
    resumed: list[Task] = []
    with ctx.store.transaction() as st:
        for t in st.tasks.values():
            if t.state == ACTIVE and t.phase == "creating" and _interrupted(t):
                t.holder = locks.me().to_json()
                resumed.append(t)
        still_waiting: list[Task] = []
        for t in st.queued():
            d = schedule.decide(st, t, ctx.cfg.max_active, earlier_queued=still_waiting)
            if d.admit:
                fork = ctx.resolve_start(t.start_ref)[1] if t.start_ref else None
                _activate(ctx, st, t, worktree_path(ctx, t.name), fork)
                started.append(t)
            else:
                t.note = d.reason(ctx.cfg.max_active)
                still_waiting.append(t)
    for t in resumed + started:
        for m in materialize(ctx, t, say):
            say(m)
        say(f"started queued task '{t.name}' at {t.path}" if t in started else f"completed the start of '{t.name}'")
    return started + resumed


def wait_active(ctx: Ctx, name: str, timeout: float | None, say: Say = _quiet) -> Task:
    """Block until a queued task is admitted and ready (``wtp start --wait``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    while True:
        promote(ctx, say)
        t = get(ctx.store.read(), name)
        if t.state in LIVE and not t.phase:
            return t
        if t.state in FINAL:
            raise Refusal(f"task '{name}' was {t.state} while waiting")
        msg = (
            f"waiting for a slot for '{name}': {t.note}" if t.state == QUEUED else f"waiting for '{name}' to be set up"
        )
        if msg != last:
            say(msg)
            last = msg
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s; task '{name}' stays queued ({t.note})")
        time.sleep(0.2 if deadline is None else max(0.01, min(0.2, deadline - time.monotonic())))


# --- rm ------------------------------------------------------------------------------


def landed_tips(ctx: Ctx, base: str) -> list[str]:
    refs = [f"refs/heads/{base}"]
    remote = ctx.remote()
    if remote:
        refs.append(f"refs/remotes/{remote}/{base}")
    return [r for r in refs if gitops.ref_value(ctx.root, r)]


def unlanded_commits(ctx: Ctx, tip: str, base: str) -> int:
    """Commits on ``tip`` not on the base (local or remote-tracking)."""
    bases = landed_tips(ctx, base)
    args = ["rev-list", "--count", tip, *(f"^{b}" for b in bases)]
    return int(gitops.run(args, ctx.root).out.strip())


def archive(ctx: Ctx, name: str, commit: str) -> str:
    """Keep ``commit`` under refs/wtp/archive/<name>; an older archive there is kept aside."""
    ref = f"refs/wtp/archive/{name}"
    old = gitops.ref_value(ctx.root, ref)
    if old and gitops.is_ancestor(ctx.root, commit, old):
        return ref  # already kept there (a resumed rm)
    if old and not gitops.is_ancestor(ctx.root, old, commit):
        gitops.update_ref(
            ctx.root, f"refs/wtp/archive-prev/{name}/{int(time.time())}", old, None, f"older archive of {name}"
        )
    gitops.run(["update-ref", "--create-reflog", "-m", f"wtp: archive {name}", ref, commit], ctx.root)
    return ref


def rm(ctx: Ctx, name: str, *, force: bool = False, say: Say = _quiet) -> list[str]:
    """Remove a task's worktree and branch.  Refuses to drop unlanded commits, uncommitted
    files or a worktree in use unless forced; forced, it archives first and says what."""
    st = ctx.store.read()
    t = get(st, name)
    messages: list[str] = []
    if t.phase and not _interrupted(t):
        holder = locks.Holder.from_json(t.holder)
        raise Refusal(
            f"task '{name}' is busy ({t.phase}) by {holder.describe() if holder else 'another process'}: wait for it"
        )
    if t.state == QUEUED or (t.state in FINAL and not t.path):
        with ctx.store.transaction() as st2:
            cur = st2.tasks.get(name)
            if cur is not None and cur.seq == t.seq:
                was = cur.state
                cur.state, cur.note = ABANDONED, ""
        return [f"removed {'queued ' if was == QUEUED else ''}task '{name}'"]
    path = Path(t.path) if t.path else None
    ref = f"refs/heads/{t.branch}"
    tip = gitops.ref_value(ctx.root, ref)
    exists = path is not None and path.is_dir()
    dirty = gitops.status_paths(path) if exists and path else []
    procs = []
    if exists and path:
        from .procs import processes_in

        procs = processes_in([path])[path]
    unlanded = unlanded_commits(ctx, tip, t.base) if tip and t.state != LANDED else 0
    problems = []
    if unlanded:
        problems.append(f"{unlanded} commit{'s' * (unlanded != 1)} not on '{t.base}'")
    if dirty:
        problems.append(f"{len(dirty)} uncommitted file{'s' * (len(dirty) != 1)} ({_few(sorted(dirty))})")
    if procs:
        problems.append(
            f"{len(procs)} process{'es' * (len(procs) != 1)} running inside ({_few([f'{p.name}[{p.pid}]' for p in procs])})"
        )
    if problems and not force:
        raise Refusal(
            f"task '{name}' has {', '.join(problems)}: land it, or run 'wtp rm {name} --force' to archive and remove it"
        )
    hooks.step("rm:before-archive")
    if force and (unlanded or dirty):
        keep = gitops.snapshot(path)[0] if dirty and path else tip
        assert keep is not None
        aref = archive(ctx, name, keep)
        what = ", ".join(p for p in problems if "process" not in p)
        messages.append(f"archived {what} of task '{name}' under {aref} (restore: git branch {name} {aref})")
    if procs:
        messages.append(
            f"left {len(procs)} process(es) running in the removed directory: {_few([str(p.pid) for p in procs])}"
        )
    _remove(ctx, t, path, exists, tip)
    messages.insert(0, f"removed task '{name}' (worktree and branch '{t.branch}')")
    promote(ctx, say)
    return messages


TRASH_PREFIX = ".wtp-trash-"


class _NotClean(Exception):
    pass


def delete_worktree(ctx: Ctx, path: Path, strict: bool) -> None:
    """'git worktree remove', with the files deleted outside the repo-wide worktree lock.

    The folder is renamed aside (atomic, same parent), git drops its record of the now
    missing worktree under the lock, and the files are deleted after it, so several
    landers' clean-ups run side by side instead of one after another.  ``strict`` refuses
    (nothing changed) a worktree with modified or untracked files, as git itself would."""
    if strict and gitops.status_paths(path):
        raise _NotClean(str(path))
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{os.getpid()}")
    os.rename(path, trash)
    try:
        git_worktree(ctx, ["remove", str(path)] if strict else ["remove", "--force", "--force", str(path)])
    except BaseException:
        os.rename(trash, path)  # git refused (a locked worktree, say): put it back as it was
        raise
    delete_tree(trash)  # what is left, doctor reports and --fix deletes


def delete_tree(path: Path) -> None:
    """Delete a folder and everything in it, best effort, never following symlinks.

    'rm -rf' does it in C, ~1.7x faster than shutil.rmtree's per-file Python loop: on a
    20,000-file worktree that is ~90 ms of every land and rm."""
    import shutil
    import subprocess

    rm = shutil.which("rm")
    if rm is None or subprocess.run([rm, "-rf", "--", str(path)], stderr=subprocess.DEVNULL).returncode != 0:
        shutil.rmtree(path, ignore_errors=True)


def _remove(ctx: Ctx, t: Task, path: Path | None, exists: bool, tip: str | None, *, strict: bool = False) -> bool:
    """Remove worktree and branch in a recorded phase.  ``strict``: refuse a worktree holding
    modified or untracked files, or one git will not remove (False, nothing changed)."""
    with ctx.store.transaction() as st:
        cur = get(st, t.name)
        cur.phase, cur.holder = "removing", locks.me().to_json()
    hooks.step("rm:before-worktree")
    if path is not None:
        if exists:
            try:
                delete_worktree(ctx, path, strict)
            except (gitops.GitError, _NotClean):
                with ctx.store.transaction() as st:
                    cur = get(st, t.name)
                    cur.phase, cur.holder = "", None
                if strict:
                    return False
                raise
        else:
            git_worktree(ctx, ["prune"])
    hooks.step("rm:before-branch")
    if tip is not None:
        gitops.delete_ref(ctx.root, f"refs/heads/{t.branch}", tip)
    with ctx.store.transaction() as st:
        cur = get(st, t.name)
        if cur.state != LANDED:
            cur.state = ABANDONED
        cur.path, cur.port, cur.phase, cur.holder = None, None, "", None
    return True


def remove_landed(ctx: Ctx, name: str, say: Say = _quiet, tip: str | None = None) -> list[str]:
    """Clean up after a land, keeping a worktree that gained modified or untracked files
    (a gate's output, say).  ``tip``: the landed commit the branch was left at (the branch
    is deleted only from it)."""
    t = get(ctx.store.read(), name)
    path = Path(t.path) if t.path else None
    tip = tip or gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
    if not _remove(ctx, t, path, path is not None and path.is_dir(), tip, strict=True):
        return [f"kept the worktree {path}: it has modified or untracked files; 'wtp rm {name}' lists them"]
    messages = [f"removed task '{name}' (worktree and branch '{t.branch}')"]
    promote(ctx, say)
    return messages


def _few(items: list[str], n: int = 3) -> str:
    shown_items = ", ".join(shown(i) for i in items[:n])
    return shown_items + (f", and {len(items) - n} more" if len(items) > n else "")


# --- list --------------------------------------------------------------------------


class TaskInfo:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.ahead: int | None = None
        self.behind: int | None = None
        self.dirty: int | None = None
        self.changed: int | None = None
        self.processes: list[int] = []
        self.problem = ""


def _info(ctx: Ctx, t: Task, base_refs: dict[str, str]) -> TaskInfo:
    info = TaskInfo(t)
    if t.state not in LIVE or not t.path:
        return info
    path = Path(t.path)
    if not path.is_dir():
        info.problem = "worktree missing (run 'wtp doctor')"
        return info
    if _interrupted(t):
        info.problem = f"interrupted while {t.phase} (run 'wtp start {t.name}' or 'wtp doctor --fix')"
    base_ref = base_refs.get(t.base) or f"refs/heads/{t.base}"
    ref = f"refs/heads/{t.branch}"
    # Three git calls at once per task; tasks themselves run in parallel threads.
    st = gitops.spawn(gitops.STATUS_ARGS, path)
    ab = gitops.spawn(["rev-list", "--left-right", "--count", f"{base_ref}...{ref}"], ctx.root)
    ch = gitops.spawn(["diff", "--name-only", "-z", "--no-renames", f"{base_ref}...{ref}", "--"], ctx.root)
    st_out, _ = st.communicate()
    ab_out, _ = ab.communicate()
    ch_out, _ = ch.communicate()
    dirty = gitops.parse_status(st_out.decode("utf-8", "surrogateescape")) if st.returncode == 0 else []
    if ab.returncode == 0:
        behind, ahead = (int(x) for x in ab_out.split())
        info.ahead, info.behind = ahead, behind
    committed = set(ch_out.decode("utf-8", "surrogateescape").split("\0")) - {""} if ch.returncode == 0 else set()
    info.dirty = len(dirty)
    info.changed = len(committed | set(dirty))
    return info


def list_tasks(ctx: Ctx, *, all_tasks: bool = False, details: bool = True) -> list[TaskInfo]:
    st = ctx.store.read()
    tasks = sorted((t for t in st.tasks.values() if all_tasks or t.state not in FINAL), key=lambda t: t.seq)
    if not details:
        return [TaskInfo(t) for t in tasks]
    base_refs = {b: ctx.base_tip_ref(b) for b in {t.base for t in tasks if t.state in LIVE}}
    workers = min(8, max(1, len(tasks)))
    from concurrent.futures import ThreadPoolExecutor  # only list needs threads

    with ThreadPoolExecutor(max_workers=workers) as pool:
        infos = list(pool.map(lambda t: _info(ctx, t, base_refs), tasks))
    live_paths = [
        Path(i.task.path) for i in infos if i.task.state in LIVE and i.task.path and Path(i.task.path).is_dir()
    ]
    if live_paths:
        from .procs import processes_in

        found = processes_in(live_paths)
        for i in infos:
            if i.task.path and Path(i.task.path) in found:
                i.processes = [p.pid for p in found[Path(i.task.path)]]
    return infos


def list_json(infos: list[TaskInfo]) -> dict[str, object]:
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
        )
        out.append(d)
    return {"tasks": out}


def task_json(t: Task) -> dict[str, object]:
    return {
        "name": t.name,
        "state": t.state,
        "branch": t.branch,
        "path": t.path if t.state in LIVE else None,
        "base": t.base,
        "port": t.port if t.state in LIVE else None,
        "touch": list(t.touch),
        "use": list(t.use),
        "setup": t.setup or None,
        "commit": t.commit,
        "note": t.note or None,
    }


def run_in(ctx: Ctx, name: str) -> tuple[Task, dict[str, str]]:
    t = get(ctx.store.read(), name)
    if t.state not in LIVE or not t.path:
        raise Refusal(
            f"task '{name}' is {t.state} and has no worktree"
            + (f": start it with 'wtp start {name} --wait'" if t.state == QUEUED else "")
        )
    if not os.path.isdir(t.path):
        raise Refusal(f"the worktree of task '{name}' ({t.path}) is missing: run 'wtp doctor'")
    return t, isolate.task_env(ctx, t)
