"""Locks and holders.

Every lock, ticket and gate records its holder so that ``list``, ``doctor`` and error
messages can say who holds it, and so that a dead holder (or a reused pid) is told from
a live one.  A holder is (boot id, pid namespace, pid, start time in clock ticks since
boot): no wall-clock time, which steps.  A holder this process cannot see (another
boot, another pid namespace: a container sharing the checkout) is never judged by pid:
it is alive while its heartbeat, a file it touches every few seconds, is fresh.

The locks themselves are ``flock``-based: the kernel drops them when the holder dies,
so a killed process never wedges anything.  A wait on a lock names its holder, says
when that holder is stopped (Ctrl-Z) and gives up on a stopped one instead of hanging.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

from .errors import Say, StateError, WaitTimeout, quiet
from .interrupts import INTERRUPTS, start_quiet
from .procs import dying, process_start, process_stopped

BEAT_EVERY = 2.0  # seconds between heartbeats
STALE_AFTER = float(os.environ.get("WTP_STALE_AFTER", "30"))  # a foreign holder silent this long is gone
STOPPED_GRACE = 3.0  # seconds a wait bears with a stopped holder (a Ctrl-Z soon undone by 'fg') before giving up
STOPPED = "stopped: resume it with 'fg' or end it"
# Per command, not per process: each front door runs a command in a context of its own
# (exits.in_command), so a long-lived process running many commands (the tests' in-process
# CLI, any embedding) never carries one command's deadline or reporter into the next.
_notify: ContextVar[Say] = ContextVar("wtp_notify", default=quiet)
_deadline: ContextVar[float | None] = ContextVar("wtp_lock_deadline", default=None)


def notify(msg: str) -> None:
    """Say what a long wait waits for, where the running command reports (stderr from the CLI)."""
    _notify.get()(msg)


def set_notify(say: Say) -> None:
    _notify.set(say)


def set_deadline(monotonic: float | None) -> None:
    """A command's --timeout (monotonic): lock waits end there too."""
    _deadline.set(monotonic)


def deadline() -> float | None:
    """The running command's --timeout (monotonic), None without one."""
    return _deadline.get()


