"""The conductor: whoever holds the land queue lands the tasks at its head, several at once.

It builds a stack from the queue's head, each candidate on the one before it (C1 = base +
T1, C2 = C1 + T2, ...), each in its own task's worktree, verifies it by mode (speculate.py
for speculative and serial, batch.py for batch) and publishes it, in queue order, through
the one publication point (publish.py).  A push that loses the race to another clone
rebuilds what was not published on the new base (bounded).  The queue's tickets carry each
lander's typed request; the conductor takes the ones behind its own that it can stack.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

from .. import crashpoints, gitops, guard, stacking
from ..errors import GateFailed, LandBlocked, LandConflict, Say, WouldLoseWork, WtpError
from ..gates import Gate
from ..gitops import Sha
from ..locks import me
from ..repo import Ctx
from ..state import ACTIVE, LANDED, LANDING, LANDING_PHASE, State, interrupted
from . import batch, candidate, gating, recovery, settle, speculate
from .basecheck import BaseCheck
from .entry import Entry, Withdrawn
from .request import LandRequest
from .round import Round
from .status import QueueStatus
from .window import Window

MAX_ATTEMPTS = 10  # rebuilds when the base moves under us (other clones landing)
OwnDone = Callable[[list[str]], None]  # told the others still in flight once our own task has its outcome


class Ours:
    """What the command of the conductor's lander asks beyond its own task ('wtp land A B',
    commands/land_many.py): ``tickets``, its other tickets, which must be settled too before
    it is handed over; ``tell``, given each of its tasks as it has its outcome (the command
    reports it and cleans up meanwhile).  ``told``: those given so far (name, task seq)."""

    def __init__(self, tickets: frozenset[int], tell: Callable[[Entry], None]) -> None:
        self.tickets, self._tell = tickets, tell
        self.told: set[tuple[str, int]] = set()

    def settled(self, e: Entry) -> None:
        if (e.name, e.task.seq) not in self.told:
            self.told.add((e.name, e.task.seq))
            self._tell(e)


def lead(
    ctx: Ctx,
    req: LandRequest,
    queue: Gate,
    say: Say,
    own_done: OwnDone | None = None,
    ours: Ours | None = None,
    until: float | None = None,
) -> None:
    """Holding the queue: conduct our task and the ones waiting behind it, up to the depth.
    ``own_done`` is called once, when our task has its outcome while others are still ours to
    land (their names): our lander may return then (handoff.py); with ``ours``, once the other
    tasks of its command have theirs too.  ``until``: our lander's --timeout, which bounds the
    recovery of our own task if a land that died left it (its wait for that land's git)."""
    window = Window(ctx, req.mode)
    depth = window.value
    tickets = queue.tickets()
    if not any(k["seq"] == queue.seq for k in tickets):
        return
    own = _take(ctx, req, queue.seq or 0, say, until=until)
    if own is None:
        return  # settled meanwhile (a conductor landed it just before handing the queue on)
    taker = _Taker(ctx, req, own, queue, say)
    entries = [own, *taker.followers(depth - 1, tickets)]
    conduct(
        ctx,
        entries,
        req.mode,
        ctx.remote() if req.push else None,
        say,
        taker if req.mode in ("speculative", "batch") else None,
        window,
        own_done,
        ours,
    )


class _Taker:
    """Takes the entries waiting behind the conductor's own that its stack can hold: the same
    base, push and mode, and, in batch mode, the same gate (the top's verdict is each one's)."""

    def __init__(self, ctx: Ctx, req: LandRequest, own: Entry, queue: Gate, say: Say) -> None:
        self.ctx, self.req, self.own, self.queue, self.say = ctx, req, own, queue, say
        self.seen = {(own.name, own.task.seq)}  # a task by name and seq: one started again is another

    def followers(self, n: int, tickets: list[dict[str, object]] | None = None) -> list[Entry]:
        wanted: list[tuple[LandRequest, int]] = []  # in queue order
        for ticket in self.queue.tickets() if tickets is None else tickets:
            other = LandRequest.from_json(ticket.get("data"))
            if (
                other is None
                or (other.task, other.seq) in self.seen
                or other.push != self.req.push
                or other.mode != self.req.mode
            ):
                continue
            if self.req.mode == "batch" and other.gate != self.req.gate:
                continue
            wanted.append((other, int(str(ticket["seq"]))))
        if not wanted or n <= 0:
            return []
        # Every backup ref in one git call, instead of one call per ticket: a lander keeps its
        # tip under the backup ref before it puts its ticket in the queue (prepare.prepare),
        # and the tickets were read before this.
        backups = functools.cache(lambda: gitops.refs_under(self.ctx.root, guard.BACKUP))
        found = self._take_together(wanted, n, backups)
        if found is None:
            found = []
            for other, seq in wanted:
                if len(found) >= n:
                    break
                try:
                    e = _take(self.ctx, other, seq, self.say, backups)
                except WouldLoseWork as left:  # its recovery is refused (a broken link): its own lander's to meet
                    # (A git the dead land left running there is waited for, or the land ends, as before: another
                    # task landed meanwhile would leave that git's copies of it on this branch, unknown as wtp's.)
                    self.seen.add((other.task, other.seq))
                    self.say(f"'{other.task}' is left out of this land: {left.message}")
                    continue
                if e is None:
                    continue
                self.seen.add((e.name, e.task.seq))
                if e.task.base != self.own.task.base:
                    self.ctx.store.update(e.task, phase="", holder=None, ticket=None)  # not ours to land this time
                    continue
                found.append(e)
        if found:
            self.say(f"landing {', '.join(repr(e.name) for e in found)} behind '{self.own.name}' ({self.req.mode})")
        return found

    def _take_together(
        self, wanted: list[tuple[LandRequest, int]], n: int, backups: Callable[[], dict[str, Sha]]
    ) -> list[Entry] | None:
        """``_take`` for up to ``n`` of ``wanted`` in one state write instead of one each; None
        when a conductor died holding one of them (each is then taken on its own, recovered
        first).  A task on another base is left waiting, as ``_take`` then a release leave it."""
        now = self.ctx.store.read()
        for req, _ in wanted:
            cur = now.tasks.get(req.task)
            if cur is not None and cur.seq == req.seq and cur.state == LANDING and interrupted(cur):
                return None
        tips, holder = backups(), me().to_json()
        found: list[Entry] = []
        with self.ctx.store.transaction() as st:
            for req, seq in wanted:
                if len(found) >= n:
                    break
                cur = st.tasks.get(req.task)
                tip = tips.get(guard.backup_ref(req.task))
                if cur is None or cur.seq != req.seq or cur.state != LANDING or cur.phase or cur.intent or not tip:
                    continue
                self.seen.add((cur.name, cur.seq))
                if cur.base != self.own.task.base:
                    cur.holder, cur.ticket = None, None  # not ours to land this time
                    continue
                cur.phase, cur.holder, cur.ticket = LANDING_PHASE, holder, seq
                found.append(Entry(cur, tip, req.strategy, req.gate, seq))
        return found


def _take(
    ctx: Ctx,
    req: LandRequest,
    seq: int,
    say: Say,
    backups: Callable[[], dict[str, Sha]] | None = None,
    until: float | None = None,
) -> Entry | None:
    """The entry a queue ticket asks for, once its task is ours to land (recovered first if
    a conductor died holding it); None when it is not waiting to land.  ``backups``: every
    backup ref, read after the ticket (its own is read here when not given)."""
    cur = ctx.store.read().tasks.get(req.task)
    if cur is None or cur.seq != req.seq or cur.state != LANDING:
        return None
    ref = guard.backup_ref(req.task)
    tip = backups().get(ref) if backups is not None else gitops.ref_value(ctx.root, ref)
    if cur.phase and interrupted(cur):
        say(recovery.recover(ctx, cur, say, retake=seq, until=until))  # ours again in the same write, or landed
        held = ctx.store.read().tasks.get(req.task)
        if held is None or held.state != LANDING or held.ticket != seq or held.holder != me().to_json():
            return None
    elif cur.phase or cur.intent:
        return None
    else:
        held = ctx.store.update(cur, phase=LANDING_PHASE, holder=me().to_json(), ticket=seq) if tip else None
    if held is None or tip is None:
        if held is not None and held.phase:
            ctx.store.update(held, state=ACTIVE, phase="", holder=None, ticket=None)
        return None
    return Entry(held, tip, req.strategy, req.gate, seq)


def conduct(
    ctx: Ctx,
    entries: list[Entry],
    mode: str,
    remote: str | None,
    say: Say,
    taker: _Taker | None = None,
    window: Window | None = None,
    own_done: OwnDone | None = None,
    ours: Ours | None = None,
) -> None:
    """Land ``entries`` (queue order, one base), leaving each landed or blocked in the state.
    ``taker``: where further entries that joined the queue meanwhile come from (speculative
    mode stacks them on top while the gates below run).  ``own_done`` and ``ours``: as for
    ``lead``, for entries[0].  Interrupted, it gives back what it had not published and re-raises."""
    _Conductor(ctx, entries, mode, remote, say, taker, window or Window(ctx, mode), own_done, ours).run()


class _Conductor:
    """The rounds of one conduct: each builds the stack of what is still pending on the base
    as fetched now, and verifies and publishes it; a lost race starts the next round."""

    def __init__(
        self,
        ctx: Ctx,
        entries: list[Entry],
        mode: str,
        remote: str | None,
        say: Say,
        taker: _Taker | None,
        window: Window,
        own_done: OwnDone | None = None,
        ours: Ours | None = None,
    ) -> None:
        self.ctx, self.entries, self.mode, self.remote, self.say, self.taker = ctx, entries, mode, remote, say, taker
        self.window = window
        self.own_done = own_done
        self.ours = ours
        self.mine: frozenset[int | None] = (ours.tickets if ours else frozenset()) | {entries[0].ticket}
        self.base = entries[0].task.base
        self.base_ref = f"refs/remotes/{remote}/{self.base}" if remote else f"refs/heads/{self.base}"
        self.before = gitops.ref_value(ctx.root, self.base_ref)  # the base as known before fetching: a fork bound
        self.pending = list(entries)
        self.status = QueueStatus(ctx, window)
        self.basecheck = BaseCheck(ctx, say)
        self.attempt = 0
        self.started: set[str] = set()  # the entries of this round whose gate was started
        self.told: set[tuple[str, int]] = set()  # the other entries whose outcome was said (name, seq)

    def run(self) -> None:
        try:
            for self.attempt in range(1, MAX_ATTEMPTS + 1):
                if not self.pending or not self._round():
                    return
                self.pending = [e for e in self.pending if not e.outcome]
            for e in self.pending:
                why = f"'{self.base}' kept moving: gave up after {MAX_ATTEMPTS} attempts; run 'wtp land {e.name}' again"
                settle.blocked(self.ctx, e, LandBlocked(why))
        except BaseException as stop:
            why = stop.message if isinstance(stop, WtpError) else "interrupted"
            recovery.interrupted(self.ctx, [e for e in self.entries if not e.outcome], why)
            raise
        finally:
            for e in self.entries:
                if e.run is not None and e.run.code is None:
                    e.run.stop()
            self.status.clear()

    def _round(self) -> bool:
        """One attempt; False when there is nothing more to do."""
        ctx = self.ctx
        if self.remote:
            gitops.fetch_branch(ctx.root, self.remote, self.base, self.base_ref)
        base_tip = gitops.ref_value(ctx.root, self.base_ref)
        if base_tip is None:
            for e in self.pending:
                where = f" on {self.remote}" if self.remote else ""
                settle.blocked(ctx, e, LandBlocked(f"base branch '{self.base}' does not exist{where}"))
            return False
        self.started = set()
        stack = self._build(self.pending, base_tip)
        self._own_settled()
        r = Round(
            ctx, stack, base_tip, self.remote, self.say, self.status, self.window, self._grow if self.taker else None
        )
        r.settled = self._own_settled
        r.started = self.started
        r.queue_file = self.taker.queue.file if self.taker else None
        failed, ok = batch.verify(r) if self.mode == "batch" else speculate.verify(r)
        for e in list(failed):
            if e.red and isinstance(e.error, GateFailed):
                broken = self.basecheck.broken(e, self.base, r.base_tip)
                if broken is None:
                    self.window.red()  # the task's own red: fewer in flight
                else:  # every task gated by it would fail the same way: all go back
                    for o in [e, *(o for o in self.pending if o.gate == e.gate and not o.outcome and o not in failed)]:
                        o.error = broken
                        if o not in failed:
                            failed.append(o)
        for e in failed:
            settle.blocked(ctx, e, e.error or LandBlocked(f"the land of '{e.name}' failed"))
            why = "withdrawn" if isinstance(e.error, Withdrawn) else "blocked"
            for above in stack[stack.index(e) + 1 :] if e in stack else []:
                above.messages.append(f"rebuilt without '{e.name}', which was {why}")
        self._own_settled()
        if not ok:
            behind = [e for e in stack if not e.outcome]
            for e in behind:
                e.races += 1
            if self.attempt >= MAX_ATTEMPTS:
                return True  # no attempt left: run() says it gave up
            names = ", ".join(f"'{e.name}'" for e in behind)
            self.say(
                f"'{self.base}' moved while landing {names}: rebuilding (attempt {self.attempt + 1}/{MAX_ATTEMPTS})"
            )
            time.sleep(min(2.0, 0.05 * 2**self.attempt) * random.uniform(0.5, 1.5))
        return True

    def _own_settled(self) -> None:
        """Our lander's tasks have their outcome while others are still ours to land: its
        lander is told, once, and may return; the rest goes on.  Each other task's outcome is said
        once, as it comes (after the hand-off, in the background conductor's log)."""
        for e in self.entries:
            if e.outcome and e.ticket in self.mine and self.ours is not None:
                self.ours.settled(e)  # the command of our lander says it, and cleans up
            elif e.outcome and e is not self.entries[0] and (e.name, e.task.seq) not in self.told:
                self.told.add((e.name, e.task.seq))
                how = f"landed at {(e.commit or '')[:12]}" if e.outcome == LANDED else f"not landed: {e.error}"
                self.say(f"'{e.name}' {how}")
        if self.own_done is None:
            return
        mine = [e for e in self.entries if e.ticket in self.mine]
        if len(mine) < len(self.mine) or not all(e.outcome for e in mine):
            return  # one of ours still waits: in the queue, or in the stack
        others = [e.name for e in self.entries if not e.outcome]
        if others:
            tell, self.own_done = self.own_done, None
            tell(others)

    def _grow(self, r: Round, n: int) -> None:
        """Stack up to n entries that joined the queue meanwhile on top of ``r``."""
        assert self.taker is not None
        new = self.taker.followers(n)
        self.entries.extend(new)
        self.pending.extend(new)
        below = [e.name for e in r.stack[r.done :]]
        r.stack.extend(self._build(new, r.base_tip, r.stack[-1].published_commit if r.stack else r.base_tip, below))

    def _after(self, e: Entry, st: State, ahead: list[str]) -> bool:
        """``e`` was started on the work of a task that is not landed: True when it is not
        built now, blocked if that task is neither landing nor being removed, or left to the
        next round while that task waits in the queue below it, not stacked yet."""
        why = stacking.unmet(st, e.task, ahead)
        if why is None:
            return False
        b = stacking.below(st, e.task)
        if b is not None and b.state == LANDING and any(o.name == b.name and not o.outcome for o in self.pending):
            self.status.set(e, f"waiting for '{b.name}'")
            return True
        settle.blocked(self.ctx, e, LandBlocked(why))
        return True

    def _build(
        self, pending: list[Entry], base_tip: Sha, onto: Sha | None = None, below: list[str] | None = None
    ) -> list[Entry]:
        """The stack on ``onto`` (default ``base_tip``, the base as fetched); a task that
        conflicts is blocked at once and left out.  Whether a task is already on the base is
        asked of ``base_tip`` only: a candidate below it, not yet published, may contain its
        commits without the base having them (the review of issue 28: such a task was
        settled 'landed' and its worktree removed)."""
        ctx, prev = self.ctx, onto or base_tip
        stack: list[Entry] = []
        built: Entry | None = None  # the last one built: recorded, its gate started, while git builds the next
        for e in pending:
            e.attempts = self.attempt
            # Read as it is now: a task below may have been settled earlier in this loop.
            if e.task.stacked_on and self._after(e, ctx.store.read(), [*(below or []), *(o.name for o in stack)]):
                continue
            # One git call answers what a build needs to know first: whether the task is
            # already on the base (asked in the first round only), where its branch is, what
            # the backup ref keeps, and whether its recorded fork is below its tip.
            seen = candidate.look(ctx, e, base_tip if self.attempt == 1 else None)
            if seen.on_base:
                e.messages.append(f"task '{e.name}' is already on '{e.task.base}'")
                settle.landed(ctx, e, e.tip)
                continue
            # Nothing of an earlier round's gate counts for the new candidate.
            e.run, e.cached, e.tested = None, False, False
            self.status.set(e, "building")
            try:
                candidate.still_linked(e)  # (give_back and the build read its worktree)
                settle.give_back(ctx, e, seen.branch)  # every build starts from the pre-land tip
                crashpoints.step("land:before-candidate")
                start = candidate.fork(ctx, e.task, e.tip, self.before, seen.from_fork)
                started = candidate.begin(ctx, e, prev, start, seen.kept)
                if built is not None:
                    # Recording the candidate below and starting its gate take about as long as
                    # git replaying this one: side by side, the last gate of a deep stack starts
                    # that much sooner (issue 28).  git is left to finish before anything else.
                    try:
                        crashpoints.step("land:beside-build")
                        self._gate(built)
                    except BaseException:
                        if started.replay is not None:
                            started.replay.wait()
                        raise
                    built = None
                e.cand = candidate.finish(ctx, started)
            except LandConflict as b:
                if prev == base_tip:  # a conflict with the base itself
                    settle.blocked(ctx, e, b)
                else:  # perhaps only with a task below, not landed yet: the next round tells
                    names = ", ".join(f"'{n}'" for n in [*(below or []), *(o.name for o in stack)])
                    self.say(f"'{e.name}' conflicts with {names}, not landed yet: built again once they are settled")
                    self.status.set(e, f"waiting for {names}")
                continue
            except (LandBlocked, WouldLoseWork) as b:
                settle.blocked(ctx, e, b)
                continue
            stack.append(e)
            prev = e.cand
            if self.started or self.mode == "batch":
                built = e
            else:
                self._gate(e)  # the first gate at once: nothing is building when it starts
        if built is not None:
            self._gate(built)
        return stack

    def _gate(self, e: Entry) -> None:
        """A candidate built: recorded (a squash or merge was, before the branch moved to it)
        and, speculating, its gate started."""
        if e.strategy == "rebase":
            self.ctx.store.update(e.task, candidate=e.cand)  # from here, recovery asks the remote whether it landed
        if self.mode != "batch":  # speculative: its gate starts now, while the next candidate is built
            if not self.started:
                crashpoints.step("land:before-gate")
            gating.start_gate(self.ctx, e, self.say, self.status)
            self.started.add(e.name)
