"""Running a command holding a remote gate (``wtp gate NAME --remote -- CMD``): its lease
renewed by a thread of its own while the command runs under a guardian (guarded.Guarded),
which stops the command's process group once the lease may have run out (gates.py says why
that is safe without comparing clocks)."""

from __future__ import annotations

import contextvars
import signal
import sys
import threading
from typing import Any

from .. import gitops, interrupts
from ..errors import Say, WtpError
from ..repo import Ctx
from .gates import LEAVE_WITHIN, LeaseLost, RemoteGate, boottime


def run_holding(
    ctx: Ctx,
    name: str,
    remote: str,
    cmd: list[str],
    cwd: Any,
    env: dict[str, str],
    timeout: float | None,
    label: str,
    say: Say,
    asked: float | None = None,
) -> int:
    """``wtp gate NAME --remote -- CMD``: CMD runs holding the remote gate, its lease renewed
    while it runs; a lost lease stops CMD's process group and ends with LeaseLost.  ``timeout``:
    what is left of ``asked`` (--timeout) after the wait for this clone's tasks."""
    from ..guarded import Guarded

    lease = ctx.cfg.gate_lease
    gate = RemoteGate(ctx, name, remote, lease, say)
    token = gate.acquire(timeout, label, asked)
    margin = max(1.0, lease / 6)
    lost: list[str] = []
    stop = threading.Event()
    run: Guarded | None = None
    keeper: threading.Thread | None = None
    granted = gate.granted_at if gate.granted_at is not None else boottime()
    # When the last acknowledged renewal was sent.  A waiter cannot see a beat before it was
    # sent, and takes over only a whole lease after it first saw the last one; the command is
    # stopped lease - margin after the send, however late the acknowledgement came (README).
    renewed = [granted]

    def expired() -> bool:
        late = boottime() - renewed[0]
        if late > lease - margin and not lost:
            lost.append(f"could not renew its lease for {late:.0f}s (lease {lease:g}s)")
        return bool(lost)

    try:
        say(f"holding remote gate '{name}' on '{remote}' (token {token}, lease {lease:g}s)")
        env = {**env, "WTP_GATE_TOKEN": str(token), "WTP_GATE": name}
        run = Guarded(cmd, cwd, env, lease=lease - margin, since=granted, terminal=True)
        guarded = run

        def keep() -> None:
            last = granted  # renewals go out every third of the lease, counted from each send
            while not stop.wait(max(0.0, last + lease / 3 - boottime())):
                started = last = boottime()
                if expired():
                    break
                try:
                    # A renewal that cannot be sent before the lease runs out is of no use: stop it then.
                    with gitops.network_deadline(max(1.0, renewed[0] + lease - margin - boottime())):
                        kept = gate.renew()
                    if not kept:
                        lost.append("another holder took it over (our lease had expired)")
                        break
                    renewed[0] = started  # sent no sooner than this, however late the answer came
                    guarded.feed(started)
                except WtpError:
                    continue  # the remote is unreachable for now: try again, until the lease runs out
            if lost:
                guarded.stop()

        # In this command's context: [remote] timeout is a context variable, and a new thread
        # would start without it.
        keeper = threading.Thread(target=contextvars.copy_context().run, args=(keep,), name="wtp-lease", daemon=True)
        interrupts.start_quiet(keeper, interrupts.INTERRUPTS)  # (its git commands inherit its mask)
        code = run.wait()
    finally:
        stop.set()
        if keeper is not None:
            keeper.join(timeout=5)
        expired()  # a command the guardian stopped while we were frozen: we find out now
        # Left early (Ctrl-C, or a SIGTERM taken as one, before the wait began too): the
        # command's group ended before its ticket goes, never left running past its gate.
        hurry = sys.exc_info()[0] is not None or (run is not None and run.proc.returncode == -signal.SIGINT)
        if run is not None:
            run.end()
            if run.lease_expired and not lost:
                lost.append(
                    f"its lease was not renewed within {lease - margin:g}s, so its guardian stopped the command"
                )
        if not lost:
            # Ctrl-C (typed at the terminal, it reaches the command alone): someone waits for
            # wtp to end, so the ticket's removal is bounded; otherwise it has [remote] timeout.
            gate.release(LEAVE_WITHIN if hurry else None)
    if lost:
        raise LeaseLost(
            f"lost remote gate '{name}' while its command ran: {lost[0]}; the command's process group was stopped "
            f"(token {token} is stale now: a deploy script that checks WTP_GATE_TOKEN refuses it)"
        )
    return code
