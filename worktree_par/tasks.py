"""Starting tasks: admit, queue or refuse; create the branch and worktree; promote queued
tasks when a slot frees.

A start that changes git runs in a recorded phase with its holder, so an interrupted one
(a killed process) is completed by the next command that meets it, never left half-done.
A queued task that cannot start (its --base ref is gone, its branch is checked out
elsewhere) stays queued with the reason, and blocks only itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import claims, cochange_start, copies, crashpoints, gitops, isolate, queued, redeclare, schedule, stacking, trust
from .errors import Refusal, Say, WtpError, count, os_said, quiet
from .globs import normalize_glob
from .locks import me
from .repo import Ctx, validate_branch, validate_name
from .state import ACTIVE, CREATING, FINAL, LIVE, QUEUED, REMOVING, State, Task, interrupted

CANNOT_START = schedule.CANNOT_START


class StartResult:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.messages: list[str] = []
        self.place = 0  # 1-based place in the queue when queued
        self.pending = False  # activated here: the worktree is still to be made
        self.redeclared = False  # an existing task took new declarations
        self.was_queued = False  # a queued task activated here: a failed start leaves it queued
        self.resumed: str | None = None  # a start tried again: the phase it had, which a failure leaves
        self.ahead: list[Task] | None = None  # queued tasks that start before it, as decided here


def start(
    ctx: Ctx,
    name: str,
    *,
    base_ref: str | None = None,
    touch: list[str] | None = None,
    use: list[str] | None = None,
    force: bool = False,
    touch_suggested: bool = False,
    say: Say = quiet,
) -> StartResult:
    """Admit, queue or resume a task.  Everything is validated before anything is written."""
    validate_name(name)
    globs = sorted({normalize_glob(g) for g in touch or []})
    res_names = sorted({schedule.normalize_resource(r) for r in use or []})
    isolate.check_worktree_root(ctx)
    base, fork = ctx.resolve_start(base_ref)
    validate_branch(ctx, name, base)
    path = isolate.worktree_path(ctx, name)
    if ctx.cfg.setup_run:
        trust.require_trust(ctx, ctx.store.read(), "setup.run")
    history: list[str] = []
    held: list[str] = []
    if globs and ctx.cfg.check_cochange != "off":
        cur = ctx.store.read().tasks.get(name)
        if cur is None or cur.state in FINAL:  # a new task: what does the history say?
            globs, held, history = cochange_start.advise(ctx, name, base, globs, touch_suggested)

    remote = remote_tasks(ctx)
    tips = queued.tips_for(ctx, ctx.store.read(), declares=bool(globs or held))
    crashpoints.step("start:before-decide")
    with ctx.store.transaction() as st:
        t = st.tasks.get(name)
        if t is not None and t.state not in FINAL:
            declared = redeclare.add(ctx, st, t, globs, res_names, force)
            result = _resume(ctx, st, t, path, force, remote, tips)
            result.messages[:0] = declared
            result.redeclared = bool(declared)
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
                held=[h for h in held if h in st.tasks and st.tasks[h].state in LIVE],
            )
            st.tasks[name] = t
            result = StartResult(t)
            result.messages += history + _archived(ctx, name)
            if not _admit(ctx, st, t, path, fork, force, remote, tips, result):
                result.place = [q.name for q in st.queued()].index(name) + 1
                result.messages.append(f"task '{name}' is queued (place {result.place}): waits because {t.note}")
        # First come, first served: what 'wtp next' would start now, this task's start decided
        # (--force included), are tasks that took free slots before it.
        ahead = result.ahead
        if ahead is None:  # not decided in queue order here, or forced past it
            ahead = [q for q, d in queued.order(ctx, st, remote, tips) if d.admit] if st.queued() else []
    if ahead:  # started in the background: this start waits for none of their setups
        result.messages.append(queued.start_first(ctx, result.task, ahead))
    if result.pending:
        try:
            result.messages += materialize(ctx, result.task, say)
        except BaseException as e:
            # Once its worktree exists, the task keeps its entry (active, phase 'creating'
            # held by this process): the next start, 'wtp next' or doctor completes it.
            # Forgetting it here would leave a worktree and a branch no registry names.
            # A folder there that is not its worktree (the user's) is not: the start is undone.
            if result.resumed is not None and _made(ctx, result.task, any_branch=True):  # its own, switched away
                ctx.store.update(result.task, phase=result.resumed, holder=None)  # as it was: the next start resumes
            elif not _made(ctx, result.task):
                why = e.message if isinstance(e, WtpError) else str(e) or type(e).__name__
                _undo_start(ctx, result.task, keep_queued=result.was_queued, why=why)
                if result.was_queued and isinstance(e, WtpError):  # said as a finding, with where it stays
                    raise WtpError(f"{why}; task '{name}' stays queued", exit_code=e.exit_code) from None
            raise
    if remote is not None and (result.pending or result.redeclared) and result.task.state in LIVE:
        from .remote import sharing

        if (note := sharing.publish(ctx, result.task)) is not None:
            result.messages.append(note)
    return result


def _archived(ctx: Ctx, name: str) -> list[str]:
    """A new task named like one whose work 'wtp rm --force' archived starts afresh: say
    where that work is, so it is not taken for lost (or forgotten)."""
    from .refnames import archive_ref

    ref = archive_ref(name)
    if gitops.stored_ref(ctx.root, ctx.repo.common_dir, ref) is None:  # (no git call: ~2 ms of every start)
        return []
    return [
        f"note: earlier work of a task '{name}' is archived under {ref}; this task starts afresh from its base "
        f"(see it: 'git log -p {ref}'; restore it: 'git branch {name}-restored {ref}')"
    ]


def shared(ctx: Ctx) -> bool:
    """Whether tasks are shared with other clones through the remote (share = true)."""
    return ctx.cfg.share and ctx.remote() is not None


def remote_tasks(ctx: Ctx) -> list[Task] | None:
    """Other clones' live tasks, from their shared claims (None when sharing is off)."""
    if not shared(ctx):
        return None
    from .remote import sharing

    return [c.as_task() for c in sharing.others(ctx)]


