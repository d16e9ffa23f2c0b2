"""The history parsers (gitops.history) on output recorded from git 2.39.  The repository:
'one' adds feed.py and routes.yml; 'two' changes both and adds a binary logo.png; 'move'
renames feed.py to src/feed.py; 'del' adds 'odd name.txt' and deletes routes.yml; a side
branch forked at 'move' adds s.txt ('s1') and changes it ('s2'); main merges the side; then
an empty commit."""

from __future__ import annotations

import os
from pathlib import Path

from worktree_par.gitops import CommitChanges, FileLines, Merge, Sha
from worktree_par.gitops.history import (
    parse_changed_names,
    parse_changes,
    parse_merges,
    parse_numstat,
    parse_sides,
)

ONE = Sha("ddd32eef81a1e97aeb69a1a75b78557b8be3f75e")
TWO = Sha("5ee8c8b6074b7ed5d2614f7b2ae0997dd27848c9")
MOVE = Sha("ee2a4f375f601bb5888a2869c197734980db1552")
DEL = Sha("dbaa3766c02043461059dbbad79fe4aa9bbf8c2c")
S1 = Sha("c6f880dda167d95ec10ce91f9e7a45865db3879c")
S2 = Sha("014f756949b45aabb816482fea8319ac4bf65b0e")
MERGE = Sha("2be88879c82a15748a117819e019c649bbaeec79")
EMPTY = Sha("691a5aee1e47f49f117fb2ce56c6fa96802222d5")


def test_changes_follow_renames_and_keep_odd_names_and_empty_commits() -> None:
    # git log -z --reverse --no-merges -M --name-status --format=%x01%ct HEAD --
    out = (
        "\x011700000000\x00\nA\x00feed.py\x00A\x00routes.yml\x00"
        "\x011700000100\x00\nM\x00feed.py\x00A\x00logo.png\x00M\x00routes.yml\x00"
        "\x011700000200\x00\nR100\x00feed.py\x00src/feed.py\x00"
        "\x011700000300\x00\nA\x00odd name.txt\x00D\x00routes.yml\x00"
        "\x011700000400\x00\nA\x00s.txt\x00"
        "\x011700000450\x00\nM\x00s.txt\x00"
        "\x011700000450\x00"
    )
    assert parse_changes(out) == [
        CommitChanges(None, 1700000000, ["feed.py", "routes.yml"], []),
        CommitChanges(None, 1700000100, ["feed.py", "logo.png", "routes.yml"], []),
        CommitChanges(None, 1700000200, ["src/feed.py"], [("feed.py", "src/feed.py")]),
        CommitChanges(None, 1700000300, ["odd name.txt", "routes.yml"], []),
        CommitChanges(None, 1700000400, ["s.txt"], []),
        CommitChanges(None, 1700000450, ["s.txt"], []),
        CommitChanges(None, 1700000450, [], []),  # the empty commit: no paths
    ]
    assert parse_changes("") == []


def test_changes_with_commit_ids_in_topological_order() -> None:
    # git log -z --reverse --no-merges -M --name-status --topo-order --format='%x01%H %ct' HEAD --
    out = (
        f"\x01{ONE} 1700000000\x00\nA\x00feed.py\x00A\x00routes.yml\x00"
        f"\x01{MOVE} 1700000200\x00\nR100\x00feed.py\x00src/feed.py\x00"
        f"\x01{EMPTY} 1700000450\x00"
    )
    assert parse_changes(out, with_sha=True) == [
        CommitChanges(ONE, 1700000000, ["feed.py", "routes.yml"], []),
        CommitChanges(MOVE, 1700000200, ["src/feed.py"], [("feed.py", "src/feed.py")]),
        CommitChanges(EMPTY, 1700000450, [], []),
    ]


def test_a_copy_is_named_by_its_new_path_and_is_not_a_rename() -> None:
    # After 'cp src/feed.py src/feed2.py; echo more >> src/feed.py; git commit -a':
    # git log -z -C -C --name-status --format=%x01%ct -1 --
    out = "\x011700000600\x00\nM\x00src/feed.py\x00C100\x00src/feed.py\x00src/feed2.py\x00"
    assert parse_changes(out) == [CommitChanges(None, 1700000600, ["src/feed.py", "src/feed2.py"], [])]


