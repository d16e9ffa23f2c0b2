"""Gates held through the remote: one deploy to prod at a time across every clone, laptop,
CI runner and cloud agent that shares the remote, with no server of our own.

The gate is a ref on the remote, ``refs/wtp/gates/<name>``: a commit whose message is the
gate's record (its ticket list in arrival order, the last fencing token granted), changed
only by compare-and-swap pushes (``--force-with-lease``), so it is FIFO across machines.
The first ticket, once it has a token, holds the gate.

Leases, clock-free.  The holder renews by bumping its ticket's ``beat`` about every third of
the lease.  A waiter never compares clocks with the holder: it notes, on its own clock, when
it first saw the holder's current beat, and only when that beat has not changed for a
whole lease does it take the holder's ticket out (the next in line then takes the gate with
the next token).  A holder that cannot renew (stopped, partitioned, asleep) must not run on
as if it held the gate: its command runs under a guardian that kills the command's whole
process group ``lease - margin`` seconds after the last acknowledged renewal was *sent*
(not when its acknowledgement arrived: a beat cannot be seen before it is sent, so however
late acknowledgements come, the command stops at least ``margin`` before any waiter can take
over; the guardian is its own process, so this happens even while wtp is frozen), and wtp,
when it runs again and finds its lease gone, exits non-zero with a clear line.  The token
(``WTP_GATE_TOKEN``) only grows, so a deploy script can refuse a holder older than the
newest it has seen.

What this assumes: clocks tick at about the same rate (not that they agree on the time);
the remote applies each compare-and-swap push atomically.  What it does not give: a
guarantee that a command stopped by its guardian had not yet done harm; that is what the
token is for.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
import uuid
from typing import Any, NoReturn

from .. import gitops, guarded, interrupts, locks, records
from ..errors import ExitCode, RemoteTimeout, Say, UsageError, WaitTimeout, WtpError
from ..repo import Ctx
from .identity import clone_id

PREFIX = "refs/wtp/gates/"
MIRROR = "refs/wtp/remote-gates/"
VERSION = 1
MAX_TOKEN = 2**53 - 1  # the largest a JSON reader anywhere takes exactly
LEAVE_WITHIN = 5.0  # seconds to take our ticket out after Ctrl-C, a timeout or an error, at most


class RemoteGateError(WtpError):
    exit_code = ExitCode.USAGE


class LeaseLost(WtpError):
    exit_code = ExitCode.FINDING


def ref_safe(name: str) -> str:
    """A gate name as one ref component: 'deploy:prod' -> 'deploy%3Aprod' (git refuses ':' in
    a ref name, and '.', '/' and '@' have rules of their own there)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_+-") else f"%{ord(c):02X}" for c in name)


def boottime() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (a suspended laptop
    must find its lease expired when it wakes), shared with the command's guardian."""
    return guarded.lease_clock()


