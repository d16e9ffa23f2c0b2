"""What the ninth review (the repositories, environments and inputs users have) broke, each
kept as a test."""

from __future__ import annotations

from pathlib import Path

from .conftest import Repo, make_repo


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


def test_a_land_rebase_leaves_the_users_branches_and_fixups_alone(project: Repo, tmp_path: Path) -> None:
    """With rebase.updateRefs (and rebase.autoSquash) in the user's config, the land's rebase
    moved the user's own branch that pointed into the task's commits, and left it moved when
    the land failed; the commits are replayed as they were made."""
    project.git("config", "rebase.updateRefs", "true")
    project.git("config", "rebase.autoSquash", "true")
    p = _start(project, "a", {"one.txt": "1\n"})
    project.git("branch", "mybranch", "wtp/a")
    project.commit({"two.txt": "2\n", "BROKEN": "red\n"}, "fixup! a work", cwd=p)
    mine = project.git("rev-parse", "mybranch")
    other = make_repo(tmp_path / "o", name="other")
    other.git("fetch", "-q", str(project.remote), "main")
    other.git("reset", "-q", "--hard", "FETCH_HEAD")
    other.commit({"other.txt": "o\n"}, "other")
    other.git("push", "-q", str(project.remote), "HEAD:main")  # the base moved: the land really rebases
    out = project.wtp("land", "a", "--gate", "./check.sh")
    assert out.code == 1, out.err  # red: BROKEN
    assert project.git("rev-parse", "mybranch") == mine
    project.git("rm", "-q", "BROKEN", cwd=p)
    project.git("commit", "-q", "-m", "three", cwd=p)
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 0
    assert project.git("rev-parse", "mybranch") == mine
    project.git("fetch", "-q", "origin")
    subjects = project.git("log", "--format=%s", "-4", "origin/main").splitlines()
    assert subjects == ["three", "fixup! a work", "a work", "other"]
