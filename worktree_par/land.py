"""``wtp land``: the push queue's front door.  The base only ever moves to a commit that was
built on it and tested, and no commit is ever lost.

Each lander checks its worktree (nothing uncommitted, the task branch checked out, nothing
in progress), keeps the pre-land tip under refs/wtp/backup/<task>, and joins the FIFO land
queue with what it asks for on its ticket.  Whoever holds the queue conducts: it lands its
own task and the ones waiting behind it, up to the depth, in a stack (conductor.py); the
others follow their entry and exit with its result (0 landed, 1 blocked, 3 timed out), and
clean up their own worktree.  Only once a candidate is confirmed on the base is its task
marked landed and its worktree and branch handed to the guard.

Correctness never rests on the local queue: the remote's compare-and-swap is the
arbiter between clones, and whether an interrupted land published is decided by asking
the remote, never from a remote-tracking ref.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import conductor, crashpoints, gitops, guard, publish, removal, tasks, trust
from .errors import DirtyWorktree, GateFailed, LandBlocked, LandConflict, Refusal, Say
from .gates import Gate
from .gitops import Sha
from .locks import me
from .repo import Ctx, few
from .state import ACTIVE, BLOCKED, LANDED, LANDING, LANDING_PHASE, LIVE, QUEUED, Task, interrupted

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


def recover(ctx: Ctx, t: Task, say: Say, retake: int | None = None) -> str:
    """Finish or roll back a land whose process died.  Returns what was done.  ``retake``: a
    conductor's queue ticket for the task; a rolled-back task is then landing again under
    it in the same state write, so its own waiting lander never sees it idle in between."""
    Gate(ctx.store, QUEUE).tickets()  # drops the dead lander's ticket
    wt = Path(t.path) if t.path else None
    if wt and wt.is_dir() and gitops.rebase_in_progress(wt):
        gitops.rebase_abort(wt)
    if published(ctx, t):
        ctx.store.update(
            t, state=LANDED, commit=t.candidate, phase="", holder=None, paths=[], note="", candidate=None, ticket=None
        )
        guard.forget_backup(ctx, t.name)
        return f"the interrupted land of '{t.name}' had published {(t.candidate or '')[:12]}: marked landed"
    backup = gitops.ref_value(ctx.root, guard.backup_ref(t.name))
    if backup is not None and wt and wt.is_dir():
        guard.rewind(ctx, t, wt, backup, [Sha(t.candidate)] if t.candidate else [])
    if retake is not None and backup is not None:
        ctx.store.update(t, state=LANDING, phase=LANDING_PHASE, holder=me().to_json(), candidate=None, ticket=retake)
    else:
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
    mode: str | None = None,
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
    if not gate_cmd and ctx.cfg.land_require_gate:
        raise Refusal(
            f"no gate to test '{name}' with, and [land] require_gate is true: pass --gate CMD or set [land] gate"
        )

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
    if not gate_cmd:
        say(f"warning: landing '{name}' untested: no gate (pass --gate CMD, or set [land] gate in .wtp.toml)")
    # The pre-land tip is kept before anything can change the branch (and outside the queue,
    # which only serializes what must be serial).
    old_backup = gitops.ref_value(ctx.root, guard.backup_ref(name))
    gitops.update_ref(ctx.root, guard.backup_ref(name), tip, old_backup, f"pre-land tip of {name}")
    spec = {
        "task": name,
        "seq": t.seq,
        "strategy": strategy,
        "gate": gate_cmd,
        "push": push,
        "mode": mode or ctx.cfg.land_mode,
    }
    waiting = ctx.store.update(t, state=LANDING, note="waiting in the land queue", candidate=None, ticket=None)
    if waiting is None:
        raise Refusal(f"task '{name}' changed meanwhile: see 'wtp list'")
    queue = Gate(ctx.store, QUEUE, title="the land queue")
    try:
        led = queue.acquire(timeout, say=say, label=name, data=spec, until=lambda: _settled(ctx, t))
    except BaseException:
        _leave_queue(ctx, t)
        raise
    if led:
        try:
            crashpoints.step("land:queued")
            _lead(ctx, t, spec, queue, say)
        except KeyboardInterrupt:
            cur = ctx.store.read().tasks.get(name)
            if cur is None or cur.state != LANDED or cur.ticket != queue.seq:
                _leave_queue(ctx, t)
                raise
            # Ctrl-C after the base took the candidate: the task has landed; finish the job.
        except BaseException:
            _leave_queue(ctx, t)
            raise
        finally:
            queue.release()
    return _finish(ctx, t, queue.seq, keep, say)


def _settled(ctx: Ctx, t: Task) -> bool:
    """A conductor settled the task while we waited (landed, blocked, or handed back)."""
    cur = ctx.store.read().tasks.get(t.name)
    return cur is None or cur.seq != t.seq or (cur.state != LANDING and not cur.phase)


def _leave_queue(ctx: Ctx, t: Task) -> None:
    """Gave up waiting (timeout, Ctrl-C): the task is active again, unless a conductor has it."""
    cur = ctx.store.read().tasks.get(t.name)
    if cur is not None and cur.seq == t.seq and cur.state == LANDING and not cur.phase:
        ctx.store.update(t, state=ACTIVE, note="")


def _lead(ctx: Ctx, t: Task, spec: dict[str, object], queue: Gate, say: Say) -> None:
    """Holding the queue: conduct our task and the ones waiting behind it, up to the depth."""
    mode = str(spec["mode"])
    remote = ctx.remote() if spec["push"] else None
    depth = 1 if mode == "serial" else (ctx.cfg.land_depth or ctx.cfg.max_active)
    tickets = queue.tickets()
    mine = next((k for k in tickets if k["seq"] == queue.seq), None)
    own = _take(ctx, spec, queue.seq or 0, say) if mine is not None else None
    if own is None:
        return  # settled meanwhile (a conductor landed it just before handing the queue on)
    entries = [own]
    seen = {own.name}

    def followers(n: int, tickets: list[dict[str, object]] | None = None) -> list[conductor.Entry]:
        """Up to n more entries waiting behind us that this stack can take."""
        found: list[conductor.Entry] = []
        for ticket in queue.tickets() if tickets is None else tickets:
            data = ticket.get("data")
            if len(found) >= n or not isinstance(data, dict) or data.get("task") in seen:
                continue
            if data.get("push") != spec["push"] or data.get("mode") != mode:
                continue
            e = _take(ctx, data, int(str(ticket["seq"])), say)
            if e is None:
                continue
            seen.add(e.name)
            if e.task.base != t.base:
                ctx.store.update(e.task, phase="", holder=None, ticket=None)  # not ours to land this time
                continue
            found.append(e)
        if found:
            say(f"landing {', '.join(repr(e.name) for e in found)} behind '{t.name}' ({mode})")
        return found

    entries += followers(depth - 1, tickets)
    conductor.conduct(ctx, entries, mode, remote, say, more=followers if mode == "speculative" else None)


def _take(ctx: Ctx, data: dict[str, object], seq: int, say: Say) -> conductor.Entry | None:
    """The entry a queue ticket asks for, once its task is ours to land (recovered first if
    a conductor died holding it); None when it is not waiting to land."""
    name = str(data.get("task", ""))
    cur = ctx.store.read().tasks.get(name)
    if cur is None or cur.seq != data.get("seq") or cur.state != LANDING:
        return None
    tip = gitops.ref_value(ctx.root, guard.backup_ref(name))
    if cur.phase and interrupted(cur):
        say(recover(ctx, cur, say, retake=seq))  # ours again in the same write, or landed
        held = ctx.store.read().tasks.get(name)
        if held is None or held.state != LANDING or held.ticket != seq or held.holder != me().to_json():
            return None
    elif cur.phase:
        return None
    else:
        held = ctx.store.update(cur, phase=LANDING_PHASE, holder=me().to_json(), ticket=seq) if tip else None
    if held is None or tip is None:
        if held is not None and held.phase:
            ctx.store.update(held, state=ACTIVE, phase="", holder=None, ticket=None)
        return None
    return conductor.Entry(held, tip, str(data.get("strategy") or "rebase"), str(data.get("gate") or ""), seq)


def _finish(ctx: Ctx, t: Task, seq: int | None, keep: bool, say: Say) -> LandResult:
    """Our land's result, from the state the conductor left (ours or another's)."""
    cur = tasks.get(ctx.store.read(), t.name)
    if cur.seq != t.seq:
        raise Refusal(f"task '{t.name}' changed while waiting in the land queue: see 'wtp list'")
    if cur.state == LANDED:
        mine = cur.ticket == seq
        result = LandResult(t.name, LANDED, cur.commit, max(1, cur.attempts))
        notes = [n for n in cur.note.split("; ") if n]
        result.messages = notes if mine else [f"task '{t.name}' was landed meanwhile, at {(cur.commit or '')[:12]}"]
        if mine:
            # The slot and the task's claims are free from the moment it landed: start what
            # waited for them before the clean-up, which takes a while in a large checkout.
            if ctx.cfg.share:  # landed: the task no longer claims anything
                from . import sharing

                sharing.withdraw(ctx, t.name)
            tasks.promote_quietly(ctx, say)
            remote = ctx.remote()
            if remote:
                # Bringing the local base along is a convenience, not part of landing: outside the queue.
                result.messages += publish.follow_remote(ctx, t.base, remote)
            result.messages += removal.remove_landed(ctx, cur, keep=keep, say=say)
        return result
    if cur.state == BLOCKED:
        if cur.paths:
            raise LandConflict(cur.note, cur.paths)
        if cur.note.startswith("gate '"):
            _show_gate_tail(ctx, t.name, say)
            raise GateFailed(cur.note)
        raise LandBlocked(cur.note)
    raise Refusal(f"task '{t.name}' was taken out of the land queue (now {cur.state}): see 'wtp list'")


GATE_TAIL = 20  # lines of a failed gate's output shown as they are


def _show_gate_tail(ctx: Ctx, name: str, say: Say) -> None:
    """The last lines of a failed gate's output, verbatim, one per line (the log has all)."""
    log = ctx.store.dir / "logs" / f"land-{name}.log"
    try:
        lines = log.read_text(errors="replace").rstrip("\n").splitlines()[2:]  # past the '$ cmd' header
    except OSError:
        return
    if lines:
        n = min(GATE_TAIL, len(lines))
        say(f"--- the last {f'{n} lines' if n > 1 else 'line'} of the gate's output ({log}):")
        for line in lines[-GATE_TAIL:]:
            say(line)


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


