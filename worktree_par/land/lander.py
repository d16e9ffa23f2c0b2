"""``wtp land``: the land queue's front door.  The base only ever moves to a commit that was
built on it and tested, and no commit is ever lost.

Each lander checks its worktree (nothing uncommitted, the task branch checked out, nothing
in progress), keeps the pre-land tip under refs/wtp/backup/<task>, and joins the FIFO land
queue with its typed request on its ticket.  Whoever holds the queue conducts (queue.py):
it lands its own task and the ones waiting behind it, up to the depth, in a stack; the
others follow their entry and exit with its result (0 landed, 1 blocked, 3 timed out), and
clean up their own worktree.  A lander interrupted while waiting withdraws its task: the
conductor gives it back before publishing anything of it, or, when the publication point
had already committed to it, the lander says it landed anyway.

Correctness never rests on the local queue: the remote's compare-and-swap is the arbiter
between clones, and whether an interrupted land published is decided by asking the remote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import atomic, crashpoints, interrupts, locks, removal, trust
from ..errors import GateFailed, LandBlocked, LandConflict, Refusal, Say, WaitTimeout, WtpError, quiet
from ..gates import Gate, JoinRefused, OnChange
from ..repo import Ctx
from ..state import ACTIVE, BLOCKED, LANDED, LANDING, LANDING_PHASE, LIVE, PUBLISHING, QUEUED, Task
from ..state import interrupted as is_interrupted
from . import forge_lane, publish, recovery
from .entry import GateBroken, PublishUnknown, gate_log
from .prepare import marked, other_options, prepare
from .publish import landed_left
from .request import QUEUE, LandRequest
from .withdraw import withdraw

if TYPE_CHECKING:
    from .handoff import Handoff
    from .queue import Ours


class LandResult:
    """What ``wtp land`` reports: the task, its state, the landed commit, the attempts, the
    conflicting paths when blocked, and messages for its lander."""

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


def request(
    ctx: Ctx,
    t: Task,
    *,
    strategy: str | None = None,
    gate: str | None = None,
    push: bool = True,
    keep: bool = False,
    mode: str | None = None,
    timeout: float | None = None,
) -> LandRequest:
    """The land request for ``t``: the options given, the config's for the rest; refuses an
    untrusted configured gate, or no gate where one is required."""
    gate_cmd = gate if gate is not None else ctx.cfg.land_gate
    if gate is None and gate_cmd:
        trust.require_trust(ctx, ctx.store.read(), "land.gate")
    elif gate is None:
        trust.require_kept(ctx, ctx.store.read(), "land.gate")
    if push and forge_lane.enabled(ctx):
        if ctx.remote() is None:
            raise Refusal(
                f"[land] via = '{ctx.cfg.land_via}' lands through the forge, and there is no remote "
                f"'{ctx.cfg.remote}' here: add it, or pass --no-push to land locally"
            )
        forge_lane.connect(ctx, quiet)  # a missing token or repository is one line now, not after the gate
    if not gate_cmd and ctx.cfg.land_require_gate:
        raise Refusal(
            f"no gate to test '{t.name}' with, and [land] require_gate is true: pass --gate CMD or set [land] gate"
        )
    return LandRequest(
        t.name,
        t.seq,
        strategy=strategy or ctx.cfg.land_strategy,
        gate=gate_cmd,
        push=push,
        keep=keep,
        mode=mode or ctx.cfg.land_mode,
        timeout=timeout,
    )


def landable(t: Task) -> LandResult | None:
    """Refuse a task that cannot land now; a LandResult when it already has."""
    if t.state == LANDED:
        return LandResult(
            t.name, LANDED, t.commit, 0, messages=[f"task '{t.name}' is already landed at {(t.commit or '')[:12]}"]
        )
    if t.state == QUEUED:
        raise Refusal(f"task '{t.name}' is queued and has no work yet: start it first ('wtp start {t.name} --wait')")
    if t.state not in LIVE or not t.path:
        raise Refusal(f"task '{t.name}' is {t.state}: nothing to land")
    if t.phase and not is_interrupted(t):
        raise Refusal(f"task '{t.name}' is busy ({t.phase}): wait for it")
    if not Path(t.path).is_dir():
        raise Refusal(f"the worktree of task '{t.name}' ({t.path}) is missing: run 'wtp doctor'")
    return None


def land(
    ctx: Ctx,
    t: Task,
    req: LandRequest,
    say: Say,
    adopt: int | None = None,
    tidy: list[Tidy] | None = None,
    handoff: Handoff | None = None,
    ours: Ours | None = None,
) -> LandResult | None:
    """Land ``t`` as ``req`` asks: join the queue, conduct it or follow the conductor.
    ``adopt``: the queue ticket 'wtp land --detach' put in the queue for this (detached)
    process, the task already waiting to land.  ``tidy``: where the clean-up after a land
    (the local base brought along, the worktree removed) goes to be done later, instead of
    now: the background lander serves the tickets it holds first, so that one of them at
    the head of the queue never waits for another one's clean-up.  ``handoff``: the child
    side of a foreground land's fork: conducting, it hands our task's result to the waiting
    parent as soon as the task has its outcome, and None is returned here once the rest is
    done (the parent reported it).  ``ours``: what 'wtp land A B' asks of a conductor for its
    other tasks (queue.Ours); a task of it whose outcome was told there is not finished here
    (None is returned: the command reports it)."""
    interrupts.arm()
    if adopt is None:
        done = landable(t)
        if done is not None:
            done.messages += tidy_landed(ctx, t, req.keep, say, later=tidy)
            return done
        if t.phase == LANDING_PHASE:
            finished = recover_first(ctx, t, req, say)
            if finished is not None:
                return finished
            t = ctx.store.read().task(t.name)
        t = prepare(ctx, t, req, say)
        crashpoints.step("land:prepared")
        marked(ctx, [t.name], say)
    q = Gate(ctx.store, QUEUE, title="the land queue")
    settled = OnChange(ctx.store.file, lambda: _settled(ctx, t), every=1.0)  # a stat per look while waiting
    try:
        # A detached land bears with a stopped conductor: nobody waits on it (gates.py).
        led = q.acquire(
            req.timeout,
            say=say,
            label=t.name,
            data=req.to_json(),
            until=settled,
            adopt=adopt,
            bear_stopped=adopt is not None and ours is None,
            refuse=other_options(t, req) if adopt is None else None,
        )
    except JoinRefused:
        raise  # another land of the task waits: the task is its, not ours to withdraw
    except WaitTimeout as timed_out:
        if withdraw(ctx, t) != "publishing":
            raise
        cur = ctx.store.read().tasks.get(t.name)
        if cur is not None and cur.seq == t.seq and cur.state == LANDED:  # landed as the wait ran out
            return finish(ctx, t, q.seq, req.keep, say, tidy)
        # A conductor had committed to publishing it: it lands (or not) whatever we do now.
        raise PublishUnknown(
            f"{timed_out.message}; by then another lander's conductor was publishing task '{t.name}', "
            f"so it may land: 'wtp list' says how it ended",
            exit_code=timed_out.exit_code,
        ) from None
    except BaseException:
        withdraw(ctx, t)
        raise
    until = locks.deadline()  # (the recovery of our task, if a land that died left it, waits no longer)
    locks.set_deadline(None)  # --timeout bounds the wait for the queue, not the land and its clean-up
    if led:
        try:
            crashpoints.step("land:queued")
            from . import queue  # the conductor's rooms: a lander that waits never imports them

            queue.lead(ctx, req, q, say, _own_done(ctx, t, q, handoff), ours, until)
        except KeyboardInterrupt:
            cur = ctx.store.read().tasks.get(t.name)
            if cur is None or cur.state != LANDED or cur.ticket != q.seq:
                withdraw(ctx, t)
                raise
            # Ctrl-C after the base took the candidate: the task has landed; finish the job.
            interrupts.arm()
        except BaseException:
            withdraw(ctx, t)
            raise
        finally:
            q.release()
    if (handoff is not None and handoff.done) or (ours is not None and (t.name, t.seq) in ours.told):
        return None
    return finish(ctx, t, q.seq, req.keep, say, tidy)


def _own_done(ctx: Ctx, t: Task, q: Gate, handoff: Handoff | None) -> Callable[[list[str]], None] | None:
    """What the conductor calls when our task (with 'wtp land A B', our tasks) has its outcome and
    others are still its to land: the parent of a forked land takes over (handoff.py); this process goes on."""
    if handoff is None:
        return None

    def hand(others: list[str]) -> None:
        log = ctx.store.subdir("logs") / f"land-conductor-{t.name}.log"
        handoff.hand(ctx.root, log, {"seq": q.seq, "task": t.name, "others": others})

    return hand


def recover_first(ctx: Ctx, t: Task, req: LandRequest, say: Say) -> LandResult | None:
    """A land of ``t`` died mid-way: finish or roll it back; its result when it had landed.
    Given back as it is (commits made on its candidate that could not move), this land stops
    there: the branch may hold the commits of tasks stacked below it, for the user to see to."""
    said = recovery.recover(ctx, t, say)
    t = ctx.store.read().task(t.name)
    if t.state == BLOCKED and recovery.AS_IT_IS in said:
        raise LandBlocked(said)
    say(said)
    if t.state != LANDED:
        return None
    msg = f"task '{t.name}' is landed at {(t.commit or '')[:12]}"
    result = LandResult(t.name, LANDED, t.commit, 0, messages=[msg])
    result.messages += tidy_landed(ctx, t, req.keep, say)
    return result


def _settled(ctx: Ctx, t: Task) -> bool:
    """A conductor settled the task while we waited (landed, blocked, or handed back)."""
    cur = ctx.store.read().tasks.get(t.name)
    return cur is None or cur.seq != t.seq or (cur.state != LANDING and not cur.phase)


def interrupted(ctx: Ctx, t: Task, say: Say, wait: float = 60.0) -> str:
    """After Ctrl-C: withdraw the task, or, when it was already being published, wait for
    the push to settle (saying so at once; a second Ctrl-C stops the wait, not the push) and
    say whether it landed anyway."""
    cur = ctx.store.read().tasks.get(t.name)
    if cur is not None and cur.state == LANDED:  # interrupted in the clean-up after its land
        left = landed_left(ctx, cur)
        return f"interrupted after task '{t.name}' landed at {(cur.commit or '')[:12]}" + (f": {left}" if left else "")
    with interrupts.finishing():  # a second Ctrl-C does not cut the withdrawal short
        said = withdraw(ctx, t)
    if said != "publishing":
        if said:
            return f"interrupted: {said}"
        cur = ctx.store.read().tasks.get(t.name)
        more = f"; {cur.note}" if cur is not None and cur.state == ACTIVE and cur.note else ""  # said when given back
        return (
            f"interrupted: '{t.base}' untouched by this land, task '{t.name}' is {cur.state if cur else 'gone'} "
            f"again{more}"
        )
    unsettled = f"task '{t.name}' was being published when interrupted: see 'wtp list' for how it ended"
    try:
        cur = ctx.store.read().tasks.get(t.name)
        if wait > 0 and cur is not None and cur.holder is not None and not is_interrupted(cur):
            say(
                f"task '{t.name}' is being published: waiting up to {wait:g}s to say whether it landed "
                "(Ctrl-C again stops waiting; the publication goes on either way)"
            )
        await_publication(ctx, t, wait)
    except KeyboardInterrupt:
        return unsettled
    cur = ctx.store.read().tasks.get(t.name)
    if cur is not None and cur.state == LANDED:
        return f"task '{t.name}' landed anyway at {cur.commit}"
    return unsettled


def landed_result(ctx: Ctx, t: Task, messages: list[str] | None = None) -> LandResult | None:
    """``t``'s result when the base took it (its record, the same task: seq), else None."""
    cur = ctx.store.read().tasks.get(t.name)
    if cur is None or cur.seq != t.seq or cur.state != LANDED:
        return None
    return LandResult(t.name, LANDED, cur.commit, max(1, cur.attempts), messages)


