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
from functools import partial
from pathlib import Path

from .. import atomic, crashpoints, gitops, guarded, interrupts, locks, procs
from ..interrupts import INTERRUPTS

PASSED_ON = tuple(sorted(INTERRUPTS))  # Ctrl-C, SIGTERM and SIGHUP
STOP_HELPER = signal.SIGTERM  # how the parent stops a helper (Helper.stop): taken even where the caller ignores it
_PR_SET_PDEATHSIG = 1


class Handoff:
    """One side of the fork: ``parent`` waits (``wait``); the child lands and, once its own
    task has its outcome while the queue still has work for it, calls ``hand``."""

    def __init__(self, parent: bool, child: int, fd: int) -> None:
        self.parent, self.child, self.fd = parent, child, fd
        self.done = False  # (child) the parent has the result: nothing more of ours to report
        self.quiet: Callable[[], None] | None = None  # (child) ends what it draws on the terminal
        self._in_event = False  # (parent) an on_events callback runs: Ctrl-C stops it as well
        self._before: dict[int, object] = {}  # (parent) the caller's handlers, while it waits
        self.helpers: list[Helper] = []  # (parent) every helper forked, in order (``helper``)
        self.wake = interrupts.Wakeup()  # (parent) its waits wake for each signal (``wait``)
        self._continues = 0  # (parent) the continues handled so far (``_suspend``)

    def wait(
        self,
        task: str = "TASK",
        on_events: Callable[[list[dict[str, object]]], None] | None = None,
        on_end: Callable[[int], int] | None = None,
    ) -> dict[str, object]:
        """(parent) What the child handed over once its own task had its outcome; when the
        child ends first, this process ends with its exit status (the same signal, if one
        killed it; ``on_end`` is given any other status and returns the one to exit with).
        ``on_events``: given the events the child ``send``s before that ('wtp land A B': a
        task of the command has its outcome), as many as have come, while the child goes on."""
        before = {sig: signal.signal(sig, self._pass_on) for sig in PASSED_ON}
        before[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._suspend)
        before[signal.SIGCONT] = signal.signal(signal.SIGCONT, self._pass_on)
        self._before = {int(sig): handler for sig, handler in before.items()}
        data = b""
        self.wake.open()
        try:
            while True:
                batch: list[dict[str, object]] = []
                while on_events is not None:
                    line, nl, rest = data.partition(b"\n")
                    event = json.loads(line) if nl else None
                    if not (isinstance(event, dict) and "event" in event):
                        break
                    batch.append(event)
                    data = rest
                if batch:
                    self._in_event = True  # a signal stops this side's own work too (its clean-up)
                    try:
                        on_events(batch)  # type: ignore[misc]
                    finally:
                        self._in_event = False
                    continue
                line, nl, _ = data.partition(b"\n")
                if nl:  # the hand-over
                    data = line + nl
                    break
                chunk = self.wake.read(self.fd)  # each signal meanwhile handled as it comes
                if not chunk:
                    break
                data += chunk + self._more()
        finally:
            self.wake.drop()
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
        code = on_end(code) if on_end is not None else code
        locks.drop_heartbeat()  # (os._exit runs no atexit)
        os._exit(code)

    def _more(self) -> bytes:
        """What else the child has sent by now, without waiting: told together, several tasks'
        clean-ups are shared (commands/land_report.py)."""
        out = b""
        while interrupts.readable([self.fd], 0):
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break  # its end: the next read says so
            out += chunk
        return out

    def helper(self, work: Callable[[Callable[[dict[str, object]], None]], None], cwd: Path) -> Helper | None:
        """(parent, in ``on_events``) A process forked to do part of this side's work beside
        it: ``work`` is given the function that sends its reports (``Helper.events``).  It
        starts in ``cwd`` (never inside a worktree this side removes: it would keep it), dies
        with this process and takes signals as a command does.  None where a fork cannot keep
        that (a lock is held, a thread of ours other than the heartbeat runs): the caller then
        does the work itself."""
        prctl = guarded.libc_prctl()
        if not self.parent or not prctl or not locks.fork_safe():
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        try:
            here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        r = w = -1
        # Held back until the helper has its own handlers: ours pass a signal on to the land.
        masked = signal.pthread_sigmask(signal.SIG_BLOCK, [*PASSED_ON, signal.SIGTSTP, signal.SIGCONT])
        try:
            r, w = os.pipe()
            os.chdir(cwd)  # (this side's own cwd is put back below: it tells whether it was removed)
            pid = os.fork()
        except OSError:
            pid = -1
        if pid:
            os.fchdir(here)
            os.close(here)
            h = None
            if pid < 0:
                for fd in (r, w):
                    if fd >= 0:
                        os.close(fd)
            else:
                os.close(w)
                h = Helper(pid, r, self.wake)
                self.helpers.append(h)  # before a signal held back meanwhile comes: the caller's stop finds it
            signal.pthread_sigmask(signal.SIG_SETMASK, masked)
            return h
        code = 1
        try:  # the helper: never back in the caller's code, whatever happens
            os.close(here)
            os.close(r)
            os.close(self.fd)  # the land child's reports are the parent's to read
            self.wake.drop()  # (the parent's signals are not ours to wake it with)
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[operator]
            if os.getppid() != parent:
                os._exit(128 + signal.SIGKILL)
            interrupts.restore(self._before)  # the caller's handlers, not the parent's pass-on
            signal.signal(STOP_HELPER, signal.SIG_DFL)  # (as_ctrl_c keeps an ignored signal ignored)
            interrupts.as_ctrl_c()
            signal.pthread_sigmask(signal.SIG_SETMASK, masked)
            crashpoints.step("land:helper")
            work(partial(_report, w))
            code = 0
        except KeyboardInterrupt:
            code = 130
        finally:
            try:
                locks.drop_heartbeat()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def send(self, event: dict[str, object]) -> None:
        """(child) An event for the parent's ``on_events``, before any hand-over."""
        try:
            os.write(self.fd, (json.dumps({"event": True, **event}) + "\n").encode())
        except OSError:
            pass  # the parent is gone (killed just now): what is under way goes on

    def _pass_on(self, sig: int, _frame: object) -> None:
        # A stop or a continue goes to the helpers too; Ctrl-C, SIGTERM and SIGHUP end them by
        # the parent's own stop (Helper.stop), once it has their reports.
        for pid in [self.child, *(h.pid for h in self.helpers if not h.ended and sig not in PASSED_ON)]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGCONT:
            self._continues += 1
            # Continued alone ('kill -CONT PID'): so is what works for us, stopped with us in our
            # group (a helper's git command, our own), which we would wait for for ever; not the
            # rest of our group (two lands of one script passed it back and forth to all of it),
            # nor the land's gate, in its own session, which Ctrl-Z never stops.
            for pid in procs.descendants_in_group(os.getpid()):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        if self._in_event and sig in PASSED_ON:
            raise KeyboardInterrupt

    def _suspend(self, _sig: int, _frame: object) -> None:
        """Ctrl-Z: the land stops with the command and goes on with it (SIGCONT).  Both stop by
        SIGSTOP: the default stop of SIGTSTP is dropped in a process group with no parent
        outside it in its session (the child's own session; a command started by a daemon).
        Not when the job was continued since (its continue's handler ran first), nor when a
        continue comes while this stops the land: it would be used up before this process
        stopped itself, and nothing would continue it (review 49: a supervisor's stop and
        continue a millisecond apart)."""
        if self.wake.continued_since_stop():
            return
        seen = self._continues
        self._pass_on(signal.SIGSTOP, None)
        crashpoints.step("land:suspend")
        if self._continues != seen or self.wake.continued():
            self._pass_on(signal.SIGCONT, None)  # what was stopped goes on, as this process does
            return
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


