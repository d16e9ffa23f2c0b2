"""The forge layer's errors: one line each, with the contract's exit code (README,
"Exit codes"), what went wrong in the forge's own words, and what to do.  No message ever
holds the token: ``Http`` removes it from anything the forge echoes before raising."""

from __future__ import annotations

from ..errors import ExitCode, WtpError


class ForgeError(WtpError):
    """The forge refused or failed in a way wtp cannot resolve by itself (5xx after the
    retries, an answer of an unexpected shape): exit 1, nothing was changed by wtp."""

    exit_code = ExitCode.FINDING


class ForgeConfigError(ForgeError):
    """A ``[forge]`` setting cannot work (an ``http://`` API on a host that is not loopback,
    a remote URL wtp cannot read a repository from): exit 2."""

    exit_code = ExitCode.USAGE


class ForgeAuthError(ForgeError):
    """No token, or the forge refused it (401/403): exit 2, naming the variable to set."""

    exit_code = ExitCode.USAGE


class ForgeNotFound(ForgeError):
    """The forge answered 404 for the repository or a request: exit 2, naming ``[forge] repo``."""

    exit_code = ExitCode.USAGE


class ForgeUnreachable(ForgeError):
    """No connection could be made (DNS, refused, TLS): exit 1, the land did not happen."""


class ForgeTimeout(ForgeError):
    """The forge did not answer within the call's deadline, or its rate limit resets after
    it: exit 3, as for every other wait that ran out (README, "Exit codes")."""

    exit_code = ExitCode.TIMEOUT
