"""Replacing a file atomically: the new content written to a file of our own beside it,
flushed to disk, then renamed over it, so a reader sees the old file or the new one, never
half of either, and a crash leaves the old one whole.  (Not tempfile.mkstemp: importing
tempfile costs every command start-up time.)  And reading a record, or writing a log, where
something else than a regular file may have been put: refused at once, never waited on."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

TYPE_CHECKING = False  # (typing is not imported at run time: it costs start-up time)
if TYPE_CHECKING:
    from typing import BinaryIO


def replace(
    path: Path,
    data: bytes,
    where: Path | None = None,
    *,
    keep_mode: bool = False,
    mode: int | None = None,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data``; the new file is made in ``where`` (default: beside it,
    which must be on the same filesystem), created exclusively (nothing planted at its name is
    opened: a FIFO is never waited on, a symlink never followed), 0o666 less the umask, or
    with ``path``'s own permissions (``keep_mode``), or ``mode``, and synced to disk unless ``durable`` is
    False (a cache or a courtesy record, rewritten often, that a crash may lose).  A planted
    symlink at ``path`` is replaced, never followed.  OSError when it cannot be written: then
    nothing was changed."""
    folder = where if where is not None else path.parent
    tmp = folder / f".{path.name}.wtp-{os.getpid()}-{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if keep_mode and path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        try:
            os.replace(tmp, path)
        except OSError as e:  # said of the file in the way (a folder there), not of our tmp file
            raise OSError(e.errno, e.strerror, str(path)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_regular(path: Path, *, follow: bool = False) -> BinaryIO:
    """``path`` opened to read, a regular file: a FIFO or a device planted there is refused
    (OSError) at once instead of being waited on for ever, and a symlink is not followed
    (``follow``: it is, to a regular file)."""
    fd = os.open(path, os.O_RDONLY | (0 if follow else os.O_NOFOLLOW) | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # (before fdopen, which refuses a folder itself)
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(fd, "rb")


def read_regular(path: Path, *, follow: bool = False) -> bytes:
    """The bytes of ``path``, a regular file (open_regular)."""
    with open_regular(path, follow=follow) as f:
        return f.read()


def open_log(path: Path, *, fresh: bool = False) -> BinaryIO:
    """``path`` opened to append to (``fresh``: emptied first), as a log: a FIFO or a device
    planted there is refused (OSError, said as "something is in the way") at once instead
    of being waited on for ever, and a symlink is not followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_TRUNC if fresh else 0), 0o644)
    except OSError as e:  # a FIFO nobody reads (ENXIO), a symlink (ELOOP)
        if e.errno in (errno.ENXIO, errno.ELOOP):
            raise OSError(errno.EEXIST, "not a regular file, so not a log", str(path)) from e
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # (a FIFO someone reads, a device)
        os.close(fd)
        raise OSError(errno.EEXIST, "not a regular file, so not a log", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "ab")


def in_the_way(path: Path) -> bool:
    """Something that open_log refuses is at ``path`` now (a FIFO, a device, a folder, a symlink)."""
    try:
        return not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def write_log(path: Path, text: str, *, fresh: bool = False) -> None:
    """Append ``text`` to the log ``path`` (``fresh``: in place of what it held): open_log."""
    with open_log(path, fresh=fresh) as f:
        f.write(text.encode())
