"""Ctrl-C, and the signals a land takes as Ctrl-C (SIGTERM, SIGHUP: commands/land.py): only
the main thread handles them, and clean-up that must finish is not cut short by them."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Ctrl-C, and what a land turns into Ctrl-C (commands/land.py): the main thread's to handle.
INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

# What a helper thread blocks: the signals wtp handles (the interrupts, the job-control
# stops and continue, a child's end), so the kernel gives them to the main thread, waking
# it where it waits.  Given to a thread, Python only notes one, and a main thread blocked in
# a wait for a stopped helper's report never ran the continue's handler (review 47's
# 'kill -CONT PID' hung one run in ten).  What a thread starts inherits the mask: kept to these.
TO_MAIN = INTERRUPTS | {signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD}

# Every signal ``as_ctrl_c`` turned into Ctrl-C in this process, in order.  Python runs a
# signal's handler wherever the main thread is, a finalizer included (an HTTP response
# collected), and the KeyboardInterrupt raised there is lost: loops that wait for long look
# here too (``check``), so one Ctrl-C is always enough.
SEEN: list[int] = []


def as_ctrl_c() -> dict[int, object]:
    """From now on Ctrl-C, SIGTERM (a tool cancelling the command, a supervisor stopping it) and
    SIGHUP (its terminal closed) raise KeyboardInterrupt in the main thread, and are counted in
    SEEN: a land then does the clean-up Ctrl-C does (a waiting task withdrawn, a conductor
    giving back what it had not published), where killed outright it left its task to the
    conductor that had stacked it, with nobody to clean up after it.  A signal the caller
    ignores ('nohup') stays ignored.  Returns the handlers replaced, for ``restore``."""

    def interrupt(sig: int, _frame: object) -> None:
        SEEN.append(sig)
        raise KeyboardInterrupt

    before: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                before[sig] = signal.signal(sig, interrupt)
    return before


def restore(before: dict[int, object]) -> None:
    """The land is over: the handlers ``as_ctrl_c`` replaced are the caller's again (a caller
    that runs wtp in its own process, as a test runner does), and no wait acts on a signal."""
    for sig, handler in before.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]
    _armed.clear()


_armed: list[int] = []  # SEEN's length when the operation under way began (arm)
_finishing: list[None] = []  # one per clean-up block under way (finishing)


def arm() -> None:
    """An operation that ``check`` guards begins (a land), or goes on past an interrupt it
    has dealt with: only the signals that come from now on stop it."""
    _armed[:] = [len(SEEN)]


def check() -> None:
    """In a loop that waits: raise KeyboardInterrupt when a signal came since ``arm`` and its
    KeyboardInterrupt was lost (swallowed by a finalizer).  Never inside a clean-up block."""
    if _armed and len(SEEN) > _armed[0] and not _finishing:
        _armed[0] = len(SEEN)  # acted on once
        raise KeyboardInterrupt


def start_quiet(thread: threading.Thread, blocked: frozenset[int] | None = None) -> None:
    """Start a helper thread (a heartbeat, a progress line, a lease keeper) with the signals
    sent to the process blocked (TO_MAIN), as it inherits the mask it starts with: such a
    signal then goes to the main thread, and a block that defers them there
    (locks.no_interrupt) holds.  ``blocked``: a thread that starts commands (which inherit its
    mask) blocks the interrupts alone, so Ctrl-Z still stops them."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, TO_MAIN if blocked is None else blocked)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def finishing() -> Iterator[None]:
    """A clean-up that a signal must not cut short (of an interrupted operation, or of one that
    failed): a Ctrl-C that comes during it is dropped when the block runs because of a Ctrl-C
    (its user already asked, and is being answered); otherwise it, and SIGTERM and SIGHUP
    always, wait for the block's end and are then delivered to the caller's handler, so a
    process told to stop (the background lander) still stops, after the clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = isinstance(sys.exc_info()[1], KeyboardInterrupt)  # the block answers a Ctrl-C
    got: list[int] = []
    before = {s: signal.signal(s, lambda n, _f: got.append(n)) for s in INTERRUPTS}
    _finishing.append(None)
    try:
        yield
    finally:
        _finishing.pop()
        for s, handler in before.items():
            signal.signal(s, handler)
        for n in dict.fromkeys(got):
            if not (n == signal.SIGINT and asked) and before[signal.Signals(n)] is not signal.SIG_IGN:
                signal.raise_signal(n)


@contextmanager
def term_as_ctrl_c() -> Iterator[None]:
    """In the block, SIGTERM (a tool cancelling the command, a supervisor stopping it) and
    SIGHUP (its terminal closed) raise KeyboardInterrupt as Ctrl-C does, so the clean-up
    Ctrl-C runs (stopping gate runs, removing throw-away worktrees) runs for them too; killed
    outright, the command left its worktrees and said nothing.  A signal the caller ignores
    ('nohup') stays ignored; the handlers before are put back after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s, handler in before.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, interrupt)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


