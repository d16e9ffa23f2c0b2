"""A guarded command and the terminal, as a shell's job control has them.

A guarded command runs in a process group of its own (guarded.py), so that wtp can end all
of it; but only the terminal's foreground group may read the terminal, and a command that
prompts (terraform apply, an ssh passphrase, sudo) was stopped by SIGTTIN and waited for
ever while wtp held its gate.  So while wtp is in the foreground, the command's group gets
the terminal (it takes it itself before exec, and wtp gives it too: whichever runs first, as
a shell does), and wtp takes it back when the command ends, however it ends.  Ctrl-C and
Ctrl-Z typed at the terminal then go to the command's group, as in a shell; a command that
Ctrl-Z (or a read of the terminal from the background) stops stops wtp's job too, so its
shell sees the job stopped, and 'fg' or 'bg' goes on with both."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
from collections.abc import Callable

_JOB_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
_FATAL = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _give(fd: int, pgid: int) -> None:
    """Make ``pgid`` the terminal's foreground group, from the background too: with SIGTTOU
    blocked, the kernel lets a background process do it instead of stopping it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass  # the group is gone already (the command ended), or the terminal is
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _piped(fd: int) -> bool:
    """``fd`` is a pipe: wtp runs in a pipeline.  A file or /dev/null is not (a command whose
    output goes to a log still prompts on the terminal: sudo, ssh, terraform apply > log)."""
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # it exists, and is not ours to signal
    return False


class Terminal:
    """wtp's controlling terminal while one guarded command runs."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ahead = self.foreground()  # wtp had the terminal when it started the command
        self.pgid = 0  # the command's group, once started
        self.handed = False  # the command's group has the terminal from us
        self.ttou: object = None  # wtp's SIGTTOU handler before the command started
        self.fatal: dict[int, object] = {}  # the default handlers replaced by _dying
        self.lock = threading.RLock()  # reentrant: _dying may run inside reclaim

    @classmethod
    def open(cls) -> Terminal | None:
        """The controlling terminal, for a command the main thread runs (only it may set
        signal handlers); None when there is none."""
        if threading.current_thread() is not threading.main_thread():
            return None
        if _piped(0) or _piped(1):  # in a pipeline (| less) the terminal is the pipeline's other commands'
            return None
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        return cls(fd)

    def foreground(self) -> bool:
        try:
            return os.tcgetpgrp(self.fd) == os.getpgrp()
        except OSError:
            return False

    def child_setup(self) -> None:
        """In the command, between fork and exec, once it leads its own group."""
        if self.ahead:
            _give(self.fd, os.getpid())

    def started(self, pgid: int) -> None:
        """The command runs as group ``pgid``: it gets the terminal if wtp had it.  wtp ignores
        SIGTTOU meanwhile: it writes to the terminal and takes it back from the background."""
        self.pgid = pgid
        self.ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        for sig in _FATAL:  # wtp ended by one of them: the terminal back first (not to a dead group)
            if signal.getsignal(sig) is signal.SIG_DFL:
                self.fatal[sig] = signal.signal(sig, self._dying)
        if self.ahead:
            _give(self.fd, pgid)
            self.handed = True

    def wait(self, pid: int) -> None:
        """Until the command ends (not reaped: its Popen does that).  Each time the terminal
        stops it (Ctrl-Z; reading it from the background), wtp's job stops with it, and goes
        on with it when continued."""
        said = False
        while True:
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT)
            except ChildProcessError:
                return  # reaped by another thread (the lease keeper stopped it)
            if info is None or info.si_code != os.CLD_STOPPED:
                return
            os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG)  # this stop, seen (never reaps)
            if info.si_status not in _JOB_STOPS:
                continue  # SIGSTOP from someone: it waits for their SIGCONT, as before
            self.reclaim()
            stopped = _stop_job()
            if self.foreground():
                _give(self.fd, self.pgid)
                self.handed = True
            elif not stopped and info.si_status != signal.SIGTSTP:
                # Nobody can continue this job (its group is orphaned): going on would only
                # stop the command again at once.
                if not said:
                    print(
                        f"wtp: the command (pid {pid}) is stopped reading the terminal, which wtp cannot give it "
                        f"from the background: end it with 'kill {os.getpid()}'",
                        file=sys.stderr,
                        flush=True,
                    )
                    said = True
                continue
            try:
                os.killpg(self.pgid, signal.SIGCONT)
            except OSError:
                pass

    def reclaim(self) -> None:
        """The terminal back to wtp's group, when the command's group (or a group that is gone)
        has it or wtp gave it away; never taken from another job (the shell's, after 'bg')."""
        with self.lock:
            try:
                owner = os.tcgetpgrp(self.fd)
            except OSError:
                return  # closed, or the terminal hung up
            self.handed, handed = False, self.handed
            if owner != os.getpgrp() and (handed or owner == self.pgid or _gone(owner)):
                _give(self.fd, os.getpgrp())

    def _dying(self, sig: int, _frame: object) -> None:
        """SIGTERM, SIGHUP or SIGQUIT, which end wtp: the terminal back to wtp's group (its
        shell's job), then the signal's own end (the command's guardian ends the command)."""
        self.reclaim()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    def close(self) -> None:
        """(main thread) The command ended: the terminal and the signals as they were."""
        self.reclaim()
        with self.lock:
            if self.ttou is not None:
                signal.signal(signal.SIGTTOU, self.ttou)  # type: ignore[arg-type]
                self.ttou = None
            for sig, handler in self.fatal.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            self.fatal = {}
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def _stop_job() -> bool:
    """Stop wtp's process group as the job it belongs to stops (Ctrl-Z), until its shell
    continues it; False when the kernel dropped the stop (a group nobody outside it could
    continue: POSIX's orphaned groups) or wtp ignores SIGTSTP."""
    woke: list[int] = []
    before: Callable[..., object] | int | None = signal.signal(signal.SIGCONT, lambda *_: woke.append(1))
    try:
        os.killpg(os.getpgrp(), signal.SIGTSTP)
    finally:
        signal.signal(signal.SIGCONT, before)
    return bool(woke)
