"""Named gates: FIFO mutual exclusion across processes for shared state beyond files
(a deploy target, a database).  The land push queue is a gate too.

A gate is a folder under the state dir with a ticket list (arrival order, each
ticket naming its holder) and a hold lock (flock).  The first live ticket takes
the hold lock and runs; tickets of dead processes are skipped, and the kernel
drops the hold lock of a killed holder, so nothing ever needs a manual unlock.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from . import atomic, interrupts, locks, procs
from .errors import Refusal, Say, UsageError, WaitTimeout
from .names import shown
from .state import Store

_GATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


def validate_gate(name: str) -> None:
    if not _GATE_NAME.fullmatch(name):
        raise UsageError(
            f"invalid gate name '{shown(name)}': use up to 100 letters, digits and . _ : / @ + -, "
            "starting with a letter or digit (like 'deploy:prod')"
        )


def _well_formed(data: object) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("tickets"), list) or not isinstance(data.get("seq"), int):
        return False
    for t in data["tickets"]:
        if not isinstance(t, dict) or not isinstance(t.get("seq"), int) or not isinstance(t.get("label", ""), str):
            return False
        try:
            if locks.Holder.from_json(t.get("holder")) is None:
                return False
        except ValueError:
            return False
    return True


_AGE = re.compile(r", for \d+s")  # a wait line is said again only when more than this changed
# A ticket may refuse to join the ones in the queue (the live ones, looked at under the ticket
# lock, so two joining at once see each other): the line saying why, or None to join.
Refuse = Callable[[list[dict[str, Any]]], "str | None"]


class JoinRefused(Refusal):
    """A ticket's ``refuse`` said it does not join: nothing of the queue changed."""


def _refused(refuse: Refuse | None, tickets: list[dict[str, Any]]) -> None:
    why = refuse(tickets) if refuse is not None else None
    if why:
        raise JoinRefused(why)


TASK_POLL = 0.2  # seconds between looks at the registry while a task holds the gate's resource
RELOOK = 0.5  # a waiter whose ticket file did not change reads it again after this long (dead holders)


def file_sig(path: os.PathLike[str] | str) -> tuple[int, int, int, int]:
    """What changes when a file that is replaced whole is written: inode, times, size."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class OnChange:
    """``fn()``, asked again only when ``path`` (a file replaced whole) changed, and at least
    every ``every`` seconds: a rewrite within the clock's tick that reuses a freed inode
    would look unchanged.  What waiters poll many times a second costs a stat per look."""

    def __init__(self, path: os.PathLike[str] | str, fn: Callable[[], Any], every: float = 2.0) -> None:
        self.path, self.fn, self.every = path, fn, every
        self.seen: tuple[int, int, int, int] | None = None
        self.read_at = 0.0
        self.value: Any = None

    def __call__(self) -> Any:
        sig = file_sig(self.path)
        if sig != self.seen or time.monotonic() - self.read_at > self.every:
            self.seen, self.read_at = sig, time.monotonic()
            self.value = self.fn()
        return self.value


class Use(NamedTuple):
    """A live task that declared (``--use``) a resource of a gate's family."""

    task: str
    resource: str

    def describe(self) -> str:
        return f"task '{self.task}' holds {self.resource} (--use) until it lands or is removed"


def live_other(holder: object) -> bool:
    """A live process other than this one (a live holder with our pid is this process; no
    holder record of our own is made for asking, which would start a heartbeat)."""
    try:
        h = locks.Holder.from_json(holder)
    except ValueError:
        return False
    return h is not None and h.pid != os.getpid() and locks.is_alive(h)


def _same_process(holder: object, h: locks.Holder) -> bool:
    try:
        other = locks.Holder.from_json(holder)
    except ValueError:
        return False
    return other is not None and (other.pid, other.start, other.boot, other.pidns) == (h.pid, h.start, h.boot, h.pidns)


def _server(state: dict[str, Any]) -> tuple[locks.Holder, str] | None:
    """The process serving the queue's handed tickets and its log; None when there is none
    that can take one now: it must run here (this machine, this pid namespace: a process in
    another sandbox would land with its environment, and be gone with it) and not be stopped.
    A record that is not what wtp writes is ignored; the next server replaces it."""
    rec = state.get("server")
    if not isinstance(rec, dict) or not isinstance(rec.get("log"), str):
        return None
    try:
        holder = locks.Holder.from_json(rec.get("holder"))
    except ValueError:
        return None
    if holder is None or not holder.local() or not locks.is_alive(holder) or procs.process_stopped(holder.pid):
        return None
    return holder, rec["log"]


