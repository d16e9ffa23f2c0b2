"""gitops.head_status: a worktree's HEAD, its branch and its uncommitted paths from one
'git status --branch' (issue 28: 'wtp land' asked 'rev-parse' and 'status' separately),
the same answers as gitops.head and gitops.status_paths give."""

from __future__ import annotations

from pathlib import Path

from worktree_par import gitops

from .conftest import Repo, git, write_file


def _both(wt: Path) -> gitops.HeadStatus:
    head, attached = gitops.head(wt)
    return gitops.HeadStatus(head, attached, gitops.status_paths(wt))


def test_on_a_branch_with_uncommitted_files(repo: Repo) -> None:
    repo.write("README.md", "changed\n")
    repo.write("new/file.txt", "new\n")
    got = gitops.head_status(repo.path)
    assert got == (repo.git("rev-parse", "HEAD"), "refs/heads/main", ["README.md", "new/file.txt"])
    assert got == _both(repo.path)


def test_detached_clean(repo: Repo) -> None:
    repo.git("switch", "-q", "--detach")
    got = gitops.head_status(repo.path)
    assert got == (repo.git("rev-parse", "HEAD"), None, [])
    assert got == _both(repo.path)


def test_a_branch_named_like_status_shows_a_detached_head(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", "(detached)")
    got = gitops.head_status(repo.path)
    assert got == (repo.git("rev-parse", "HEAD"), "refs/heads/(detached)", [])
    assert got == _both(repo.path)


def test_head_attached_outside_the_branches(repo: Repo) -> None:
    repo.git("tag", "v1")
    repo.git("symbolic-ref", "HEAD", "refs/tags/v1")  # status shows it as '(null)'
    got = gitops.head_status(repo.path)
    assert got == (repo.git("rev-parse", "HEAD"), "refs/tags/v1", [])
    assert got == _both(repo.path)


def test_an_unborn_branch(tmp_path: Path) -> None:
    wt = tmp_path / "unborn"
    wt.mkdir()
    git(wt, "init", "-q", "-b", "trunk")
    write_file(wt, "first.txt", "1\n")
    got = gitops.head_status(wt)
    assert got == (None, "refs/heads/trunk", ["first.txt"])
    assert got == _both(wt)


def test_a_land_never_has_status_count_how_far_a_branch_is_from_its_upstream(remote_repo: Repo) -> None:
    """On a task branch far from an upstream, counting ahead/behind walks both histories: a
    cost the land does not need (it reads HEAD, the branch and the dirt)."""
    r = remote_repo
    wt = Path(r.wtp("start", "a").lines[-1])
    r.commit({"a.txt": "a\n"}, "a work", cwd=wt)
    git(wt, "branch", "-q", "--set-upstream-to=origin/main")  # an upstream, as a tracking branch has
    out = r.wtp_proc("land", "a", "--gate", "true", env={"WTP_TRACE": "1"})
    assert out.code == 0, out.err
    statuses = [line for line in out.err.splitlines() if line.startswith("wtp trace: git ") and " status " in line]
    with_branch = [line for line in statuses if " --branch" in line]
    assert with_branch, statuses  # the land asks status for HEAD and the branch
    assert all(" --no-ahead-behind" in line for line in with_branch), with_branch


def test_contents_and_head_says_what_head_and_worktree_contents_say(repo: Repo) -> None:
    """The guard's one status walk (issue 28): HEAD from its headers, the files as before."""
    repo.write(".gitignore", "out/\n")
    repo.write("out/built.txt", "built\n")
    repo.write("new.txt", "new\n")
    for detach in (False, True):
        if detach:
            repo.git("switch", "-q", "--detach")
        got = gitops.contents_and_head(repo.path)
        assert (got.dirty, got.ignored) == gitops.worktree_contents(repo.path)
        assert (got.head, got.attached) == gitops.head(repo.path)


def test_replayed_to_reads_the_branch_git_moved_or_asks_git(repo: Repo) -> None:
    """Where a rebase left the branch: its loose ref, read without git; a packed ref, a
    detached HEAD, asked of git (the same answer each way)."""
    common = Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir"))
    head = repo.git("rev-parse", "HEAD")
    assert (common / "refs/heads/main").is_file()
    assert gitops.replayed_to(repo.path, common) == head
    repo.git("pack-refs", "--all", "--prune")
    assert not (common / "refs/heads/main").exists()
    assert gitops.replayed_to(repo.path, common) == head
    repo.git("switch", "-q", "--detach")
    assert gitops.replayed_to(repo.path, common) == head
