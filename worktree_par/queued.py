"""Queued tasks: what 'wtp next' would start now, in queue order, and starting it in the
background, so that the command that freed a slot (a land that began, a new start that
found earlier tasks able to start) waits for none of their setups."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import atomic, claims, isolate, schedule, trust
from .errors import WtpError, os_said
from .repo import Ctx
from .state import State, Task

LOG_LIMIT = 1 << 20  # bytes of start-behind.log before it is rotated


def tips_for(ctx: Ctx, st: State, declares: bool = False) -> dict[str, str]:
    """The landing tasks' work a queued task may start on (isolate.landing_tips), read only when
    one declares paths (or the task being started does: ``declares``): stacking needs paths."""
    return isolate.landing_tips(ctx, st) if declares or any(q.touch or q.held for q in st.queued()) else {}


def order(
    ctx: Ctx,
    st: State,
    remote: list[Task] | None = None,
    tips: dict[str, str] | None = None,
    startable: Callable[[Task], bool] | None = None,
) -> list[tuple[Task, schedule.Decision]]:
    """What 'wtp next' decides for each queued task now, in queue order (schedule.in_order):
    what promote starts, and what it leaves waiting; promote itself goes by it.  ``startable``
    (default: its --base resolves) says whether an admitted task can be started."""
    if ctx.cfg.setup_run and trust.untrusted(ctx, st, "setup.run"):
        return [(q, schedule.Decision(False, False, [])) for q in st.queued()]  # promote starts nothing

    def resolves(q: Task) -> bool:
        try:
            return q.start_ref is None or ctx.resolve_start(q.start_ref) is not None
        except WtpError:  # its --base is gone: promote leaves it queued, and it takes no slot
            return False

    recorded = claims.declarations(ctx, st)
    return schedule.in_order(
        st,
        ctx.cfg.max_active,
        recorded=recorded,
        remote=remote,
        tips=tips_for(ctx, st) if tips is None else tips,
        startable=startable or resolves,
    )


def start_behind(ctx: Ctx, why: str) -> Path:
    """Start what the queue can start in a background 'wtp next', its output appended to a log
    (returned); it outlives this command, and a Ctrl-C here is not for it.  OSError if it
    cannot be started."""
    log = ctx.store.subdir("logs") / "start-behind.log"
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_LIMIT:  # one earlier generation kept
            os.replace(log, log.with_suffix(".log.1"))
    with atomic.open_log(log) as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {why}: 'wtp next'\n".encode())
        out.flush()
        subprocess.Popen(
            [sys.executable, "-m", "worktree_par", "-C", str(ctx.root), "next"],
            cwd=ctx.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return log


def start_first(ctx: Ctx, t: Task, ahead: list[Task]) -> str:
    """Queued tasks that 'wtp start T' found able to start (they take free slots before it):
    started in the background, and the line that says so."""
    names = ", ".join(f"'{q.name}'" for q in ahead)
    said = f"{names}, queued before '{t.name}', start first" if all(q.seq < t.seq for q in ahead) else f"{names} start"
    try:
        log = start_behind(ctx, f"'wtp start {t.name}' found {names} able to start")
    except OSError as e:
        return f"{names} can start now: 'wtp next' starts them ({os_said(e)})"
    return f"{said}, in the background (log: {log})"