def _admit(
    ctx: Ctx,
    st: State,
    t: Task,
    path: Path,
    fork: str | None,
    force: bool,
    remote: list[Task] | None,
    tips: dict[str, str],
    result: StartResult,
) -> bool:
    """Decide queued ``t`` in queue order, as 'wtp next' would, and activate it when admitted
    (or forced); otherwise its note says why it waits."""
    order = queued.order(ctx, st, remote, tips)
    d = next((d for q, d in order if q is t), None)
    if d is None:  # admitted, but its --base went away meanwhile: decided alone (its start says why)
        d = schedule.decide(st, t, ctx.cfg.max_active, recorded=claims.declarations(ctx, st), remote=remote)
    if d.admit or not force:  # decided in queue order: the others it admits start before it
        result.ahead = [q for q, e in order if e.admit and q is not t]
    if not (d.admit or force):
        t.note = d.reason(ctx.cfg.max_active)
        return False
    if not d.admit:
        result.messages.append(f"--force: started although {d.reason(ctx.cfg.max_active)}")
    _activate(ctx, st, t, path, stacking.start_on(st, t, d.on, d.collisions, tips, result.messages) or fork)
    result.pending = True
    return True


def _resume(
    ctx: Ctx, st: State, t: Task, path: Path, force: bool, remote: list[Task] | None, tips: dict[str, str]
) -> StartResult:
    """``wtp start`` on a task that exists: report it, start it (a queued one, with --force),
    try again a start that failed (the task takes its place in the queue again), or take over
    what was interrupted."""
    result = StartResult(t)
    if t.state == QUEUED and (force or t.note.startswith(CANNOT_START)):
        again = t.note.startswith(CANNOT_START)
        fork = ctx.resolve_start(t.start_ref)[1] if t.start_ref else None
        t.note = ""  # back in line: decided in queue order, and tried again by whoever starts it
        if _admit(ctx, st, t, path, fork, force, remote, tips, result):
            result.was_queued = True
            return result
        if again:
            result.place = [q.name for q in st.queued()].index(t.name) + 1
            result.messages.append(f"task '{t.name}' is queued again (place {result.place}): waits because {t.note}")
            return result
    if t.state == QUEUED:
        result.place = [q.name for q in st.queued()].index(t.name) + 1
        result.messages.append(f"task '{t.name}' is already queued (place {result.place}): {t.note}")
    elif (t.phase == CREATING and interrupted(t)) or (
        t.state == ACTIVE and not t.phase and t.setup.startswith("failed")
    ):
        result.resumed, t.phase, t.holder = t.phase, CREATING, me().to_json()
        result.messages.append(f"resuming the interrupted start of task '{t.name}'")
        result.pending = True
    elif t.phase == REMOVING and interrupted(t):  # its worktree may be gone: no path to print
        raise Refusal(f"the removal of task '{t.name}' was interrupted: run 'wtp rm {t.name}' to finish it")
    elif t.state in LIVE and not t.phase and t.path and not Path(t.path).is_dir():
        raise Refusal(
            f"the worktree of task '{t.name}' ({t.path}) is not there: 'wtp doctor --fix' records where it was "
            "moved, or makes it again"
        )
    else:
        result.messages.append(f"task '{t.name}' is already {t.state}")
    return result


