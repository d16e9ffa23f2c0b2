"""What 'wtp land A B ...' says: each task's outcome as it comes (its line, or under --json
its document), the worst exit code; and the parent's clean-up of the tasks the landing child
tells it have landed (land_many.py), shared with helpers when several are told at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from ..errors import Refusal, Say, WtpError
from ..exits import err, reported

if TYPE_CHECKING:
    from ..land.handoff import Handoff, Helper
    from ..land.lander import LandResult
    from ..repo import Ctx

Doc = dict[str, object]  # one task's outcome, as 'wtp land --json' prints it
SAID_ABOVE = "see the line above"  # an error whose line was said where it happened (an internal error's)


def error_doc(name: str, e: WtpError) -> Doc:
    """A land's --json document for its error (one task's 'wtp land', or one of several)."""
    msg, _code, state, paths = described(e)
    return {"task": name, "state": state, "commit": None, "attempts": None, "paths": paths, "error": msg}


def say_landed(doc: Doc, messages: list[str], as_json: bool) -> None:
    """A landed task's report: its line and its messages on stdout, or, under --json (whose
    document is stdout's), the messages on stderr."""
    if as_json:
        for m in messages:
            err(m)
        return
    attempts = doc.get("attempts")
    more = f" after {attempts} attempts" if isinstance(attempts, int) and attempts > 1 else ""
    print(f"landed '{doc.get('task')}' at {doc.get('commit')}{more}", flush=True)
    for m in messages:
        print(m, flush=True)


def described(e: Exception) -> tuple[str, int, str, list[str]]:
    """A task's error as reported: (its message, exit code, --json state, paths); an error that
    is not wtp's own is said at once (its line points to a log) and its message is SAID_ABOVE."""
    from ..land.entry import PublishUnknown

    if not isinstance(e, WtpError):
        return SAID_ABOVE, reported(e), "error", []
    state = "unknown" if isinstance(e, PublishUnknown) else error_state(e)
    return e.message, int(e.exit_code), state, list(getattr(e, "paths", []) or [])


class Said:
    """The reporting side: each task's outcome said as it comes (cleaned up first, when it
    landed), the worst exit code and, under --json, each task's document."""

    def __init__(self, c: Ctx, keep: bool, as_json: bool) -> None:
        self.c, self.keep, self.as_json, self.code, self.docs = c, keep, as_json, 0, list[Doc]()
        self.fork: Handoff | None = None  # (the parent of the fork) where helpers come from

    def landed(self, result: LandResult) -> None:
        self._landed(result.to_json(), result.messages)

    def _landed(self, doc: Doc, messages: list[str]) -> None:
        self.docs.append(doc)
        say_landed(doc, messages, self.as_json)

    def failed(self, name: str, e: Exception) -> None:
        self._failed(name, *described(e))

    def _failed(self, name: str, msg: str, code: int, state: str, paths: list[str]) -> None:
        """One task's error: its line (naming the task), its document and its exit code."""
        if msg != SAID_ABOVE:
            err(f"wtp: {msg}" if f"'{name}'" in msg else f"wtp: {name}: {msg}")
        self.code = max(self.code, code)
        self.docs.append({"task": name, "state": state, "commit": None, "attempts": None, "paths": paths, "error": msg})

    def settled(self, name: str, ticket: int | None, seq: int) -> None:
        settle(self.c, self.keep, self, name, ticket, seq)

    def events(self, batch: list[dict[str, object]]) -> None:
        """(the parent of the fork) What the landing child sent, as much as had come: the tasks
        it said settled one after the other are cleaned up together (``settle_all``)."""
        run: list[dict[str, object]] = []
        for data in [*batch, None]:
            if data is not None and data.get("kind") == "settled":
                run.append(data)
                continue
            if run:
                self.settle_all(run)
                run = []
            if data is not None:
                self.event(data)

    def settle_all(self, settled: list[dict[str, object]]) -> None:
        """Tasks of ours that have their outcome at once (published together, or while this
        side cleaned up after others), cleaned up side by side: the first share here, the others
        each in a helper forked for it, whose reports are said after ours, in order.  Removing a
        landed worktree costs some 30 ms, and the command waited for each in turn (issue 28).
        A task a helper did not report (it could not start, or died) is done here."""
        items = [_settled_item(d) for d in settled]
        mine, *rest = _shares(items, _helpers(len(items)))
        helped: list[tuple[list[Settled], Helper | None]] = []
        forked = len(self.fork.helpers) if self.fork is not None else 0
        try:
            for share in rest:  # once one cannot be forked, no more are tried: those shares are ours
                h = None
                if self.fork is not None and (not helped or helped[-1][1] is not None):
                    h = self.fork.helper(partial(_settle_each, self.c, self.keep, share), self.c.root)
                helped.append((share, h))
            for item in mine:
                self.settled(*item)
            for share, h in helped:  # in order: a share whose helper could not start is done here, in its turn
                told = set()
                for data in h.events() if h is not None else []:
                    self.event(data)
                    if data.get("kind") in ("result", "failed"):
                        told.add(data.get("task"))
                for item in share:
                    if item[0] not in told:
                        self.settled(*item)
        except BaseException:
            # Every helper forked here, one a signal came during the fork of included (a second
            # Ctrl-C ends this wait: a helper left dies with us); what it had reported is said.
            for h in self.fork.helpers[forked:] if self.fork is not None else []:
                if not h.ended:
                    for data in h.stop():
                        self.event(data)
            raise

    def event(self, data: dict[str, object]) -> None:
        """(the parent of the fork) What the landing child sent (``Relay``)."""
        kind, name = data.get("kind"), str(data.get("task"))
        if kind == "said":  # (from a helper) a line said while it settled a task
            err(str(data.get("line")))
        elif kind == "settled":
            ticket, seq = data.get("ticket"), data.get("seq")
            self.settled(name, ticket if isinstance(ticket, int) else None, seq if isinstance(seq, int) else -1)
        elif kind == "result" and isinstance(data.get("result"), dict):
            messages = data.get("messages")
            self._landed(data["result"], [str(m) for m in messages] if isinstance(messages, list) else [])  # type: ignore[arg-type]
        elif kind == "failed":
            code, paths = data.get("code"), data.get("paths")
            self._failed(
                name,
                str(data.get("error")),
                code if isinstance(code, int) else 1,
                str(data.get("state")),
                [str(p) for p in paths] if isinstance(paths, list) else [],
            )


