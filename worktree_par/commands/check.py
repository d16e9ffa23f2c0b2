"""'wtp check': the collision report; with --test, semantic collisions too (the gate run
on the merge of the live tasks, semantic/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, UsageError
from ..exits import err, open_repo
from .common import emit, task_here

if TYPE_CHECKING:
    from .. import overlap
    from ..repo import Ctx


def check(
    where: str | None,
    names: list[str] | None,
    fail_on: str = "overlap",
    as_json: bool = False,
    all_tasks: bool = False,
    test: bool = False,
    budget: int | None = None,
    all_pairs: bool = False,
    timeout: float | None = None,
) -> int:
    """Inside a task's worktree, with no task named, the report is about that task (--all: every pair)."""
    from .. import overlap, render

    if fail_on not in overlap.FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(overlap.FAIL_ON)}, not {fail_on!r}")
    if names and all_tasks:
        raise UsageError("--all reports every pair: leave out the task names, or drop --all")
    if not test and (budget is not None or all_pairs or timeout is not None):
        raise UsageError("--budget, --all-pairs and --timeout belong to --test: add --test, or drop them")
    if budget is not None and budget < 1:
        raise UsageError(f"--budget must be at least 1, not {budget}")
    if timeout is not None and not 0 < timeout < float("inf"):  # nan too
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    c = open_repo(where)
    if test:
        return _test(c, names, fail_on, as_json, budget, all_pairs, timeout)
    if not names and not all_tasks:
        mine = task_here(c, where)
        names = [mine] if mine else None
    report = overlap.check(c, names or None)
    last = _last(c)
    red = False  # a current background result in which a task fails alone (or the base does)
    if last is not None and (found := _background(c, last, names)) is not None:
        report = report._replace(collisions=[*report.collisions, *found[0]])
        red = found[1]
    if as_json:
        emit({**report.to_json(), **({"semantic_last": last} if last else {})})
    else:
        render.check_report(_shown(report))
        _notes(report)
        if last:
            from ..semantic import result

            print(result.summary(last))
    return _exit(report, red, fail_on)


def _exit(report: overlap.Report, red: bool, fail_on: str) -> int:
    """1 on a collision at or above --fail-on, or at 'semantic' and below on a task failing
    its gate alone or the gate failing on the base (as 'check --test' exits)."""
    from .. import overlap

    level = overlap.FAIL_ON[fail_on]
    return ExitCode.FINDING if report.worst() >= level or (red and level <= overlap.RANK["semantic"]) else 0


def _background(c: Ctx, last: dict[str, Any], names: list[str] | None) -> tuple[list[overlap.Collision], bool] | None:
    """What a current background result found about the tasks reported (its semantic
    collisions, and whether a task or the base fails alone); None when it is stale, under
    way or an error: then it is only shown."""
    from ..semantic import result
    from ..state import LIVE

    if not result.current(last):
        return None
    live = {t.name for t in c.store.read().tasks.values() if t.state in LIVE}
    found = result.background_collisions(last, live, c.store.dir / "logs")
    return [s for s in found if not names or set(s.tasks) & set(names)], result.background_red(last, live, names)


def _shown(report: overlap.Report) -> overlap.Report:
    """The report as the table prints it: paths with their control characters escaped (a
    file name holding a line break forged a row, an ESC drove the terminal); the JSON
    keeps them as they are."""
    from ..records import shown

    def one(c: overlap.Collision) -> overlap.Collision:
        evidence = [{**e, **{k: shown(str(e[k])) for k in ("file", "with") if k in e}} for e in c.evidence]
        return c._replace(
            paths=[shown(p) for p in c.paths], hot_paths=[shown(p) for p in c.hot_paths], evidence=evidence
        )

    return report._replace(collisions=[one(c) for c in report.collisions])


def _notes(report: overlap.Report) -> None:
    """The tasks not seen whole, below the table (the JSON has them as "notes"): a report
    of no collisions never leaves out a task without saying so."""
    for note in report.notes:
        err(f"note: {note}")


def _last(c: Ctx) -> dict[str, Any] | None:
    """With [check] test = "auto": the background run's last result (started anew when the
    tasks' commits changed since)."""
    from ..semantic import background as bg

    return bg.observe(c) if c.cfg.check_test.strip() == "auto" else None


def _test(
    c: Ctx,
    names: list[str] | None,
    fail_on: str,
    as_json: bool,
    budget: int | None,
    all_pairs: bool,
    timeout: float | None,
) -> int:
    from .. import overlap, render
    from ..interrupts import term_as_ctrl_c
    from ..semantic import report as semantic_report
    from ..semantic import result, search

    search.gate_of(c)  # no gate: a usage error before anything is built
    report = overlap.check(c, names or None)
    say = (lambda msg: None) if as_json else err
    with term_as_ctrl_c():  # stopped by a supervisor or a closed terminal: clean up as on Ctrl-C (130)
        res = search.check_test(
            c,
            names or None,
            budget=budget or c.cfg.max_active,
            timeout=timeout if timeout is not None else c.cfg.land_timeout,
            all_pairs=all_pairs,
            say=say,
        )
    result.save(c, res.to_json())
    report = report._replace(collisions=[*report.collisions, *res.collisions()])
    if as_json:
        emit({**report.to_json(), "test": res.to_json()})
    else:
        render.check_report(_shown(report))
        _notes(report)
        semantic_report.show(res)
    if report.worst() >= overlap.FAIL_ON[fail_on] or (
        (res.alone or res.base_red) and overlap.FAIL_ON[fail_on] <= overlap.RANK["semantic"]
    ):
        return ExitCode.FINDING
    if res.verdict() == "timeout":
        err(
            f"wtp: the gate timed out after {res.timeout:g}s on the merge: no verdict; raise --timeout or [land] timeout"
        )
        return ExitCode.TIMEOUT
    return 0