class Wakeup:
    """(main thread) A pipe Python writes each signal to as it comes (``signal.set_wakeup_fd``),
    while the block runs: ``read`` waits on it beside its own fd.  A signal that came just
    before a wait blocked (Python had checked for one, not yet entered the read) has its
    handler run only once the read returns by itself: waiting on a helper that was stopped,
    a 'kill -CONT PID' never got its handler run, and the command waited for ever."""

    def __init__(self) -> None:
        self.r = self.w = -1
        self._before = -1
        self.came = bytearray()  # the signals that came, as they came (Python runs handlers in number order)

    def __enter__(self) -> Wakeup:
        self.open()
        return self

    def open(self) -> None:
        """From now on each signal wakes ``read`` (in the main thread; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._before = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)

    def __exit__(self, *_: object) -> None:
        self.drop()

    def drop(self) -> None:
        """No wakeup pipe from now on (also in a process forked meanwhile: not its parent's)."""
        if self.w >= 0:
            signal.set_wakeup_fd(self._before, warn_on_full_buffer=False)
            os.close(self.r)
            os.close(self.w)
            self.r = self.w = -1

    def read(self, fd: int) -> bytes:
        """``os.read(fd, 65536)`` once ``fd`` is readable; each signal meanwhile wakes the wait,
        so its handler runs (and may raise) before the wait goes on."""
        while self.r >= 0:
            ready = readable([fd, self.r])
            if self.r in ready:
                self._drain()
            if fd in ready:
                break
        return os.read(fd, 65536)

    def _drain(self) -> None:
        try:
            self.came += os.read(self.r, 4096)
        except BlockingIOError:
            pass
        del self.came[:-64]

    def continued_since_stop(self) -> bool:
        """(a Ctrl-Z's handler) A continue came after the last stop (SIGTSTP): the job was
        continued before its stop could be acted on.  Python ran the continue's handler first
        (the lower number) when both waited for the main thread, back from starting a command
        ('fg' came while the command started was stopped with the job, review 47): stopping
        now, nothing would continue it.  What came so far is forgotten."""
        came = self._taken()
        last = came.rfind(bytes([signal.SIGTSTP]))
        return last >= 0 and bytes([signal.SIGCONT]) in came[last:]

    def continued(self) -> bool:
        """A continue came since the last look (its handler may not have run yet)."""
        return bytes([signal.SIGCONT]) in self._taken()

    def _taken(self) -> bytes:
        """The signals that came since the last look, as they came; forgotten from here."""
        if self.r >= 0:
            self._drain()
        came, self.came = bytes(self.came), bytearray()
        return came


def readable(fds: list[int], timeout: float | None = None) -> set[int]:
    """Which of ``fds`` can be read now (or are at their end), waiting up to ``timeout``
    seconds (None: until one can).  poll, not select: a caller that handed the command
    more than 1024 open files gave it descriptors select() cannot take (review 48)."""
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    return {fd for fd, _ in p.poll(None if timeout is None else timeout * 1000)}
