"""What the ninth review (the repositories, environments and inputs users have) broke, each
kept as a test."""

from __future__ import annotations

from pathlib import Path

from .conftest import Repo


def _start(r: Repo, name: str, files: dict[str, str] | None = None) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    if files:
        r.commit(files, f"{name} work", cwd=p)
    return p


def _fork(r: Repo, name: str) -> object:
    return next(t for t in r.state()["tasks"] if t["name"] == name)["fork"]


def test_a_task_started_from_the_queue_records_its_fork(project: Repo) -> None:
    """A task a land started from the queue had no fork recorded: its land took the merge-base
    instead, so a commit force-pushed off the base came back with it, and a land of it with no
    commits of its own said 'landed' and removed it."""
    project.write(".wtp.toml", "max_active = 1\n")
    project.git("commit", "-q", "-am", "one at a time")
    project.git("push", "-q", "origin", "main")
    cfg = project.git("rev-parse", "HEAD")
    _start(project, "a", {"a.txt": "a\n"})
    assert project.wtp("start", "p").code == 4  # queued behind a
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 0
    p = Path(project.wtp("path", "p").out.strip())
    landed = project.git("rev-parse", "origin/main")
    assert _fork(project, "p") == landed  # where its branch was made
    out = project.wtp("land", "p", "--gate", "./check.sh")
    assert (out.code, out.err.strip()) == (1, f"wtp: task 'p' has no commits to land: commit your work in {p} first")
    project.commit({"p.txt": "p\n"}, "p work", cwd=p)
    project.git("push", "-q", "--force", "origin", f"{cfg}:refs/heads/main")  # a drops 'a' from the base
    assert project.wtp("land", "p", "--gate", "./check.sh").code == 0
    project.git("fetch", "-q", "origin")
    subjects = project.git("log", "--format=%s", "origin/main").splitlines()
    assert subjects == ["p work", "one at a time", "the test", "initial"]
