"""Console entry point.  ``wtp`` and ``wtp --help`` are answered from a stored copy of
the help text without importing typer (issue 7: --help under 80 ms); everything else
goes to the typer CLI.  tests/test_cli_help.py keeps the stored copy identical to what
typer renders; scripts/gen_help.py rewrites it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HELP_FILE = Path(__file__).with_name("help.txt")


def main() -> None:
    args = sys.argv[1:]
    if args in ([], ["-h"], ["--help"]) and os.environ.get("COLUMNS", "80") == "80" and HELP_FILE.exists():
        sys.stdout.write(HELP_FILE.read_text())
        sys.exit(0)
    from .cli import main as cli_main

    cli_main()
