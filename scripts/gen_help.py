#!/usr/bin/env python3
"""Rewrite worktree_par/help.txt from what typer renders for 'wtp --help' at 80 columns."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def render() -> str:
    from typer.testing import CliRunner

    from worktree_par.cli import app

    return CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"}, prog_name="wtp").stdout


if __name__ == "__main__":
    os.environ["COLUMNS"] = "80"
    (ROOT / "worktree_par" / "help.txt").write_text(render())
    print("wrote worktree_par/help.txt")
