"""Running a command so that it can never outlive the wtp process guarding it (gates, land
gates, setup commands): its own process group, killed with wtp (SIGKILL included) by a
guardian, and by wtp itself when it ends."""

from __future__ import annotations

import functools
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import atomic
from .errors import UsageError
from .interrupts import INTERRUPTS
from .jobcontrol import Terminal

# The guardian: a tiny process that waits for its stdin (a pipe only wtp writes) to
# close, which happens when wtp exits for any reason, SIGKILL included, and then kills
# the command's whole process group.  PR_SET_PDEATHSIG alone would only reach the
# direct child, not the grandchildren a shell starts.
#
# With a lease (argv[2], seconds), the guardian also kills the group once the lease runs out:
# a remote gate's holder that cannot renew it (stopped, partitioned) loses the command even
# while wtp itself is frozen.  The lease is timed from when each renewal was *sent*: wtp
# writes that moment (a line, on the shared clock below) once the renewal is acknowledged,
# so a late acknowledgement never stretches the lease past what a waiter sees (issue 24).
# argv[3], when given, is when the grant itself was sent.  The guardian looks at the clock
# at least every second: a machine that slept wakes to find the lease gone.
_GUARDIAN = """
import os, select, signal, sys, time
pgid = int(sys.argv[1])
lease = float(sys.argv[2]) if len(sys.argv) > 2 else None
clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
now = lambda: time.clock_gettime(clock)
until = None if lease is None else (float(sys.argv[3]) if len(sys.argv) > 3 else now()) + lease
fd = sys.stdin.fileno()
expired = False
buf = b""
while True:
    wait = None if until is None else until - now()
    if wait is not None and wait <= 0:
        expired = True
        break
    ready, _, _ = select.select([fd], [], [], None if wait is None else min(wait, 1.0))
    if not ready:
        continue
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    *lines, buf = (buf + chunk).split(b"\\n")
    for line in lines:
        try:
            until = max(until, float(line) + lease)
        except (TypeError, ValueError):
            pass
try:
    os.killpg(pgid, signal.SIGKILL)
except OSError:
    pass
sys.exit(3 if expired else 0)
"""


# The shared guardian: one for every command this process runs without a lease (the land
# queue's gates side by side, check --test's runs), instead of an interpreter started per
# command.  wtp tells it each command's group as it starts ("+PGID") and once wtp has ended
# what is left of it ("-PGID"); when its stdin closes (wtp exited, however) it kills every
# group it still has.
_SHARED_GUARDIAN = """
import os, signal
groups, buf = set(), b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    *lines, buf = (buf + chunk).split(b"\\n")
    for line in lines:
        try:
            (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
        except ValueError:
            pass
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


class _Shared:
    """This process's shared guardian, started at its first command and again if it died
    (looked for at every poll of a command, so a dead one leaves the gates unguarded no longer
    than that).  Thread-safe: a second guardian started by a racing thread would be dropped,
    and closing its pipe would kill every group it had been told about."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.groups: set[int] = set()
        self.lock = threading.Lock()

    def add(self, pgid: int) -> None:
        with self.lock:
            self.groups.add(pgid)
            self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        with self.lock:
            self.groups.discard(pgid)
            if self.proc is not None:
                self._send(f"-{pgid}\n")

    def check(self) -> None:
        """Start a new guardian, told every group still running, if this one died."""
        if self.proc is not None and self.proc.poll() is not None:
            with self.lock:
                if self.groups:
                    self._send("")

    def _send(self, line: str) -> None:
        for _ in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-S", "-c", _SHARED_GUARDIAN],
                    cwd="/",  # it outlives the gates: in a worktree, it would keep wtp from removing it
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C to our group must not kill the guardian first
                )
                line = "".join(f"+{g}\n" for g in sorted(self.groups)) + (line if line.startswith("-") else "")
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
                return
            except (OSError, ValueError):
                self.proc = None  # it died: a new one is told every group still running


_shared = _Shared()


def _forked() -> None:
    """In a forked child (a land handing off, land/handoff.py): the parent's guardian is not
    this process's."""
    global _shared
    _shared = _Shared()