def detach(ctx: Ctx, name: str, argv: list[str], say: Say) -> tuple[int, str]:
    """``wtp land TASK --detach``: the land goes on in a background process of its own (its
    own session, its log under the state dir) that joins the queue, conducting it if nobody
    does; this returns once its ticket is in the queue: (place, log path)."""
    import subprocess
    import sys

    t = tasks.get(ctx.store.read(), name)
    if t.state == LANDED:
        raise Refusal(f"task '{name}' is already landed at {(t.commit or '')[:12]}")
    if t.state not in LIVE or not t.path or not Path(t.path).is_dir():
        raise Refusal(f"task '{name}' is {t.state} and has no worktree to land")
    _check_worktree(ctx, t, Path(t.path))  # refusals come now, not in a log nobody reads
    log = ctx.store.subdir("logs") / f"land-detached-{name}.log"
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "worktree_par", "-C", str(ctx.root), "land", name, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the shell, or the shell closing, does not stop it
        )
    queue = Gate(ctx.store, QUEUE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tickets = queue.tickets()
        place = next(
            (i + 1 for i, k in enumerate(tickets) if k.get("label") == name and k["holder"]["pid"] == child.pid), 0
        )
        if place:
            return place, str(log)
        if child.poll() is not None:  # it finished (or failed) before we looked
            cur = tasks.get(ctx.store.read(), name)
            if child.returncode == 0:
                return 0, str(log)
            raise Refusal(f"the detached land of '{name}' exited {child.returncode} ({cur.note or 'see ' + str(log)})")
        time.sleep(0.02)
    return 0, str(log)