def await_publication(ctx: Ctx, t: Task, wait: float = 60.0) -> None:
    """Wait (up to ``wait`` seconds) for the publication a conductor committed to for ``t`` to
    end: settled, or left for the next command to ask the remote (settle.unknown, or its
    conductor gone)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        cur = ctx.store.read().tasks.get(t.name)
        if cur is None or cur.seq != t.seq or cur.intent != PUBLISHING or cur.holder is None or is_interrupted(cur):
            return
        time.sleep(0.05)


class Tidy:
    """The clean-up after a land, done later: its result's messages."""

    def __init__(self, ctx: Ctx, task: Task, keep: bool, say: Say) -> None:
        self.ctx, self.task, self.keep, self.say = ctx, task, keep, say

    def __call__(self) -> list[str]:
        ctx, t = self.ctx, self.task
        messages: list[str] = []
        remote = ctx.remote()
        if remote:
            # Bringing the local base along is a convenience, not part of landing: outside the queue.
            messages += publish.follow_remote(ctx, t.base, remote)
        return messages + _remove(ctx, t, self.keep, self.say)


def tidy_landed(ctx: Ctx, t: Task, keep: bool, say: Say, later: list[Tidy] | None = None) -> list[str]:
    """The clean-up every land does once its task is landed, whoever landed it (this land,
    another lander's conductor, the recovery of an interrupted land): the task's shared claims
    withdrawn, the local base brought along, its worktree and branch removed unless ``keep``
    (the guard keeps a worktree that holds anything kept nowhere else).  Its messages, or,
    with ``later``, none now: the clean-up is appended there to be done later."""
    if ctx.cfg.share and t.path:  # landed: the task no longer claims anything
        from ..remote import sharing

        sharing.withdraw(ctx, t.name)
    job = Tidy(ctx, t, keep, say)
    if later is not None:
        later.append(job)
        return []
    return job()


