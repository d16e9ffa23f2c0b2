"""'wtp land A B ...': several tasks in one command.

Each task is checked and prepared as 'wtp land' does, and joins the queue at once with a
ticket this command holds; a refusal is said then, and the others still land.  Then the
command waits on its tickets in the order given: whoever conducts (this command, when it
is at the head) stacks them together, so N tasks cost one process and one gate window,
not N landers.  The command forks as one land does (land/handoff.py): the child lands and
tells the parent each task's outcome as it comes; the parent says it and cleans up (a task
that landed, its worktree removed) while the child goes on.  The command returns once all
of its tasks have their outcome: the queue's work for tasks of other landers that joined
meanwhile goes on in the background, as for one task.  Ctrl-C withdraws every task not yet
published and says, per task, what it left.  Exit code: the worst of the tasks'.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .. import interrupts
from ..errors import Refusal, WaitTimeout
from ..exits import err, json_emitted, open_repo
from .common import left_behind
from .land_report import Relay, Said, emit

if TYPE_CHECKING:
    from ..errors import Say
    from ..land.handoff import Handoff
    from ..land.request import LandRequest
    from ..repo import Ctx
    from ..state import Task


def land_many(where: str | None, names: list[str], opts: dict[str, object], keep: bool, as_json: bool) -> int:
    """Land ``names`` (several, each once) with the request ``opts`` (lander.request's keywords).
    Forked as one land is (land/handoff.py): the child lands, the parent reports and cleans
    up each task as the child tells it, meanwhile; where there is no fork, this process does both."""
    from ..land import handoff

    c = open_repo(where)
    names = list(dict.fromkeys(names))
    said = Said(c, keep, as_json)
    if as_json:
        json_emitted()  # one document for the command, written below; a task's failure writes none of its own
    fork = handoff.fork()
    if fork is not None and fork.parent:
        from .. import locks

        locks.set_deadline(None)  # this side reports and cleans up: --timeout bounds the child's waits

        def ended(code: int) -> int:  # the child ended (not handed over): its outcomes were all sent
            if as_json:
                emit(names, said.docs)
            left_behind(c, where)
            return max(code, said.code)

        said.fork = fork
        try:
            handed = fork.wait(" ".join(names), on_events=said.events, on_end=ended)
        except KeyboardInterrupt:  # stopped in a clean-up; the child got the signal too
            _stopped_reporting(c, fork.child, names, said)
            raise
        others = handed.get("others")
        if isinstance(others, list) and others:
            queue = ", ".join(f"'{o}'" for o in others)
            line = f"the land queue goes on for {queue} in the background (pid {handed.get('pid')}, log: {handed.get('log')})"
            (err if as_json else print)(line)  # under --json, stdout holds the document alone
    else:
        if fork is not None:  # the child: not a process inside a worktree the parent removes meanwhile
            os.chdir(c.root)
        handlers = interrupts.as_ctrl_c()
        try:
            if not _serve(c, names, opts, said if fork is None else Relay(fork.send), fork):
                return 0  # handed over: the parent reported every task
            if fork is not None:
                return 0  # all sent: the parent says the exit code (and the --json document)
        finally:
            interrupts.restore(handlers)
            if as_json and fork is None:
                emit(names, said.docs)
    if as_json and fork is not None:
        emit(names, said.docs)
    left_behind(c, where)
    return said.code


def detach_many(where: str | None, names: list[str], opts: dict[str, object], as_json: bool) -> int:
    """'wtp land A B --detach': each queued for the background lander, as one --detach does."""
    from ..land import lander

    c = open_repo(where)
    names = list(dict.fromkeys(names))
    said = Said(c, False, as_json)
    if as_json:
        json_emitted()
    try:
        for name in names:
            try:
                t = c.store.read().task(name)
                doc = detached(c, t, lander.request(c, t, **opts))  # type: ignore[arg-type]
            except Exception as e:  # noqa: BLE001 - one task refused: said, and the others are queued
                said.failed(name, e)
                continue
            said.docs.append(doc)
            if not as_json:
                print(queued_line(doc), flush=True)
    finally:
        if as_json:
            emit(names, said.docs)
    return said.code


def detached(c: Ctx, t: Task, req: LandRequest) -> dict[str, object]:
    """Queue ``t``'s land for the background lander: the land's --json shape (CONTRACT), its outcome still to come."""
    from ..land import lander

    place, log = lander.detach(c, t, req, say=err)
    return {
        "task": t.name,
        "state": "landing",
        "commit": None,
        "attempts": None,
        "paths": [],
        "place": place,
        "log": log,
    }


def queued_line(doc: dict[str, object]) -> str:
    return f"queued '{doc['task']}' to land at place {doc['place']}; 'wtp queue' follows it (log: {doc['log']})"


def _serve(c: Ctx, names: list[str], opts: dict[str, object], said: Said | Relay, fork: Handoff | None) -> bool:
    """(the child of the fork, or the one process) Join every task, then land them in
    order, each outcome given to ``said``; False once our tasks were handed over to the waiting parent."""
    from ..gates import Gate
    from ..land import lander
    from ..land.prepare import marked
    from ..land.queue import Ours
    from ..land.request import QUEUE

    pending: dict[str, tuple[Task, LandRequest, int]] = {}
    ours = Ours(frozenset(), lambda e: said.settled(e.name, e.ticket, e.task.seq))
    begun = len(interrupts.SEEN)  # a signal since then stops the command, whatever a land did with it
    limit = opts.get("timeout")
    timeout = float(limit) if isinstance(limit, (int, float)) else None
    deadline = time.monotonic() + timeout if timeout is not None else None
    try:
        for name in _below_first(c, names):
            try:
                joined = _join(c, name, opts, said)
            except Exception as e:  # noqa: BLE001 - one task refused: said, and the others land
                said.failed(name, e)
                continue
            if joined is not None:
                pending[name] = joined
        marked(c, list(pending), err)  # a queued task may start on their work now
        while pending:
            if len(interrupts.SEEN) > begun:  # a land that had published finished its job: the rest stop
                raise KeyboardInterrupt
            name, (t, req, seq) = next(iter(pending.items()))
            if (name, t.seq) in ours.told:  # a conductor of ours told its outcome already
                Gate(c.store, QUEUE).drop(seq)  # its ticket was ours to leave the queue with
                del pending[name]
                continue
            if deadline is not None:  # --timeout bounds the command, not each task in turn
                req.timeout = max(0.0, round(deadline - time.monotonic(), 1))
            ours.tickets = frozenset(s for n, (o, _, s) in pending.items() if n != name and (n, o.seq) not in ours.told)
            try:
                result = lander.land(c, t, req, say=err, adopt=seq, handoff=fork, ours=ours)
            except Exception as e:  # noqa: BLE001 - as above
                del pending[name]
                if (name, t.seq) not in ours.told:
                    said.failed(name, _whole(e, timeout, req.timeout))
                continue
            del pending[name]
            if fork is not None and fork.done:
                return False  # the parent has them all
            if result is not None:  # (None: told)
                said.landed(result)
    except KeyboardInterrupt:
        try:
            _interrupted(c, [t for n, (t, _, _) in pending.items() if (n, t.seq) not in ours.told], said)
        finally:
            with interrupts.finishing():
                for _, _, seq in pending.values():  # the tickets we queued for them leave with us
                    Gate(c.store, QUEUE).drop(seq)
        raise
    return True


def _stopped_reporting(c: Ctx, child: int, names: list[str], said: Said) -> None:
    """(the parent) Ctrl-C while reporting: the child, told too, gives back what it had not
    published and says so; each task already landed but not yet reported is said landed,
    with what of its clean-up is left; under --json, the list."""
    from ..land import lander
    from ..state import LANDED

    try:
        os.waitpid(child, 0)
    except ChildProcessError:
        pass
    reported = {d.get("task") for d in said.docs}
    for name in names:
        cur = c.store.read().tasks.get(name)
        if name not in reported and cur is not None and cur.state == LANDED:  # the child gave back the rest
            _landed_anyway(c, cur, said, lander.interrupted(c, cur, err))  # (landed: it only says what is left)
    if said.as_json:
        emit(names, said.docs)


def _whole(e: Exception, timeout: float | None, left: float | None) -> Exception:
    """A task's wait timed out on what was left of the command's --timeout: said so."""
    from ..land.entry import PublishUnknown

    if timeout is None or left is None or left >= timeout or not isinstance(e, (WaitTimeout, PublishUnknown)):
        return e
    why = f"what was left of the command's --timeout {timeout:g}s after the tasks before it"
    if isinstance(e, PublishUnknown):
        return PublishUnknown(f"{e.message} (the wait had {why})", exit_code=e.exit_code)
    return WaitTimeout(f"{e.message} ({why})")


def _join(c: Ctx, name: str, opts: dict[str, object], said: Said | Relay) -> tuple[Task, LandRequest, int] | None:
    """Check, prepare and queue one task (its ticket ours); None when it is landed already (reported)."""
    from ..gates import Gate, JoinRefused
    from ..land import lander
    from ..land.prepare import other_options, prepare
    from ..land.request import QUEUE
    from ..land.withdraw import withdraw
    from ..state import LANDING_PHASE

    t = c.store.read().task(name)
    req = lander.request(c, t, **opts)  # type: ignore[arg-type]
    done = lander.landable(t)
    if done is not None:  # landed by another land: cleaned up as a land does
        done.messages += lander.tidy_landed(c, t, req.keep, err)
    elif t.phase == LANDING_PHASE:  # an interrupted land of it: finished (and cleaned up) or rolled back
        done = lander.recover_first(c, t, req, err)
        t = c.store.read().task(name)
    if done is not None:
        said.landed(done)
        return None
    try:
        t = prepare(c, t, req, err)
        seq, _place, _ = Gate(c.store, QUEUE, title="the land queue").enqueue(
            t.name, req.to_json(), refuse=other_options(t, req)
        )
    except (JoinRefused, Refusal):
        raise  # another land of the task waits, or the task cannot land: nothing of ours to give back
    except KeyboardInterrupt:
        err(lander.interrupted(c, t, err))  # said for this one too, then for those already queued
        raise
    except BaseException:
        withdraw(c, t)
        raise
    return t, req, seq


def _interrupted(c: Ctx, tasks: list[Task], said: Said | Relay) -> None:
    """Ctrl-C: each task not yet reported is withdrawn, one line each; one the base took (in
    the push the signal came during, or a publication it waited for) is reported landed, its
    clean-up left undone, as the line says."""
    from ..land import lander

    say: Say = err
    seen = len(interrupts.SEEN)
    for t in tasks:
        # A publication under way is waited for (up to a minute) to say how it ended; a second
        # Ctrl-C ends that wait, and the waits of the tasks after it.
        line = lander.interrupted(c, t, say, wait=60.0 if len(interrupts.SEEN) == seen else 0.0)
        if not _landed_anyway(c, t, said, line):
            say(line)


def _landed_anyway(c: Ctx, t: Task, said: Said | Relay, line: str) -> bool:
    """After Ctrl-C: ``t``, when the base took it, reported landed with ``line`` (what its
    clean-up left); False when it did not land."""
    from ..land.lander import landed_result

    result = landed_result(c, t, [line])
    if result is None:
        return False
    said.landed(result)
    return True


def _below_first(c: Ctx, names: list[str]) -> list[str]:
    """The order the tasks join the queue: as given, but a task started on the work of others
    in the command after them (stacking.py), so 'wtp land c b a' lands all three as 'wtp land a
    b c' does.  (The --json list keeps the order given.)"""
    from ..stacking import chain

    tasks = c.store.read().tasks
    under = {n: {m for _, m in chain(tasks[n])} & set(names) if n in tasks else set() for n in names}
    return sorted(names, key=lambda n: len(under[n])) if any(under.values()) else names
