"""The push queue: land one task at a time onto the base, so the base only ever moves
to a commit that was built on it and tested, and no commit is ever lost.

Algorithm (CONTRACT.md, ``wtp land``): refuse a dirty worktree; join the FIFO land
queue; keep the pre-land tip under refs/wtp/backup/<task>; then, up to
MAX_ATTEMPTS times: fetch the base, build the candidate on it (rebase, squash or
merge), run the gate on it, and publish with compare-and-swap (a push with
--force-with-lease=<base>:<tested base>, or update-ref <base> <new> <old>).  If
the base moved, go round again.  Only once the candidate is confirmed on the base
is the task marked landed and its worktree and branch removed.

Correctness never rests on the local queue: the remote's compare-and-swap is the
arbiter between clones on different machines.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from . import gitops, hooks, isolate, locks, tasks
from .errors import DirtyWorktree, GateFailed, LandConflict, Refusal
from .gates import Gate
from .gitops import HEX40
from .repo import Ctx
from .state import ACTIVE, BLOCKED, LANDED, LANDING, LIVE, QUEUED, Task

MAX_ATTEMPTS = 10  # rebuilds when the base moves under us (other clones landing)
QUEUE = "#land"  # '#' keeps it apart from every user gate name
Say = Callable[[str], None]


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


class _Blocked(Exception):
    def __init__(self, kind: str, message: str, paths: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.paths = paths or []


def backup_ref(name: str) -> str:
    return f"refs/wtp/backup/{name}"


def _rebase_in_progress(wt: Path) -> bool:
    gd = gitops.git_dir_of(wt)
    return (gd / "rebase-merge").exists() or (gd / "rebase-apply").exists()


def recover(ctx: Ctx, t: Task, say: Say) -> str:
    """Finish or roll back a land whose process died.  Returns what was done."""
    Gate(ctx.store, QUEUE).tickets()  # drops the dead lander's ticket
    wt = Path(t.path) if t.path else None
    if wt and wt.is_dir() and _rebase_in_progress(wt):
        gitops.run(["rebase", "--abort"], wt, check=False)
    tip = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
    backup = gitops.ref_value(ctx.root, backup_ref(t.name))
    pushed = (
        tip is not None
        and tip != t.fork
        and any(gitops.is_ancestor(ctx.root, tip, ref) for ref in tasks.landed_tips(ctx, t.base))
    )
    if pushed:
        _mark_landed(ctx, t, tip)  # type: ignore[arg-type]
        if backup is not None:
            gitops.delete_ref(ctx.root, backup_ref(t.name), backup)
        return f"the interrupted land of '{t.name}' had published {tip[:12]}: marked landed"  # type: ignore[index]
    if backup is not None and tip != backup and wt and wt.is_dir():
        gitops.run(["reset", "--quiet", "--keep", backup], wt)
    with ctx.store.transaction() as st:
        cur = st.tasks.get(t.name)
        if cur is not None and cur.seq == t.seq:
            cur.state, cur.phase, cur.holder = ACTIVE, "", None
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
    if t.phase and not tasks._interrupted(t):
        holder = locks.Holder.from_json(t.holder)
        raise Refusal(f"task '{name}' is busy ({t.phase}) by {holder.describe() if holder else 'another process'}")
    wt = Path(t.path)
    if not wt.is_dir():
        raise Refusal(f"the worktree of task '{name}' ({wt}) is missing: run 'wtp doctor'")
    gate_cmd = gate if gate is not None else ctx.cfg.land_gate
    if gate is None and gate_cmd:
        isolate.require_trust(ctx, st, "land.gate")
    if t.phase == "landing":
        say(recover(ctx, t, say))
        t = tasks.get(ctx.store.read(), name)
        if t.state == LANDED:
            done = LandResult(
                name, LANDED, t.commit, 0, messages=[f"task '{name}' is landed at {(t.commit or '')[:12]}"]
            )
            done.messages += _cleanup(ctx, name, keep, say)
            return done
    elif _rebase_in_progress(wt):
        raise Refusal(f"task '{name}' has a rebase in progress in {wt}: finish it or run 'git -C {wt} rebase --abort'")
    dirty = gitops.status_paths(wt)
    if dirty:
        raise DirtyWorktree(
            f"task '{name}' has {len(dirty)} uncommitted file{'s' * (len(dirty) != 1)} ({tasks._few(sorted(set(dirty)))}): "
            f"commit or stash them, then run 'wtp land {name}' again"
        )
    tip = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
    if tip is None:
        raise Refusal(f"branch '{t.branch}' of task '{name}' is missing: run 'wtp doctor'")
    if tip == t.fork:
        raise Refusal(f"task '{name}' has no commits to land: commit your work in {wt} first")
    remote = ctx.remote() if push else None
    # The pre-land tip is kept before anything can change the branch (and outside the queue,
    # which only serializes what must be serial).
    gitops.run(
        ["update-ref", "--create-reflog", "-m", f"wtp: pre-land tip of {name}", backup_ref(name), tip], ctx.root
    )

    queue = Gate(ctx.store, QUEUE, title="the land queue")
    queue.acquire(timeout, say=say, label=name)
    try:
        with ctx.store.transaction() as st2:
            cur = tasks.get(st2, name)
            changed = cur.seq != t.seq or cur.state != t.state or cur.phase != t.phase
            if not changed:
                cur.state, cur.phase, cur.holder = LANDING, "landing", locks.me().to_json()
        if changed:  # another 'wtp land' of the same task got through the queue first
            if cur.state == LANDED and cur.seq == t.seq:
                return LandResult(
                    name, LANDED, cur.commit, 0, messages=[f"task '{name}' was landed meanwhile, at {(cur.commit or '')[:12]}"]
                )
            raise Refusal(f"task '{name}' changed while waiting in the land queue (now {cur.state}): see 'wtp list'")
        hooks.step("land:queued")
        try:
            result = _attempts(ctx, t, wt, tip, strategy, gate_cmd, remote, say)
        except _Blocked as b:
            _restore(ctx, t, wt, tip)
            with ctx.store.transaction() as st2:
                cur = tasks.get(st2, name)
                cur.state, cur.phase, cur.holder, cur.paths = BLOCKED, "", None, b.paths
                cur.note = str(b)
            err = (
                LandConflict(str(b))
                if b.kind == "conflict"
                else GateFailed(str(b))
                if b.kind == "gate"
                else Refusal(str(b))
            )
            err.paths = b.paths  # type: ignore[attr-defined]
            raise err from None
        except BaseException:
            # Interrupted or an unexpected git failure: put the branch back, keep the task usable.
            _restore(ctx, t, wt, tip)
            with ctx.store.transaction() as st2:
                cur = tasks.get(st2, name)
                cur.state, cur.phase, cur.holder = ACTIVE, "", None
            raise
        _mark_landed(ctx, t, result.commit)  # type: ignore[arg-type]
    finally:
        queue.release()
    gitops.delete_ref(ctx.root, backup_ref(name), tip)
    if remote:
        # Bringing the local base along is a convenience, not part of landing: done outside the queue.
        result.messages += follow_remote(ctx, t.base, remote)
    result.messages += _cleanup(ctx, name, keep, say, result.commit)
    return result


def _attempts(
    ctx: Ctx, t: Task, wt: Path, tip: str, strategy: str, gate_cmd: str, remote: str | None, say: Say
) -> LandResult:
    result = LandResult(t.name, LANDED)
    base_ref = f"refs/remotes/{remote}/{t.base}" if remote else f"refs/heads/{t.base}"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        if remote:
            _fetch(ctx, remote, t.base, base_ref)
        base_tip = gitops.ref_value(ctx.root, base_ref)
        if base_tip is None:
            raise _Blocked("refused", f"base branch '{t.base}' does not exist{' on ' + remote if remote else ''}")
        if attempt == 1 and gitops.is_ancestor(ctx.root, tip, base_tip):
            result.commit = tip
            result.messages.append(f"task '{t.name}' is already on '{t.base}'")
            return result
        hooks.step("land:before-candidate")
        cand = _candidate(ctx, t, wt, tip, base_tip, strategy)
        hooks.step("land:before-gate")
        if gate_cmd:
            say(f"gate: {gate_cmd} (attempt {attempt})")
            _run_gate(ctx, t, wt, gate_cmd, cand)
        hooks.step("land:before-publish")
        if _publish(ctx, t, cand, base_tip, remote, say):
            hooks.step("land:after-publish")
            if not remote:  # a push is confirmed by the remote's own report (see _publish)
                confirmed = gitops.ref_value(ctx.root, base_ref)
                if confirmed is None or not gitops.is_ancestor(ctx.root, cand, confirmed):
                    raise _Blocked("refused", f"'{t.base}' was moved to {cand[:12]} but no longer contains it")
            result.commit = cand
            if attempt > 1:
                result.messages.append(
                    f"landed after {attempt} attempts: '{t.base}' moved {attempt - 1} time(s) meanwhile"
                )
            return result
        gitops.run(["reset", "--quiet", "--keep", tip], wt)  # start the next attempt from the pre-land tip
        if attempt < MAX_ATTEMPTS:
            say(f"'{t.base}' moved while landing '{t.name}': rebuilding (attempt {attempt + 1}/{MAX_ATTEMPTS})")
            # Landers in other clones race us only through the remote: back off with jitter so one wins.
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
    raise _Blocked(
        "refused", f"'{t.base}' kept moving: gave up after {MAX_ATTEMPTS} attempts; run 'wtp land {t.name}' again"
    )


def _fetch(ctx: Ctx, remote: str, base: str, base_ref: str) -> None:
    """Fetch the base; retried, because a fetch racing pushes (and the repacks they trigger)
    into the same remote can fail once with 'did not send all necessary objects'."""
    args = ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{base}:{base_ref}"]
    for attempt in range(3):
        res = gitops.run(args, ctx.root, check=False)
        if res.code == 0:
            return
        time.sleep(0.2 * (attempt + 1))
    raise gitops.GitError(args, res.code, res.out, res.err)


def _candidate(ctx: Ctx, t: Task, wt: Path, tip: str, base_tip: str, strategy: str) -> str:
    """Build the candidate on base_tip; the task branch (and its clean worktree) moves to it."""
    if strategy == "rebase":
        res = gitops.run(["rebase", "--quiet", "--no-autostash", base_tip], wt, check=False, env={"GIT_EDITOR": "true"})
        if res.code != 0:
            paths = gitops.run(["diff", "--name-only", "-z", "--diff-filter=U"], wt, check=False).z()
            gitops.run(["rebase", "--abort"], wt, check=False)
            if not paths:
                raise _Blocked(
                    "refused",
                    f"rebase of '{t.name}' onto '{t.base}' failed: {res.err.strip().splitlines()[-1] if res.err.strip() else 'no output'}",
                )
            raise _Blocked("conflict", _conflict_msg(t, paths), paths)
        return gitops.run(["rev-parse", "HEAD"], wt).out.strip()
    res = gitops.run(
        ["merge-tree", "--write-tree", "--name-only", "-z", base_tip, tip], ctx.root, check=False, ok_codes=(0, 1)
    )
    fields = res.out.split("\0")
    if res.code not in (0, 1) or not HEX40.match(fields[0]):
        raise gitops.GitError(["merge-tree", base_tip, tip], res.code, res.out, res.err)
    if res.code == 1:
        paths = sorted({f for f in fields[1 : fields.index("")] if f}) if "" in fields[1:] else []
        raise _Blocked("conflict", _conflict_msg(t, paths), paths)
    tree = fields[0]
    if strategy == "squash":
        log = gitops.run(["log", "--reverse", "--format=%B", f"{base_tip}..{tip}"], ctx.root).out.strip()
        author = gitops.run(
            ["log", "-1", "--reverse", "--format=%an%x00%ae%x00%aI", f"{base_tip}..{tip}"], ctx.root
        ).out
        an, ae, ad = (author.strip("\n").split("\0") + ["", "", ""])[:3]
        env = {"GIT_AUTHOR_NAME": an, "GIT_AUTHOR_EMAIL": ae, "GIT_AUTHOR_DATE": ad} if an else None
        msg = f"{t.name}: squashed\n\n{log}\n" if log.count("\n\n") or "\n" in log else log
        cand = gitops.run(["commit-tree", tree, "-p", base_tip, "-m", msg], ctx.root, env=env).out.strip()
    else:
        cand = gitops.run(
            ["commit-tree", tree, "-p", base_tip, "-p", tip, "-m", f"Merge task '{t.name}' ({t.branch})"], ctx.root
        ).out.strip()
    gitops.run(["reset", "--quiet", "--keep", cand], wt)
    return cand


def _conflict_msg(t: Task, paths: list[str]) -> str:
    return (
        f"task '{t.name}' conflicts with '{t.base}' in {len(paths)} path{'s' * (len(paths) != 1)} ({tasks._few(paths, 5)}): "
        f"it is blocked with its commits intact; rebase it onto '{t.base}' and resolve them in {t.path}, then run 'wtp land {t.name}' again"
    )


def _run_gate(ctx: Ctx, t: Task, wt: Path, cmd: str, cand: str) -> None:
    from .procs import run_guarded

    log = ctx.store.subdir("logs") / f"land-{t.name}.log"
    log.write_text(f"$ {cmd}\n# candidate {cand}\n")
    env = {**isolate.task_env(ctx, t), "WTP_CANDIDATE": cand}
    out = run_guarded(["/bin/sh", "-c", cmd], wt, env, timeout=ctx.cfg.land_timeout, log=log)
    if out.code != 0 or out.timed_out:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        why = f"timed out after {ctx.cfg.land_timeout:g}s" if out.timed_out else f"exited {out.code}"
        raise _Blocked(
            "gate",
            f"gate '{cmd}' {why} on the candidate of '{t.name}'; '{t.base}' is untouched. Last lines: "
            + " | ".join(tail[-3:])
            + f" (full log: {log})",
        )


def _publish(ctx: Ctx, t: Task, cand: str, base_tip: str, remote: str | None, say: Say) -> bool:
    """Compare-and-swap the base from base_tip to cand; False when the base moved."""
    if remote:
        dest = f"refs/heads/{t.base}"
        res = gitops.run(
            ["push", "--porcelain", f"--force-with-lease={dest}:{base_tip}", remote, f"{cand}:{dest}"],
            ctx.root,
            check=False,
        )
        if res.code != 0 or "\t[rejected]" in res.out:
            if _push_lost_race(res.out + res.err):
                return False
            raise gitops.GitError(["push", remote, t.base], res.code, res.out, res.err)
        # The remote's report for our ref: ' ' fast-forward, '+' forced, '*' new, '=' up to date.
        if not any(line[:1] in " +*=" and line[1:].startswith(f"\t{cand}:{dest}\t") for line in res.out.splitlines()):
            raise _Blocked("refused", f"the push of {cand[:12]} to {remote} reported no update of '{t.base}'")
        gitops.run(["update-ref", "-m", "wtp: landed", f"refs/remotes/{remote}/{t.base}", cand], ctx.root)
        return True
    msgs = sync_base(ctx, t.base, base_tip, cand)
    if msgs is None:
        return False
    for m in msgs:
        say(m)
    return True


# A push that lost the race to another lander: the lease (stale info), a non-fast-forward,
# or the remote failing to lock the ref because a concurrent push holds it.
_RACE_MARKS = (
    "[rejected]",
    "stale info",
    "fetch first",
    "non-fast-forward",
    "cannot lock ref",
    "failed to update ref",
    "failed to lock",
)


def _push_lost_race(output: str) -> bool:
    return any(m in output for m in _RACE_MARKS)


def follow_remote(ctx: Ctx, base: str, remote: str) -> list[str]:
    """After a land to the remote, fast-forward the local ``base`` (and the worktree that has
    it checked out) to the remote-tracking one, as 'git pull --ff-only' would."""
    local_ref, tracking_ref = f"refs/heads/{base}", f"refs/remotes/{remote}/{base}"
    with locks.Lock(ctx.store.ensure_dir() / "follow.lock"):  # one lander at a time moves it
        found = gitops.refs(ctx.root, [local_ref, tracking_ref])
        local, tracking = (found[r].commit if r in found else None for r in (local_ref, tracking_ref))
        if local is None or tracking is None or local == tracking:
            return []
        if not gitops.is_ancestor(ctx.root, local, tracking):
            if gitops.is_ancestor(ctx.root, tracking, local):
                return []
            return [f"local '{base}' has commits that are not on {remote}/{base}: left as it is"]
        return sync_base(ctx, base, local, tracking) or []


_NAMED = re.compile(r"'([^']+)'")


def sync_base(ctx: Ctx, base: str, old: str, new: str) -> list[str] | None:
    """Move local ``base`` from old to new (CAS), keeping a worktree that has it checked out
    in step without touching its uncommitted changes.  None when ``base`` was not at old."""
    ref = f"refs/heads/{base}"
    checked = [w for w in gitops.worktrees(ctx.root) if w.branch == ref]
    if not checked:
        return [] if gitops.update_ref(ctx.root, ref, new, old, f"land onto {base}") else None
    w = checked[0].path
    # Detach that worktree at the old commit first: while its files are brought along, a
    # commit made there cannot land on the moved branch with the old files.
    gitops.run(["update-ref", "--no-deref", "-m", "wtp: keep the worktree as it was", "HEAD", old], w)
    if not gitops.update_ref(ctx.root, ref, new, old, f"land onto {base}"):
        gitops.run(["symbolic-ref", "HEAD", ref], w)
        return None
    # A two-tree read-tree updates only the files the landing changed, and refuses (changing
    # nothing) when the user's uncommitted work touches one of them: its cost follows the change.
    res = gitops.run(["read-tree", "-m", "-u", old, new], w, check=False)
    if res.code == 0:
        gitops.run(["symbolic-ref", "-m", f"wtp: follow {base}", "HEAD", ref], w)
        return []
    # It stays detached at the old commit, so its changes do not look reverted: say how to catch up.
    touched = sorted({m for line in res.err.splitlines() for m in _NAMED.findall(line)})
    touched += sorted({line.strip() for line in res.err.splitlines() if line.startswith("\t")} - set(touched))
    why = (
        f"has uncommitted changes to files the landing changed ({tasks._few(touched)})"
        if touched
        else f"could not be updated ({res.err.strip().splitlines()[-1] if res.err.strip() else 'git read-tree failed'})"
    )
    return [
        f"'{base}' moved, but {w} {why}; "
        f"it was left detached at the previous commit so nothing looks reverted: run "
        f"'git -C {w} stash && git -C {w} switch {base} && git -C {w} stash pop'"
    ]


def _restore(ctx: Ctx, t: Task, wt: Path, tip: str) -> None:
    """Put the task branch back to its pre-land tip (the backup ref keeps it anyway)."""
    if _rebase_in_progress(wt):
        gitops.run(["rebase", "--abort"], wt, check=False)
    if gitops.ref_value(ctx.root, f"refs/heads/{t.branch}") != tip:
        if gitops.run(["reset", "--quiet", "--keep", tip], wt, check=False).code != 0:
            gitops.run(["update-ref", "-m", "wtp: restore pre-land tip", f"refs/heads/{t.branch}", tip], ctx.root)


def _mark_landed(ctx: Ctx, t: Task, commit: str) -> None:
    """Record the land; the caller drops the backup ref (in recovery, here)."""
    with ctx.store.transaction() as st:
        cur = tasks.get(st, t.name)
        cur.state, cur.commit, cur.phase, cur.holder, cur.paths, cur.note = LANDED, commit, "", None, [], ""


def _cleanup(ctx: Ctx, name: str, keep: bool, say: Say, tip: str | None = None) -> list[str]:
    t = tasks.get(ctx.store.read(), name)
    if keep:
        return [f"kept the worktree {t.path} (--keep)"]
    if t.path and Path(t.path).is_dir():
        from .procs import processes_in

        procs = processes_in([Path(t.path)])[Path(t.path)]
        if procs:
            pids = ", ".join(str(p.pid) for p in procs)
            return [
                f"kept the worktree {t.path}: processes still run inside ({pids}); 'wtp rm {name}' when they are done"
            ]
    return tasks.remove_landed(ctx, name, say, tip)