class RemoteGate:
    def __init__(self, ctx: Ctx, name: str, remote: str, lease: float, say: Say) -> None:
        self.ctx, self.name, self.remote, self.lease, self.say = ctx, name, remote, lease, say
        self.ref = PREFIX + ref_safe(name)
        self.mirror = MIRROR + ref_safe(name)
        self.ticket: dict[str, Any] | None = None
        self.behind = ""  # the holder we wait behind, as described
        self.token = 0
        self._reported: set[str] = set()
        self.granted_at: float | None = None  # (boottime) when the write that granted us the gate was sent
        self._first_take: float | None = None

    # --- the record on the remote ----------------------------------------------------------

    def read(self) -> tuple[str | None, dict[str, Any]]:
        """(the ref's commit on the remote or None, the record) as the remote has it now."""
        found = gitops.ls_remote(self.ctx.root, self.remote, [self.ref])
        if found is None:
            raise RemoteGateError(
                f"cannot reach remote '{self.remote}' for gate '{self.name}': check the network or the remote's URL, "
                "or use a local gate (without --remote)"
            )
        sha = found.get(self.ref)
        if sha is None:
            return None, {"v": VERSION, "name": self.name, "token": 0, "tickets": []}
        for attempt in range(20):
            if gitops.ref_value(self.ctx.root, self.mirror) == sha or gitops.fetch_refs(
                self.ctx.root, self.remote, [(self.ref, self.mirror)]
            ):
                break
            # Gone since we listed it, or another process of this clone fetching the same ref.
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        else:
            raise RemoteGateError(f"could not fetch gate '{self.name}' from '{self.remote}': try again")
        # What we fetched, which may be newer than what ls-remote listed: the record we read and
        # the value the next compare-and-swap expects.
        have = gitops.ref_value(self.ctx.root, self.mirror)
        if have is None:  # a fetch that succeeded left no ref: not something to retry
            raise RemoteGateError(f"could not fetch gate '{self.name}' from '{self.remote}': try again")
        try:
            text = gitops.commit_message(self.ctx.root, have)
        except WtpError:  # a blob or a tree another machine put there
            text = ""
            self._refuse("it is not a commit")
        return have, self._parse(text)

    def _refuse(self, why: object) -> NoReturn:
        raise RemoteGateError(
            f"the remote gate '{self.name}' ({self.ref} on {self.remote}) is not a wtp gate record ({why}): "
            f"reset it with 'git push {self.remote} :{self.ref}' once nobody is using it"
        ) from None

    def _parse(self, text: str) -> dict[str, Any]:
        """The record, every field checked (another machine wrote it).  A ticket that is not
        one wtp writes is left out, said once, and goes with our next write; a record whose
        token cannot be read is refused: the token only grows, so it is never guessed."""
        try:
            data = records.parse_object(text)
            token = records.integer(data, "token", hi=MAX_TOKEN)
            if not isinstance(data.get("tickets"), list) or len(data["tickets"]) > records.MAX_ITEMS:
                raise records.Malformed("'tickets' must be a list")
        except records.Malformed as e:
            self._refuse(e)
        tickets, bad = [], []
        for n, t in enumerate(data["tickets"], 1):
            try:
                tickets.append(_ticket(t, token, self.lease))
            except records.Malformed as e:
                bad.append((n, e))
        if bad:  # in one line, however many (a record may hold thousands)
            (n, why), where = bad[0], f"remote gate '{self.name}' ({self.ref} on {self.remote})"
            line = (
                f"ignored ticket {n} of {where}: {why}; it is not one wtp writes and goes with the next change to the gate"
                if len(bad) == 1
                else f"ignored {len(bad)} tickets of {where} that wtp does not write (ticket {n}: {why}; and the "
                "others); they go with the next change to the gate"
            )
            if line not in self._reported:
                self._reported.add(line)
                self.say(line)
        return {"v": VERSION, "name": self.name, "token": token, "tickets": tickets}

    def write(self, old: str | None, data: dict[str, Any]) -> bool:
        """Compare-and-swap the record; False when someone else changed it first."""
        new = gitops.data_commit(self.ctx.root, json.dumps(data, sort_keys=True))
        pushed = gitops.push_ref(self.ctx.root, self.remote, self.ref, new, old)
        if pushed.updated:
            # The mirror follows (it held ``old``, just read): the next read then need not fetch.
            gitops.update_ref(self.ctx.root, self.mirror, new, old, "remote gate")
            return True
        if pushed.lost_race or pushed.flag == "!":
            if gitops.remote_unreachable(pushed.reason) or "unable to access" in pushed.reason:
                raise RemoteGateError(f"cannot reach remote '{self.remote}' for gate '{self.name}': {pushed.reason}")
            return False
        raise RemoteGateError(
            f"remote '{self.remote}' refused gate '{self.name}' ({pushed.reason or pushed.summary}): "
            "it must accept pushes to refs/wtp/*"
        )

    def _update(self, change: Any) -> dict[str, Any] | None:
        """Read, change (a function of the record: True to write it, False to leave it), write;
        retried with jitter when another clone wins the race.  The record written, or None."""
        for attempt in range(50):
            sha, data = self.read()
            if not change(data):
                return None
            if self.write(sha, data):
                return data
            time.sleep(random.uniform(0.02, 0.1) * min(attempt + 1, 5))
        raise RemoteGateError(f"gate '{self.name}' on '{self.remote}' kept changing under us: try again")

    # --- holding it ------------------------------------------------------------------------

    def _my_ticket(self, label: str) -> dict[str, Any]:
        h = locks.me()
        return {
            "id": uuid.uuid4().hex,
            "clone": clone_id(self.ctx),
            "host": socket.gethostname(),
            "user": os.environ.get("USER") or os.environ.get("USERNAME") or "",
            "pid": h.pid,
            "cmd": h.cmd,
            "task": label,
            "joined": time.time(),  # shown to people; never compared with another clock
            "lease": self.lease,
            "beat": 0,
        }

    def _reachable(self, deadline: float | None) -> None:
        """An unreachable remote is one line and exit 2 at once; with --timeout, wait for it
        to come back until then (exit 3 after)."""
        said = False
        while True:
            try:
                self.read()
                return
            except (RemoteGateError, RemoteTimeout) as e:
                if deadline is None or not (isinstance(e, RemoteTimeout) or "cannot reach" in e.message):
                    raise
                if time.monotonic() >= deadline:
                    raise WaitTimeout(f"timed out waiting for remote '{self.remote}' to answer: {e.message}") from None
                if not said:
                    self.say(f"{e.message}; trying again until the timeout")
                    said = True
                time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))

    def acquire(self, timeout: float | None, label: str = "", asked: float | None = None) -> int:
        """Queue on the remote and wait for our turn; the fencing token we were granted.  With
        ``timeout``, every network call of the wait ends by then too (exit 3): joining the
        queue, reading it, taking the gate (README: --timeout bounds the wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with gitops.network_deadline(timeout) if timeout is not None else contextlib.nullcontext():
                return self._wait_turn(deadline, label, asked or timeout)
        except RemoteTimeout as e:
            self.release(LEAVE_WITHIN)
            if deadline is not None and time.monotonic() >= deadline:
                # Cut in a look at the queue while waiting behind a holder: said as the wait's end.
                why = f", {self.behind}" if self.behind else f": {e.message}"
                raise WaitTimeout(
                    f"timed out after {asked or timeout:g}s waiting for remote gate '{self.name}'{why}"
                ) from None
            raise
        except BaseException:
            self.release(LEAVE_WITHIN)  # outside the deadline above: it has run out, or Ctrl-C came
            raise

    def _wait_turn(self, deadline: float | None, label: str, shown: float | None) -> int:
        """Join the queue and wait in it (``shown``: the --timeout the user gave, for its line)."""
        self._reachable(deadline)
        mine = self._my_ticket(label)
        self.ticket = mine  # before the push: one that reached the remote unanswered is still taken out
        self._update(lambda d: d["tickets"].append(mine) or True)
        seen: dict[tuple[str, int, int], float] = {}  # (ticket id, beat, token) -> when we first saw it
        last = ""
        while True:
            sha, data = self.read()
            tickets = data["tickets"]
            ids = [t["id"] for t in tickets]
            if mine["id"] not in ids:  # taken out as dead (we were stopped too long): queue again
                self.say(f"our ticket for gate '{self.name}' was dropped: queueing again")
                self._update(lambda d: d["tickets"].append(mine) or True)
                continue
            head = tickets[0]
            if head["id"] == mine["id"]:
                if head.get("token"):  # granted by a write of ours whose answer we missed
                    self.token = int(head["token"])
                    self.granted_at = self._first_take if self._first_take is not None else boottime()
                    return self.token
                granted = self._take(sha, data)
                if granted:
                    return granted
                continue
            key = (head["id"], int(head.get("beat", 0)), int(head.get("token") or 0))
            first = seen.setdefault(key, time.monotonic())
            if time.monotonic() - first > float(head.get("lease") or self.lease):
                self._drop(head)
                continue
            self.behind = describe(head)  # who we wait for, to say if the deadline cuts a look short
            msg = f"waiting for remote gate '{self.name}' (place {ids.index(mine['id']) + 1}): {describe(head)}"
            if msg != last:
                self.say(msg)
                last = msg
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"timed out after {shown:g}s waiting for remote gate '{self.name}', {describe(head)}")
            time.sleep(0.3 if ids.index(mine["id"]) == 1 else 1.0)

    def _take(self, sha: str | None, data: dict[str, Any]) -> int:
        head = data["tickets"][0]
        if data["token"] >= MAX_TOKEN:  # never written by a wtp: 2^53 grants
            self._refuse(f"its token {data['token']} cannot grow")
        data["token"] = int(data["token"]) + 1
        head["token"], head["beat"] = data["token"], 0
        sent = boottime()  # the lease runs from when the grant was sent, not from its answer
        if self._first_take is None:
            self._first_take = sent
        if self.write(sha, data):
            self.granted_at = sent
            self.token = data["token"]
            assert self.ticket is not None
            self.ticket.update(token=self.token, beat=0)
            return self.token
        return 0

    def _drop(self, stale: dict[str, Any]) -> None:
        """Take out a ticket whose owner stopped renewing it for a whole lease."""

        def change(d: dict[str, Any]) -> bool:
            if (
                not d["tickets"]
                or d["tickets"][0]["id"] != stale["id"]
                or d["tickets"][0].get("beat") != stale.get("beat")
            ):
                return False  # it moved meanwhile: alive after all
            d["tickets"].pop(0)
            return True

        if self._update(change) is not None:
            what = "holder" if stale.get("token") else "first in line"
            self.say(
                f"remote gate '{self.name}': its {what} ({describe(stale)}) did not renew for a whole lease: dropped"
            )

    def renew(self) -> bool:
        """Bump our beat; False when we no longer hold the gate (someone took it over)."""
        assert self.ticket is not None
        lost = False

        def change(d: dict[str, Any]) -> bool:
            nonlocal lost
            head = d["tickets"][0] if d["tickets"] else None
            if head is None or head["id"] != self.ticket["id"] or head.get("token") != self.token:  # type: ignore[index]
                lost = True
                return False
            head["beat"] = int(head.get("beat", 0)) + 1
            return True

        self._update(change)
        return not lost

    def release(self, within: float | None = None) -> None:
        """Leave the gate (or its queue); ``within``: in at most so many seconds (after Ctrl-C,
        a timeout or an error, someone waits for wtp to end).  Said while it takes more than a
        moment, and when it could not be done: a ticket left behind expires."""
        if self.ticket is None:
            return
        mine = self.ticket["id"]
        self.ticket = None
        limit = f" (for up to {within:g}s)" if within is not None else ""
        note = threading.Timer(1.0, self.say, [f"removing our ticket from remote gate '{self.name}'{limit}"])
        note.daemon = True
        interrupts.start_quiet(note)
        try:
            with gitops.network_deadline(within) if within is not None else contextlib.nullcontext():
                self._update(lambda d: _remove(d, mine))
        except (WtpError, KeyboardInterrupt) as e:
            note.cancel()
            why = (
                "interrupted"
                if isinstance(e, KeyboardInterrupt)
                else f"'{self.remote}' did not answer in time"
                if isinstance(e, RemoteTimeout)
                else e.message
            )
            self.say(
                f"left our ticket in remote gate '{self.name}' on '{self.remote}' ({why}): it expires, and the next "
                f"caller drops it, once it has stood first in line for a lease ({self.lease:g}s) without renewal"
            )
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            note.cancel()

    def status(self) -> dict[str, Any]:
        sha, data = self.read()
        return {"gate": self.name, "remote": self.remote, "token": data["token"], "tickets": data["tickets"]}


def _ticket(t: object, token: int, lease: float) -> dict[str, Any]:
    """A ticket as read from the remote, each field checked and typed (README: remote gates)."""
    if not isinstance(t, dict):
        raise records.Malformed("it is not an object")
    shown = {k: records.text(t, k, required=False, empty=True) for k in ("clone", "host", "user", "cmd", "task")}
    return {
        **shown,
        "id": records.text(t, "id"),
        "pid": records.integer(t, "pid", default=0),
        "joined": records.number(t, "joined", 0, 1e11, default=0),
        "lease": records.number(t, "lease", 3, 3600, default=lease),
        "beat": records.integer(t, "beat", default=0),
        "token": records.integer(t, "token", 0, token, default=0),
    }


def _remove(d: dict[str, Any], ticket_id: str) -> bool:
    before = len(d["tickets"])
    d["tickets"] = [t for t in d["tickets"] if t["id"] != ticket_id]
    return len(d["tickets"]) != before


def describe(t: dict[str, Any]) -> str:
    """A ticket in one line: its text, which another machine wrote, with control characters escaped."""
    shown = {k: records.shown(str(t.get(k) or "")) for k in ("task", "host", "clone", "cmd")}
    who = f"task '{shown['task']}' " if shown["task"] else ""
    state = f"holds it (token {t['token']})" if t.get("token") else "is first in line"
    return f"{who}pid {t.get('pid')} on {shown['host']} (clone {shown['clone']}, {shown['cmd']}) {state}"


def remote_for(ctx: Ctx, name: str, asked: bool) -> str | None:
    """The remote a gate is held through: asked with --remote, or configured ([gate] remote
    globs) when a remote exists; None for a local gate."""
    from ..globs import glob_matches

    configured = any(glob_matches(g, name) or g == name for g in ctx.cfg.gate_remote)
    if not asked and not configured:
        return None
    remote = ctx.remote()
    if remote is None:
        if asked:
            raise UsageError(
                f"gate '{name}' --remote needs a remote, and '{ctx.cfg.remote or 'none'}' is not one here: "
                "add it ('git remote add ...') or set remote in .wtp.toml"
            )
        return None
    return remote