os.register_at_fork(after_in_child=_forked)


def lease_clock() -> float:
    """Seconds on the clock leases are timed on, the same in every process of this machine,
    that keeps counting while the machine sleeps (where there is one: CLOCK_BOOTTIME)."""
    return time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


_prctl: object = None  # libc's prctl, looked up once in this process (None: not yet; False: none)


def libc_prctl() -> object:
    """libc's prctl where there is one (Linux), looked up in the parent: importing ctypes in
    each child between fork and exec cost every gate start several ms."""
    global _prctl
    if _prctl is None:
        _prctl = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _prctl = ctypes.CDLL(None).prctl
            except Exception:
                pass  # the guardian still stops the group
    return _prctl


# PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not the process:
# wtp starts guarded commands from threads that outlive them (the main thread).
def _child_setup(tty: Terminal | None = None) -> None:  # runs in the child between fork and exec
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)  # held by wtp while it started the command
    os.setpgid(0, 0)
    if tty is not None:
        tty.child_setup()
    if _prctl:
        try:
            _prctl(1, signal.SIGKILL)  # type: ignore[operator]  # PR_SET_PDEATHSIG: die with the wtp process
        except Exception:
            pass  # the guardian still stops the group


class Outcome(NamedTuple):
    code: int
    timed_out: bool


