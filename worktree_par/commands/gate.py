"""'wtp gate': running a command holding a named gate, and who holds it."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from .. import atomic
from ..errors import ExitCode, UsageError
from ..exits import err, here, open_repo
from .common import after_dashes, bound_waits, emit, task_here

if TYPE_CHECKING:
    from pathlib import Path

    from ..locks import Holder
    from ..repo import Ctx


def gate_status(where: str | None, resource: str, as_json: bool = True, remote: bool = False) -> int:
    """Who holds gate ``resource`` and who waits, in order (a remote gate: from the remote)."""
    from .. import gates
    from ..locks import Holder
    from ..remote import gates as remote_gates

    gates.validate_gate(resource)
    c = open_repo(where)
    through = remote_gates.remote_for(c, resource, remote)
    if through is not None:
        st = remote_gates.RemoteGate(c, resource, through, c.cfg.gate_lease, err).status()
        if as_json:
            emit(st)
        elif not st["tickets"]:
            print(f"nobody holds or waits for remote gate '{resource}' on '{through}' (last token {st['token']})")
        else:
            for n, t in enumerate(st["tickets"], 1):
                print(f"{n}. {remote_gates.describe(t)}; lease {t.get('lease')}s, beat {t.get('beat')}")
        return 0
    rows = []
    for place, ticket in enumerate(gates.Gate(c.store, resource).tickets(), 1):
        h = Holder.from_json(ticket["holder"])
        rows.append(
            {
                "place": place,
                "task": ticket.get("label") or None,
                "pid": h.pid if h else None,
                "command": h.cmd if h else None,
                "holds": bool(ticket.get("granted")),
                "since": ticket.get("granted"),
            }
        )
    uses = gates.TaskUses(c.store, resource)()
    if as_json:
        # "tasks": the live tasks whose --use holds it (only when there are some: the shape stays as before)
        emit({"gate": resource, "tickets": rows, **({"tasks": [u._asdict() for u in uses]} if uses else {})})
        return 0
    for u in uses:  # tasks that declared it hold it too (one meaning for a resource)
        print(u.describe())
    if not rows and not uses:
        print(f"nobody holds or waits for gate '{resource}'")
    for r in rows:
        who = f"task '{r['task']}', " if r["task"] else ""
        print(f"{r['place']}. {'holds' if r['holds'] else 'waits'}: {who}pid {r['pid']} ({r['command']})")
    return 0


def gate(
    where: str | None,
    resource: str,
    cmd: list[str],
    timeout: float | None = None,
    remote: bool = False,
    as_json: bool = False,
) -> int:
    from .. import gates
    from ..interrupts import term_as_ctrl_c

    if as_json:  # the command's output is its own: only --status has a document to print
        raise UsageError(f"--json goes with --status: 'wtp gate {resource} --status --json'")
    cmd = after_dashes(cmd)
    gates.validate_gate(resource)
    if not _runnable(cmd[0]):  # found out before waiting for a turn, as 'wtp run' says it
        err(f"wtp: command not found: {cmd[0]}")
        return ExitCode.NOT_FOUND
    bound_waits(timeout, network=False)  # a remote gate waits out a hung remote until its timeout
    # SIGTERM (a supervisor, a CI runner cancelling the job) and SIGHUP (its terminal closed) end
    # the command and free the gate as Ctrl-C does: killed outright, wtp left a remote gate's
    # ticket to expire (a lease, every other clone waiting), and a local gate to the next holder
    # while its command was still being ended.
    with term_as_ctrl_c():
        return _held(where, resource, cmd, timeout, remote)


def _held(where: str | None, resource: str, cmd: list[str], timeout: float | None, remote: bool) -> int:
    from .. import gates, isolate
    from ..guarded import run_guarded
    from ..progress import Watch
    from ..remote import gates as remote_gates
    from ..state import LIVE

    c = open_repo(where)
    env, label = dict(os.environ), _caller(c, where)
    t = c.store.read().tasks.get(label)
    if t is not None and t.state in LIVE:  # run by a live task: the task's env and label
        env = isolate.task_env(c, t)
    else:
        label = ""
    through = remote_gates.remote_for(c, resource, remote)
    if through is not None:  # held through the remote: every clone waits its turn
        # A live task of this clone that declared it (--use) holds it here first, as for a
        # local gate; then the remote's queue.
        started = time.monotonic()
        with Watch(f"waiting for gate '{resource}'", err) as w:
            gates.wait_out_uses(gates.TaskUses(c.store, resource), label, f"gate '{resource}'", timeout, w.say)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        from ..remote.holding import run_holding

        return run_holding(c, resource, through, cmd, here(where), env, left, label, err, timeout)
    g = gates.Gate(c.store, resource)
    # One meaning for a resource: a live task's --use of it (or of its family) holds the gate
    # too, for every caller but that task itself.
    deadline = None if timeout is None else time.monotonic() + timeout
    with Watch(f"waiting for gate '{resource}'", err) as w:
        g.acquire(timeout, say=w.say, label=label, tasks=gates.TaskUses(c.store, resource))
    running = g.file.parent / "command.json"  # the command the holder runs, while it runs
    wrote: list[bool] = []  # ours is recorded: ours to take out (never the last holder's)
    try:
        _after_the_last(running, resource, deadline, timeout)
        outcome = run_guarded(
            cmd, here(where), env, terminal=True, started=lambda pid: wrote.append(_running(running, pid, cmd))
        )
    finally:
        if any(wrote):
            running.unlink(missing_ok=True)
        g.release()
    return outcome.code


def _running(at: Path, pid: int, cmd: list[str]) -> bool:
    """Record the command this holder runs; False when it could not be (the next holder then
    has nothing to wait for, as before)."""
    from .. import locks

    try:  # (written whole, as every record: a FIFO planted beside it is never waited on)
        atomic.replace(at, json.dumps(locks.holder_of(pid, " ".join(cmd)[:200]).to_json()).encode(), durable=False)
    except OSError:
        return False
    return True


def _after_the_last(at: Path, resource: str, deadline: float | None, timeout: float | None) -> None:
    """A holder whose wtp was killed frees the gate at once, while its command is ended by its
    guardian a moment later: one command per gate at a time means waiting for that one first
    (within --timeout, which bounds the whole wait for the gate)."""
    from .. import locks
    from ..errors import WaitTimeout

    try:
        last = locks.Holder.from_json(json.loads(atomic.read_regular(at)))
    except (OSError, ValueError):
        return  # none recorded (the last holder's command ended, and it said so), or unreadable
    said = False
    while last is not None and last.local() and _group_runs(last):
        what = f"the command the last holder of gate '{resource}' left running (pid {last.pid})"
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for gate '{resource}': {what} still runs")
        if not said:
            err(f"waiting for {what} to end")
            said = True
        time.sleep(0.05)


def _caller(c: Ctx, where: str | None) -> str:
    """The task running the gate: the one whose worktree it runs in, or else the one whose
    environment it carries (WTP_TASK and WTP_WORKTREE, as 'wtp run' sets them)."""
    found = task_here(c, where)
    if found is not None:
        return found
    name, path = os.environ.get("WTP_TASK", ""), os.environ.get("WTP_WORKTREE", "")
    t = c.store.read().tasks.get(name) if name else None
    if t is not None and t.path and path and os.path.realpath(path) == os.path.realpath(t.path):
        return name
    return ""


def _runnable(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None or (os.sep in program and os.access(program, os.X_OK))


def _group_runs(h: Holder) -> bool:
    """The command's process group still runs: its leader (the same process, by its start time),
    or, the leader gone (killed with its wtp), any process of its group.  Linux hands out no pid
    that names a live group, so a group of that id is still the command's."""
    from .. import locks, procs

    if locks.is_alive(h):
        return True
    if procs.process_start(h.pid) not in (0, h.start):
        return False  # the pid is another process's now: the group ended before
    try:
        os.killpg(h.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it runs, and is not ours to signal
    return True
