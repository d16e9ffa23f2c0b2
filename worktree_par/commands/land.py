"""'wtp land': building the typed request, landing now or detached, and reporting."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .. import interrupts
from ..errors import UsageError
from ..exits import err, open_repo, reported
from .common import bound_waits, current_task, emit, left_behind

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..errors import Say
    from ..gates import Gate
    from ..land.lander import LandResult, Tidy
    from ..land.request import LandRequest
    from ..repo import Ctx
    from ..state import Task


def land(
    where: str | None,
    task: str | None,
    *,
    strategy: str | None = None,
    gate: str | None = None,
    no_push: bool = False,
    keep: bool = False,
    timeout: float | None = None,
    mode: str | None = None,
    detach: bool = False,
    follow: bool = False,
    as_json: bool = False,
    also: tuple[str, ...] = (),
) -> int:
    """``also``: more tasks to land with ``task`` in this one command (commands/land_many.py)."""
    from ..config import MODES, STRATEGIES
    from ..land import lander

    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    # --timeout bounds the wait for the queue (and the locks on the way), not the network
    # calls a land makes after its gate: its push is bounded by [remote] timeout, as every one is.
    bound_waits(timeout, network=False)
    if also:
        return _several(
            where, [task or "", *also], detach, follow, as_json, strategy, gate, no_push, keep, mode, timeout
        )
    c = open_repo(where)
    t = c.store.read().task(current_task(c, where, task))
    if not detach:
        done = lander.landable(t)
        if done is not None:  # landed by another land, or a recovery: cleaned up as a land does
            done.messages += lander.tidy_landed(c, t, keep, err)
            return _report(c, where, done, as_json)
    req = lander.request(c, t, strategy=strategy, gate=gate, push=not no_push, keep=keep, mode=mode, timeout=timeout)
    if detach:
        from .land_many import detached, queued_line

        doc = detached(c, t, req)
        if as_json:
            emit(doc)
        else:
            print(queued_line(doc))
        return 0
    return _land(c, where, t, req, follow, as_json)


def _several(
    where: str | None,
    names: list[str],
    detach: bool,
    follow: bool,
    as_json: bool,
    strategy: str | None,
    gate: str | None,
    no_push: bool,
    keep: bool,
    mode: str | None,
    timeout: float | None,
) -> int:
    """'wtp land A B ...': each detached in turn (--detach), or all landed by this command."""
    from .land_many import detach_many, land_many

    if follow:
        raise UsageError("--follow streams one gate's output: land one task at a time to follow it")
    opts: dict[str, object] = {
        "strategy": strategy,
        "gate": gate,
        "push": not no_push,
        "keep": keep,
        "mode": mode,
        "timeout": timeout,
    }
    if detach:
        return detach_many(where, names, opts, as_json)
    return land_many(where, names, opts, keep, as_json)


def land_detached(where: str | None, request: str, ticket: str | None = None) -> int:
    """The background lander 'wtp land --detach' starts: the request it was handed, whole,
    and the queue ticket put in the queue for it (its task already waiting to land); then
    every ticket later detached lands handed it, one after another, until none is left.
    Each land runs as a command of its own (its --timeout is its own, the configuration is
    read again) and its outcome is a line in the log; one that fails, even by an internal
    error, is reported there and the others are still served.  The exit code is the worst."""
    from ..exits import in_command
    from ..gates import Gate
    from ..land.request import QUEUE, LandRequest

    q = Gate(open_repo(where).store, QUEUE, title="the land queue")
    seq = int(ticket) if ticket and ticket.isdigit() else None
    later: list[Tidy] = []
    interrupts.as_ctrl_c()
    try:
        code = in_command(lambda: _serve(where, LandRequest.loads(request), seq, q, later, ""))
        while True:
            if interrupts.SEEN:  # told to stop while a land under way finished anyway (its task had landed)
                raise KeyboardInterrupt
            # The tickets it holds before any clean-up: one at the head of the queue never waits
            # for the clean-up of another.  It stops taking tickets once it has nothing left to do.
            handed = q.next_served(stop=not later)
            if handed is not None:
                seq, data, label = handed
                code = max(code, in_command(partial(_serve, where, LandRequest.from_json(data), seq, q, later, label)))
            elif later:  # left in the list until done: an interrupt during it says what it left
                code = max(code, in_command(partial(_tidy, later[0])))
                later.pop(0)
            else:
                return code
    except KeyboardInterrupt:  # SIGTERM: the land under way gave back what it had not published
        with interrupts.finishing():  # a second signal does not cut this short
            while (handed := q.next_served(stop=True)) is not None:  # and so do the ones handed to it
                seq, _data, label = handed
                q.drop(seq)
                err(f"wtp: stopped before its turn: {_given_back(where, label)}")
            from ..land.publish import landed_left

            for tidy in later:  # landed: only the clean-up is left undone, or part of it
                cur = tidy.ctx.store.read().tasks.get(tidy.task.name) or tidy.task
                left = landed_left(tidy.ctx, cur)
                if left:
                    err(f"task '{tidy.task.name}' is landed; {left}")
        raise


def _serve(where: str | None, req: LandRequest | None, seq: int | None, q: Gate, later: list[Tidy], label: str) -> int:
    """One detached land, its outcome said in the log: 0 landed, else its error's exit code
    (its ticket leaves the queue either way); its clean-up goes to ``later``.  ``label``: the
    task its ticket names, given back when the request cannot be read."""
    try:
        if req is None:
            raise UsageError(f"a detached land was handed a request it cannot read: {_given_back(where, label)}")
        bound_waits(req.timeout, network=False)
        c = open_repo(where)
        t = c.store.read().task(req.task)
        if t.seq != req.seq:
            raise UsageError(f"task '{req.task}' was replaced since its land was detached: see 'wtp list'")
        return _land(c, where, t, req, False, False, seq, later)
    except Exception as e:  # noqa: BLE001 - one land's failure, said in the log; the others go on
        if seq is not None:
            q.drop(seq)
        if req is not None:
            _noted(where, req, e)
        return reported(e)


def _noted(where: str | None, req: LandRequest, e: Exception) -> None:
    """A detached land that stopped and gave its task back says why on the task too ('wtp list'):
    nobody waits on a detached land to read it in its log."""
    from ..errors import WtpError
    from ..state import ACTIVE

    why = (e.message if isinstance(e, WtpError) else str(e) or type(e).__name__).splitlines()[0]
    try:
        c = open_repo(where)
        with c.store.transaction() as st:  # judged and written in one step: a land begun meanwhile keeps its state
            t = st.tasks.get(req.task)
            if t is not None and t.seq == req.seq and t.state == ACTIVE and not t.note:
                t.note = f"its detached land stopped ({why}): 'wtp land {t.name}' lands it again"
    except Exception:  # noqa: BLE001 - only a note: the log has the failure all the same
        pass


def _given_back(where: str | None, label: str) -> str:
    """The task a ticket that cannot be read names, made landable again (what to do, in words)."""
    from ..land.withdraw import withdraw
    from ..state import LANDED

    c = open_repo(where)
    t = c.store.read().tasks.get(label) if label else None
    if t is None:
        return "run 'wtp land TASK' again"
    if t.state == LANDED:  # a conductor had read the request before it was damaged
        return (
            f"task '{t.name}' is landed at {(t.commit or '')[:12]}; its worktree is kept ('wtp rm {t.name}' removes it)"
        )
    said = withdraw(c, t)
    if said == "publishing":
        return f"task '{t.name}' is being published by a conductor: see 'wtp list'"
    return f"{said or f'task {t.name!r} is {t.state}'}; run 'wtp land {t.name}' again"


def _tidy(tidy: Tidy) -> int:
    """A deferred clean-up, its messages in the log: 0, else its error's exit code."""
    try:
        for m in tidy():
            print(m)
    except Exception as e:  # noqa: BLE001 - as _serve
        return reported(e)
    return 0