def _held_back(ticket: dict[str, Any], users: list[Use]) -> Use | None:
    """The task that holds a ticket back: one holding the resource other than the ticket's own."""
    return next((u for u in users if u.task != ticket.get("label")), None)


class TaskUses:
    """The live tasks that declared a gate's resource or one of its family, read from the
    registry without its lock (the file is replaced whole, so a read is never torn) and read
    again only when the file changed: a stat per look."""

    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name
        self._uses = OnChange(store.file, self._read)

    def _read(self) -> list[Use]:
        from .schedule import resources_collide

        live = self.store.read().live()
        return [Use(t.name, r) for t in live for r in t.use if resources_collide(r, self.name)]

    def __call__(self) -> list[Use]:
        uses: list[Use] = self._uses()
        return uses


def wait_out_uses(uses: TaskUses, label: str, title: str, timeout: float | None, say: Say) -> None:
    """Wait while a live task other than ``label`` declared the resource (for a gate held
    through the remote, which has no local tickets to hold back); WaitTimeout after
    ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    said = ""
    while (blocker := _held_back({"label": label}, uses())) is not None:
        why = blocker.describe()
        if why != said:
            say(f"waiting for {title}: {why}")
            said = why
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {title}: {why}")
        time.sleep(TASK_POLL)


class Gate:
    def __init__(self, store: Store, name: str, title: str | None = None) -> None:
        self.name = name
        self.title = title or name
        import hashlib  # (here: a start imports this module and makes no gate; hashlib's import is ~2.5 ms)

        key = hashlib.sha1(name.encode()).hexdigest()[:16]
        self.dir = store.subdir("gates") / key
        if self.dir.is_symlink():
            raise UsageError(f"{self.dir} is a symlink: remove it")
        self.dir.mkdir(exist_ok=True)
        self.file = self.dir / "tickets.json"
        self.meta = locks.Lock(self.dir / "tickets.lock", what=f"the ticket lock of {self.title}")
        self.hold = locks.Lock(self.dir / "hold.lock", what=self.title)
        self.seq: int | None = None

    # -- the ticket list, always read and written under the meta lock --
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(atomic.read_regular(self.file))
        except (OSError, ValueError):
            data = None  # a missing or torn ticket file only loses waiters' places, never a hold
        except RecursionError:  # nested past reason: not ours, so set aside as below
            data = []
        if data is not None and not _well_formed(data):
            # Valid JSON of the wrong shape: set it aside (never deleted) so it cannot wedge the gate.
            try:
                os.replace(self.file, self.dir / f"tickets.json.corrupt-{os.getpid()}-{time.monotonic_ns()}")
            except OSError:
                pass
            data = None
        return data if data is not None else {"version": 1, "name": self.name, "seq": 0, "tickets": []}

    def _write(self, data: dict[str, Any]) -> None:
        # No fsync: after a crash every holder of a ticket is gone, and the next reader prunes them.
        atomic.replace(self.file, json.dumps(data).encode(), durable=False)

    @staticmethod
    def _prune(data: dict[str, Any]) -> bool:
        before = len(data["tickets"])
        data["tickets"] = [t for t in data["tickets"] if locks.is_alive(locks.Holder.from_json(t["holder"]))]
        return len(data["tickets"]) != before

    def waiting(self, label: str) -> bool:
        """A live ticket of ``label`` held by another process is in the list: read without the
        ticket lock (the file is replaced whole), for readers that must never wait, as the
        agent hook."""
        try:
            data = json.loads(atomic.read_regular(self.file))
            found = [k for k in data["tickets"] if isinstance(k, dict) and k.get("label") == label]
            return any(live_other(k.get("holder")) for k in found)
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            return False

    def tickets(self) -> list[dict[str, Any]]:
        with self.meta:
            data = self._read()
            if self._prune(data):
                self._write(data)
            return list(data["tickets"])

    def acquire(
        self,
        timeout: float | None = None,
        say: Say | None = None,
        label: str = "",
        data: dict[str, Any] | None = None,
        until: Callable[[], bool] | None = None,
        tasks: Callable[[], list[Use]] | None = None,
        adopt: int | None = None,
        bear_stopped: bool = False,
        refuse: Refuse | None = None,
    ) -> bool:
        """Join the queue and wait for our turn (True); WaitTimeout (exit 3) after ``timeout``
        seconds.  ``data`` rides on the ticket for whoever holds the gate to read; ``until``:
        stop waiting, leave the queue and return False once it is true (the holder did our
        work for us: a conductor landed our task in its stack).  ``tasks``: the live tasks that
        declared this gate's resource (``--use``); a ticket waits while one other than its own
        task (its label) does, and steps aside meanwhile for the tickets that may run.
        ``adopt``: the seq of a ticket ``enqueue`` put in the queue for this process (its
        place is kept; gone meanwhile, a new ticket joins at the end).  The holder waited for,
        stopped (Ctrl-Z), is said so in the wait line and given up on as a lock's holder is
        (locks.StoppedHolder), unless ``bear_stopped``: a background lander, which nobody waits
        on, goes on once the holder is resumed or ended."""
        me = locks.me()
        ticket = {"seq": 0, "holder": me.to_json(), "label": label, "granted": None, **({"data": data} if data else {})}
        with self.meta:
            state = self._read()
            self._prune(state)
            given = next((t for t in state["tickets"] if adopt is not None and t["seq"] == adopt), None)
            if given is not None:  # put in the queue for us (enqueue): ours from now on
                given["holder"] = ticket["holder"]
                ticket = dict(given)
                self.seq = adopt
            else:
                _refused(refuse, state["tickets"])
                state["seq"] += 1
                self.seq = ticket["seq"] = state["seq"]
                state["tickets"].append(ticket)
            self._write(state)
        deadline = None if timeout is None else time.monotonic() + timeout
        last = ""
        looked = 0.0
        seen: tuple[int, int, int, int] | None = None  # the ticket file as last read, while not first
        read_at = 0.0
        place = 0
        stopped = locks.StoppedHolder(self.title)
        try:
            while True:
                interrupts.check()  # a lander's Ctrl-C a finalizer swallowed still withdraws it
                if until is not None and time.monotonic() - looked > 0.05:
                    looked = time.monotonic()
                    if until():
                        self._leave()
                        return False
                # Nothing to decide while the ticket list is as last read, when not first in line
                # (a dead holder is looked for every RELOOK seconds): a stat, not the lock and a read.
                if (
                    tasks is None
                    and seen is not None
                    and seen == file_sig(self.file)
                    and time.monotonic() - read_at < RELOOK
                    and (deadline is None or time.monotonic() < deadline)
                ):
                    time.sleep(0.005 if place <= 1 else 0.05)
                    continue
                users = tasks() if tasks is not None else []  # outside the ticket lock: it reads a file
                read_at = time.monotonic()
                with self.meta:
                    data = self._read()
                    changed = self._prune(data)
                    mine = [t for t in data["tickets"] if t["seq"] == self.seq]
                    if not mine:  # our ticket was lost (a torn file): queue again at the end
                        data["seq"] += 1
                        self.seq = ticket["seq"] = data["seq"]
                        data["tickets"].append(dict(ticket))
                        changed = True
                    # Every waiter judges every ticket by the same registry, so a ticket held back
                    # by a task never stands in the way of that task's own gate run (no deadlock).
                    free = [t for t in data["tickets"] if not _held_back(t, users)]
                    first = free[0] if free else None
                    if first is not None and first["seq"] == self.seq and self.hold.try_acquire():
                        first["granted"] = time.time()
                        self._write(data)
                        return True
                    if changed:
                        self._write(data)
                    # First in line, we look again at once: the hold is let go after the list changes.
                    seen = None if first is not None and first["seq"] == self.seq else file_sig(self.file)
                place = next(i for i, t in enumerate(data["tickets"]) if t["seq"] == self.seq)
                blocker = _held_back(ticket, users)
                who, holder = self._holding(data, first) if blocker is None else ("", None)
                why = blocker.describe() if blocker else f"held by {who}"
                if say is not None:
                    msg = f"waiting for {self.title} (place {place + 1}): {why}"
                    if _AGE.sub("", msg) != last:  # said again when the holder, or whether it is stopped, changes
                        say(msg)
                        last = _AGE.sub("", msg)
                if not bear_stopped:
                    stopped.check(holder, who)
                if deadline is not None and time.monotonic() >= deadline:
                    sep = ": " if blocker else ", "
                    raise WaitTimeout(f"timed out after {timeout:g}s waiting for {self.title}{sep}{why}")
                # The next in line looks often, so the hand-over costs ms; the rest less often.  A
                # ticket held back by a task waits for a registry write (a land, an rm): no hurry.
                time.sleep(TASK_POLL if blocker else 0.005 if place <= 1 else 0.05)
        except BaseException:
            self._leave()
            raise

    def enqueue(
        self, label: str, data: dict[str, Any], *, to_server: bool = False, refuse: Refuse | None = None
    ) -> tuple[int, int, str | None]:
        """Put a ticket in the queue now: (its seq, its place, the log of the server that took
        it).  ``to_server``: when a server (a background process serving tickets, see
        ``hand_to``) runs, the ticket is its own at once and that log is returned; otherwise,
        and without ``to_server``, this process holds it until ``hand_to`` gives it to the
        process that will wait on it (``acquire(adopt=seq)``) and the log is None."""
        with self.meta:
            state = self._read()
            self._prune(state)
            _refused(refuse, state["tickets"])
            server = _server(state) if to_server else None
            state["seq"] += 1
            ticket = {
                "seq": state["seq"],
                "holder": server[0].to_json() if server else locks.me().to_json(),
                "label": label,
                "granted": None,
                "data": data,
            }
            state["tickets"].append(ticket)
            self._write(state)
            return state["seq"], len(state["tickets"]), server[1] if server else None

    def hand_to(self, seq: int, pid: int, *, server_log: str | None = None) -> bool:
        """Give ticket ``seq`` to the (just started) process ``pid``: its life keeps the ticket.
        ``server_log``: that process serves the tickets given to it one after another (its
        output in that log) and, unless a server runs already, becomes the one ``enqueue``
        gives tickets to from now on, until it finds none left (``next_served``)."""
        holder = locks.holder_of(pid)
        with self.meta:
            state = self._read()
            for t in state["tickets"]:
                if t["seq"] == seq and locks.Holder.from_json(t["holder"]) == locks.me():
                    t["holder"] = holder.to_json()
                    if server_log is not None and _server(state) is None:
                        state["server"] = {"holder": holder.to_json(), "log": server_log}
                    self._write(state)
                    return True
        return False

    def next_served(self, stop: bool = True) -> tuple[int, dict[str, Any], str] | None:
        """For a server: the first ticket this process holds, (seq, its data, its label); None when it
        holds none, and then, with ``stop``, it no longer takes tickets (in the same look,
        so a ticket is never given to a server that has stopped looking)."""
        me = locks.me()
        with self.meta:
            state = self._read()
            self._prune(state)
            mine = [t for t in state["tickets"] if _same_process(t["holder"], me)]
            if mine:
                data, label = mine[0].get("data"), mine[0].get("label", "")
                return mine[0]["seq"], data if isinstance(data, dict) else {}, label  # {}: refused by the caller
            server = _server(state)
            if stop and server is not None and _same_process(server[0].to_json(), me):
                del state["server"]
                self._write(state)
            return None

    def drop(self, seq: int) -> None:
        """Take ticket ``seq`` out of the queue (a served ticket whose land could not start)."""
        with self.meta:
            state = self._read()
            kept = [t for t in state["tickets"] if t["seq"] != seq]
            if len(kept) != len(state["tickets"]):
                state["tickets"] = kept
                self._write(state)

    def _holding(self, data: dict[str, Any], first: dict[str, Any] | None) -> tuple[str, locks.Holder | None]:
        """Whom a waiter waits for, in words, and its holder record: the ticket holding the gate,
        else the first in line.  When that is our own ticket, the gate is held by a process whose
        ticket was lost (a torn ticket file): the hold lock's record names it, never us."""
        head = next((t for t in data["tickets"] if t.get("granted")), first or data["tickets"][0])
        if head["seq"] != self.seq:
            return self.describe(head), locks.Holder.from_json(head["holder"])
        h = self.hold.holder()
        return (h.describe(), h) if h is not None else ("another process", None)

    @staticmethod
    def describe(ticket: dict[str, Any]) -> str:
        h = locks.Holder.from_json(ticket["holder"])
        label = f"task '{ticket['label']}', " if ticket.get("label") else ""
        if h is None:
            return "nobody"
        granted = ticket.get("granted")
        return label + h._replace(since=granted if isinstance(granted, (int, float)) else h.since).describe()

    def _leave(self) -> None:
        with self.meta:
            data = self._read()
            data["tickets"] = [t for t in data["tickets"] if t["seq"] != self.seq]
            self._prune(data)
            self._write(data)

    def release(self) -> None:
        self._leave()
        self.hold.release()
