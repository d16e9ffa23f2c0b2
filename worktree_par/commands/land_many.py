"""'wtp land A B ...': several tasks in one command.

Each task is checked and prepared as 'wtp land' does, and joins the queue at once with a
ticket this command holds; a refusal is said then, and the others still land.  Then the
command waits on its tickets in the order given: whoever conducts (this command, when it
is at the head) stacks them together, so N tasks cost one process and one gate window,
not N landers.  Each task's outcome is reported in the order given, and the command returns
once all have one: the queue's work for tasks of other landers that joined meanwhile goes
on in the background, as for one task (land/handoff.py).  Ctrl-C withdraws every task not
yet published and says, per task, what it left.  Exit code: the worst of the tasks'.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .. import interrupts
from ..errors import Refusal, WtpError
from ..exits import err, json_emitted, open_repo, reported
from .common import left_behind

if TYPE_CHECKING:
    from ..errors import Say
    from ..land.entry import Entry
    from ..land.handoff import Handoff
    from ..land.lander import LandResult
    from ..land.request import LandRequest
    from ..repo import Ctx
    from ..state import Task

Doc = dict[str, object]  # one task's outcome, as 'wtp land --json' prints it


class _Said:
    """What the command has said so far: the worst exit code and, under --json, each task's document."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.code, self.docs = as_json, 0, list[Doc]()

    def landed(self, result: LandResult, tidied: list[str] | None = None) -> None:
        """``tidied``: what its clean-up, done while the gates ran, said."""
        result.messages += tidied or []
        self.docs.append(result.to_json())
        if self.as_json:
            for m in result.messages:
                err(m)
            return
        more = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        print(f"landed '{result.task}' at {result.commit}{more}", flush=True)
        for m in result.messages:
            print(m, flush=True)

    def failed(self, name: str, e: Exception) -> None:
        """One task's error: its line (naming the task), its document and its exit code."""
        from ..land.entry import PublishUnknown

        if isinstance(e, WtpError):
            msg, code = e.message, int(e.exit_code)
            state = "unknown" if isinstance(e, PublishUnknown) else error_state(e)
        else:
            code, msg, state = reported(e), "see the line above", "error"  # said by the one reporter of errors
        if msg != "see the line above":
            err(f"wtp: {msg}" if f"'{name}'" in msg else f"wtp: {name}: {msg}")
        self.code = max(self.code, code)
        paths = list(getattr(e, "paths", []) or [])
        self.docs.append({"task": name, "state": state, "commit": None, "attempts": None, "paths": paths, "error": msg})


def error_state(e: WtpError) -> str:
    """The ``state`` of a land's --json document for its error (CONTRACT's, and this note's departures)."""
    from ..errors import LandBlocked

    if isinstance(e, LandBlocked):
        return "gate-broken" if e.kind == "gate-broken" else "blocked"
    return "refused"


def land_many(where: str | None, names: list[str], opts: dict[str, object], keep: bool, as_json: bool) -> int:
    """Land ``names`` (several, each once) with the request ``opts`` (lander.request's keywords)."""
    from ..land import handoff

    c = open_repo(where)
    names = list(dict.fromkeys(names))
    said = _Said(as_json)
    if as_json:
        json_emitted()  # one document for the command, written below; a task's failure writes none of its own
    fork = handoff.fork()
    try:
        if fork is not None and fork.parent:
            handed = fork.wait(names[0])  # the child ended first: this process ended with it
            handlers = interrupts.as_ctrl_c()  # the clean-up, stopped, says what it left
            try:
                _report_handed(c, handed, keep, said)
            finally:
                interrupts.restore(handlers)
        else:
            handlers = interrupts.as_ctrl_c()
            try:
                if not _serve(c, names, opts, keep, said, fork):
                    return said.code  # handed over: the parent reports
            finally:
                interrupts.restore(handlers)
    finally:
        if as_json and not (fork is not None and not fork.parent and fork.done):
            _emit(names, said.docs)
    left_behind(c, where)
    return said.code


def detach_many(where: str | None, names: list[str], opts: dict[str, object], as_json: bool) -> int:
    """'wtp land A B --detach': each queued for the background lander, as one --detach does."""
    from ..land import lander

    c = open_repo(where)
    names = list(dict.fromkeys(names))
    said = _Said(as_json)
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
            _emit(names, said.docs)
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


def _emit(names: list[str], docs: list[Doc]) -> None:
    """The command's --json document: one per task, in the order given (``interrupted`` for a
    task the command stopped before it had an outcome)."""
    by = {d["task"]: d for d in docs}
    out = [
        by.get(n) or {"task": n, "state": "interrupted", "commit": None, "attempts": None, "paths": []} for n in names
    ]
    print(json.dumps(out, indent=2), flush=True)


