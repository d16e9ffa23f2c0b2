"""How a command ends: the one place that turns an error into one line on stderr and the
contract's exit code (README, Exit codes), shared by the typer CLI and entry's fast path, and
kept free of typer so the fast path does not import it."""

from __future__ import annotations

import contextvars
import errno
import os
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from . import atomic
from .errors import ExitCode, GitError, UsageError, WtpError

if TYPE_CHECKING:
    from .repo import Ctx

T = TypeVar("T")

_state_dir: ContextVar[Path | None] = ContextVar("wtp_state_dir", default=None)  # where crash logs go


def in_command(fn: Callable[[], T]) -> T:
    """Run one command in a context of its own: what it sets for itself (its deadline, where
    it reports, where its crash log goes, its network budget) ends with it."""
    return contextvars.copy_context().run(fn)


def here(where: str | None) -> Path:
    """The directory a command runs as if started in (-C, else the current one)."""
    try:
        cwd = Path(os.getcwd())
    except FileNotFoundError:
        if where and os.path.isabs(where):
            return Path(where)
        raise UsageError(
            "the current directory no longer exists (a worktree removed by 'wtp land' or 'wtp rm'?): "
            "cd to the repository, or pass -C REPO"
        ) from None
    return cwd / where if where else cwd


def open_repo(where: str | None) -> Ctx:
    """The Ctx of the repository at ``where`` (-C) or the current directory; crash logs go
    to its state dir from then on."""
    from . import locks
    from .repo import open_ctx

    locks.set_notify(err)
    c = open_ctx(here(where))
    _state_dir.set(c.store.dir)
    return c


def err(msg: str) -> None:
    # One write, line and newline together: print() writes them apart, and a Ctrl-C between the
    # two ran the next line into this one.
    sys.stderr.write(f"{msg}\n")
    sys.stderr.flush()


# Under --json a command that fails before (or instead of) printing its document still prints
# one on stdout (README, JSON output): the front doors say whether it was asked for, emit()
# says when one was printed.
_json: dict[str, object] = {"wanted": False, "emitted": False, "task": None}


def json_asked(args: list[str]) -> None:
    """The command line's own --json (not one after '--', which belongs to the command run)."""
    own = args[: args.index("--")] if "--" in args else args
    _json.update(wanted="--json" in own, emitted=False, task=None)


def json_emitted() -> None:
    _json["emitted"] = True


def json_task(name: str) -> None:
    """The task the command is about, named in the document of a refusal from then on."""
    _json["task"] = name


def failed(message: str, code: int, state: str = "refused", paths: list[str] | None = None) -> None:
    """The error line on stderr and, under --json when nothing was printed yet, its document."""
    if _json["wanted"] and not _json["emitted"]:
        import json

        _json["emitted"] = True  # once, whatever becomes of the write
        doc = {"task": _json["task"], "state": state, "error": message, "paths": list(paths or []), "exit": int(code)}
        print(json.dumps(doc, indent=2), flush=True)
    err(f"wtp: {message}")


def crash_log(details: str = "") -> str:
    """Write the traceback (and ``details``) to a log; its path, or why none could be written."""
    import tempfile
    import traceback

    text = f"wtp {' '.join(sys.argv[1:])}\n\n{details}\n{traceback.format_exc()}"
    name = f"wtp-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    tried = []
    state_dir = _state_dir.get()
    for base in ([state_dir / "logs"] if state_dir else []) + [Path(tempfile.gettempdir())]:
        try:
            base.mkdir(exist_ok=True)
            atomic.write_log(base / name, text, fresh=True)  # (a FIFO or a link planted at its name: refused)
            return str(base / name)
        except OSError as e:
            tried.append(f"{base}: {e.strerror}")
    return f"no log could be written ({'; '.join(tried)})"


# What to do about what the machine said, where it is not the usual full disk or permissions.
_FIX = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space (a quota is full)",
    errno.EACCES: "fix the permissions",
    errno.EPERM: "fix the permissions",
    errno.EROFS: "make the filesystem writable",
    errno.ENOTDIR: "a file stands where a folder is needed: move it away",
    errno.EEXIST: "something is in the way: move it away",
    errno.EISDIR: "a folder stands where wtp keeps a file: move it away",
}


def exit_for(e: BaseException) -> NoReturn:
    """Report an exception raised by a command (call it from the except clause) and exit."""
    if isinstance(e, KeyboardInterrupt):
        failed("interrupted", ExitCode.INTERRUPTED, "interrupted")
        sys.exit(ExitCode.INTERRUPTED)
    if isinstance(e, GitError):
        failed(f"{e.message}; details in {crash_log(e.details())}", e.exit_code, "error")
        sys.exit(e.exit_code)
    if isinstance(e, WtpError):
        failed(e.message, e.exit_code, paths=getattr(e, "paths", None))
        sys.exit(e.exit_code)
    if isinstance(e, OSError) and e.errno is not None:
        # The machine said no (no space, read-only, permissions): not a bug of wtp's.
        where = f" ({e.filename})" if e.filename else ""
        fix = _FIX.get(e.errno, "free space or fix the permissions")
        failed(f"{e.strerror}{where}: {fix}, then run the command again", ExitCode.USAGE)
        sys.exit(ExitCode.USAGE)
    failed(f"internal error ({e.__class__.__name__}: {e}); details in {crash_log()}", ExitCode.FINDING, "error")
    sys.exit(ExitCode.FINDING)


def reported(e: Exception) -> int:
    """Say an error as a command would (its one line) and return its exit code, going on."""
    try:
        exit_for(e)
    except SystemExit as done:
        return int(done.code or 0)


def finish(fn: Callable[[], int | None]) -> NoReturn:
    """Run a command body and exit with its code, or with the one its error stands for."""
    try:
        code = in_command(fn)
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - the one place errors become a line
        exit_for(e)
    sys.exit(code or 0)