class Helper:
    """(parent) A helper forked by ``Handoff.helper``."""

    def __init__(self, pid: int, fd: int, wake: interrupts.Wakeup) -> None:
        self.pid, self.fd, self.ended, self._data, self._wake = pid, fd, False, b"", wake

    def events(self) -> list[dict[str, object]]:
        """What it reported, once it ended (read to its end: it may write more than a pipe
        holds before it ends); a report cut short by its death is left out.  A signal while
        this waits leaves it running: ``stop`` ends it."""
        while chunk := self._wake.read(self.fd):
            self._data += chunk
        self._reap()
        return self._parsed()

    def stop(self) -> list[dict[str, object]]:
        """Told to stop (STOP_HELPER, which it takes as a command takes Ctrl-C, even where the
        caller ignores Ctrl-C), and waited for: what it was doing is left as an interrupted command
        leaves it.  What it had reported by then, to be said all the same."""
        if not self.ended:
            for sig in (STOP_HELPER, signal.SIGCONT):  # (a helper stopped by Ctrl-Z takes it once continued)
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
            self._reap()
        return self._parsed()

    def _reap(self) -> None:
        """Waited for, then what it wrote read to the end (the pipe's writer is gone)."""
        if self.ended:
            return
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.ended = True
        try:
            while chunk := os.read(self.fd, 65536):
                self._data += chunk
        finally:
            os.close(self.fd)

    def _parsed(self) -> list[dict[str, object]]:
        out = []
        for line in self._data.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out


def _report(fd: int, event: dict[str, object]) -> None:
    """(a helper) One report, a line to its parent."""
    try:
        os.write(fd, (json.dumps(event) + "\n").encode())
    except OSError:
        pass  # the parent is gone: the work goes on, said by the next command


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