def test_numstat_counts_added_and_deleted_lines_and_none_for_a_binary_file() -> None:
    # git log --no-merges --no-renames --numstat --format=%x01%H HEAD --
    out = (
        f"\x01{EMPTY}\n"
        f"\x01{S2}\n\n1\t1\ts.txt\n"
        f"\x01{DEL}\n\n1\t0\todd name.txt\n0\t1\troutes.yml\n"
        f"\x01{MOVE}\n\n0\t3\tfeed.py\n3\t0\tsrc/feed.py\n"
        f"\x01{TWO}\n\n1\t0\tfeed.py\n-\t-\tlogo.png\n1\t1\troutes.yml\n"
    )
    assert parse_numstat(out) == {
        EMPTY: [],
        S2: [FileLines("s.txt", 2)],
        DEL: [FileLines("odd name.txt", 1), FileLines("routes.yml", 1)],
        MOVE: [FileLines("feed.py", 3), FileLines("src/feed.py", 3)],  # --no-renames: a delete and an add
        TWO: [FileLines("feed.py", 1), FileLines("logo.png", 0), FileLines("routes.yml", 2)],
    }


def test_merges_and_the_sides_they_joined() -> None:
    # git log --merges --min-parents=2 --max-parents=2 --format='%H %P' -n 5 HEAD --
    assert parse_merges(f"{MERGE} {DEL} {S2}\n") == [Merge(MERGE, DEL, S2)]
    assert parse_merges("") == []
    # git rev-list --left-right --reverse DEL...S2 --
    assert parse_sides(f"<{DEL}\n>{S1}\n>{S2}\n") == ([DEL], [S1, S2])
    assert parse_sides("") == ([], [])


def test_changed_names_split_by_the_from_commit_even_when_a_diff_is_empty() -> None:
    # printf 'MOVE DEL\nMOVE S2\nDEL DEL\n' | git diff-tree --stdin --always -r -z --name-only --no-renames
    out = f"{MOVE}\x00odd name.txt\x00routes.yml\x00{MOVE}\x00s.txt\x00{DEL}\x00"
    assert parse_changed_names(out, [MOVE, MOVE, DEL]) == [{"odd name.txt", "routes.yml"}, {"s.txt"}, set()]
    assert parse_changed_names("", []) == []


def test_the_graph_walk_agrees_with_git_on_forks_and_sides(tmp_path: Path) -> None:
    """Fork points and sides are walked in-process for calibration; on a history with
    long branches, criss-cross merges and a root-less side they answer what git does."""
    import subprocess

    from worktree_par import gitops

    n = 0

    def git(*args: str) -> str:
        when = {"GIT_COMMITTER_DATE": f"2026-01-01T00:{n:02d}:00Z", "GIT_AUTHOR_DATE": f"2026-01-01T00:{n:02d}:00Z"}
        env = {**os.environ, **when}  # a clock that moves: ties in commit time are ordered arbitrarily
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True, env=env
        ).stdout.strip()

    git("init", "-q", "-b", "main")

    def commit(branch: str) -> None:
        nonlocal n
        if git("branch", "--show-current") != branch:
            git("checkout", "-q", branch)
        n += 1
        (tmp_path / f"f{n}").write_text(f"{n}\n")
        git("add", "-A")
        git("commit", "-q", "-m", f"c{n}")

    commit("main")
    git("branch", "a")
    git("branch", "b")
    for _ in range(3):
        commit("a")
        commit("b")
        commit("main")
    git("checkout", "-q", "a")
    n += 1
    git("merge", "-q", "--no-edit", "b")  # criss-cross: a takes b, b takes a's parent
    git("checkout", "-q", "b")
    n += 1
    git("merge", "-q", "--no-edit", "a~1")
    commit("a")
    commit("b")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-edit", "a")
    git("merge", "-q", "--no-edit", "b")
    git("checkout", "-q", "--orphan", "lone")
    git("rm", "-rfq", ".")
    commit("lone")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-edit", "--allow-unrelated-histories", "lone")
    tip = git("rev-parse", "main")
    graph = gitops.Graph.of(tmp_path, tip)
    merges = gitops.merges(tmp_path, tip, 100)
    assert len(merges) == 5
    unsure = 0
    for _, p1, p2 in merges:
        f = graph.fork(p1, p2)
        found = subprocess.run(["git", "merge-base", "--all", p1, p2], cwd=tmp_path, capture_output=True, text=True)
        bases = set(found.stdout.split())  # none (exit 1) for the unrelated side
        assert (f.base in bases) if bases else f.base is None
        assert f.sure == (len(bases) <= 1)  # the criss-cross is the one git could answer otherwise
        unsure += not f.sure
        if f.sure and bases:
            assert f.base == git("merge-base", p1, p2)
        want_left, want_right = gitops.sides(tmp_path, p1, p2)
        assert (set(f.left), set(f.right)) == (set(want_left), set(want_right))
        assert f.left[0] == want_left[0] and f.right[0] == want_right[0]  # the oldest, as rev-list --reverse shows
    assert unsure == 1
