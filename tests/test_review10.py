"""What the tenth review (the day's fixes, and the agent hook, MCP and shell doors) broke,
each kept as a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from .conftest import Repo


def _start(r: Repo, name: str, files: dict[str, str] | None = None) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    if files:
        r.commit(files, f"{name} work", cwd=p)
    return p


def _cli(r: Repo, *args: str, stdout: IO[str] | int = subprocess.PIPE, stderr: IO[str] | int = subprocess.PIPE) -> int:
    return subprocess.run(
        [sys.executable, "-m", "worktree_par", *args], cwd=r.path, stdout=stdout, stderr=stderr, timeout=120
    ).returncode


@pytest.mark.parametrize("which", ["stdout", "stderr"])
def test_an_output_on_a_full_disk_changes_neither_the_land_nor_its_exit_code(project: Repo, which: str) -> None:
    """Review 10: with stderr on a full disk the land stopped mid-gate at its progress line
    (nothing published); with stdout there it landed and then said 'No space left on device'
    and exited 2 (a traceback under --json)."""
    _start(project, "a", {"a.txt": "a\n"})
    with open("/dev/full", "w") as full:
        streams = {"stdout": full} if which == "stdout" else {"stderr": full}
        code = _cli(project, "land", "a", "--gate", "./check.sh", "--json", **streams)
    assert code == 0
    assert project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"


def test_a_refusal_under_json_on_a_full_disk_keeps_its_exit_code(project: Repo) -> None:
    with open("/dev/full", "w") as full:
        assert _cli(project, "land", "nosuch", "--json", stdout=full) == 2
        assert _cli(project, "nosuch", stderr=full) == 2
