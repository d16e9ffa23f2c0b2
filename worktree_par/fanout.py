"""One call per item, side by side in threads, the results in the items' order: what ``list``
and ``check`` do with each task's git calls.  ``concurrent.futures`` does the same, but its
import (logging, traceback, tokenize) is ~4 ms of every ``wtp list`` and ``wtp check``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_threads(fn: Callable[[T], R], items: Sequence[T], workers: int = 8) -> list[R]:
    """``[fn(x) for x in items]``, at most ``workers`` at a time, as a pool's map: once a call
    raises, or the caller is interrupted (Ctrl-C), no further call starts; the calls under way
    end first (their git), then the first exception in the items' order is raised.  Each call
    runs in a thread, one item too: a Ctrl-C reaches the caller's thread, never a call's git,
    which would be left running (review 56).  A second Ctrl-C ends that wait, as it ends every
    wait of wtp's (a git that never ends must not hold the command): the git under way, a
    read of list's or check's, ends alone (review 57)."""
    from . import interrupts

    results: list[R | None] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    todo = iter(range(len(items)))
    take, stop, ended = threading.Lock(), threading.Event(), threading.Semaphore(0)

    def work() -> None:
        try:
            while not stop.is_set():
                if wake.r >= 0 and interrupts.readable([wake.r], 0):  # a signal came: its call's git ended,
                    stop.set()  # perhaps this very one, before the caller's thread could say so
                    return
                with take:
                    i = next(todo, None)
                if i is None:
                    return
                try:
                    results[i] = fn(items[i])
                except BaseException as e:  # raised in the caller's thread, below
                    errors[i] = e
                    stop.set()
        finally:
            ended.release()

    threads = [threading.Thread(target=work, name="wtp-fanout") for _ in range(min(workers, len(items)))]
    started = 0
    with interrupts.Wakeup() as wake:  # (the caller's thread; none elsewhere: wake.r is -1)
        try:
            for t in threads:
                t.start()
                started += 1
            for _ in threads:
                # Not Thread.join: Python 3.11's join, interrupted by a Ctrl-C, marks a thread still
                # running as ended (bpo-45274's fix), and the command then exits without its git.
                ended.acquire()
        except BaseException:
            stop.set()
            raise
        finally:
            for t in threads[:started]:
                t.join()
    for e in errors:
        if e is not None:
            raise e
    # No error: every slot holds its call's result.
    return results  # type: ignore[return-value]
