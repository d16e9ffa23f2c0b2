"""Locks and holders.

Every lock, ticket and gate records its holder (pid, process start time, host,
command) so that ``list``, ``doctor`` and error messages can say who holds it,
and so that a dead holder (or a reused pid) is told from a live one.  The locks
themselves are ``flock``-based (filelock): the kernel drops them when the holder
dies, so a killed process never wedges anything.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import WaitTimeout


@dataclass(frozen=True)
class Holder:
    pid: int
    start: float  # process start time (psutil create_time), tells a reused pid apart
    host: str
    cmd: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Holder | None:
        if not d:
            return None
        return cls(int(d["pid"]), float(d["start"]), str(d["host"]), str(d["cmd"]), float(d["since"]))

    def describe(self) -> str:
        age = max(0, int(time.time() - self.since))
        where = "" if self.host == _host() else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.cmd}), for {age}s"


def process_start(pid: int) -> float:
    """When the process started (seconds since the epoch), 0.0 when there is none.
    Tells a reused pid apart.  Linux: from /proc without importing psutil."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
            return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


_boot: float | None = None


def _boot_time() -> float:
    global _boot
    if _boot is None:
        with open("/proc/stat") as f:
            _boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    return _boot


_me: Holder | None = None


def me() -> Holder:
    """The holder record of this process."""
    global _me
    if _me is None:
        cmd = " ".join(["wtp", *sys.argv[1:]])[:200]
        _me = Holder(os.getpid(), process_start(os.getpid()), _host(), cmd, time.time())
    return _me


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(h: Holder | None) -> bool:
    """True while the holder's process runs.  A holder on another host is assumed alive."""
    if h is None:
        return False
    if h.host != _host():
        return True
    if h.pid == os.getpid():
        return True
    start = process_start(h.pid)
    return start != 0.0 and abs(start - h.start) < 1.0


def _host() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


class Lock:
    """An exclusive lock on ``path`` (a file that is never written by anyone else)."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        self._lock = FileLock(str(path), thread_local=False)

    def acquire(self, timeout: float = -1, what: str = "lock") -> None:
        from filelock import Timeout

        try:
            # Held for milliseconds (a state write, a ticket update): poll finely, so a waiter
            # takes over within a few ms instead of a coarse tick (flock itself cannot time out).
            self._lock.acquire(timeout=timeout, poll_interval=0.004)
        except Timeout as e:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for the {what} ({self.path})") from e

    def try_acquire(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
            return True
        except Timeout:
            return False

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
