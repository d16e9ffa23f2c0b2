"""Console entry point.  ``wtp`` and ``wtp --help`` are answered from a stored copy of
the help text without importing typer (issue 7: --help under 80 ms), and so is the
plain form of the command agents run most, ``wtp [-C DIR] path TASK`` (typer's import
and command building are a third of a command's fixed cost); everything else goes to
the typer CLI.  tests/test_cli_help.py keeps the stored copy identical to what
typer renders; scripts/gen_help.py rewrites it."""

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


def main() -> None:
    args = sys.argv[1:]
    if args in ([], ["-h"], ["--help"]) and os.environ.get("COLUMNS", "80") == "80" and HELP_FILE.exists():
        sys.stdout.write(HELP_FILE.read_text())
        sys.exit(0)
    where = None
    if len(args) == 4 and args[0] == "-C":
        where, args = args[1], args[2:]
    if len(args) == 2 and args[0] == "path" and not args[1].startswith("-"):
        _path(where, args[1])
    from .cli import main as cli_main

    cli_main()
