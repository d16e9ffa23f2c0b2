"""Human output: aligned plain text when piped, a rich table on a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .listing import TaskInfo
    from .overlap import Report
    from .repo import Ctx


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
        if i.place:
            note = f"land queue place {i.place}" + (f"; {note}" if note and not note.startswith("waiting") else "")
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


_MARK = {"conflict": "C", "overlap": "O", "declared": "d", "resource": "r"}
_ORDER = {"conflict": 0, "overlap": 1, "declared": 2, "resource": 3, "undeclared": 4}


def check_report(report: Report) -> None:
    names = [str(t["name"]) for t in report.tasks]
    if not report.collisions:
        print(f"no collisions among {len(names)} task{'s' * (len(names) != 1)} and '{report.base}'")
        return
    rows = []
    for c in sorted(report.collisions, key=lambda c: (_ORDER[c.kind], c.tasks)):
        named = [p + (" (hot)" if p in c.hot_paths else "") for p in c.paths[:5]]
        shown = ", ".join(named) + (f", and {len(c.paths) - 5} more" if len(c.paths) > 5 else "")
        rows.append(
            [
                c.kind.upper() if c.kind == "conflict" else c.kind,
                " <> ".join(c.tasks) if len(c.tasks) > 1 else f"{c.tasks[0]} (outside its --touch)",
                shown + (" (hot)" if c.hot and not any(p in c.hot_paths for p in c.paths[:5]) else ""),
            ]
        )
    table(["KIND", "TASKS", "PATHS"], rows)
    if len(names) > 4:  # a matrix shows the shape at a glance when there are many tasks
        cols = names + [report.base]
        worst: dict[tuple[str, str], str] = {}  # the worst kind of collision per pair
        rank = {"resource": 1, "declared": 1, "overlap": 2, "conflict": 3}
        for c in report.collisions:
            if len(c.tasks) < 2:
                continue  # 'undeclared' concerns one task
            a, b = c.tasks
            for key in ((a, b), (b, a)):
                if key not in worst or rank[c.kind] > rank[worst[key]]:
                    worst[key] = c.kind
        print()

        def mark(r: str, col: str) -> str:
            return "-" if r == col else _MARK[worst[r, col]] if (r, col) in worst else "."

        table([""] + cols, [[r] + [mark(r, col) for col in cols] for r in names])
        print("C conflict, O overlap, d declared paths, r resource")
