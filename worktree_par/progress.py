"""Seeing a wait while it happens.  On a terminal (stderr is a TTY): one line that updates
in place, with what is pending, the time it has taken and, for a command writing a log
(a gate, setup), its latest output line; messages print above it.  Anywhere else: the
plain message lines, nothing that redraws.  ``follow`` streams the log as it grows, on a
terminal or not.

Nothing is drawn for a wait shorter than ``DELAY`` (and rich is not even imported), so a
quick command looks and costs the same as without it.  The line is drawn by a thread of
its own from what is on disk (the queue status, the log), so it keeps time while the
command waits on a child process."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import Say

DELAY = 0.3  # seconds before the live line appears
TICK = 0.25


def on_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def last_line(path: Path | None, limit: int = 4096) -> str:
    """The last non-empty line of a log ('' when there is none yet)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.replace("\r", "\n").splitlines() if ln.strip()]
    # wtp's own lines in a log (the command it runs, "$ CMD", and the candidate, "# candidate
    # SHA") are not the command's output: the live line shows only what the command printed.
    lines = [ln for ln in lines if not ln.startswith(("$ ", "# candidate "))]
    return lines[-1] if lines else ""


class Follow:
    """Streams what is appended to a log; a log written anew (a new gate attempt) is read
    from its start again."""

    def __init__(self, path: Callable[[], Path | None]) -> None:
        self.path = path
        self.ident: tuple[int, int] | None = None
        self.pos = 0

    def read(self) -> str:
        p = self.path()
        if p is None:
            return ""
        try:
            with open(p, "rb") as f:
                st = os.fstat(f.fileno())
                ident = (st.st_dev, st.st_ino)
                if ident != self.ident or st.st_size < self.pos:
                    self.ident, self.pos = ident, 0
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return ""
        # Only whole lines, so a line being written is not split across two reads.
        cut = data.rfind(b"\n") + 1
        self.pos += cut
        return data[:cut].decode(errors="replace")


class Watch:
    """``with Watch("landing 'a'", say, detail=..., log=...) as w:`` then report through ``w.say``."""

    def __init__(
        self,
        label: str,
        say: Say,
        *,
        detail: Callable[[], str] | None = None,
        log: Callable[[], Path | None] | None = None,
        follow: bool = False,
    ) -> None:
        self.label, self._say, self.detail, self.log = label, say, detail, log
        self.follow = Follow(log) if follow and log is not None else None
        self.live: Any = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.terminal = on_terminal()

    def __enter__(self) -> Watch:
        if self.terminal or self.follow is not None:
            from .interrupts import start_quiet

            self._thread = threading.Thread(target=self._run, name="wtp-progress", daemon=True)
            start_quiet(self._thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop drawing (the live line erased); ``say`` prints plain lines from then on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._stream()  # the last lines of a followed log
        with self._lock:
            if self.live is not None:
                self.live.stop()
                self.live = None

    def say(self, msg: str) -> None:
        with self._lock:
            if self.live is not None:
                self.live.console.print(msg, markup=False, highlight=False, soft_wrap=True)
                return
        self._say(msg)

    # --- the drawing thread -------------------------------------------------------------

    def _run(self) -> None:
        if self._stop.wait(DELAY if self.terminal else 0):
            return
        if self.terminal:
            self._start_live()
        while True:
            self._stream()
            if self._stop.wait(TICK):
                return

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        with self._lock:
            if self._stop.is_set():
                return
            console = Console(stderr=True, highlight=False)
            self.live = Live(_Line(self), console=console, transient=True, refresh_per_second=4)
            self.live.start()

    def _stream(self) -> None:
        if self.follow is None:
            return
        text = self.follow.read()
        if not text:
            return
        with self._lock:
            if self.live is not None:
                for line in text.splitlines():
                    self.live.console.print(line, markup=False, highlight=False, soft_wrap=True)
                return
        sys.stderr.write(text)
        sys.stderr.flush()

    def line(self) -> str:
        """The live line's text: label, elapsed time, state, latest output line."""
        parts = [f"{self.label} {int(time.monotonic() - self.started)}s"]
        try:
            if self.detail is not None and (d := self.detail()):
                parts.append(d)
            if self.follow is None and self.log is not None and (out := last_line(self.log())):
                parts.append(out)
        except Exception:  # noqa: BLE001 - a courtesy line must never break the command
            pass
        return " · ".join(parts)


class _Line:
    """Rendered by rich at every refresh: one line, cut to the terminal's width."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def __rich__(self) -> Any:
        from rich.text import Text

        frame = self.FRAMES[int(time.monotonic() * 8) % len(self.FRAMES)]
        text = Text(f"{frame} {self.watch.line()}", no_wrap=True, overflow="ellipsis")
        text.stylize("cyan", 0, 1)
        return text
