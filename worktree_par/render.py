"""Human output: aligned plain text when piped, a rich table on a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .repo import Ctx
    from .tasks import TaskInfo


def table(headers: list[str], rows: list[list[str]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(*headers, box=None, header_style="bold", pad_edge=False)
        for r in rows:
            t.add_row(*r)
        Console().print(t)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for r in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def task_table(infos: list[TaskInfo], ctx: Ctx) -> None:
    if not infos:
        print("no tasks: start one with 'wtp start NAME'")
        return
    rows = []
    for i in infos:
        t = i.task
        state = (
            t.state + (f" ({t.phase})" if t.phase else "") + (" setup-failed" if t.setup.startswith("failed") else "")
        )
        ab = "-" if i.ahead is None else f"+{i.ahead}/-{i.behind}"
        note = i.problem or t.note or (f"landed {t.commit[:10]}" if t.commit else "")
        rows.append(
            [
                t.name,
                state,
                t.branch,
                t.path or "-",
                t.base,
                ab,
                _n(i.dirty),
                _n(i.changed),
                ",".join(map(str, i.processes)) or "-",
                _n(t.port),
                note,
            ]
        )
    table(
        ["TASK", "STATE", "BRANCH", "PATH", "BASE", "AHEAD/BEHIND", "DIRTY", "CHANGED", "PROCS", "PORT", "NOTE"], rows
    )
