"""A foreground 'wtp land' returns as soon as its own task is landed or blocked, even when it
conducts the queue: the conductor's work for the tasks stacked behind its own goes on in the
background (issue 28: a lander that waited for the gates of every task that joined behind
it kept its agent from its next task).

The command forks once, before any thread, lock or heartbeat of its own: the child lands,
the parent only waits.  When the child's own task has its outcome while it still conducts
others, it moves its output to a log, leaves the terminal, and tells the parent its queue
ticket; the parent then reports the task's result and does its clean-up, as a lander whose
task another conductor landed does, and exits.  Until then the child dies with the parent
(PR_SET_PDEATHSIG: a SIGKILLed 'wtp land' stops its land as it always did), and it is in a
session of its own, so the signals the parent gets (the terminal's Ctrl-C, SIGTERM) reach it
once, passed on by the parent.  A child that ends without handing off ends the parent with its
exit status.

Only where that can hold: Linux (prctl), a command whose output is the process's own (not
captured in-process), no thread running yet.  Elsewhere the land runs in one process as before.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .. import atomic, gitops, guarded, locks
from ..interrupts import INTERRUPTS

PASSED_ON = tuple(sorted(INTERRUPTS))  # Ctrl-C, SIGTERM and SIGHUP
_PR_SET_PDEATHSIG = 1


class Handoff:
    """One side of the fork: ``parent`` waits (``wait``); the child lands and, once its own
    task has its outcome while the queue still has work for it, calls ``hand``."""

    def __init__(self, parent: bool, child: int, fd: int) -> None:
        self.parent, self.child, self.fd = parent, child, fd
        self.done = False  # (child) the parent has the result: nothing more of ours to report
        self.quiet: Callable[[], None] | None = None  # (child) ends what it draws on the terminal
        self._in_event = False  # (parent) an on_event callback runs: Ctrl-C stops it as well

    def wait(
        self,
        task: str = "TASK",
        on_event: Callable[[dict[str, object]], None] | None = None,
        on_end: Callable[[int], int] | None = None,
    ) -> dict[str, object]:
        """(parent) What the child handed over once its own task had its outcome; when the
        child ends first, this process ends with its exit status (the same signal, if one
        killed it; ``on_end`` is given any other status and returns the one to exit with).
        ``on_event``: given each event the child ``send``s before that ('wtp land A B': a
        task of the command has its outcome), while the child goes on."""
        before = {sig: signal.signal(sig, self._pass_on) for sig in PASSED_ON}
        before[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._suspend)
        before[signal.SIGCONT] = signal.signal(signal.SIGCONT, self._pass_on)
        data = b""
        try:
            while True:
                line, nl, rest = data.partition(b"\n")
                if nl and on_event is not None:
                    event = json.loads(line)
                    if isinstance(event, dict) and "event" in event:
                        data = rest
                        self._in_event = True  # a signal stops this side's own work too (its clean-up)
                        try:
                            on_event(event)
                        finally:
                            self._in_event = False
                        continue
                if nl:
                    data = line + nl
                    break
                chunk = os.read(self.fd, 4096)  # retried after a signal (PEP 475)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self.fd)
            for sig, handler in before.items():  # as the caller set them (nohup's SIGHUP, say)
                signal.signal(sig, handler)
        if data.endswith(b"\n"):
            handed = json.loads(data)
            return handed if isinstance(handed, dict) else {}
        _, status = os.waitpid(self.child, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0 and on_end is not None:
            on_end(code)  # what it has to say (the signal's own exit status follows)
        if code < 0:  # killed by a signal: so is this process, as the caller would have seen it
            if -code not in PASSED_ON:  # not one it was sent through us
                print(
                    f"wtp: the land's process (pid {self.child}) was killed ({signal.Signals(-code).name}): run "
                    f"'wtp land {task}' again: it finishes the land if it had published, or rolls it back, and says which",
                    file=sys.stderr,
                    flush=True,
                )
            if -code != signal.SIGKILL:
                signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(on_end(code) if on_end is not None else code)

    def send(self, event: dict[str, object]) -> None:
        """(child) An event for the parent's ``on_event``, before any hand-over."""
        try:
            os.write(self.fd, (json.dumps({"event": True, **event}) + "\n").encode())
        except OSError:
            pass  # the parent is gone (killed just now): what is under way goes on

    def _pass_on(self, sig: int, _frame: object) -> None:
        try:
            os.kill(self.child, sig)
        except ProcessLookupError:
            pass
        if self._in_event and sig in PASSED_ON:
            raise KeyboardInterrupt

    def _suspend(self, _sig: int, _frame: object) -> None:
        """Ctrl-Z: the land stops with the command and goes on with it (SIGCONT).  Both stop by
        SIGSTOP: the default stop of SIGTSTP is dropped in a process group with no parent
        outside it in its session (the child's own session; a command started by a daemon)."""
        self._pass_on(signal.SIGSTOP, None)
        os.kill(os.getpid(), signal.SIGSTOP)  # stops here until 'fg' or 'bg

    def hand(self, root: Path, log: Path, what: dict[str, object]) -> bool:
        """(child) Our task has its outcome: from now on this process outlives its parent, its
        output goes to ``log``, and the parent gets ``what`` (the queue ticket, the tasks still
        being landed) to report the task's result and clean up.  False, and nothing changed,
        when the log cannot be opened: the land then goes on here, as without a fork."""
        try:
            with atomic.open_log(log) as opened:
                out = os.dup(opened.fileno())
        except OSError:
            return False
        prctl = guarded.libc_prctl()
        if prctl:
            prctl(_PR_SET_PDEATHSIG, 0)  # type: ignore[operator]
        if self.quiet is not None:
            self.quiet()
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(root)  # not the task's worktree, which the parent is about to remove
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        # The command's --timeout was its lander's: the tasks it goes on landing had their own.
        locks.set_deadline(None)
        gitops.unbound_network()
        try:
            os.write(self.fd, (json.dumps({**what, "pid": os.getpid(), "log": str(log)}) + "\n").encode())
        except OSError:
            pass  # the parent is gone (killed just now): the tasks behind ours still land
        os.close(self.fd)
        self.done = True
        print(f"{what.get('task')}: landed or blocked; its lander returned, this process conducts the rest", flush=True)
        return True


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def fork() -> Handoff | None:
    """Fork the land into a child that lands and a parent that waits; None where that cannot
    keep its promises (see the module's docstring), the land then running here."""
    prctl = guarded.libc_prctl()
    if not prctl or threading.active_count() > 1 or locks.held_any():
        return None
    try:
        if sys.stdout.fileno() != 1 or sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None  # captured in-process (a test runner's streams): no fork
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()  # not inherited by what either side starts: EOF means the child ended
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(w)
        return Handoff(True, pid, r)
    os.close(r)
    # What the caller handed the command beyond 0, 1 and 2 (a pipe it waits on, a jobserver)
    # is not the child's to keep open once the command returned: nothing of the land uses it.
    os.closerange(3, w)
    os.closerange(w + 1, _max_fd())
    os.setsid()  # the terminal's signals go to the parent alone, which passes them on once
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[operator]
    if os.getppid() != parent:  # the parent died before that took hold
        os._exit(128 + signal.SIGKILL)
    return Handoff(False, os.getpid(), w)
