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
    """``[fn(x) for x in items]``, at most ``workers`` at a time.  Every call runs, as in a
    pool's map; the first item's exception, in order, is raised once all have ended."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    results: list[R | None] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    todo = iter(range(len(items)))
    take = threading.Lock()

    def work() -> None:
        while True:
            with take:
                i = next(todo, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # raised in the caller's thread, below
                errors[i] = e

    threads = [threading.Thread(target=work, name="wtp-fanout") for _ in range(min(workers, len(items)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:  # a Ctrl-C while waiting: the calls under way end first (their git), as a pool's shutdown waits
        for t in threads:
            t.join()
    for e in errors:
        if e is not None:
            raise e
    # No error: every slot holds its call's result.
    return results  # type: ignore[return-value]
