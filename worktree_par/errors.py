"""Domain errors. Each carries the exit code the product contract assigns to it.

The CLI catches ``WtpError`` once at the top and prints one line; core modules
never print or exit themselves.  Types shared across the core (the ``Say``
callback) live here too, below every module that uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

Say = Callable[[str], None]  # how the core reports progress: one line at a time, to stderr


def quiet(_: str) -> None:
    """A ``Say`` that says nothing."""


class ExitCode(IntEnum):
    """The exit codes of the product contract (README, Exit codes)."""

    OK = 0
    FINDING = 1  # a finding or a refusal
    USAGE = 2  # bad input, unknown task, not a repo, bad config
    TIMEOUT = 3  # timed out waiting (slot, gate, queue)
    QUEUED = 4  # accepted but not started: 'wtp start' queued the task (stdout stays empty)
    NOT_FOUND = 127  # the command to run does not exist (run, gate)
    INTERRUPTED = 130


class WtpError(Exception):
    """Base of every error wtp reports to the user as one line."""

    exit_code: int = ExitCode.USAGE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class UsageError(WtpError):
    exit_code = ExitCode.USAGE


class InvalidTaskName(UsageError):
    pass


class TaskNotFound(UsageError):
    pass


class NotARepo(UsageError):
    pass


class ConfigError(UsageError):
    pass


class StateError(UsageError):
    pass


class Refusal(WtpError):
    """The command understood the request but refuses it to protect work."""

    exit_code = ExitCode.FINDING


class DirtyWorktree(Refusal):
    pass


class WouldLoseWork(Refusal):
    """The guard refused a destructive step: something the worktree holds is kept nowhere else."""

    def __init__(self, message: str, lost: list[str] | None = None) -> None:
        super().__init__(message)
        self.lost: list[str] = list(lost or [])


class LandBlocked(Refusal):
    """A land was refused and the task is now blocked; ``paths`` names the conflicting paths."""

    kind = "refused"

    def __init__(self, message: str, paths: list[str] | None = None) -> None:
        super().__init__(message)
        self.paths: list[str] = list(paths or [])


class LandConflict(LandBlocked):
    kind = "conflict"


class GateFailed(LandBlocked):
    kind = "gate"


class WaitTimeout(WtpError):
    exit_code = ExitCode.TIMEOUT


class RemoteTimeout(WaitTimeout):
    """A git network call (fetch, ls-remote, push) ran past its deadline ([remote] timeout,
    or a command's --timeout) and its process group was stopped."""


class RemoteFailed(WtpError):
    """A git network call that the remote refused, or could not be reached for (a wrong URL, no
    network, no access, no such branch): one line with git's reason and what to check."""

    exit_code = ExitCode.USAGE


class GitError(WtpError):
    """A git command failed in a way the caller did not expect.  Built only by gitops.run."""

    exit_code = ExitCode.FINDING

    def __init__(self, cmd: list[str], code: int, stdout: str, stderr: str, cwd: str = "") -> None:
        self.cmd = cmd
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.cwd = cwd
        detail = (stderr.strip() or stdout.strip()).splitlines()
        last = detail[-1] if detail else "no output"
        super().__init__(f"'git {' '.join(cmd)}' failed (exit {code}): {last}")

    def details(self) -> str:
        """Everything needed to reproduce the failure, for the crash log."""
        return f"cwd: {self.cwd}\nargv: git {' '.join(self.cmd)}\nexit: {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n"


def count(n: int, noun: str) -> str:
    """``count(1, "file")`` is "1 file", ``count(2, "file")`` "2 files"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def os_said(e: OSError) -> str:
    """An OSError as a line says it: what the system said and of which file, without Python's
    '[Errno N]'."""
    if not e.strerror:
        return str(e)
    return f"{e.strerror} ({e.filename})" if e.filename else e.strerror