class Guarded:
    """A command running in its own process group, bound to our life: a guardian kills the
    group when this process ends for any reason (SIGKILL included); ``stop`` kills it now.
    Several can run at once (the land queue gates candidates side by side)."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        log: Path | None = None,
        lease: float | None = None,
        since: float | None = None,
        ended: Callable[[Guarded], None] | None = None,
        terminal: bool = False,
    ) -> None:
        libc_prctl()
        out = atomic.open_log(log) if log else None
        # ``terminal``: a command the user runs and waits for ('wtp gate') gets the terminal, if
        # wtp has one, as a shell's foreground job does (jobcontrol.py); an unattended one never.
        self.tty = Terminal.open() if terminal and out is None else None
        # Ctrl-C, SIGTERM and SIGHUP wait until the command runs and wtp knows it: one that came
        # while Popen forked was raised there, the command running on unguarded, with the terminal.
        held = threading.current_thread() is threading.main_thread()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS) if held else None
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                # Logged means unattended (a land's or a check's gate, a setup run): it gets no
                # terminal input, which a gate the land queue started for another lander could
                # otherwise read after its own lander returned (land/handoff.py).
                stdin=subprocess.DEVNULL if out else None,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                preexec_fn=functools.partial(_child_setup, self.tty),
            )
        except BaseException as e:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if self.tty is not None:
                self.tty.close()  # the command's group took the terminal before its exec failed
            if isinstance(e, FileNotFoundError):
                raise UsageError(f"command not found: {argv[0]}") from e
            if isinstance(e, PermissionError):
                raise UsageError(f"command cannot be run (permission denied): {argv[0]}") from e
            raise
        finally:
            if out:
                out.close()  # the child has its own copy
        self.guardian: subprocess.Popen[bytes] | None = None  # its own, for a command with a lease
        try:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one that came meanwhile is raised here
            if self.tty is not None:
                self.tty.started(self.proc.pid)
            if not lease:
                _shared.add(self.proc.pid)
            else:
                self.guardian = subprocess.Popen(
                    [
                        sys.executable,
                        "-S",
                        "-c",
                        _GUARDIAN,
                        str(self.proc.pid),
                        f"{lease:g}",
                        *([repr(since)] if since is not None else []),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C to our group must not kill the guardian first
                )
        except BaseException:
            # No guardian could be started (no memory, too many processes), or an interrupt came
            # while one was (the first command of a process starts the shared one, a Python
            # start): nor the command, which would otherwise run on unguarded, with the terminal.
            _kill_group(self.proc.pid)
            self.proc.wait()
            if self.tty is not None:
                self.tty.close()
            raise
        self.started = time.monotonic()
        self.code: int | None = None
        self.lease_expired = False  # the guardian stopped the command: its lease was not renewed in time
        # Once it ended by itself: the CPU seconds it and what it waited for used, and its
        # wall seconds (the land queue's window learns from them how many the machine can run).
        self.cpu: float | None = None
        self.wall: float | None = None
        self.ended = ended  # told then

    def feed(self, sent: float | None = None) -> None:
        """Tell a guardian with a lease that the lease was renewed by a renewal sent at
        ``sent`` (``lease_clock``; default now): the lease runs from then."""
        try:
            assert self.guardian is not None and self.guardian.stdin is not None
            self.guardian.stdin.write(f"{lease_clock() if sent is None else sent!r}\n".encode())
            self.guardian.stdin.flush()
        except (OSError, ValueError):
            pass  # the command has ended

    def poll(self) -> int | None:
        """The exit code once the command ended (a signal n gives 128+n), else None."""
        if self.code is None and self.guardian is None:
            _shared.check()
        if self.code is None:
            before = _children_cpu()
            rc = self.proc.poll()
            if rc is not None:
                self._ended(before)
                self._done(rc)
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the command; on timeout or Ctrl-C its whole group is killed."""
        before = _children_cpu()
        try:
            if self.tty is not None and timeout is None:
                self.tty.wait(self.proc.pid)  # through Ctrl-Z and 'fg'
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            if self.tty is not None:
                self.tty.close()  # once the group is ended: never left owning the terminal
        if self.code is None:
            self._ended(before)
        self._done(rc)
        assert self.code is not None
        return self.code

    def _ended(self, before: float) -> None:
        """Reaped just now, by itself: what it used is the reaper's children's time since
        ``before`` (this process reaps nothing else between the two looks)."""
        self.cpu, self.wall = max(0.0, _children_cpu() - before), time.monotonic() - self.started
        if self.ended is not None:
            self.ended(self)

    def stop(self) -> None:
        """Kill the command's whole process group now; one that already ended by itself is
        only reaped, and what it left in its group killed (no grace to wait: a stack's gates
        stopped after they ended each waited 0.2 s for it, 3 s for a red stack of 16)."""
        if self.proc.poll() is None:
            _kill_group(self.proc.pid)
        self._done(self.proc.wait())

    def end(self) -> None:
        """Its caller is leaving early (an interrupt, an error) wherever it was, ``wait`` or not
        yet: the command's group ended if it still runs, and the terminal back (idempotent)."""
        try:
            if self.code is None:
                self.stop()
        finally:
            if self.tty is not None:
                self.tty.close()

    def _done(self, rc: int) -> None:
        if self.code is None:
            self.code = rc if rc >= 0 else 128 - rc
            if self.tty is not None:
                self.tty.reclaim()  # also when another thread stopped it (a lost lease)
            if self.guardian is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
                except OSError:
                    pass  # nothing is
                _shared.forget(self.proc.pid)
                return
            assert self.guardian.stdin is not None
            try:
                self.guardian.stdin.close()  # the guardian now stops whatever is left of the group
            except OSError:
                pass  # it is gone already (it stopped the group when the lease ran out)
            self.lease_expired = self.guardian.wait() == 3


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_guarded(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    timeout: float | None = None,
    log: Path | None = None,
    terminal: bool = False,
    started: Callable[[int], None] | None = None,
) -> Outcome:
    """Run argv in its own process group, bound to our life; kill the group on timeout,
    on Ctrl-C, when we die, and when it exits (no stray background process survives).
    ``started``: told the command's pid once it runs."""
    g = Guarded(argv, cwd, env, log, terminal=terminal)
    try:
        if started is not None:
            started(g.proc.pid)
        return Outcome(g.wait(timeout), False)
    except subprocess.TimeoutExpired:
        return Outcome(g.code if g.code is not None else 137, True)
    except BaseException:
        # Also a Ctrl-C (or a SIGTERM taken as one) that came before the wait began, while
        # ``started`` ran: the command would run on past its gate, holding the terminal.
        g.end()
        raise


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
        time.sleep(0.2)
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
