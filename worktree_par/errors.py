"""Domain errors. Each carries the exit code the product contract assigns to it.

The CLI catches ``WtpError`` once at the top and prints one line; core modules
never print or exit themselves.
"""

from __future__ import annotations

# Exit codes from ../shared/design/CONTRACT.md
OK = 0
FINDING = 1  # a finding or a refusal
USAGE = 2  # bad input, unknown task, not a repo, bad config
TIMEOUT = 3  # timed out waiting (slot, gate, queue)
INTERRUPTED = 130


class WtpError(Exception):
    """Base of every error wtp reports to the user as one line."""

    exit_code = USAGE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class UsageError(WtpError):
    exit_code = USAGE


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

    exit_code = FINDING


class DirtyWorktree(Refusal):
    pass


class LandConflict(Refusal):
    pass


class GateFailed(Refusal):
    pass


class WaitTimeout(WtpError):
    exit_code = TIMEOUT


class GitError(WtpError):
    """A git command failed in a way the caller did not expect."""

    exit_code = FINDING

    def __init__(self, cmd: list[str], code: int, stdout: str, stderr: str) -> None:
        self.cmd = cmd
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr.strip() or stdout.strip()).splitlines()
        last = detail[-1] if detail else "no output"
        super().__init__(f"'git {' '.join(cmd)}' failed (exit {code}): {last}")
