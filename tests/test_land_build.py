"""What a candidate is built from (issue 28 cut the git calls of a build to one look at the
task's refs): the paths where that look cannot answer alone, and the one where it can."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Repo, wait_for


def _task(r: Repo, name: str, files: dict[str, str]) -> tuple[Path, str]:
    out = r.wtp("start", name)
    assert out.code == 0, out.err
    p = Path(out.lines[-1])
    return p, r.commit(files, msg=f"{name}: work", cwd=p)


def test_a_task_already_on_the_base_is_landed_as_it_is(repo: Repo) -> None:
    _, tip = _task(repo, "feed", {"src/feed.js": "feed\n"})
    repo.git("merge", "-q", "--ff-only", "wtp/feed")  # someone brought it onto main by hand
    out = repo.wtp("land", "feed", "--json")
    assert out.code == 0, out.err
    assert out.json() == {"task": "feed", "state": "landed", "commit": tip, "attempts": 1, "paths": []}
    assert out.err.splitlines() == [
        "warning: landing 'feed' untested: no gate (pass --gate CMD, or set [land] gate in .wtp.toml)",
        "task 'feed' is already on 'main'",
        "removed task 'feed' (worktree and branch 'wtp/feed')",
    ]
    assert repo.git("rev-parse", "main") == tip  # nothing new was made for it
    [t] = repo.wtp("list", "--json", "--all").json()["tasks"]
    assert (t["state"], t["commit"]) == ("landed", tip)


def test_commits_dropped_from_the_base_since_the_task_started_are_not_replayed(repo: Repo) -> None:
    initial = repo.git("rev-parse", "main")
    repo.commit({"dropped.txt": "soon gone\n"}, msg="dropped later")
    _task(repo, "feed", {"src/feed.js": "feed\n"})  # started on 'dropped later'
    repo.git("reset", "-q", "--hard", initial)  # the base is rewritten without it
    repo.commit({"other.txt": "instead\n"}, msg="instead")
    out = repo.wtp("land", "feed", "--json")
    assert out.code == 0, out.err
    assert out.json()["state"] == "landed"
    assert repo.git("log", "--format=%s", "main").splitlines() == ["feed: work", "instead", "initial"]
    assert repo.git("ls-tree", "-r", "--name-only", "main", "--", "dropped.txt", "src/feed.js", "other.txt") == (
        "other.txt\nsrc/feed.js"
    )


def test_a_task_whose_branch_no_longer_holds_its_fork_lands_its_own_commits(repo: Repo) -> None:
    initial = repo.git("rev-parse", "main")
    repo.commit({"base.txt": "on main\n"}, msg="base work")
    p, _ = _task(repo, "feed", {"src/feed.js": "feed\n"})
    # The task's commit is made again on an older commit: its recorded fork is not below it.
    repo.git("reset", "-q", "--hard", initial, cwd=p)
    repo.commit({"src/feed.js": "feed, again\n"}, msg="feed: redone", cwd=p)
    out = repo.wtp("land", "feed", "--json")
    assert out.code == 0, out.err
    assert out.json()["state"] == "landed"
    assert repo.git("log", "--format=%s", "main").splitlines() == ["feed: redone", "base work", "initial"]
    assert repo.git("show", "main:src/feed.js") == "feed, again"


def test_a_new_land_keeps_an_older_pre_land_tip_its_branch_no_longer_holds(repo: Repo) -> None:
    p, first = _task(repo, "feed", {"src/feed.js": "feed\n"})
    assert repo.wtp("land", "feed", "--gate", "false").code != 0  # blocked: its pre-land tip stays kept
    assert repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/wtp/") == (
        f"refs/wtp/backup/feed {first}"
    )
    repo.write("src/feed.js", "feed, fixed\n", cwd=p)
    repo.git("commit", "-q", "-a", "--amend", "--no-edit", cwd=p)  # the tip the backup kept is rewritten
    amended = repo.git("rev-parse", "HEAD", cwd=p)
    out = repo.wtp("land", "feed", "--gate", "true", "--json")
    assert out.code == 0, out.err
    assert out.json()["commit"] == repo.git("rev-parse", "main")
    # The backup ref moved to the new tip (and went with the landed task); the old tip is kept.
    assert repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/wtp/") == (
        f"refs/wtp/archive-pre-land/feed/{first[:12]} {first}"
    )
    assert repo.git("show", "main:src/feed.js") == "feed, fixed"
    assert repo.git("rev-parse", "main") == amended  # fast-forwarded: it was on main's tip


def test_a_new_land_of_a_branch_that_grew_keeps_nothing_more(repo: Repo) -> None:
    p, first = _task(repo, "feed", {"src/feed.js": "feed\n"})
    assert repo.wtp("land", "feed", "--gate", "false").code != 0
    second = repo.commit({"src/feed.js": "feed, fixed\n"}, msg="feed: fix", cwd=p)  # on top of the kept tip
    out = repo.wtp("land", "feed", "--gate", "true", "--json")
    assert out.code == 0, out.err
    assert repo.git("rev-parse", "main") == second
    assert repo.git("for-each-ref", "refs/wtp/") == ""


@pytest.mark.parametrize("at", ["land:before-candidate", "land:before-advance"])
def test_a_commit_made_while_a_merge_candidate_is_built_stays_on_the_branch(
    repo: Repo, tmp_path: Path, at: str
) -> None:
    """A merge candidate is made from the tip the land read, then the branch moves to it: a
    commit an agent made there in between was dropped from the branch ('git reset --keep' moves
    it from wherever it is), landed without it, and lost with the branch (review 50).  The
    branch must still be where the candidate was built from, or nothing moves; one made after
    that look, as 'reset --keep' begins, is found in the branch's reflog and the branch goes
    back to it, with its files."""
    p, tip = _task(repo, "feed", {"src/feed.js": "feed\n"})
    agent, err, code = _commit_as_the_build_begins(
        repo, tmp_path, p, {"src/agent.js": "agent\n"}, "--strategy", "merge", "--gate", "true", at=at
    )
    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"wtp: branch 'wtp/feed' moved while wtp built the candidate of 'feed' (a commit made in {p}?): nothing was "
        "published and the new commit is kept on the branch, untested; run 'wtp land feed' again to land it"
    ), err
    assert repo.git("rev-parse", "wtp/feed") == agent
    assert repo.git("rev-parse", "wtp/feed~1") == tip
    assert repo.git("log", "--format=%s", "main").splitlines()[0] != "agent X"
    assert [t["state"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["blocked"]
    assert (p / "src/agent.js").exists() and repo.git("-C", str(p), "status", "--porcelain") == ""


@pytest.mark.parametrize("base_moved", [True, False])
def test_a_commit_made_as_the_rebase_starts_is_kept_on_the_branch_not_replayed(
    repo: Repo, tmp_path: Path, base_moved: bool
) -> None:
    """A commit an agent makes after the land looked at the branch, as git starts replaying it,
    was replayed into the candidate with the task's own: a red gate then gave the branch back
    to the pre-land tip, and the agent's commit, taken for wtp's copy, went with the candidate.
    What git replayed is checked (its ORIG_HEAD): the task is blocked with the commit on its
    branch, nothing replayed.  Where the base has not moved, git leaves the branch where it
    found it: the commit was the candidate, and went the same way."""
    p, tip = _task(repo, "feed", {"src/feed.js": "feed\n"})
    if base_moved:  # the land replays the task's commit; otherwise git finds nothing to replay
        repo.commit({"src/base.js": "moved on\n"})
    agent, err, code = _commit_as_the_build_begins(repo, tmp_path, p, {"BROKEN": "x\n"}, "--gate", "test ! -e BROKEN")
    assert code == 1, err
    assert err.splitlines()[-1].startswith(
        f"wtp: branch 'wtp/feed' gained 1 commit wtp did not make while landing ({agent[:10]} agent X): "
    ), err
    assert repo.git("rev-parse", "wtp/feed") == agent
    assert repo.git("rev-parse", "wtp/feed~1") == tip
    assert (p / "BROKEN").exists() and repo.git("-C", str(p), "status", "--porcelain") == ""


def _commit_as_the_build_begins(
    repo: Repo, tmp_path: Path, p: Path, files: dict[str, str], *land: str, at: str = "land:before-candidate"
) -> tuple[str, str, int]:
    """'wtp land feed *land', held at step ``at`` (where it is about to build the candidate)
    while an agent commits ``files`` in the task's worktree ``p``: (that commit, the land's
    stderr, its code)."""
    hold = tmp_path / "hold"
    env = {"WTP_TEST_HOLD_AT": at, "WTP_TEST_HOLD_FILE": str(hold)}
    proc = repo.spawn("land", "feed", *land, env=env)
    try:
        wait_for(Path(f"{hold}.reached").exists, "the land to be about to build the candidate")
        agent = repo.commit(files, msg="agent X", cwd=p)
    finally:
        hold.touch()
    _, err = proc.communicate(timeout=60)
    return agent, err, proc.returncode


def test_a_commit_made_before_git_detaches_head_survives_the_abort(repo: Repo) -> None:
    """A commit made on the branch as 'git rebase' starts (here by its pre-rebase hook, as an
    agent's could be in the instant before git detaches HEAD): git's last step, moving the
    branch, fails, and 'git rebase --abort' put the branch back where the rebase began, over
    that commit (review 51).  The abort now leaves the branch where it was, with its files,
    and the task is blocked with the commit on it."""
    p, tip = _task(repo, "feed", {"src/feed.js": "feed\n"})
    repo.commit({"src/base.js": "moved on\n"})  # the base moved: git replays the task's commit
    hook = repo.path / ".git" / "hooks" / "pre-rebase"
    hook.write_text(
        "#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        "echo x > agent.txt && git add agent.txt && git commit -qm 'agent X' && git rev-parse HEAD > ../agent-x\n"
    )
    hook.chmod(0o755)
    out = repo.wtp("land", "feed", "--gate", "true")
    agent = (p.parent / "agent-x").read_text().strip()
    assert out.code == 1, out.err
    [line] = out.err.splitlines()  # git's refusal, then what the land kept
    assert line.startswith("wtp: rebase of 'feed' onto 'main' failed: error: update_ref failed for ref"), line
    assert line.endswith(
        f"; branch 'wtp/feed' gained 1 commit wtp did not make while landing ({agent[:10]} agent X): they are kept "
        "on the branch, untested; run 'wtp land feed' again to test and land them"
    ), line
    assert repo.git("rev-parse", "wtp/feed") == agent and repo.git("rev-parse", "wtp/feed~1") == tip
    assert (p / "agent.txt").exists() and repo.git("-C", str(p), "status", "--porcelain") == ""
    assert "agent X" not in repo.git("log", "--format=%s", "main")
