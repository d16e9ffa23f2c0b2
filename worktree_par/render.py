"""Human output: aligned plain text when piped, a rich table on a terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import stacking
from .records import shown
from .state import State

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


def _age(when: int) -> str:
    import time

    if not when:
        return ""
    secs = max(0, int(time.time()) - when)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{secs // n}{unit}"
    return f"{secs}s"


def _short(path: str | None, ctx: Ctx) -> str:
    """A worktree path as short as it can be said: relative to the main worktree's parent."""
    if not path:
        return "-"
    import os

    rel = os.path.relpath(path, ctx.root.parent)
    return rel if not rel.startswith("..") and len(rel) < len(path) else path


def task_table(infos: list[TaskInfo], ctx: Ctx, here: str | None = None) -> None:
    """What 'wtp list' prints: one row a task that fits 80 columns (the branch is always
    <prefix><task>, so it is not repeated), the task you stand in marked '*', and a note
    on its own line below the row."""
    if not infos:
        print("no tasks: start one with 'wtp start NAME'")
        return
    rows, notes = [], []
    listed = State(tasks={i.task.name: i.task for i in infos})
    standing = listed.task_at(here) if here else None
    for i in infos:
        t = i.task
        state = (
            t.state
            + (f" ({t.phase})" if t.phase and t.phase != t.state else "")  # not 'landing (landing)'
            + (f" ({_ING.get(i.op, i.op)})" if i.op else "")
            + (" setup-failed" if t.setup.startswith("failed") else "")
        )
        ab = "-" if i.ahead is None else f"+{i.ahead}/-{i.behind}"
        note = i.problem or (t.note if t.state in ("queued", "active", "blocked", "landing") else "")
        below = stacking.below(listed, t) if t.stacked_on and not note and t.state == "active" else None
        if below is not None and below.state != "landed":
            note = f"started on the work of '{below.name}' ({below.state}): lands after it"
        if t.state == "landed" and t.commit and not i.problem:
            note = f"landed {t.commit[:10]}"
        if i.place:
            note = f"land queue place {i.place}" + (f"; {note}" if note and not note.startswith("waiting") else "")
        last = f"{shown(i.subject)} ({_age(i.when)})" if i.subject else "-"  # an ESC in it would drive the terminal
        mark = "*" if standing is not None and standing.name == t.name else ""
        procs = ",".join(map(str, i.processes))
        rows.append([mark + t.name, state, ab, _n(i.dirty), _n(i.changed), _n(t.port), _short(t.path, ctx), last])
        notes.append("; ".join(x for x in (note, f"processes inside: {procs}" if procs else "") if x))
    headers = ["TASK", "STATE", "+/-", "DIRTY", "CHANGED", "PORT", "PATH", "LAST COMMIT"]
    root = ctx.worktree_root()
    usual = all(not i.task.path or Path(i.task.path) == root / i.task.name for i in infos)
    if usual:  # every worktree is where wtp puts it: say so once instead of in every row
        headers.pop(6)
        for r in rows:
            r.pop(6)
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers)]
    tty = sys.stdout.isatty()
    if tty:  # fit the terminal: the last commit, then the path give way; never the task name
        import shutil

        room = shutil.get_terminal_size((80, 24)).columns
        for k in range(len(widths) - 1, 5, -1):  # the last commit, then the path
            over = sum(widths) + 2 * (len(widths) - 1) - room
            if over > 0:
                widths[k] = max(len(headers[k]), widths[k] - over)
    print(_line(headers, widths, tty, bold=True))
    for r, note in zip(rows, notes):
        print(_line(r, widths, tty))
        if note:
            print(_note(note, tty))
    if usual and any(i.task.path for i in infos):
        print(f"worktrees: {_nearest(str(root), here)}/<task>")


_ING = {
    "rebase": "rebasing",
    "merge": "merging",
    "cherry-pick": "cherry-picking",
    "revert": "reverting",
    "am": "applying",
    "bisect": "bisecting",
}


