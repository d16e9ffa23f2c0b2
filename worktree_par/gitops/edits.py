"""Putting a worktree's files back (issue 24 B): the user's uncommitted edits carried across
a move of its branch (saved as a stash-like commit, rebased onto the new tip by a 3-way
merge of the index and of the files, put back, and checked), and the files a rebase stopped
half-way had begun to write, undone.  Only the guard calls these; moving the branch is its."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .core import run
from .parse import MergeTree, Sha
from .rebase import rebase_abort
from .refs import tree_of
from .status import status_paths
from .work import commit_tree, copy_index, in_progress, merge_tree, read_tree_2way


class Edits(NamedTuple):
    """What a worktree's index and tracked files hold beyond its HEAD (``head``)."""

    head: Sha
    stash: Sha | None  # a stash commit of it ('git stash apply --index' takes it); None: nothing
    staged: Sha  # the tree of the index
    files: Sha  # the tree of the tracked files as they are


def save(wt: Path, head: Sha) -> Edits:
    """The worktree's uncommitted changes to tracked files (staged or not), kept as objects;
    the user's index, files and refs/stash are untouched.  GitError when the index has
    unmerged entries."""
    made = run(["stash", "create", "wtp: uncommitted edits"], wt).out.strip()
    if not made:
        tree = tree_of(wt, head)
        return Edits(head, None, tree, tree)
    return Edits(head, Sha(made), tree_of(wt, f"{made}^2"), tree_of(wt, made))


def rebased(wt: Path, e: Edits, onto: Sha) -> tuple[MergeTree, MergeTree]:
    """The index and the files that ``e`` becomes on ``onto``: each is a 3-way merge whose
    base is ``e.head`` (so only the user's own edits travel, nothing of what lies between)."""
    base, ours = tree_of(wt, e.head), tree_of(wt, onto)

    def merge3(theirs: Sha) -> MergeTree:
        if theirs == base:
            return MergeTree(ours, [])
        # Two children of e.head: merge-tree then takes e.head as their merge base (git 2.39
        # has no --merge-base).
        a = commit_tree(wt, ours, [e.head], "onto")
        b = commit_tree(wt, theirs, [e.head], "edits")
        return merge_tree(wt, a, b)

    return merge3(e.staged), merge3(e.files)


def _set_index(wt: Path, tree: str) -> None:
    run(["read-tree", tree], wt)
    run(["update-index", "-q", "--refresh"], wt, check=False)  # stat info for the files as they are


def put(wt: Path, now: tuple[str, str], then: tuple[str, str]) -> list[str]:
    """Bring the index and tracked files from ``now`` (index tree, files tree) to ``then``,
    changing only the files that differ and never an untracked or ignored file in the way.
    [] when done; else the paths in the way, with the index as it was."""
    _set_index(wt, now[1])
    ok, in_way = read_tree_2way(wt, now[1], then[1])
    _set_index(wt, then[0] if ok else now[0])
    return in_way


def holds(wt: Path, index: str, work: str) -> bool:
    """True when the worktree's index and tracked files are exactly these trees (checked)."""
    if run(["write-tree"], wt, check=False).out.strip() != index:
        return False
    real = Path(run(["rev-parse", "--path-format=absolute", "--git-path", "index"], wt).out.strip())
    import tempfile  # here, not at the top: every land imports this module, few call this

    with tempfile.TemporaryDirectory(prefix="wtp-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        copy_index(real, Path(tmp) / "index")
        run(["add", "--update", "--", "."], wt, env=env)
        return run(["write-tree"], wt, env=env).out.strip() == work


def put_back(wt: Path, tip: str, onto: str) -> bool:
    """After a rebase of the worktree's branch (at ``tip``) onto ``onto`` stopped half-way on
    a full disk: its files back to ``tip``, and the ones only ``onto`` has, which the rebase
    began to write, gone.  The worktree was clean (git's rebase refuses otherwise), so no
    file of the user's is touched.  True when it is clean at ``tip`` again."""
    if in_progress(wt)[0]:
        rebase_abort(wt)
    if in_progress(wt)[0] or run(["rev-parse", "HEAD"], wt, check=False).out.strip() != tip:
        return False
    run(["read-tree", onto], wt, check=False)  # the index names every file the rebase may have written
    reset = run(["reset", "--quiet", "--hard", tip], wt, check=False)
    return reset.code == 0 and not status_paths(wt)
