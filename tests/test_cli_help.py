"""The stored --help text answered without importing typer must match what typer renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stored_help_matches_typer() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_help import render

    assert (ROOT / "worktree_par" / "help.txt").read_text() == render(), "run scripts/gen_help.py"


def test_help_does_not_import_typer_or_gitpython() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0 and out.stdout.startswith("Usage: wtp [OPTIONS] COMMAND [ARGS]...")
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not imported & {"typer", "git", "psutil", "filelock", "rich"}