def _activate(ctx: Ctx, st: State, t: Task, path: Path, fork: str | None) -> None:
    t.state = ACTIVE
    t.path = str(path)
    t.fork = fork
    t.port = schedule.free_port(st, ctx.cfg.port_base)
    t.phase, t.holder = CREATING, me().to_json()
    t.note = ""


def materialize(ctx: Ctx, t: Task, say: Say = quiet) -> list[str]:
    """Create the branch and worktree of an activated task and prepare it.  Idempotent,
    so an interrupted start is completed by running it again."""
    assert t.path is not None
    if ctx.cfg.setup_run:  # whoever starts it ('wtp next', a land, doctor): never an untrusted command
        trust.require_trust(ctx, ctx.store.read(), "setup.run")
    path = Path(t.path)
    messages: list[str] = []
    crashpoints.step("start:before-worktree")
    # The usual case, a new task: one 'worktree add', which itself refuses an existing
    # branch or a registered path; only when it does, look closer.
    add = ["add", "--quiet", "--no-track", "-b", t.branch, str(path), str(t.fork)]
    if not (t.fork and not path.exists() and _worktree(ctx, add, check=False).code == 0):
        _make_worktree(ctx, t, path, messages)
    if (ctx.repo.config_root / ".claude" / "settings.json").is_file():  # the agent hook goes along
        from . import agentfiles

        if (done := agentfiles.prepare_worktree(ctx, path)) is not None:
            messages.append(done)
    crashpoints.step("start:before-setup")
    failure = None
    if ctx.cfg.setup_copy or ctx.cfg.setup_run:
        log = ctx.store.subdir("logs") / f"setup-{t.name}.log"
        try:
            # What the copy put there, told apart from what is made there later (setup.run's
            # writes included: while it runs, the user or an agent may write there too).
            seen = copies.Recorder(ctx, t)
            try:
                if isolate.copy_ignored(ctx, t, say, seen.before):
                    crashpoints.step("start:copied")
            finally:
                seen.save()  # what was copied, also when a later entry's copy failed
        except OSError as e:  # a full disk, a file-size limit: the copy failed
            failure = f"copy failed: {e}"
        try:
            failure = failure or isolate.run_setup(ctx, t, log, say)
        except OSError as e:  # its log cannot be written, a command cannot be started
            failure = f"setup.run could not run: {os_said(e) if e.filename != str(log) else e.strerror or e}"
        if failure:
            messages.append(
                f"setup of task '{t.name}' failed: {failure} (log: {log}); the worktree is ready to inspect: "
                f"fix it and run 'wtp start {t.name}' to retry setup, or 'wtp rm {t.name}'"
            )
    setup = f"failed: {failure}" if failure else ("done" if ctx.cfg.setup_run or ctx.cfg.setup_copy else "")
    if ctx.store.update(t, phase="", holder=None, setup=setup) is not None:
        t.setup, t.phase = setup, ""
    return messages


