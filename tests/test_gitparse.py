"""The porcelain parsers on output recorded from git 2.39 (gitops.parse): each case is
git's own bytes for a situation wtp must read right."""

from __future__ import annotations

from pathlib import Path

from worktree_par.gitops.parse import (
    MergeTree,
    PushResult,
    Sha,
    commit_ids,
    parse_merge_tree,
    parse_push,
    parse_read_tree_refusal,
    parse_status,
    parse_status_entries,
    parse_version,
    parse_worktrees,
)

TREE = Sha("43f96dc181c0c9318bf3486c4b9fc32b77236a88")
A, B = "1588b2a9568811a57408d23261c4adac0ebdcbc5", "7f09a7d4c2b1e0f3a5968d7c6b5a4f3e2d1c0b9a"


def test_merge_tree_clean_conflicting_file_directory_and_bad_revision() -> None:
    assert parse_merge_tree(0, f"{TREE}\0") == MergeTree(TREE, [])
    # 'git merge-tree --write-tree --name-only -z --no-messages main side': a file on one side
    # and a folder on the other; git names the file side 'thing~side'.
    assert parse_merge_tree(1, f"{TREE}\0thing~side\0", ("main", "side")) == MergeTree(TREE, ["thing"])
    assert parse_merge_tree(1, f"{TREE}\0thing~{B}\0d/f\0d/f\0", (A, B)) == MergeTree(TREE, ["d/f", "thing"])
    # a bad revision is exit 1 too, with no tree id: not a merge result
    assert parse_merge_tree(1, "") is None
    assert parse_merge_tree(128, "") is None


def test_push_porcelain_flags_and_the_remotes_reason() -> None:
    ok = parse_push("To ../o.git\n \trefs/heads/x:refs/heads/main\tabc..def\nDone\n", "", "refs/heads/main")
    assert ok == PushResult(" ", "abc..def", "", []) and ok.updated and not ok.lost_race
    new = parse_push("To ../o.git\n*\trefs/heads/main:refs/heads/other\t[new branch]\nDone\n", "", "refs/heads/other")
    assert new.updated
    same = parse_push("To ../o.git\n=\trefs/heads/side:refs/heads/main\t[up to date]\nDone\n", "", "refs/heads/main")
    assert same.flag == "=" and same.updated
    stale = parse_push(
        "To ../o.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (stale info)\nDone\n", "", "refs/heads/main"
    )
    assert (stale.summary, stale.reason, stale.lost_race, stale.updated) == ("[rejected]", "stale info", True, False)
    nff = parse_push(
        "To ../o.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (non-fast-forward)\nDone\n", "", "refs/heads/main"
    )
    assert nff.lost_race
    hook = parse_push(
        "To ../o.git\n!\trefs/heads/main:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n",
        "remote: protected: no pushes to main        \nerror: failed to push some refs to '../o.git'\n",
        "refs/heads/main",
    )
    assert hook == PushResult("!", "[remote rejected]", "pre-receive hook declined", ["protected: no pushes to main"])
    assert not hook.lost_race and not hook.updated
    nothing = parse_push("", "fatal: could not read from remote repository.\n", "refs/heads/main")
    assert (nothing.flag, nothing.reason) == ("", "fatal: could not read from remote repository.")
    hinted = parse_push(  # git's hint after the error is not the reason
        "",
        "fatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\n"
        "and the repository exists.\n",
        "refs/heads/main",
    )
    assert hinted.reason == "fatal: Could not read from remote repository."


def test_worktree_list_with_a_bare_repository_a_lock_and_a_detached_head() -> None:
    out = (
        "worktree /tmp/br/b.git\0bare\0\0"
        f"worktree /tmp/rec/w2\0HEAD {A}\0branch refs/heads/w2\0locked initializing\0\0"
        f"worktree /tmp/rec/w3\0HEAD {A}\0detached\0prunable gitdir file points to non-existent location\0\0"
    )
    bare, locked, gone = parse_worktrees(out)
    assert (bare.path, bare.bare, bare.head, bare.branch) == (Path("/tmp/br/b.git"), True, None, None)
    assert (locked.branch, locked.locked, locked.lock_reason, locked.prunable) == (
        "refs/heads/w2",
        True,
        "initializing",
        False,
    )
    assert (gone.branch, gone.prunable, gone.locked) == (None, True, False)


def test_status_v2_changed_renamed_unmerged_untracked_and_ignored() -> None:
    h = "e556b830cfd4d2bf3f4501b4ff7cf2ce00c052ef"
    out = (
        f"1 .M N... 100644 100644 100644 {h} {h} thing\0"
        f"2 R. N... 100644 100644 100644 {h} {h} R100 new name\0old name\0"
        f"u UU N... 100644 100644 100644 100644 {h} {h} {h} both\0"
        f"1 .M SC.. 160000 160000 160000 {h} {h} lib\0"
        "? new\0"
        "! build/\0"
    )
    assert parse_status(out) == ["thing", "new name", "old name", "both", "lib", "new"]
    entries = parse_status_entries(out)
    assert [(e.kind, e.path) for e in entries][-1] == ("!", "build/")
    assert entries[4].sub == "SC.."


def test_read_tree_refusal_names_the_files_in_the_way() -> None:
    err = (
        "error: Entry 'src/app.js' not uptodate. Cannot merge.\n"
        "error: Your local changes to the following files would be overwritten by merge:\n"
        "\tREADME.md\n\tdocs/a b.md\n"
    )
    assert parse_read_tree_refusal(err) == ["src/app.js", "README.md", "docs/a b.md"]


def test_commit_ids_and_version() -> None:
    todo = f"pick {A} one\n# comment\npick {B} two\nexec make\npick {A} again\n"
    assert commit_ids(todo) == [A, B]
    assert parse_version("git version 2.39.5\n") == (2, 39)
    assert parse_version("git version 2.45.1.windows.1\n") == (2, 45)


def test_existing_commits_keeps_only_commit_ids() -> None:
    """One cat-file call tells commits from trees and from ids the repository does not have."""
    import subprocess
    import tempfile

    from worktree_par import gitops

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=root, check=True)
        head = gitops.ref_value(root, "HEAD")
        assert head is not None
        tree = gitops.tree_of(root, "HEAD")
        assert gitops.existing_commits(root, [head, tree, "0" * 40]) == [head]
