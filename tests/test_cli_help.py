"""The stored --help text answered without importing typer must match what typer renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Repo

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


def _imported(out: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in out.splitlines() if "|" in line}


def test_the_fast_path_does_not_import_typer(remote_repo: Repo) -> None:
    """entry answers path, start, land, list and check without typer (tests/test_code_health.py shows
    it calls the same bodies as the typer CLI); here: typer is not even imported."""
    r = remote_repo
    p = Path(r.wtp("start", "a").out.strip())
    r.commit({"a.txt": "a\n"}, cwd=p)
    for args, code in (
        (["path", "a"], 0),
        (["list"], 0),
        (["-C", str(r.path), "list", "--json"], 0),
        (["start", "b"], 0),
        (["land", "a"], 0),
        (["path", "nosuch"], 2),
        (["check", "--json", "--fail-on", "never"], 0),
        (["check", "--fail-on", "nonsense"], 2),
    ):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "worktree_par", *args],
            cwd=r.path,
            capture_output=True,
            text=True,
        )
        assert out.returncode == code, (args, out.stderr[-500:])
        assert "typer" not in _imported(out.stderr), args
    outside = subprocess.run(
        [sys.executable, "-m", "worktree_par", "-C", "/", "path", "a"], capture_output=True, text=True
    )
    assert outside.returncode == 2 and outside.stderr.count("\n") == 1 and "Traceback" not in outside.stderr


def test_a_ctrl_c_while_a_command_is_still_importing_is_one_line_and_exit_130(repo: Repo) -> None:
    """A nit carried from the last reviews: a Ctrl-C during typer's import (before any command's own handling)
    printed a KeyboardInterrupt traceback.  Now it is the interrupted line and code 130."""
    out = repo.wtp_proc("doctor", env={"WTP_TEST_INT_AT": "entry:typer"})
    assert (out.code, out.err) == (130, "wtp: interrupted\n"), out.err