def _worktree(ctx: Ctx, args: list[str], check: bool = True) -> gitops.Result:
    return gitops.worktree(ctx.root, args, ctx.worktree_lock, parallel_checkout=ctx.parallel_checkout, check=check)


def _make_worktree(ctx: Ctx, t: Task, path: Path, messages: list[str]) -> None:
    """Create the task's worktree whatever is already there: its registered worktree
    (complete it if a killed checkout left it half done), its branch without a worktree,
    or nothing yet."""
    ref = f"refs/heads/{t.branch}"
    wt = {w.path: w for w in gitops.worktrees(ctx.root)}.get(path)
    if wt is not None:
        if wt.branch != ref:
            op = gitops.in_progress(path)[0]
            fix = f"end the {op} there ({gitops.ending(op, path)})" if op else f"'git -C {path} switch {t.branch}'"
            raise Refusal(
                f"{path} is a worktree of '{(wt.branch or 'a detached HEAD').removeprefix('refs/heads/')}', not of '{t.branch}': {fix} "
                f"(or, if it is not the task's, move it away), then run 'wtp start {t.name}' again"
            )
        if wt.locked and wt.lock_reason.startswith("initializing"):
            # 'git worktree add' was killed mid-checkout: finish it (it never reached the user).
            _worktree(ctx, ["unlock", str(path)])
            differ = gitops.finish_checkout(path)
            messages.append(
                f"completed the checkout of '{t.name}' that was interrupted"
                + (
                    f"; {count(len(differ), 'file')} differ{'s' if len(differ) == 1 else ''} from the branch: check them ('git -C {path} status')"
                    if differ
                    else ""
                )
            )
        return
    if path.exists() and (not path.is_dir() or any(path.iterdir())):  # a file, or a folder holding anything
        raise Refusal(
            f"{path} already exists and is not a worktree of this repository: move it away, then run 'wtp start {t.name}' again"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if gitops.ref_value(ctx.root, ref):
        messages.append(f"using the existing branch '{t.branch}'")
        _worktree(ctx, ["add", "--quiet", str(path), t.branch])
    else:
        fork = t.fork or gitops.rev_parse(ctx.root, ctx.base_tip_ref(t.base))
        _worktree(ctx, ["add", "--quiet", "--no-track", "-b", t.branch, str(path), str(fork)])
        if t.fork is None and fork:  # started from the queue: its land takes its commits from here
            t.fork = fork
            ctx.store.update(t, fork=fork)


def _made(ctx: Ctx, t: Task, any_branch: bool = False) -> bool:
    """Whether the task's worktree is there, as git's own, its branch checked out unless ``any_branch``."""
    path, ref = (Path(t.path) if t.path else None), f"refs/heads/{t.branch}"
    return (
        path is not None
        and path.exists()
        and any(w.path == path and (any_branch or w.branch == ref) for w in gitops.worktrees(ctx.root))
    )


def cannot_start(name: str, why: str) -> str:
    """The note of a queued task whose start failed: why, and what tries it again."""
    told = f"wtp start {name}" in why  # the reason says it already
    return (
        f"{CANNOT_START}{why}"
        if told
        else f"{CANNOT_START}{why.rstrip('.')}; once that is fixed, 'wtp start {name}' tries it again"
    )


def _undo_start(ctx: Ctx, t: Task, *, keep_queued: bool, why: str = "") -> None:
    """A start whose worktree could not be made: no half-registered task stays.  A task the
    user asked for directly is forgotten (they saw the error); a promoted one stays queued."""
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is None or cur.seq != t.seq or cur.state != ACTIVE:
            return
        if not keep_queued:
            del st.tasks[t.name]
            return
        cur.state, cur.path, cur.port, cur.phase, cur.holder = QUEUED, None, None, "", None
        cur.note = cannot_start(t.name, why)


# --- the queue ---------------------------------------------------------------------


def promote(ctx: Ctx, say: Say = quiet) -> list[Task]:
    """Start queued tasks whose slot and collisions have cleared, in queue order; also
    complete starts whose process died mid-way.  Never raises for one task: a task that
    cannot start stays queued with the reason, and the others go on."""
    crashpoints.step("promote:before")
    started: list[Task] = []
    resumed: list[Task] = []
    failed = False  # a start failed after its slot was counted: the slots are handed on once more
    if ctx.cfg.setup_run:  # no start runs a command the user has not trusted: all of them wait for it
        try:
            trust.require_trust(ctx, (st := ctx.store.read()), "setup.run")
        except Refusal as e:
            if st.queued() or any(t.phase == CREATING and interrupted(t) for t in st.tasks.values()):
                say(f"queued tasks stay queued: {e.message}")
            return []
    try:
        remote = remote_tasks(ctx)
    except WtpError as e:  # other clones' claims cannot be read: nothing queued starts blind
        say(f"queued tasks stay queued: {e.message}")
        remote = None
        if ctx.store.read().queued():
            return []
    tips = queued.tips_for(ctx, ctx.store.read())
    said: list[str] = []
    with ctx.store.transaction() as st:
        for t in st.tasks.values():
            if t.state == ACTIVE and t.phase == CREATING and interrupted(t):
                t.holder = me().to_json()
                resumed.append(t)
        forks: dict[str, str | None] = {}

        def startable(t: Task) -> bool:  # its --base resolves: where it starts from; else it is said why
            try:
                forks[t.name] = ctx.resolve_start(t.start_ref)[1] if t.start_ref else None
                return True
            except WtpError as e:
                t.note = cannot_start(t.name, e.message)
                say(f"queued task '{t.name}' cannot start: {e.message}")
                return False

        for t, d in queued.order(ctx, st, remote, tips, startable):
            if not d.admit:
                t.note = d.reason(ctx.cfg.max_active)
                continue
            try:
                path = isolate.worktree_path(ctx, t.name)
                _activate(ctx, st, t, path, stacking.start_on(st, t, d.on, d.collisions, tips, said) or forks[t.name])
                started.append(t)
            except WtpError as e:  # its slot, counted for the ones after it, is handed on below
                t.note, failed = cannot_start(t.name, e.message), True
                say(f"queued task '{t.name}' cannot start: {e.message}")
    for m in said:
        say(m)
    done: list[Task] = []
    for t in resumed + started:
        try:
            for m in materialize(ctx, t, say):
                say(m)
        except (WtpError, OSError) as e:
            if t in resumed and _made(ctx, t, any_branch=True):  # its own worktree, switched away: as it was
                ctx.store.update(t, holder=None)  # still an interrupted start: the next one resumes it
                say(f"the start of '{t.name}' cannot be completed: {e}")
            else:
                _undo_start(ctx, t, keep_queued=True, why=str(e))
                say(f"queued task '{t.name}' {cannot_start(t.name, str(e))}; it stays queued")
            failed = True
            continue
        done.append(t)
        say(f"started queued task '{t.name}' at {t.path}" if t in started else f"completed the start of '{t.name}'")
        if remote is not None:
            from .remote import sharing

            if (note := sharing.publish(ctx, t)) is not None:
                say(note)
    if failed:  # the slots its failures took in this pass are free again: hand them on now
        done += promote(ctx, say)
    return done


def promote_quietly(ctx: Ctx, say: Say = quiet) -> None:
    """After rm or land succeeded: start what can start, and never turn their success into
    a failure (a broken queued task is reported and blocks only itself)."""
    try:
        promote(ctx, say)
    except WtpError as e:
        say(f"could not start queued tasks: {e.message}")
