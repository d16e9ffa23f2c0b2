"""Named gates: FIFO mutual exclusion across processes for shared state beyond files
(a deploy target, a database).  The land push queue is a gate too.

A gate is a folder under the state dir with a ticket list (arrival order, each
ticket naming its holder) and a hold lock (flock).  The first live ticket takes
the hold lock and runs; tickets of dead processes are skipped, and the kernel
drops the hold lock of a killed holder, so nothing ever needs a manual unlock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

from . import locks
from .errors import Say, UsageError, WaitTimeout
from .state import Store

_GATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


def validate_gate(name: str) -> None:
    if not _GATE_NAME.fullmatch(name):
        raise UsageError(
            f"invalid gate name {name!r}: use up to 100 letters, digits and . _ : / @ + -, "
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


class Gate:
    def __init__(self, store: Store, name: str, title: str | None = None) -> None:
        self.name = name
        self.title = title or name
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
            data = json.loads(self.file.read_text())
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
        tmp = self.dir / f".tickets-{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.file)

    @staticmethod
    def _prune(data: dict[str, Any]) -> bool:
        before = len(data["tickets"])
        data["tickets"] = [t for t in data["tickets"] if locks.is_alive(locks.Holder.from_json(t["holder"]))]
        return len(data["tickets"]) != before

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
    ) -> bool:
        """Join the queue and wait for our turn (True); WaitTimeout (exit 3) after ``timeout``
        seconds.  ``data`` rides on the ticket for whoever holds the gate to read; ``until``:
        stop waiting, leave the queue and return False once it is true (the holder did our
        work for us: a conductor landed our task in its stack)."""
        me = locks.me()
        ticket = {"seq": 0, "holder": me.to_json(), "label": label, "granted": None, **({"data": data} if data else {})}
        with self.meta:
            state = self._read()
            self._prune(state)
            state["seq"] += 1
            self.seq = ticket["seq"] = state["seq"]
            state["tickets"].append(ticket)
            self._write(state)
        deadline = None if timeout is None else time.monotonic() + timeout
        last = ""
        looked = 0.0
        try:
            while True:
                if until is not None and time.monotonic() - looked > 0.05:
                    looked = time.monotonic()
                    if until():
                        self._leave()
                        return False
                with self.meta:
                    data = self._read()
                    changed = self._prune(data)
                    mine = [t for t in data["tickets"] if t["seq"] == self.seq]
                    if not mine:  # our ticket was lost (a torn file): queue again at the end
                        data["seq"] += 1
                        self.seq = ticket["seq"] = data["seq"]
                        data["tickets"].append(dict(ticket))
                        changed = True
                    first = data["tickets"][0]
                    if first["seq"] == self.seq and self.hold.try_acquire():
                        first["granted"] = time.time()
                        self._write(data)
                        return True
                    if changed:
                        self._write(data)
                place = next(i for i, t in enumerate(data["tickets"]) if t["seq"] == self.seq)
                if say is not None:
                    head = data["tickets"][0]
                    msg = f"waiting for {self.title} (place {place + 1}): held by {self.describe(head)}"
                    if msg.split(", for")[0] != last:
                        say(msg)
                        last = msg.split(", for")[0]
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(
                        f"timed out after {timeout:g}s waiting for {self.title}, held by {self.describe(data['tickets'][0])}"
                    )
                # The next in line looks often, so the hand-over costs ms; the rest less often.
                time.sleep(0.005 if place <= 1 else 0.05)
        except BaseException:
            self._leave()
            raise

    @staticmethod
    def describe(ticket: dict[str, Any]) -> str:
        h = locks.Holder.from_json(ticket["holder"])
        label = f"task '{ticket['label']}', " if ticket.get("label") else ""
        if h is None:
            return "nobody"
        since = ticket.get("granted") or h.since
        return f"{label}pid {h.pid} ({h.cmd}), for {max(0, int(time.time() - since))}s"

    def _leave(self) -> None:
        with self.meta:
            data = self._read()
            data["tickets"] = [t for t in data["tickets"] if t["seq"] != self.seq]
            self._prune(data)
            self._write(data)

    def release(self) -> None:
        self._leave()
        self.hold.release()
