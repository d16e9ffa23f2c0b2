"""A land through a forge given up (Ctrl-C) and then its task removed (review 5's risk): the
request the land opened is said (with its URL) while the task is kept, and closed, with its
head branch deleted, when the task is removed, so no one merges it later."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import git
from .shamforge import URL1, ShamForge, clone_of, shamforge  # noqa: F401  (the fixture)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_a_request_left_by_an_interrupted_land_is_said_then_closed_when_the_task_is_removed(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    sham = shamforge(kind)
    r = clone_of(sham, tmp_path / "work", monkeypatch)
    p = Path(r.wtp("start", "t1").lines[-1])
    r.commit({"t1.txt": "t1\n"}, "t1 work", cwd=p)
    out = r.wtp_proc("land", "t1", "--gate", "true", env={"WTP_TEST_INT_AT": "land:forge-opened", **sham.env()})
    assert out.code == 130, out.err
    url = URL1[kind]
    assert out.err.strip().splitlines()[-2:] == [
        f"interrupted: 'main' untouched by this land, task 't1' is active again; its {kind} request #1 stays open "
        f"({url}): 'wtp land t1' takes it up again, 'wtp rm t1' closes it",
        "wtp: interrupted",
    ]
    t = r.wtp("list", "--json").json()["tasks"][0]
    assert (t["state"], t["request"]) == ("active", 1)
    assert t["note"] == (
        f"its {kind} request #1 stays open ({url}): 'wtp land t1' takes it up again, 'wtp rm t1' closes it"
    )
    assert sham.pulls[1].state == "open" and sham.tip("wtp/t1") is not None

    refused = r.wtp("rm", "t1")  # review 30: the head branch it deletes on the forge kept its commit
    assert refused.code == 1 and "1 commit not on 'main'" in refused.err, refused.err
    assert sham.pulls[1].state == "open"
    out = r.wtp("rm", "t1", "--force")
    assert out.code == 0, out.err
    archived = git(r.path, "for-each-ref", "--format=%(refname)", "refs/wtp/archive/")
    assert out.lines == [
        "removed task 't1' (worktree and branch 'wtp/t1')",
        f"archived 1 commit not on 'main' or any other branch (branch 'wtp/t1') of task 't1' under {archived} "
        f"(restore: 'git branch t1-restored {archived}')",
        f"closed {kind} request #1 ({url}) and deleted its head branch 'wtp/t1'",
    ]
    assert git(r.path, "log", "-1", "--format=%s", archived) == "t1 work"
    assert sham.pulls[1].state == "closed" and sham.tip("wtp/t1") is None
    assert git(sham.bare, "log", "--format=%s", "main").splitlines() == ["initial"]


def test_removing_a_task_leaves_another_clones_open_request_alone(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The task's recorded request is open, but its body does not name this clone's land (as
    when another clone lands a task of the same name): 'wtp rm' says so and closes nothing."""
    sham = shamforge("github")
    r = clone_of(sham, tmp_path / "work", monkeypatch)
    p = Path(r.wtp("start", "t1").lines[-1])
    r.commit({"t1.txt": "t1\n"}, "t1 work", cwd=p)
    out = r.wtp_proc("land", "t1", "--gate", "true", env={"WTP_TEST_INT_AT": "land:forge-opened", **sham.env()})
    assert out.code == 130, out.err
    with sham.lock:
        sham.pulls[1].body = "opened by someone else"
    out = r.wtp("rm", "t1", "--force")
    assert out.code == 0, out.err
    assert [line for line in out.lines if not line.startswith("archived ")] == [
        "removed task 't1' (worktree and branch 'wtp/t1')",
        "github request #1 (https://github.invalid/acme/app/pull/1) is not this clone's land of 't1': left open",
    ]
    assert sham.pulls[1].state == "open" and sham.tip("wtp/t1") is not None