def _note(note: str, tty: bool) -> str:
    """A row's note below it; on a terminal wrapped at word boundaries to its width, the
    lines after the first indented under the first (a pipe gets one line, for grep)."""
    if not tty:
        return f"  └ {note}"
    import shutil
    import textwrap

    width = max(40, shutil.get_terminal_size((80, 24)).columns - 1)
    return textwrap.fill(
        note, width, initial_indent="  └ ", subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
    )


def _nearest(path: str, here: str | None) -> str:
    """``path`` absolute, or relative to where the command runs when that is shorter."""
    import os

    rel = os.path.relpath(path, here) if here else path
    return rel if len(rel) < len(path) else path


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _plain() -> bool:
    """No colour even on a terminal: NO_COLOR set (no-color.org), or a dumb terminal."""
    import os

    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def _line(cells: list[str], widths: list[int], tty: bool, bold: bool = False) -> str:
    out = "  ".join(_cell(c, w).ljust(w) for c, w in zip(cells, widths)).rstrip()
    if not tty or _plain():
        return out
    if bold:
        return f"\033[1m{out}\033[0m"
    colour = _STATE_COLOUR.get(cells[1].split()[0] if cells[1] else "")
    if colour:  # the state stands out; the rest stays plain
        start = len("  ".join(_cell(c, w).ljust(w) for c, w in zip(cells[:1], widths[:1]))) + 2
        end = start + len(_cell(cells[1], widths[1]))
        out = f"{out[:start]}\033[{colour}m{out[start:end]}\033[0m{out[end:]}"
    return out


_STATE_COLOUR = {"queued": "33", "landing": "36", "blocked": "1;31", "landed": "32", "abandoned": "2"}


_MARK = {"semantic": "S", "conflict": "C", "overlap": "O", "likely": "l", "declared": "d", "resource": "r"}
_ORDER = {"semantic": -1, "conflict": 0, "overlap": 1, "likely": 2, "declared": 3, "resource": 4, "undeclared": 5}


def check_report(report: Report) -> None:
    names = [str(t["name"]) for t in report.tasks]
    if not report.collisions:
        n = len(report.notes)  # tasks not seen whole (a worktree or a branch gone): said on their own lines
        part = f" ({n} not seen whole: see the note{'s' * (n != 1)} above)" if n else ""
        print(f"no collisions among {len(names)} task{'s' * (len(names) != 1)} and '{report.base}'{part}")
        return
    rows = []
    for c in sorted(report.collisions, key=lambda c: (_ORDER[c.kind], c.tasks)):
        named = [p + (" (hot)" if p in c.hot_paths else "") for p in c.paths[:5]]
        if c.kind == "likely":  # the evidence: which file usually changes with which
            named = [
                f"{e['file']} usually with {e['with']} ({e['shared']} of {e['of']} commits)" for e in c.evidence[:5]
            ]
        shown = ", ".join(named) + (f", and {len(c.paths) - 5} more" if len(c.paths) > 5 else "")
        if c.kind == "semantic":
            shown = "fail together (each passes alone)"
        rows.append(
            [
                c.kind.upper() if c.kind in ("conflict", "semantic") else c.kind,
                " <> ".join(c.tasks) if len(c.tasks) > 1 else f"{c.tasks[0]} (outside its --touch)",
                shown + (" (hot)" if c.hot and not any(p in c.hot_paths for p in c.paths[:5]) else ""),
            ]
        )
    table(["KIND", "TASKS", "PATHS"], rows)
    if len(names) > 4:  # a matrix shows the shape at a glance when there are many tasks
        cols = names + [report.base]
        worst: dict[tuple[str, str], str] = {}  # the worst kind of collision per pair
        rank = {"resource": 1, "declared": 1, "likely": 1.5, "overlap": 2, "conflict": 3, "semantic": 4}
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
        print(
            "S semantic, " * any(c.kind == "semantic" for c in report.collisions)
            + "C conflict, O overlap, l likely (history), d declared paths, r resource"
        )
