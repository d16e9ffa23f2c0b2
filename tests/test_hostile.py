"""Hostile input (issue 6): each case gets exit 2 (or 1 for a refusal), one line naming
what is wrong and what to do, no traceback, and nothing written before validation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import Repo, git, make_repo

BAD_NAMES = [
    ("a/b", "may only contain letters"),
    ("../escape", "may only contain letters"),
    ("-rf", "may not start with '-'"),
    (".hidden", "may not start with '.'"),
    ("a..b", "may not contain '..'"),
    ("x.lock", "may not end in '.lock'"),
    ("x;rm -rf ~", "may only contain letters"),
    ("$(id)", "may only contain letters"),
    ("a\nb", "may only contain letters"),
    ("tab\there", "may only contain letters"),
    ("caf\u00e9", "may only contain letters"),
    ("x" * 65, "65 characters long"),
    ("", "it is empty"),
]


def _nothing_written(r: Repo) -> None:
    assert not r.state_file.exists()
    assert r.branches() == ["main"]
    assert len(r.git("worktree", "list").splitlines()) == 1
    assert not (r.path.parent / "repo.worktrees").exists()


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_bad_task_names(repo: Repo, name: str, why: str) -> None:
    out = repo.wtp_proc("start", "--", name)
    assert out.code == 2
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why in out.err and "try something like" in out.err
    assert "\n" not in out.err.rstrip("\n") and "\t" not in out.err
    _nothing_written(repo)


BAD_CONFIGS = [
    ("max_actve = 2\n", "unknown key 'max_actve'"),
    ("[land]\nstrategi = 'x'\n", "unknown key 'land.strategi'"),
    ("max_active = '2'\n", "'max_active' must be a whole number"),
    ("max_active = true\n", "'max_active' must be a whole number"),
    ("max_active = [\n", "not valid TOML"),
    ("max_active = 0\n", "'max_active' must be 1 or more"),
    ("max_active = -3\n", "'max_active' must be 1 or more"),
    ("[land]\ntimeout = -5\n", "'land.timeout' must be a positive number"),
    ("port_base = 65000\n", "'port_base' must be between 1024"),
    ("port_base = 80\n", "'port_base' must be between 1024"),
    ("[land]\nstrategy = 'yolo'\n", "'land.strategy' must be one of rebase, squash, merge"),
    ("[setup]\ncopy = ['../outside']\n", "must be a path inside the repository"),
    ("[setup]\ncopy = '/etc'\n", "'setup.copy' must be a list of strings"),
    ("setup = 3\n", "'setup' must be a table"),
    ("worktree_root = '.'\n", "is inside the worktree"),
    ("base = 'nope'\n", "base branch 'nope' does not exist"),
    ("branch_prefix = 'a..b/'\n", "invalid branch name"),
]


@pytest.mark.parametrize("text,why", BAD_CONFIGS)
def test_bad_configs(repo: Repo, text: str, why: str) -> None:
    repo.write(".wtp.toml", text)
    out = repo.wtp_proc("start", "a")
    assert out.code == 2, out.err
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why in out.err
    _nothing_written(repo)


BAD_STATES = [
    ('{"version": 1, "tasks": [', "is corrupt"),
    ("not json at all", "is corrupt"),
    ('{"version": 99, "tasks": []}', "written by a newer wtp (format 99"),
    ('["a list"]', "is corrupt"),
    ('{"version": 1, "tasks": [{"bogus": 1}]}', "is corrupt"),
]


@pytest.mark.parametrize("text,why", BAD_STATES)
def test_bad_state_files(repo: Repo, text: str, why: str) -> None:
    repo.state_file.parent.mkdir()
    repo.state_file.write_text(text)
    for cmd in (["list"], ["start", "a"]):
        out = repo.wtp_proc(*cmd)
        assert out.code == 2
        assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
        assert str(repo.state_file) in out.err and why in out.err
    assert repo.state_file.read_text() == text  # never overwritten
    assert repo.branches() == ["main"]


def test_a_corrupt_state_is_restored_from_the_kept_copy(repo: Repo) -> None:
    repo.wtp_proc("start", "a")
    repo.wtp_proc("start", "b")
    repo.state_file.write_text(repo.state_file.read_text()[:40])  # truncated
    out = repo.wtp_proc("list")
    assert out.code == 2 and "run 'wtp doctor --fix' to restore the previous good copy" in out.err
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 1, fixed.err
    assert "restored" in fixed.out
    # the kept copy predates the end of b's start; doctor completed it
    tasks = json.loads(repo.wtp_proc("list", "--json").out)["tasks"]
    assert [(t["name"], t["state"]) for t in tasks] == [("a", "active"), ("b", "active")]
    assert repo.wtp_proc("doctor").out == "healthy: nothing to fix\n"


def test_a_symlink_planted_as_state_file_is_not_followed(repo: Repo, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"version": 1, "tasks": []}')
    repo.state_file.parent.mkdir()
    repo.state_file.symlink_to(target)
    out = repo.wtp_proc("start", "a")
    assert out.code == 2 and "symlink" in out.err
    assert target.read_text() == '{"version": 1, "tasks": []}'


def test_outside_a_repository(tmp_path: Path) -> None:
    out = Repo(tmp_path).wtp_proc("list")
    assert (out.code, out.err) == (
        2,
        f"wtp: {tmp_path} is not inside a git repository: run wtp from a clone, or pass -C REPO\n",
    )


def test_in_a_bare_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "b.git")
    out = Repo(tmp_path / "b.git").wtp_proc("start", "a")
    assert out.code == 2 and "is a bare repository" in out.err
    assert not (tmp_path / "b.git" / "wtp").exists()


def test_in_a_repository_with_no_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main", "empty")
    r = Repo(tmp_path / "empty")
    out = r.wtp_proc("start", "a")
    assert out.code == 2 and "cannot tell the base branch" in out.err
    assert not r.state_file.exists()


def test_on_a_detached_head(repo: Repo) -> None:
    repo.git("checkout", "-q", "--detach")
    out = repo.wtp_proc("start", "a")
    assert out.code == 0, out.err


def test_missing_directory_for_minus_c(tmp_path: Path) -> None:
    out = Repo(tmp_path).wtp_proc("-C", str(tmp_path / "nope"), "list")
    assert (
        out.code == 2 and out.err == f"wtp: directory {tmp_path / 'nope'} does not exist: pass an existing path to -C\n"
    )


@pytest.mark.parametrize(
    "args,why",
    [
        (["start"], "Missing argument 'TASK'"),
        (["start", "a", "--timeout", "5"], "--timeout goes with --wait"),
        (["start", "a", "--wait", "--timeout", "-1"], "--timeout"),
        (["bogus"], "No such command 'bogus'"),
        (["start", "a", "--touch", "../x"], "--touch '../x' is not a path"),
        (["start", "a", "--touch", "/etc/passwd"], "--touch '/etc/passwd' is not a path"),
        (["start", "a", "--use", ""], "--use '' is not a resource name"),
        (["run", "a"], "Missing argument"),
        (["gate", "bad name", "--", "true"], "invalid gate name"),
    ],
)
def test_bad_usage(repo: Repo, args: list[str], why: str) -> None:
    out = repo.wtp_proc(*args)
    assert out.code == 2, out.err
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why.lower() in out.err.lower()
    _nothing_written(repo)


def test_state_files_follow_the_umask(tmp_path: Path) -> None:
    r = make_repo(tmp_path)
    proc = subprocess.run(
        ["sh", "-c", 'umask 027 && exec "$0" -m worktree_par start a', __import__("sys").executable],
        cwd=r.path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert oct(r.state_file.stat().st_mode & 0o777) == oct(0o640)