class Holder(NamedTuple):
    pid: int
    start: int  # start time in clock ticks since boot (/proc/<pid>/stat): tells a reused pid apart
    boot: str  # the kernel's boot id
    pidns: str  # the pid namespace the pid is valid in
    host: str
    cmd: str
    since: float  # wall-clock time it took hold: for display only

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, d: object) -> Holder | None:
        """The holder a record names; None for no holder.  A record of the wrong shape
        raises ValueError (callers quarantine it)."""
        if not d:
            return None
        if not isinstance(d, dict):
            raise ValueError(f"a holder must be an object, not {type(d).__name__}")
        try:
            return cls(
                int(d["pid"]),
                int(d["start"]),
                str(d.get("boot", "")),
                str(d.get("pidns", "")),
                str(d["host"]),
                str(d["cmd"]),
                float(d["since"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad holder record {d!r}: {e}") from None

    def describe(self) -> str:
        age = max(0, int(time.time() - self.since))
        where = "" if self.host == _host() else f" on {self.host}"
        stopped = f" ({STOPPED})" if self.stopped() else ""
        return f"pid {self.pid}{where} ({self.cmd}), for {age}s{stopped}"

    def stopped(self) -> bool:
        """Whether the holder is stopped (Ctrl-Z, SIGSTOP), so that nothing it holds can move
        until it is resumed; judged only for a holder this process can see."""
        return self.local() and process_stopped(self.pid)

    def local(self) -> bool:
        """Whether this process can judge the holder by its pid."""
        return self.boot == boot_id() and self.pidns == pid_namespace()

    def beat_name(self) -> str:
        return f"{self.boot}-{self.pidns}-{self.pid}-{self.start}"


_ids: dict[str, str] = {}


def boot_id() -> str:
    if "boot" not in _ids:
        try:
            _ids["boot"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            _ids["boot"] = _host()  # no /proc: the host stands for the boot
    return _ids["boot"]


def pid_namespace() -> str:
    if "pidns" not in _ids:
        try:
            _ids["pidns"] = str(os.stat("/proc/self/ns/pid").st_ino)
        except OSError:
            _ids["pidns"] = ""
    return _ids["pidns"]


_me: Holder | None = None
_beats_dir: Path | None = None


def set_beats_dir(path: Path) -> None:
    """Where heartbeats are kept (the state dir); set when a repository is opened."""
    global _beats_dir
    _beats_dir = path


def me() -> Holder:
    """The holder record of this process; recording it starts this process's heartbeat."""
    global _me
    if _me is None:
        import shlex

        cmd = shlex.join(["wtp", *sys.argv[1:]])  # quoted: shown to people as a command they could run
        cmd = cmd if len(cmd) <= 200 else cmd[:199] + "…"
        pid = os.getpid()
        _me = Holder(pid, process_start(pid), boot_id(), pid_namespace(), _host(), cmd, time.time())
    _start_heartbeat()
    return _me


def holder_of(pid: int, cmd: str = "wtp land (detached)") -> Holder:
    """The holder record of another local process (one this process just started)."""
    return Holder(pid, process_start(pid), boot_id(), pid_namespace(), _host(), cmd, time.time())


_beating = False


def _forked() -> None:
    """In a forked child (land/handoff.py): its own holder record and heartbeat, made anew."""
    global _me, _beating
    _me, _beating = None, False


os.register_at_fork(after_in_child=_forked)


_HEARTBEAT = "wtp-heartbeat"


def held_any() -> bool:
    """Whether this process holds any lock (a fork then would share it with the child)."""
    return bool(_held)


def fork_safe() -> bool:
    """Whether a fork now gives the child no lock of ours, and no lock a thread of ours held
    mid-way: none is held, and no thread runs but the heartbeat, which takes none (it
    sleeps and touches its file)."""
    main = threading.main_thread()
    return not _held and all(t is main or t.name == _HEARTBEAT for t in threading.enumerate())


def drop_heartbeat() -> None:
    """(a process about to end by os._exit, its atexit not run) Its heartbeat file, if it made one."""
    if _beating and _beats_dir is not None and _me is not None:
        (_beats_dir / _me.beat_name()).unlink(missing_ok=True)


def _start_heartbeat() -> None:
    global _beating
    if _beating or _beats_dir is None or _me is None:
        return
    try:
        _beats_dir.mkdir(parents=True, exist_ok=True)
        beat = _beats_dir / _me.beat_name()
        beat.touch()
    except OSError:
        return  # a read-only state dir: the write that needs it reports the error
    _beating = True

    def loop() -> None:
        while True:
            time.sleep(BEAT_EVERY)
            try:
                os.utime(beat)
            except OSError:
                return

    start_quiet(threading.Thread(target=loop, name=_HEARTBEAT, daemon=True))
    atexit.register(lambda: beat.unlink(missing_ok=True))
    try:
        beats = list(_beats_dir.iterdir())
    except OSError:
        beats = []
    for old in beats:  # beats of processes killed long ago (SIGKILL leaves them)
        try:
            if time.time() - old.stat().st_mtime > 86400:
                old.unlink()
        except OSError:
            pass  # another process got there first


def heartbeat_age(h: Holder) -> float | None:
    """Seconds since the holder's last heartbeat, None when it has none."""
    if _beats_dir is None:
        return None
    try:
        return max(0.0, time.time() - (_beats_dir / h.beat_name()).stat().st_mtime)
    except OSError:
        return None


def is_alive(h: Holder | None) -> bool:
    """True while the holder's process runs.  One this process cannot see (another boot or
    pid namespace) is alive while its heartbeat is fresh."""
    if h is None:
        return False
    if not h.local():
        age = heartbeat_age(h)
        if age is None and h.boot != boot_id():
            return h.host != _host()  # a record from before heartbeats, or a host with no shared dir
        return age is not None and age < STALE_AFTER
    if h.pid == os.getpid():
        return True
    return process_start(h.pid) == h.start and not dying(h.pid)


class StoppedHolder:
    """A wait's patience with a stopped holder, one for every kind of wait (a lock, a gate, the
    land queue): ``check`` raises WaitTimeout (exit 3) once the holder it is shown has stayed
    stopped for STOPPED_GRACE seconds, instead of the wait hanging until someone resumes it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None

    def check(self, h: Holder | None, who: str = "") -> None:
        """``h``: the holder waited for now (None: unknown); ``who``: it in words (its description)."""
        if h is None or not h.stopped():
            self.since = None
            return
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since > STOPPED_GRACE:
            raise WaitTimeout(f"{self.what} is held by {who or h.describe()}; nothing else can proceed until then")


def _host() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


_held: dict[str, Lock] = {}  # path -> the Lock object of this process holding it


@contextmanager
def no_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block is done (in the main thread; other threads
    never get them): taking or dropping a lock is never left half done by Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)  # (wtp's other threads block them: start_quiet)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Lock:
    """An exclusive lock on ``path``, a file only its holder writes (its holder record).

    ``flock`` on a descriptor of our own: the kernel drops it when the holder dies.  Not
    filelock: it polls where flock blocks, and its import costs every command (README,
    Dependencies).  Taking a lock this process already holds raises instead of hanging."""

    def __init__(self, path: Path, what: str = "") -> None:
        self.path = path
        self.what = what or f"lock {path.name}"
        self._fd: int | None = None

    def _take(self) -> bool:
        key = str(self.path)
        if key in _held:
            raise RuntimeError(f"{self.what} ({self.path}) is already held by this process")
        with no_interrupt():  # a Ctrl-C between the flock and its bookkeeping would leave it held
            return self._take_now(key)

    def _take_now(self, key: str) -> bool:
        while True:
            try:
                # O_NOFOLLOW: a planted symlink never makes us create or lock another file.
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise StateError(f"cannot open {self.path} ({e.strerror}): check that the folder is writable") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if os.fstat(fd).st_nlink:
                self._fd = fd
                _held[key] = self
                self._record(fd)
                return True
            os.close(fd)  # the file was removed while we waited: lock the one now at path

    @staticmethod
    def _record(fd: int) -> None:
        try:
            data = json.dumps(me().to_json()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError:
            pass  # the holder record is a courtesy to waiters; the flock is what excludes

    def holder(self) -> Holder | None:
        """Who holds the lock now, as it recorded itself (None when unknown)."""
        try:
            with open(self.path, "rb") as f:
                return Holder.from_json(json.loads(f.read() or b"null"))
        except (OSError, ValueError):
            return None

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock: up to ``timeout`` seconds (WaitTimeout, exit 3), or without a
        timeout for as long as its holder runs.  A stopped holder is named, and given up on."""
        if self._take():
            return
        asked = timeout
        deadline = _deadline.get()
        if timeout is None and deadline is not None:
            # The command's --timeout, with a second's grace: a lock held for milliseconds is
            # still taken after the deadline passed, so the wait that owns the timeout reports it.
            timeout = max(1.0, deadline - time.monotonic())
        t0 = time.monotonic()
        told = False
        stopped = StoppedHolder(self.what)
        while not self._take():
            waited = time.monotonic() - t0
            h = self.holder() if waited > 0.5 else None
            if h is not None and not told:
                notify(f"waiting for {self.what}, held by {h.describe()}")
                told = True
            stopped.check(h)
            if timeout is not None and waited >= timeout:
                h = h or self.holder()
                who = f", held by {h.describe()}" if h else ""
                raise WaitTimeout(
                    f"timed out after {asked if asked is not None else round(waited):g}s waiting for {self.what} ({self.path}){who}"
                )
            # Held for milliseconds (a state write, a ticket update): poll finely at first, so a
            # waiter takes over within a few ms of the release (flock itself cannot time out).
            time.sleep(0.004 if waited < 1 else 0.02)

    def try_acquire(self) -> bool:
        return self._take()

    def release(self) -> None:
        if self._fd is None:
            return
        with no_interrupt():
            fd, self._fd = self._fd, None
            _held.pop(str(self.path), None)
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> Lock:
        try:
            self.acquire()
            return self
        except BaseException:
            self.release()  # interrupted once it was ours: give it back, as __exit__ will not run
            raise

    def __exit__(self, *exc: object) -> None:
        self.release()
