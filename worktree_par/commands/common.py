"""What every command body shares: JSON output, the arguments after --, the task a
command stands in, refusals as JSON, bounded waits."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..exits import err, here, json_emitted

if TYPE_CHECKING:
    from ..repo import Ctx


def bound_waits(timeout: float | None, *, network: bool = True) -> None:
    """A command's --timeout bounds every wait it makes, internal locks included, and (unless
    the command bounds its network waits itself, as a remote gate does) each network call."""
    if timeout is not None:
        if not 0 <= timeout < float("inf"):  # nan and inf too: a deadline must be a number of seconds
            raise UsageError(f"--timeout must be a number of seconds (0 or more), not {timeout:g}")
        from .. import gitops, locks

        locks.set_deadline(time.monotonic() + timeout)
        if network:
            gitops.narrow_network(timeout)


def emit(data: Any) -> None:
    json_emitted()  # an error after it prints no second document, whatever becomes of this one
    print(json.dumps(data, indent=2))


def after_dashes(cmd: list[str]) -> list[str]:
    cmd = cmd[1:] if cmd and cmd[0] == "--" else cmd
    if not cmd:
        raise UsageError("no command given: put it after --, as in 'wtp run TASK -- make test'")
    return cmd


def task_here(ctx: Ctx, where: str | None) -> str | None:
    """The task whose worktree the command runs in (any subfolder), if any."""
    t = ctx.store.read().task_at(here(where).resolve())
    return t.name if t is not None else None


def current_task(ctx: Ctx, where: str | None, task: str | None) -> str:
    """The task named, or else the one whose worktree the command runs in."""
    name = task or task_here(ctx, where)
    if name is None:
        raise UsageError("name a task, or run this inside a task's worktree: see 'wtp list'")
    return name


def left_behind(ctx: Ctx, where: str | None) -> None:
    """The command removed the worktree it was run from: say where to go."""
    try:
        gone = not os.path.isdir(os.getcwd())
    except FileNotFoundError:
        gone = True
    if gone and where is None:
        err(f"the worktree you are in was removed: cd {ctx.repo.config_root}")