def _land(
    c: Ctx,
    where: str | None,
    t: Task,
    req: LandRequest,
    follow: bool,
    as_json: bool,
    adopt: int | None = None,
    later: list[Tidy] | None = None,
) -> int:
    from ..errors import WtpError
    from ..land import handoff, lander
    from ..land.entry import gate_log
    from ..progress import Watch

    # A foreground land forks: it returns once its own task is settled, even when it conducts
    # the queue, whose work for the tasks behind it goes on in the background (handoff.py).
    fork = handoff.fork() if adopt is None else None
    log = gate_log(c, t.name)
    watch = Watch(f"landing '{t.name}'", err, detail=lambda: _land_detail(c, t.name), log=lambda: log, follow=follow)
    run: Callable[[], LandResult | None]
    handlers: dict[int, object] = {}
    if fork is not None and fork.parent:
        from .. import locks

        locks.set_deadline(None)  # this side only cleans up: --timeout bounded the child's wait for the queue
        handed = fork.wait(t.name)  # returns only when the child handed over its task's result
        handlers = interrupts.as_ctrl_c()  # its clean-up, stopped, says what it left
        watch.follow = None  # the child streamed the gate's output already
        run = partial(_handed_over, c, t, req, handed, watch.say)
    else:
        if fork is not None:
            fork.quiet = watch.close
        if adopt is None:
            handlers = interrupts.as_ctrl_c()
        run = partial(lander.land, c, t, req, say=watch.say, adopt=adopt, tidy=later, handoff=fork)
    try:
        with watch:
            result = run()
    except WtpError as e:  # blocked, gate-broken, refused, or unknown (the next land asks again)
        if as_json:
            from .land_report import error_doc

            emit(error_doc(t.name, e))
        raise
    except KeyboardInterrupt:
        err(lander.interrupted(c, t, err))  # say what Ctrl-C left, before the 'interrupted' line
        if as_json and (done := lander.landed_result(c, t)) is not None:  # landed: its document
            emit(done.to_json())
        raise
    finally:
        interrupts.restore(handlers)
    if result is None:
        return 0  # (the child of a fork) its parent reported our task; the others are done
    return _report(c, where, result, as_json)


def _handed_over(c: Ctx, t: Task, req: LandRequest, handed: dict[str, object], say: Say) -> LandResult:
    """(the parent of a fork) Our task's result, once the conductor that is our child has
    settled it, and its clean-up; the queue's work for the others goes on in the child."""
    from ..land import lander

    seq = handed.get("seq")
    result = lander.finish(c, t, seq if isinstance(seq, int) else None, req.keep, say)
    others = handed.get("others")
    if isinstance(others, list) and others:
        names = ", ".join(f"'{o}'" for o in others)
        result.messages.append(
            f"the land queue goes on for {names} in the background (pid {handed.get('pid')}, log: {handed.get('log')})"
        )
    return result


def _report(c: Ctx, where: str | None, result: LandResult, as_json: bool) -> int:
    from .land_report import say_landed

    say_landed(result.to_json(), result.messages, as_json)
    if as_json:
        emit(result.to_json())
        return 0
    left_behind(c, where)
    return 0


def _land_detail(ctx: Ctx, task: str) -> str:
    """What the queue is doing with the task now, for the live line."""
    from ..land import status

    now = status.describe(status.doing(ctx).get(task))
    if now:
        return now
    t = ctx.store.read().tasks.get(task)
    return t.note if t is not None else ""
