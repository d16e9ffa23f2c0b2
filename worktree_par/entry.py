"""Console entry point.  ``wtp`` and ``wtp --help`` are answered from a stored copy of
the help text without importing typer (issue 7: --help under 80 ms), and so are the
plain forms of the commands agents run most, ``wtp [-C DIR] path|start|land TASK`` and
``wtp [-C DIR] list [--json]``: typer's import and command building cost 15-20 ms, a
third of ``path``'s fixed cost.  Everything else goes to the typer CLI.
tests/test_cli_help.py keeps the stored copy identical to what typer renders
(scripts/gen_help.py rewrites it) and the fast paths identical to the typer commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HELP_FILE = Path(__file__).with_name("help.txt")


def _path(where: str | None, task: str) -> None:
    """``wtp path TASK`` exactly as cli.path does it (tests/test_cli_help.py compares them)."""
    from . import outcome, tasks

    def show() -> None:
        t, _ = tasks.run_in(outcome.open_repo(where), task)
        print(t.path)

    outcome.finish(show)


def _start(where: str | None, task: str) -> None:
    """``wtp start TASK`` (no options) exactly as cli.start does it."""
    from . import outcome, tasks

    def start() -> None:
        result = tasks.start(outcome.open_repo(where), task, say=outcome.err)
        outcome.report_start(result.task, result.messages)

    outcome.finish(start)


def _land(where: str | None, task: str) -> None:
    """``wtp land TASK`` (no options) exactly as cli.land does it."""
    from . import land, outcome

    def go() -> None:
        outcome.report_land(task, land.land(outcome.open_repo(where), task, say=outcome.err))

    outcome.finish(go)


def _list(where: str | None, as_json: bool) -> None:
    """``wtp list [--json]`` exactly as cli.list_ does it."""
    from . import outcome

    outcome.finish(lambda: outcome.report_list(outcome.open_repo(where), as_json))


FAST = {"path": _path, "start": _start, "land": _land}


def main() -> None:
    args = sys.argv[1:]
    if args in ([], ["-h"], ["--help"]) and os.environ.get("COLUMNS", "80") == "80" and HELP_FILE.exists():
        sys.stdout.write(HELP_FILE.read_text())
        sys.exit(0)
    where = None
    if len(args) == 4 and args[0] == "-C":
        where, args = args[1], args[2:]
    if len(args) == 2 and args[0] in FAST and not args[1].startswith("-"):
        FAST[args[0]](where, args[1])
    if args in (["list"], ["list", "--json"]):
        _list(where, len(args) == 2)
    from .cli import main as cli_main

    cli_main()
