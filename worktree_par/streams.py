"""The standard streams as a command finds them: closed by its caller (``>&-``), in a locale
that cannot encode what wtp prints, or a pipe whose reader went away (``wtp list | head -1``).
None of these changes what the command does or the exit code it ends with (README, Exit
codes): what cannot be written is dropped, or written escaped."""

from __future__ import annotations

import atexit
import io
import os
import sys

# No typing import: this runs before every command, --version included (a few ms of startup).


class _Dropping:
    """A standard stream that may stop taking what is written (its reader gone, its disk full):
    from then on what is written to it goes to /dev/null (its file descriptor too, so that
    nothing fails at exit), and the command goes on to its own end."""

    def __init__(self, stream: io.TextIOBase, name: str) -> None:
        self._stream, self._name = stream, name

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as e:  # the reader gone (EPIPE), a full disk (ENOSPC), a dead terminal (EIO)
            self._gone(e)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            self._gone(e)

    def _gone(self, e: OSError) -> None:
        if self._name == "stdout" and not isinstance(e, BrokenPipeError):  # not a reader that had enough
            print(f"wtp: could not write the output ({e.strerror or e}): the rest of it is dropped", file=sys.stderr)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _nonblocking_again(fd: int) -> None:
    try:
        os.set_blocking(fd, False)
    except OSError:
        pass


def settle() -> None:
    """Make the standard streams safe to use, whatever the caller gave: a closed one is
    /dev/null, text the locale cannot encode is written backslash-escaped, and an output that
    stops taking writes (a reader gone, a full disk) makes the rest go nowhere rather than fail
    the command."""
    if sys.stdin is None:  # closed ('<&-'): reads find nothing, as from /dev/null
        sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the process
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the life of the process
            continue
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(errors="backslashreplace")
                if not os.get_blocking(stream.fileno()):  # a caller's non-blocking pipe: a full one
                    os.set_blocking(stream.fileno(), True)  # is waited for, not taken as gone
                    atexit.register(_nonblocking_again, stream.fileno())  # the caller's, as it was
            except (ValueError, OSError, io.UnsupportedOperation):
                pass
        setattr(sys, name, _Dropping(stream, name))
