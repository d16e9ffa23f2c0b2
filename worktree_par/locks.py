"""Locks and holders.

Every lock, ticket and gate records its holder (pid, process start time, host,
command) so that ``list``, ``doctor`` and error messages can say who holds it,
and so that a dead holder (or a reused pid) is told from a live one.  The locks
themselves are ``flock``-based: the kernel drops them when the holder
dies, so a killed process never wedges anything.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from .errors import WaitTimeout


class Holder(NamedTuple):
    pid: int
    start: float  # process start time (psutil create_time), tells a reused pid apart
    host: str
    cmd: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

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
    """An exclusive lock on ``path`` (a file that is never written by anyone else).

    ``flock`` on a descriptor of our own: the kernel drops it when the holder dies.  Not
    filelock: since 3.15 importing it pulls in asyncio, logging and hashlib, about 25 ms
    of every command's start-up (issue 7), for the few lines below.  Re-entrant on the
    same object, like filelock's; two objects on one path exclude each other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    def _take(self, block: bool) -> bool:
        if self._fd is not None:
            self._depth += 1
            return True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if block else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if os.fstat(fd).st_nlink:
                self._fd, self._depth = fd, 1
                return True
            os.close(fd)  # the file was removed while we waited: lock the one now at path

    def acquire(self, timeout: float = -1, what: str = "lock") -> None:
        if timeout < 0:
            self._take(block=True)
            return
        deadline = time.monotonic() + timeout
        # Held for milliseconds (a state write, a ticket update): poll finely, so a waiter
        # takes over within a few ms of the release (flock itself cannot time out).
        while not self._take(block=False):
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"timed out after {timeout:g}s waiting for the {what} ({self.path})")
            time.sleep(0.004)

    def try_acquire(self) -> bool:
        return self._take(block=False)

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth == 0:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
