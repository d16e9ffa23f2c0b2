"""Ctrl-C, and the signals a land takes as Ctrl-C (SIGTERM, SIGHUP: commands/land.py): only
the main thread handles them, and clean-up that must finish is not cut short by them."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Ctrl-C, and what a land turns into Ctrl-C (commands/land.py): the main thread's to handle.
INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def start_quiet(thread: threading.Thread) -> None:
    """Start a helper thread (a heartbeat, a progress line, a lease keeper) with INTERRUPTS
    blocked, as it inherits the mask it starts with: a signal sent to the process then waits
    for the main thread, and a block that defers them there (locks.no_interrupt) holds."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def finishing() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (which a land turns into Ctrl-C) are dropped until the block
    is done: the clean-up of an interrupted operation, which a second one must not cut short."""
    main = threading.current_thread() is threading.main_thread()
    before = {s: signal.signal(s, signal.SIG_IGN) for s in INTERRUPTS} if main else {}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