def _serve(c: Ctx, names: list[str], opts: dict[str, object], keep: bool, said: _Said, fork: Handoff | None) -> bool:
    """(the child of the fork, or the one process) Join every task, then land them in
    order; False once our tasks were handed over to the waiting parent."""
    from ..land import lander

    pending: dict[str, tuple[Task, LandRequest, int]] = {}
    tidy = _Tidier(c, keep, fork)
    try:
        for name in names:
            try:
                joined = _join(c, name, opts, said)
            except Exception as e:  # noqa: BLE001 - one task refused: said, and the others land
                said.failed(name, e)
                continue
            if joined is not None:
                pending[name] = joined
        while pending:
            name, (t, req, seq) = next(iter(pending.items()))
            also = {n: [s, o.seq] for n, (o, _, s) in pending.items() if n != name}
            tidy.tickets = {s for _, _, s in pending.values()}
            if fork is not None:
                fork.extra = {"code": said.code, "docs": said.docs, "tidied": tidy.done}
            try:
                result = lander.land(c, t, req, say=err, adopt=seq, handoff=fork, also=also, idle=tidy)
            except Exception as e:  # noqa: BLE001 - as above
                said.failed(name, e)
            else:
                if result is None:  # the parent has them all now
                    return False
                said.landed(result, tidy.done.pop(name, None))
            del pending[name]
    except KeyboardInterrupt:
        _interrupted(c, [t for t, _, _ in pending.values()])
        raise
    return True


def _join(c: Ctx, name: str, opts: dict[str, object], said: _Said) -> tuple[Task, LandRequest, int] | None:
    """Check, prepare and queue one task (its ticket ours); None when it is landed already (reported)."""
    from ..gates import Gate
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
    t = prepare(c, t, req, err)
    try:
        seq, _place, _ = Gate(c.store, QUEUE, title="the land queue").enqueue(
            t.name, req.to_json(), refuse=other_options(t, req)
        )
    except BaseException:
        withdraw(c, t)
        raise
    return t, req, seq


def _report_handed(c: Ctx, handed: dict[str, object], keep: bool, said: _Said) -> None:
    """(the parent of the fork) What the child said before it handed over, then each of our
    tasks' result, from the state the conductor left, and its clean-up."""
    from ..land import lander

    code, docs, ours, tidied = handed.get("code"), handed.get("docs"), handed.get("ours"), handed.get("tidied")
    said.code = code if isinstance(code, int) else 0
    said.docs = [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []
    left = dict(ours) if isinstance(ours, dict) else {}
    try:
        for name, (ticket, seq) in list(left.items()):
            t = c.store.read().tasks.get(name)
            try:
                if t is None or t.seq != seq:
                    raise Refusal(f"task '{name}' changed while waiting in the land queue: see 'wtp list'")
                done = tidied.get(name) if isinstance(tidied, dict) else None
                said.landed(lander.finish(c, t, ticket, keep, err), [str(m) for m in done or []])
            except Exception as e:  # noqa: BLE001 - one task's: said, and the others reported
                said.failed(name, e)
            del left[name]
    except KeyboardInterrupt:
        _interrupted(c, [t for n in left if (t := c.store.read().tasks.get(n)) is not None])
        raise
    others = handed.get("others")
    if isinstance(others, list) and others:
        names = ", ".join(f"'{o}'" for o in others)
        print(
            f"the land queue goes on for {names} in the background (pid {handed.get('pid')}, log: {handed.get('log')})"
        )


class _Tidier:
    """The conductor's idle work for our command: the clean-up of a task of ours that landed,
    one per call, done while the gates of the others run rather than after the last (what it
    said is reported with the task).  A clean-up that fails is left to the task's report,
    which runs it again and says why."""

    def __init__(self, c: Ctx, keep: bool, fork: Handoff | None) -> None:
        self.c, self.keep, self.fork = c, keep, fork
        self.tickets: set[int] = set()  # our tickets still to report
        self.done: dict[str, list[str]] = {}  # the tasks cleaned up: what each clean-up said

    def __call__(self, entries: list[Entry]) -> bool:
        from ..land import lander
        from ..state import LANDED

        if self.fork is not None and self.fork.done:
            return False  # handed over: the parent cleans up
        for e in entries:
            if e.outcome != LANDED or e.ticket not in self.tickets or e.name in self.done:
                continue
            cur = self.c.store.read().tasks.get(e.name)
            if cur is None or cur.seq != e.task.seq or cur.state != LANDED:
                self.tickets.discard(e.ticket or 0)  # not ours to clean up now: its report says what it is
                continue
            try:
                self.done[e.name] = lander.tidy_landed(self.c, cur, self.keep, err)
            except Exception:  # noqa: BLE001 - the task's report runs it again, and says why
                self.tickets.discard(e.ticket or 0)
            return True
        return False


def _interrupted(c: Ctx, tasks: list[Task]) -> None:
    """Ctrl-C: each task not yet reported is withdrawn (or was published: said so), one line each."""
    from ..land import lander

    say: Say = err
    for t in tasks:
        say(lander.interrupted(c, t, say))
