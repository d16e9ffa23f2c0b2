"""gitops.refs_past: the refs among some names that contain one commit and are not
reachable from another, in one for-each-ref (issue 28: what the land conductor asks before
each candidate); None when git cannot tell."""

from __future__ import annotations

from worktree_par import gitops

from .conftest import Repo


def _commits(found: dict[str, gitops.RefInfo] | None) -> dict[str, str | None]:
    assert found is not None
    return {k: v.commit for k, v in found.items()}


def test_refs_past_filters_by_both_commits(repo: Repo) -> None:
    base = repo.git("rev-parse", "main")
    repo.git("switch", "-q", "-c", "task")
    one = repo.commit({"a.txt": "a\n"}, msg="one")
    two = repo.commit({"b.txt": "b\n"}, msg="two")
    repo.git("update-ref", "refs/wtp/backup/task", two)
    repo.git("update-ref", "refs/wtp/backup/old", one)
    names = ["refs/heads/task", "refs/wtp/backup/task", "refs/wtp/backup/old", "refs/heads/missing"]
    assert _commits(gitops.refs_past(repo.path, names, None, None)) == {
        "refs/heads/task": two,
        "refs/wtp/backup/task": two,
        "refs/wtp/backup/old": one,
    }
    # The ones containing 'two' (not 'old', which is below it) ...
    assert _commits(gitops.refs_past(repo.path, names, two, None)) == {
        "refs/heads/task": two,
        "refs/wtp/backup/task": two,
    }
    # ... the ones not reachable from 'one' (not 'old', which is 'one' itself) ...
    assert _commits(gitops.refs_past(repo.path, names, None, one)) == {
        "refs/heads/task": two,
        "refs/wtp/backup/task": two,
    }
    # ... both at once, and none left when the base has them all.
    assert _commits(gitops.refs_past(repo.path, names, base, one)) == {
        "refs/heads/task": two,
        "refs/wtp/backup/task": two,
    }
    assert gitops.refs_past(repo.path, names, base, two) == {}


def test_refs_past_is_none_for_a_commit_git_does_not_have(repo: Repo) -> None:
    gone = "1" * 40
    assert gitops.refs_past(repo.path, ["refs/heads/main"], gone, None) is None
    assert gitops.refs_past(repo.path, ["refs/heads/main"], None, gone) is None
    assert gitops.refs_past(repo.path, [], gone, gone) == {}
