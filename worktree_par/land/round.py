"""One round of the conductor: a stack built on one base tip, verified by the queue's
mode, published in prefixes through the publication point."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .. import tasks
from ..errors import Say
from ..gates import file_sig
from ..gitops import Sha
from ..repo import Ctx
from ..state import WITHDRAWN
from . import publish
from .entry import Entry, Withdrawn
from .status import QueueStatus
from .window import Window


class Round:
    """The stack of one attempt on ``base_tip``: ``done`` of its entries are on the base.
    ``grow(n)`` stacks up to n entries that joined the queue meanwhile (speculative mode)."""

    def __init__(
        self,
        ctx: Ctx,
        stack: list[Entry],
        base_tip: Sha,
        remote: str | None,
        say: Say,
        status: QueueStatus,
        window: Window,
        grow: Callable[[Round, int], None] | None = None,
    ) -> None:
        self.ctx, self.stack, self.base_tip, self.remote, self.say, self.status = (
            ctx,
            stack,
            base_tip,
            remote,
            say,
            status,
        )
        self.window = window
        self.done = 0
        self._grow = grow
        self.started: set[str] = set()  # the entries whose gate was started (as each was built)
        self.queue_file: Path | None = None  # the land queue's ticket file, which grows when a lander joins
        self._queue_seen: tuple[int, int, int, int] | None = None
        self._looked = 0.0
        # Called after each publication: the conductor's own task may have its outcome.
        self.settled: Callable[[], None] | None = None

    def publish(self, k: int) -> publish.Outcome:
        """Publish stack[done:k] through the publication point; what waited for the landed
        tasks' slots or files starts at once, not when the gates above them end."""
        self.status.set(self.stack[k - 1], "publishing")
        while True:  # one push publishes them all; a forge merges one request at a time
            before = self.done
            out = publish.publish(self.ctx, self.stack, before, k, self.base_tip, self.remote, self.say)
            if out.done > before:
                top = self.stack[out.done - 1]
                self.base_tip, self.done = top.landed_as or top.published_commit, out.done
                self.window.landed(out.done - before)
                self.status.show_window()
                if self.settled is not None:  # our lander returns now, not after a queued task's setup
                    self.settled()
                tasks.promote_quietly(self.ctx, self.say)
            if out.race or out.refused is not None or out.done >= k or out.done == before:
                return out

    @property
    def can_grow(self) -> bool:
        return self._grow is not None

    def grow(self, depth: int) -> None:
        """Stack what joined the queue meanwhile on the top: as soon as the queue's ticket
        file changed (a stat per look), and every second whatever it says."""
        if self._grow is None or len(self.stack) >= depth:
            return
        sig = file_sig(self.queue_file) if self.queue_file is not None else None
        if sig != self._queue_seen or time.monotonic() - self._looked > 1.0:
            self._looked, self._queue_seen = time.monotonic(), sig
            self._grow(self, depth - len(self.stack))

    def withdrawn(self) -> Entry | None:
        """The lowest unpublished entry whose lander withdrew it (its error set)."""
        st = self.ctx.store.read()
        for e in self.stack[self.done :]:
            cur = st.tasks.get(e.name)
            if cur is not None and cur.seq == e.task.seq and cur.intent == WITHDRAWN:
                e.error = Withdrawn.of(e.name)
                return e
        return None