class Relay:
    """The landing side in the child of the fork: every report goes to the waiting parent,
    which says it and cleans up while the child goes on landing; and a helper's reports
    (``Said.settle_all``), to the parent that forked it."""

    def __init__(self, send: Callable[[dict[str, object]], None]) -> None:
        self.send = send

    def landed(self, result: LandResult) -> None:
        self.send({"kind": "result", "task": result.task, "result": result.to_json(), "messages": result.messages})

    def failed(self, name: str, e: Exception) -> None:
        msg, code, state, paths = described(e)
        self.send({"kind": "failed", "task": name, "error": msg, "code": code, "state": state, "paths": paths})

    def settled(self, name: str, ticket: int | None, seq: int) -> None:
        self.send({"kind": "settled", "task": name, "ticket": ticket, "seq": seq})


def error_state(e: WtpError) -> str:
    """The ``state`` of a land's --json document for its error (CONTRACT's, and this note's departures)."""
    from ..errors import LandBlocked

    if isinstance(e, LandBlocked):
        return "gate-broken" if e.kind == "gate-broken" else "blocked"
    return "refused"


def emit(names: list[str], docs: list[Doc]) -> None:
    """The command's --json document: one per task, in the order given (``interrupted`` for a
    task the command stopped before it had an outcome)."""
    by = {d["task"]: d for d in docs}
    out = [
        by.get(n) or {"task": n, "state": "interrupted", "commit": None, "attempts": None, "paths": []} for n in names
    ]
    print(json.dumps(out, indent=2), flush=True)


Settled = tuple[str, "int | None", int]  # a task told settled: its name, queue ticket and seq
_MOST_HELPERS = 3


def settle(c: Ctx, keep: bool, said: Said | Relay, name: str, ticket: int | None, seq: int, say: Say = err) -> None:
    """A task of ours has its outcome in the state its conductor left: its result, as a
    waiting lander finishes it (the clean-up of a landed one included), given to ``said``;
    what it says meanwhile (a gate's log tail), to ``say``."""
    from ..land import lander

    t = c.store.read().tasks.get(name)
    try:
        if t is None or t.seq != seq:
            raise Refusal(f"task '{name}' changed while waiting in the land queue: see 'wtp list'")
        said.landed(lander.finish(c, t, ticket, keep, say))
    except Exception as e:  # noqa: BLE001 - one task's: said, and the others go on
        said.failed(name, e)


def _settle_each(c: Ctx, keep: bool, share: list[Settled], send: Callable[[dict[str, object]], None]) -> None:
    """(a helper) Its share of ``Said.settle_all``, each report sent to the parent, and what
    it says before it too: the parent says all of a task's lines together, in order."""
    relay = Relay(send)
    for name, ticket, seq in share:
        settle(c, keep, relay, name, ticket, seq, partial(_said_line, send, name))


def _said_line(send: Callable[[dict[str, object]], None], name: str, line: str) -> None:
    send({"kind": "said", "task": name, "line": line})


def _settled_item(data: dict[str, object]) -> Settled:
    ticket, seq = data.get("ticket"), data.get("seq")
    return str(data.get("task")), ticket if isinstance(ticket, int) else None, seq if isinstance(seq, int) else -1


def _helpers(n: int) -> int:
    """How many ways to share ``n`` clean-ups: one per processor this process may run on
    (this one's included), at most _MOST_HELPERS + 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(n, cpus, _MOST_HELPERS + 1))


def _shares(items: list[Settled], k: int) -> list[list[Settled]]:
    """``items`` in ``k`` runs, in order, as even as can be (the first the longest)."""
    size, extra = divmod(len(items), k)
    out, at = [], 0
    for i in range(k):
        n = size + (1 if i < extra else 0)
        out.append(items[at : at + n])
        at += n
    return out