def _remove(ctx: Ctx, t: Task, keep: bool, say: Say) -> list[str]:
    """removal.remove_landed for the task as recorded now: nothing when its worktree is gone
    already, or while another process removes it (two landers of one task that finish at once)."""
    cur = ctx.store.read().tasks.get(t.name)
    if cur is None or cur.seq != t.seq or cur.state != LANDED or not cur.path:
        return []
    if cur.phase and not is_interrupted(cur):
        return [f"the worktree of task '{t.name}' is being removed by another wtp process"]
    try:
        return removal.remove_landed(ctx, cur, keep=keep, say=say)
    except Refusal:  # another process took it first: said, unless it is gone already
        now = ctx.store.read().tasks.get(t.name)
        if now is None or now.seq != t.seq or not now.path:
            return []
        if now.phase and not is_interrupted(now):
            return [f"the worktree of task '{t.name}' is being removed by another wtp process"]
        raise


def finish(ctx: Ctx, t: Task, seq: int | None, keep: bool, say: Say, later: list[Tidy] | None = None) -> LandResult:
    """Our land's result, from the state the conductor left (ours or another's); a task that
    is landed is tidied as every land tidies, whoever landed it."""
    cur = ctx.store.read().task(t.name)
    if cur.seq != t.seq:
        raise Refusal(f"task '{t.name}' changed while waiting in the land queue: see 'wtp list'")
    if cur.state == LANDED:
        mine = cur.ticket == seq
        result = LandResult(t.name, LANDED, cur.commit, max(1, cur.attempts))
        notes = [n for n in cur.note.split("; ") if n]
        result.messages = notes if mine else [f"task '{t.name}' was landed meanwhile, at {(cur.commit or '')[:12]}"]
        # The slot and the task's claims are free from the moment it landed: the conductor
        # started what waited for them right after the publication (Round.publish), before
        # this clean-up; a lander does not run their setup again before it returns.
        try:
            result.messages += tidy_landed(ctx, cur, keep, say, later)
        except WtpError as e:  # landed all the same: what the clean-up could not do is said, not the outcome
            now = ctx.store.read().tasks.get(t.name) or cur
            left = landed_left(ctx, now)
            result.messages.append(f"its clean-up did not finish ({e.message})" + (f": {left}" if left else ""))
        return result
    if cur.state == BLOCKED:
        if cur.paths:
            raise LandConflict(cur.note, cur.paths)
        if cur.note.startswith("gate '"):
            _show_gate_tail(ctx, t.name, say)
            raise GateFailed(cur.note)
        raise LandBlocked(cur.note)
    if cur.state == ACTIVE and cur.note.startswith("gate '") and " itself (log: " in cur.note:
        raise GateBroken(cur.note)
    if cur.state == ACTIVE and cur.note.startswith(f"task '{t.name}' was withdrawn"):
        raise Refusal(cur.note)
    raise Refusal(f"task '{t.name}' was taken out of the land queue (now {cur.state}): see 'wtp list'")


