"""'wtp path' and 'wtp run': a task's worktree, and commands run inside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import isolate
from ..errors import ExitCode
from ..exits import err, open_repo
from .common import after_dashes, current_task

if TYPE_CHECKING:
    pass


def path(where: str | None, task: str | None, main: bool = False) -> int:

    c = open_repo(where)
    if main:  # the main worktree (where 'wtp cd' alone goes)
        print(c.repo.config_root)
        return 0
    t, _ = isolate.run_in(c, current_task(c, where, task))
    print(t.path)
    return 0


def run(where: str | None, task: str | None, cmd: list[str]) -> int:
    import subprocess

    cmd = after_dashes(cmd)
    c = open_repo(where)
    t, env = isolate.run_in(c, current_task(c, where, task))
    try:
        code = subprocess.call(cmd, cwd=t.path, env=env)
    except FileNotFoundError:
        err(f"wtp: command not found: {cmd[0]}")
        return ExitCode.NOT_FOUND
    except PermissionError:
        err(f"wtp: command cannot be run (permission denied): {cmd[0]}")
        return 126
    return code if code >= 0 else 128 - code
