"""How a command ends: the one place that turns an error into one line on stderr and
the contract's exit code (CONTRACT.md), shared by the typer CLI and entry's fast path,
and kept free of typer so the fast path does not import it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .errors import INTERRUPTED, WtpError

state_dir: Path | None = None  # set once a repo is opened: where crash logs go


def open_repo(where: str | None):  # type: ignore[no-untyped-def]
    """The Ctx of the repository at ``where`` (-C) or the current directory; crash logs
    go to its state dir from then on."""
    global state_dir
    from .repo import open_ctx

    c = open_ctx(Path(where).absolute() if where else Path.cwd())
    state_dir = c.store.dir
    return c


def err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def report_start(task, messages: list[str]) -> None:  # type: ignore[no-untyped-def]
    """What plain 'wtp start' prints: the worktree's path on stdout (notes on stderr), or
    why the task waits on stdout when it was queued."""
    from .state import QUEUED

    if task.state == QUEUED:
        for m in messages:
            print(m)
        return
    for m in messages:
        err(m)
    print(task.path)


def report_land(task: str, result) -> None:  # type: ignore[no-untyped-def]
    """What plain 'wtp land' prints once the task landed."""
    print(f"landed '{task}' at {result.commit}" + (f" after {result.attempts} attempts" if result.attempts > 1 else ""))
    for m in result.messages:
        print(m)


def report_list(ctx, as_json: bool, all_tasks: bool = False) -> None:  # type: ignore[no-untyped-def]
    """What 'wtp list [--json] [--all]' prints."""
    from . import render, tasks

    infos = tasks.list_tasks(ctx, all_tasks=all_tasks)
    if as_json:
        import json

        print(json.dumps(tasks.list_json(infos), indent=2))
    else:
        render.task_table(infos, ctx)


def crash_log() -> Path:
    import tempfile
    import traceback

    base = state_dir / "logs" if state_dir and state_dir.is_dir() else Path(tempfile.gettempdir())
    base.mkdir(exist_ok=True)
    path = base / f"wtp-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(f"wtp {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path


def exit_for(e: BaseException) -> NoReturn:
    """Report an exception raised by a command (call it from the except clause) and exit."""
    if isinstance(e, KeyboardInterrupt):
        err("wtp: interrupted")
        sys.exit(INTERRUPTED)
    if isinstance(e, WtpError):
        err(f"wtp: {e.message}")
        sys.exit(e.exit_code)
    err(f"wtp: internal error ({e.__class__.__name__}: {e}); details in {crash_log()}")
    sys.exit(1)


def finish(fn: Callable[[], object]) -> NoReturn:
    try:
        fn()
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - the one place errors become a line
        exit_for(e)
    sys.exit(0)
