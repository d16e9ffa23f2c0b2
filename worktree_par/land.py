"""The push queue: land one task at a time onto the base, so the base only ever moves
to a commit that was built on it and tested, and no commit is ever lost.

Algorithm (CONTRACT.md, ``wtp land``): refuse a dirty worktree, or one with another
branch or a detached HEAD checked out; keep the pre-land tip under
refs/wtp/backup/<task>; join the FIFO land queue; then, up to MAX_ATTEMPTS times: fetch
the base, build the candidate from the task's own commits only (``rebase --onto base
fork``: a base rewritten by force-push never gets dropped commits back), run the gate on
it, and publish exactly that candidate with compare-and-swap.  If the base moved, go
round again.  Only once the candidate is confirmed on the base is the task marked landed
and its worktree and branch handed to the guard.

Correctness never rests on the local queue: the remote's compare-and-swap is the
arbiter between clones, and whether an interrupted land published is decided by asking
the remote, never from a remote-tracking ref.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from . import crashpoints, gitops, guard, publish, removal, tasks, trust
from .errors import DirtyWorktree, GateFailed, LandBlocked, LandConflict, Refusal, Say, WouldLoseWork
from .gates import Gate
from .gitops import Sha
from .locks import me
from .repo import Ctx, few
from .state import ACTIVE, BLOCKED, LANDED, LANDING, LANDING_PHASE, LIVE, QUEUED, Task, interrupted

MAX_ATTEMPTS = 10  # rebuilds when the base moves under us (other clones landing)
QUEUE = "#land"  # '#' keeps it apart from every user gate name


class LandResult:
    def __init__(
        self, task: str, state: str, commit: str | None = None, attempts: int = 0, messages: list[str] | None = None
    ) -> None:
        self.task, self.state, self.commit, self.attempts = task, state, commit, attempts
        self.paths: list[str] = []
        self.messages = messages if messages is not None else []

    def to_json(self) -> dict[str, object]:
        return {
            "task": self.task,
            "state": self.state,
            "commit": self.commit,
            "attempts": self.attempts,
            "paths": self.paths,
        }


def published(ctx: Ctx, t: Task) -> bool:
    """Whether the candidate of ``t`` is on the base, as the remote says now (a fetch), or the
    local base when landing without a remote.  A remote that cannot be asked raises."""
    if not t.candidate:
        return False
    remote = ctx.remote()
    ref = f"refs/heads/{t.base}"
    if remote:
        ref = f"refs/remotes/{remote}/{t.base}"
        gitops.fetch_branch(ctx.root, remote, t.base, ref)
    tip = gitops.ref_value(ctx.root, ref)
    return (
        tip is not None
        and gitops.rev_parse(ctx.root, t.candidate) is not None
        and gitops.is_ancestor(ctx.root, t.candidate, tip)
    )


def recover(ctx: Ctx, t: Task, say: Say) -> str:
    """Finish or roll back a land whose process died.  Returns what was done."""
    Gate(ctx.store, QUEUE).tickets()  # drops the dead lander's ticket
    wt = Path(t.path) if t.path else None
    if wt and wt.is_dir() and gitops.rebase_in_progress(wt):
        gitops.rebase_abort(wt)
    if published(ctx, t):
        _mark_landed(ctx, t, Sha(t.candidate or ""))
        return f"the interrupted land of '{t.name}' had published {(t.candidate or '')[:12]}: marked landed"
    backup = gitops.ref_value(ctx.root, guard.backup_ref(t.name))
    if backup is not None and wt and wt.is_dir():
        guard.rewind(ctx, t, wt, backup, [Sha(t.candidate)] if t.candidate else [])
    ctx.store.update(t, state=ACTIVE, phase="", holder=None, candidate=None)
    return f"rolled back the interrupted land of '{t.name}' to its pre-land tip"


def land(
    ctx: Ctx,
    name: str,
    *,
    strategy: str | None = None,
    gate: str | None = None,
    push: bool = True,
    keep: bool = False,
    timeout: float | None = None,
    say: Say,
) -> LandResult:
    st = ctx.store.read()
    t = tasks.get(st, name)
    strategy = strategy or ctx.cfg.land_strategy
    if t.state == LANDED:
        return LandResult(
            name, LANDED, t.commit, 0, messages=[f"task '{name}' is already landed at {(t.commit or '')[:12]}"]
        )
    if t.state == QUEUED:
        raise Refusal(f"task '{name}' is queued and has no work yet: start it first ('wtp start {name} --wait')")
    if t.state not in LIVE or not t.path:
        raise Refusal(f"task '{name}' is {t.state}: nothing to land")
    if t.phase and not interrupted(t):
        raise Refusal(f"task '{name}' is busy ({t.phase}): wait for it")
    wt = Path(t.path)
    if not wt.is_dir():
        raise Refusal(f"the worktree of task '{name}' ({wt}) is missing: run 'wtp doctor'")
    gate_cmd = gate if gate is not None else ctx.cfg.land_gate
    if gate is None and gate_cmd:
        trust.require_trust(ctx, st, "land.gate")
    if t.phase == LANDING_PHASE:
        say(recover(ctx, t, say))
        t = tasks.get(ctx.store.read(), name)
        if t.state == LANDED:
            done = LandResult(
                name, LANDED, t.commit, 0, messages=[f"task '{name}' is landed at {(t.commit or '')[:12]}"]
            )
            done.messages += removal.remove_landed(ctx, t, keep=keep, say=say)
            return done
    tip = _check_worktree(ctx, t, wt)
    remote = ctx.remote() if push else None
    # The pre-land tip is kept before anything can change the branch (and outside the queue,
    # which only serializes what must be serial).
    gitops.update_ref(
        ctx.root,
        guard.backup_ref(name),
        tip,
        gitops.ref_value(ctx.root, guard.backup_ref(name)),
        f"pre-land tip of {name}",
    )

    queue = Gate(ctx.store, QUEUE, title="the land queue")
    queue.acquire(timeout, say=say, label=name)
    try:
        with ctx.store.transaction() as st2:
            cur = tasks.get(st2, name)
            changed = cur.seq != t.seq or cur.state != t.state or (cur.phase and not interrupted(cur))
            if not changed:
                cur.state, cur.phase, cur.holder, cur.candidate = LANDING, LANDING_PHASE, me().to_json(), None
        if changed:  # another 'wtp land' of the same task got through the queue first
            if cur.state == LANDED and cur.seq == t.seq:
                return LandResult(
                    name,
                    LANDED,
                    cur.commit,
                    0,
                    messages=[f"task '{name}' was landed meanwhile, at {(cur.commit or '')[:12]}"],
                )
            raise Refusal(f"task '{name}' changed while waiting in the land queue (now {cur.state}): see 'wtp list'")
        crashpoints.step("land:queued")
        result = _land_held(ctx, t, wt, tip, strategy, gate_cmd, remote, say)
    finally:
        queue.release()
    if remote and result.state == LANDED:
        # Bringing the local base along is a convenience, not part of landing: done outside the queue.
        result.messages += publish.follow_remote(ctx, t.base, remote)
    landed = tasks.get(ctx.store.read(), name)
    result.messages += removal.remove_landed(ctx, landed, keep=keep, say=say)
    return result


def _check_worktree(ctx: Ctx, t: Task, wt: Path) -> Sha:
    """The task branch's tip, once the worktree is fit to land: the task branch checked out,
    nothing in progress, nothing uncommitted."""
    head, attached = gitops.head(wt)
    if attached != f"refs/heads/{t.branch}":
        what = (
            f"branch '{attached.removeprefix('refs/heads/')}'" if attached else f"a detached HEAD ({(head or '')[:12]})"
        )
        raise Refusal(
            f"the worktree of task '{t.name}' has {what} checked out, not '{t.branch}': "
            f"'git -C {wt} switch {t.branch}' (after committing what you want to land there), then land again"
        )
    op, _ = gitops.in_progress(wt)
    if op:
        raise Refusal(
            f"task '{t.name}' has a {op} in progress in {wt}: finish it or abort it ('git -C {wt} {op} --abort')"
        )
    dirty = sorted(set(gitops.status_paths(wt)))
    if dirty:
        raise DirtyWorktree(
            f"task '{t.name}' has {len(dirty)} uncommitted file{'s' * (len(dirty) != 1)} ({few(dirty)}): "
            f"commit or stash them, then run 'wtp land {t.name}' again"
        )
    if head is None:
        raise Refusal(f"branch '{t.branch}' of task '{t.name}' has no commit: run 'wtp doctor'")
    if head == t.fork:
        raise Refusal(f"task '{t.name}' has no commits to land: commit your work in {wt} first")
    return head


def _land_held(
    ctx: Ctx, t: Task, wt: Path, tip: Sha, strategy: str, gate_cmd: str, remote: str | None, say: Say
) -> LandResult:
    """The land, holding the queue; leaves the task landed, blocked or (interrupted) active."""
    progress: dict[str, str | None] = {"candidate": None}
    try:
        result = _attempts(ctx, t, wt, tip, strategy, gate_cmd, remote, say, progress)
    except LandBlocked as b:
        kept = _give_back(ctx, t, wt, tip, progress)
        ctx.store.update(t, state=BLOCKED, phase="", holder=None, paths=b.paths, note=kept or str(b), candidate=None)
        if kept:
            raise WouldLoseWork(f"{b}; {kept}") from None
        raise
    except WouldLoseWork as e:
        ctx.store.update(t, state=BLOCKED, phase="", holder=None, note=str(e), candidate=None)
        raise
    except BaseException:
        # Interrupted (Ctrl-C) or an unexpected failure.  If the remote already took the
        # candidate, the task has landed: say so rather than roll a published land back.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cur = ctx.store.read().tasks.get(t.name)
            if cur is not None and cur.candidate and _safe_published(ctx, cur):
                _mark_landed(ctx, cur, Sha(cur.candidate))
                return LandResult(
                    t.name,
                    LANDED,
                    cur.candidate,
                    1,
                    [f"interrupted after '{t.base}' took the candidate: task '{t.name}' is landed"],
                )
            _give_back(ctx, t, wt, tip, progress)
            ctx.store.update(t, state=ACTIVE, phase="", holder=None, candidate=None)
        finally:
            signal.signal(signal.SIGINT, old)
        raise
    _mark_landed(ctx, t, Sha(result.commit or ""))
    return result


def _safe_published(ctx: Ctx, t: Task) -> bool:
    try:
        return published(ctx, t)
    except Exception:  # noqa: BLE001 - the remote cannot be asked: keep what is there (the backup holds the tip)
        return False


def _give_back(ctx: Ctx, t: Task, wt: Path, tip: Sha, progress: dict[str, str | None]) -> str:
    """Put the task branch back to its pre-land tip, leaving no commit behind but wtp's own;
    when the guard refuses (someone committed there meanwhile), say so and leave it."""
    if gitops.rebase_in_progress(wt):
        gitops.rebase_abort(wt)
    ours = [Sha(c) for c in [progress.get("candidate")] if c]
    try:
        guard.rewind(ctx, t, wt, tip, ours)
    except WouldLoseWork as e:
        return e.message
    return ""


def _attempts(
    ctx: Ctx,
    t: Task,
    wt: Path,
    tip: Sha,
    strategy: str,
    gate_cmd: str,
    remote: str | None,
    say: Say,
    progress: dict[str, str | None],
) -> LandResult:
    result = LandResult(t.name, LANDED)
    base_ref = f"refs/remotes/{remote}/{t.base}" if remote else f"refs/heads/{t.base}"
    before = gitops.ref_value(ctx.root, base_ref)  # the base as known before fetching: a fork candidate
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        if remote:
            gitops.fetch_branch(ctx.root, remote, t.base, base_ref)
        base_tip = gitops.ref_value(ctx.root, base_ref)
        if base_tip is None:
            raise LandBlocked(f"base branch '{t.base}' does not exist{' on ' + remote if remote else ''}")
        if attempt == 1 and gitops.is_ancestor(ctx.root, tip, base_tip):
            result.commit = tip
            result.messages.append(f"task '{t.name}' is already on '{t.base}'")
            return result
        crashpoints.step("land:before-candidate")
        cand = _candidate(ctx, t, wt, tip, base_tip, _fork(ctx, t, tip, before), strategy)
        progress["candidate"] = cand
        ctx.store.update(t, candidate=cand)  # from here, recovery asks the remote whether it landed
        crashpoints.step("land:before-gate")
        if gate_cmd:
            say(f"gate: {gate_cmd} (attempt {attempt})")
            _run_gate(ctx, t, wt, gate_cmd, cand)
        if gitops.ref_value(ctx.root, f"refs/heads/{t.branch}") != cand:
            raise WouldLoseWork(
                f"branch '{t.branch}' moved while the gate ran (a commit made in {wt}?): nothing was published and "
                f"the new commit is kept on the branch, untested; run 'wtp land {t.name}' again to test and land it"
            )
        crashpoints.step("land:before-publish")
        if publish.publish(ctx, t, cand, base_tip, remote, say):
            crashpoints.step("land:after-publish")
            result.commit = cand
            if attempt > 1:
                result.messages.append(
                    f"landed after {attempt} attempts: '{t.base}' moved {attempt - 1} time(s) meanwhile"
                )
            return result
        ctx.store.update(t, candidate=None)
        guard.rewind(ctx, t, wt, tip, [cand])  # start the next attempt from the pre-land tip
        if attempt < MAX_ATTEMPTS:
            say(f"'{t.base}' moved while landing '{t.name}': rebuilding (attempt {attempt + 1}/{MAX_ATTEMPTS})")
            # Landers in other clones race us only through the remote: back off with jitter so one wins.
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
    raise LandBlocked(f"'{t.base}' kept moving: gave up after {MAX_ATTEMPTS} attempts; run 'wtp land {t.name}' again")


def _fork(ctx: Ctx, t: Task, tip: Sha, before: Sha | None) -> Sha:
    """Where the task's own commits begin: the newest of the commit it was started from and
    its merge-base with the base as known before this land.  A base force-pushed since does
    not move it back, so commits dropped from the base are never replayed."""
    options = [c for c in (t.fork, gitops.merge_base(ctx.root, tip, before) if before else None) if c]
    options = [c for c in options if gitops.is_ancestor(ctx.root, c, tip)]
    best = options[0] if options else gitops.merge_base(ctx.root, tip, f"refs/heads/{t.base}") or tip
    for c in options[1:]:
        if gitops.is_ancestor(ctx.root, best, c):
            best = c
    return Sha(best)


def _candidate(ctx: Ctx, t: Task, wt: Path, tip: Sha, base_tip: Sha, fork: Sha, strategy: str) -> Sha:
    """Build the candidate on base_tip from the task's commits after ``fork``; the task branch
    (and its clean worktree) moves to it."""
    guard.backed_up(ctx, t, tip)
    if strategy == "merge":
        dropped = gitops.commits_not_in(ctx.root, [fork], [base_tip])
        if dropped:
            raise LandBlocked(
                f"'{t.base}' no longer has {len(dropped)} commit(s) that task '{t.name}' was started on (the base was "
                f"rewritten): a merge would bring them back; land with '--strategy rebase' or 'squash'"
            )
        merged = gitops.merge_tree(ctx.root, base_tip, tip)
        if merged.conflicts:
            raise LandConflict(_conflict_msg(t, merged.conflicts), merged.conflicts)
        cand = gitops.commit_tree(ctx.root, merged.tree, [base_tip, tip], f"Merge task '{t.name}' ({t.branch})")
    else:
        reb = gitops.rebase_onto(wt, base_tip, fork)
        if not reb.ok:
            if reb.conflicts:
                raise LandConflict(_conflict_msg(t, reb.conflicts), reb.conflicts)
            raise LandBlocked(f"rebase of '{t.name}' onto '{t.base}' failed: {reb.error}")
        rebased = gitops.head(wt)[0]
        assert rebased is not None
        if strategy == "rebase":
            return rebased
        msgs, author = gitops.log_messages(ctx.root, fork, tip)
        msg = f"{t.name}: squashed\n\n{msgs}\n" if "\n" in msgs else msgs
        cand = gitops.commit_tree(ctx.root, gitops.tree_of(ctx.root, rebased), [base_tip], msg or t.name, env=author)
    guard.advance(ctx, t, wt, tip, cand)
    return cand


def _conflict_msg(t: Task, paths: list[str]) -> str:
    return (
        f"task '{t.name}' conflicts with '{t.base}' in {len(paths)} path{'s' * (len(paths) != 1)} ({few(paths, 5)}): "
        f"it is blocked with its commits intact; rebase it onto '{t.base}' and resolve them in {t.path}, then run 'wtp land {t.name}' again"
    )


def _run_gate(ctx: Ctx, t: Task, wt: Path, cmd: str, cand: str) -> None:
    from . import isolate
    from .procs import run_guarded

    log = ctx.store.subdir("logs") / f"land-{t.name}.log"
    log.write_text(f"$ {cmd}\n# candidate {cand}\n")
    env = {**isolate.task_env(ctx, t), "WTP_CANDIDATE": cand}
    out = run_guarded(["/bin/sh", "-c", cmd], wt, env, timeout=ctx.cfg.land_timeout, log=log)
    if out.code != 0 or out.timed_out:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        why = f"timed out after {ctx.cfg.land_timeout:g}s" if out.timed_out else f"exited {out.code}"
        raise GateFailed(
            f"gate '{cmd}' {why} on the candidate of '{t.name}'; '{t.base}' is untouched. Last lines: "
            + " | ".join(tail[-3:])
            + f" (full log: {log})"
        )


def _mark_landed(ctx: Ctx, t: Task, commit: Sha) -> None:
    """Record the land; the pre-land tip it superseded is dropped from the backup ref."""
    ctx.store.update(t, state=LANDED, commit=commit, phase="", holder=None, paths=[], note="", candidate=None)
    guard.forget_backup(ctx, t.name)