GATE_TAIL = 20  # lines of a failed gate's output shown as they are


def _show_gate_tail(ctx: Ctx, name: str, say: Say) -> None:
    """The last lines of a failed gate's output, one per line, control characters escaped
    (the log has all, as written)."""
    from ..logtail import last_lines, shown_line

    log = gate_log(ctx, name)
    lines = last_lines(log, GATE_TAIL, header=2)  # past the '$ cmd' header
    if lines:
        n = len(lines)
        say(f"--- the last {f'{n} lines' if n > 1 else 'line'} of the gate's output ({log}):")
        for line in lines:
            say(shown_line(line))


def detach(ctx: Ctx, t: Task, req: LandRequest, say: Say) -> tuple[int, str]:
    """``wtp land TASK --detach``: the request goes into the queue as a ticket at once (a
    conductor running now takes it from there) and is owned by the repository's background
    lander: the one running now, or, when none does, a process started for it (its own
    session, its log under the state dir) that serves every ticket detached lands hand it,
    one after another, until none is left: it waits for the conductor's verdict and cleans
    up, or conducts when nobody does.  Returns without waiting: (the ticket's place, the
    background lander's log)."""
    import subprocess
    import sys

    if t.state == LANDED:
        raise Refusal(f"task '{t.name}' is already landed at {(t.commit or '')[:12]}")
    if t.state not in LIVE or not t.path or not Path(t.path).is_dir():
        raise Refusal(f"task '{t.name}' is {t.state} and has no worktree to land")
    if t.phase == LANDING_PHASE and is_interrupted(t):
        if recover_first(ctx, t, req, say) is not None:
            raise Refusal(f"task '{t.name}' is already landed (an interrupted land had published it)")
        t = ctx.store.read().task(t.name)
    landable(t)
    t = prepare(ctx, t, req, say)  # refusals come now, not in a log nobody reads
    q = Gate(ctx.store, QUEUE, title="the land queue")
    seq, place, served = q.enqueue(t.name, req.to_json(), to_server=True, refuse=other_options(t, req))
    marked(ctx, [t.name], say)
    if served is not None:
        return place, served  # the background lander running now owns it
    log = ctx.store.subdir("logs") / f"land-detached-{t.name}.log"
    try:
        with atomic.open_log(log) as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "worktree_par", "-C", str(ctx.root), "__land", req.dumps(), str(seq)],
                cwd=ctx.root,  # not the caller's folder: it may be a task worktree the lander outlives
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the shell, or the shell closing, does not stop it
            )
    except BaseException:
        withdraw(ctx, t)  # our ticket goes with this process
        raise
    q.hand_to(seq, child.pid, server_log=str(log))
    return place, str(log)
