"""'wtp check': the collision report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from ..exits import open_repo
from .common import emit, task_here

if TYPE_CHECKING:
    pass


def check(
    where: str | None,
    names: list[str] | None,
    fail_on: str = "overlap",
    as_json: bool = False,
    *,
    all_tasks: bool = False,
) -> int:
    """Inside a task's worktree, with no task named, the report is about that task (--all: every pair)."""
    from .. import overlap, render

    if fail_on not in overlap.FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(overlap.FAIL_ON)}, not {fail_on!r}")
    if names and all_tasks:
        raise UsageError("--all reports every pair: leave out the task names, or drop --all")
    c = open_repo(where)
    if not names and not all_tasks:
        mine = task_here(c, where)
        names = [mine] if mine else None
    report = overlap.check(c, names or None)
    if as_json:
        emit(report.to_json())
    else:
        render.check_report(report)
    return ExitCode.FINDING if report.worst() >= overlap.FAIL_ON[fail_on] else 0
