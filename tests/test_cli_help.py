"""The stored --help text answered without importing typer must match what typer renders."""

from __future__ import annotations

import json
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


def test_fast_path_command_answers_as_typer_does_without_importing_it(repo: Repo) -> None:
    """'wtp [-C DIR] path TASK' skips typer (entry.py); output, errors and exit codes must not change."""
    assert repo.wtp("start", "a").code == 0
    for args in (["path", "a"], ["path", "nosuch"], ["-C", str(repo.path), "path", "a"], ["path", "bad/name"]):
        fast = repo.wtp_proc(*args)
        typer_way = repo.wtp(*args)
        assert (fast.code, fast.out, fast.err) == (typer_way.code, typer_way.out, typer_way.err), args
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "path", "a"],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("/a")
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "typer" not in imported
    outside = subprocess.run(
        [sys.executable, "-m", "worktree_par", "-C", "/", "path", "a"], capture_output=True, text=True
    )
    assert outside.returncode == 2 and outside.stderr.count("\n") == 1 and "Traceback" not in outside.stderr


def test_start_fast_path_answers_as_typer_does_without_importing_it(repo: Repo) -> None:
    """'wtp [-C DIR] start TASK' skips typer too: admitted, resumed, queued and refused alike."""

    def same(fast_args: list[str], typer_args: list[str], swap: tuple[str, str] = ("", "")) -> None:
        fast, typer_way = repo.wtp_proc(*fast_args), repo.wtp(*typer_args)
        assert fast.code == typer_way.code, fast_args
        assert (fast.out, fast.err) == (typer_way.out.replace(*swap), typer_way.err.replace(*swap)), fast_args

    same(["start", "a"], ["start", "b"], ("/b\n", "/a\n"))  # admitted: the path
    same(["start", "a"], ["start", "a"])  # already active: the path, and a note on stderr
    assert repo.wtp("start", "c").code == 0
    queued = repo.wtp_proc("start", "d")  # the cap is reached: queued, the reason on stdout
    assert queued.code == 0 and queued.out.startswith("task 'd' is queued (place 1): waits because")
    same(["start", "d"], ["start", "d"])  # already queued
    same(["-C", str(repo.path), "start", "d"], ["start", "d"])
    for bad in ("bad/name", "x.lock", ".x", "x" * 65):
        same(["start", bad], ["start", bad])
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "start", "e"],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "is queued (place 2)" in out.stdout
    assert "typer" not in {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}


def test_land_fast_path_answers_as_typer_does_without_importing_it(remote_repo: Repo) -> None:
    """'wtp [-C DIR] land TASK' skips typer too: landed, already landed, blocked and refused alike."""
    repo = remote_repo

    def work(task: str, files: dict[str, str]) -> None:
        repo.commit(files, f"{task} work", cwd=Path(repo.wtp("start", task).out.strip()))

    def same(fast_args: list[str], typer_args: list[str], swaps: list[tuple[str, str]]) -> None:
        fast, typer_way = repo.wtp_proc(*fast_args), repo.wtp(*typer_args)
        out, err = typer_way.out, typer_way.err
        for a, b in swaps:
            out, err = out.replace(a, b), err.replace(a, b)
        assert (fast.code, fast.out, fast.err) == (typer_way.code, out, err), fast_args

    def tip() -> str:
        return repo.git("rev-parse", "main").strip()

    work("a", {"a.txt": "a\n"})
    work("b", {"b.txt": "b\n"})
    typer_way = repo.wtp("land", "b")
    b_at = tip()
    fast = repo.wtp_proc("land", "a")
    a_at = tip()
    assert fast.code == typer_way.code == 0
    assert (fast.out, fast.err) == (
        typer_way.out.replace("'b'", "'a'").replace(b_at, a_at).replace("/b", "/a"),
        typer_way.err,
    )
    same(["land", "a"], ["land", "a"], [])  # already landed
    same(["-C", str(repo.path), "land", "nosuch"], ["land", "nosuch"], [])
    same(["land", "bad/name"], ["land", "bad/name"], [])
    work("c", {"a.txt": "c\n"})  # both conflict with what 'e' lands
    work("d", {"a.txt": "d\n"})
    work("e", {"a.txt": "e\n"})
    assert repo.wtp("land", "e").code == 0
    same(["land", "c"], ["land", "d"], [("'d'", "'c'"), ("/d,", "/c,"), ("land d'", "land c'")])
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "land", "c"],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stderr[-300:]  # still blocked
    assert "typer" not in {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}


def test_list_fast_path_answers_as_typer_does_without_importing_it(repo: Repo) -> None:
    """'wtp [-C DIR] list [--json]' skips typer too, with the same table and JSON."""
    assert repo.wtp("list").out == repo.wtp_proc("list").out  # no tasks yet
    assert repo.wtp("start", "a").code == 0
    repo.write("x.txt", "dirty\n", cwd=Path(repo.wtp("path", "a").out.strip()))
    assert repo.wtp("start", "b").code == 0
    for args in (["list"], ["list", "--json"], ["-C", str(repo.path), "list", "--json"]):
        fast, typer_way = repo.wtp_proc(*args), repo.wtp(*args)
        assert (fast.code, fast.out, fast.err) == (typer_way.code, typer_way.out, typer_way.err), args
    assert [t["dirty"] for t in json.loads(repo.wtp_proc("list", "--json").out)["tasks"]] == [1, 0]
    outside = repo.wtp_proc("-C", "/", "list")
    assert outside.code == 2 and outside.err.count("\n") == 1 and "Traceback" not in outside.err
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "list"],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.startswith("TASK  STATE")
    assert "typer" not in {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
