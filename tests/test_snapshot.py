"""The snapshot of a worktree's uncommitted work (gitops.snapshot, what 'wtp check' and the
guard compare and archive) stages only the paths one 'git status' reported.  Here, case by
case, its tree is held equal to the one 'git add --all' gives from a copy of the same index,
and the user's index and files are shown untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Repo, git, write_file
from worktree_par import gitops


def _add_all_tree(wt: Path, tmp: Path, exclude: list[str]) -> str:
    """What 'git add --all' stages into a copy of the worktree's index, as a tree."""
    index = tmp / "reference-index"
    gd = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-dir"))
    shutil.copy(gd / "index", index)
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    skip = [f":(exclude,literal){p}" for p in exclude]
    subprocess.run(["git", "add", "--all", "--", ".", *skip], cwd=wt, env=env, check=True, capture_output=True)
    tree = subprocess.run(["git", "write-tree"], cwd=wt, env=env, check=True, capture_output=True, text=True)
    index.unlink()
    return tree.stdout.strip()


def _untouched(wt: Path) -> tuple[bytes, str]:
    """The user's index, and every file as git sees it (ignored ones too)."""
    gd = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-dir"))
    listing = git(wt, "status", "--porcelain=v2", "-z", "--untracked-files=all", "--ignored")
    return (gd / "index").read_bytes(), listing


def edited(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 2\n")


def staged_then_edited(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 3\n")
    git(wt, "add", "src/a.py")
    write_file(wt, "src/a.py", "a = 4\n")
    write_file(wt, "src/b.py", "b = 5\n")
    git(wt, "add", "src/b.py")  # staged, not edited since


def untracked_and_ignored(wt: Path) -> None:
    write_file(wt, "new/deep/dir/file.txt", "new\n")
    write_file(wt, "build/out.o", "ignored\n")
    write_file(wt, "src/cache.log", "ignored too\n")


def tracked_but_ignored_edited(wt: Path) -> None:
    write_file(wt, "logs/kept.log", "changed\n")


def deletions(wt: Path) -> None:
    (wt / "src" / "a.py").unlink()  # not staged
    git(wt, "rm", "-q", "src/b.py")  # staged
    git(wt, "rm", "-q", "--cached", "src/c.py")  # staged, the file kept: untracked now


def staged_rename(wt: Path) -> None:
    git(wt, "mv", "src/a.py", "src/renamed.py")
    write_file(wt, "src/renamed.py", "a = 1\nmore\n")


def intent_to_add(wt: Path) -> None:
    write_file(wt, "docs/later.md", "later\n")
    git(wt, "add", "-N", "docs/later.md")
    write_file(wt, "docs/gone.md", "gone\n")
    git(wt, "add", "-N", "docs/gone.md")
    (wt / "docs" / "gone.md").unlink()


def symlinks(wt: Path) -> None:
    (wt / "link-new").symlink_to("src/a.py")
    (wt / "link").unlink()
    (wt / "link").symlink_to("src/b.py")  # a tracked link pointed elsewhere
    (wt / "src" / "c.py").unlink()
    (wt / "src" / "c.py").symlink_to("a.py")  # a file became a link
    (wt / "dangling").symlink_to("nowhere")


def executable_bits(wt: Path) -> None:
    (wt / "src" / "a.py").chmod(0o755)
    (wt / "run.sh").chmod(0o644)  # tracked executable, bit dropped
    write_file(wt, "tool.sh", "#!/bin/sh\n").chmod(0o755)


def file_became_folder(wt: Path) -> None:
    (wt / "notes").unlink()
    write_file(wt, "notes/one.txt", "one\n")
    shutil.rmtree(wt / "lib")
    write_file(wt, "lib", "lib is a file now\n")


def staged_deletion_then_folder(wt: Path) -> None:
    """'git rm' of a file, then a folder of that name: the index has no entry there, and
    'git update-index' given the folder's name refused it ('Unable to process path')."""
    git(wt, "rm", "-q", "notes")
    write_file(wt, "notes/one.txt", "one\n")
    git(wt, "rm", "-q", "src/d.py")
    (wt / "src" / "d.py").mkdir()  # an empty folder: only the deletion


def odd_names(wt: Path) -> None:
    write_file(wt, "with space.txt", "s\n")
    write_file(wt, "tab\there.txt", "t\n")
    write_file(wt, "new\nline.txt", "n\n")
    write_file(wt, "ünïcödé/ß.txt", "u\n")
    write_file(wt, ":(exclude)magic", "not a pathspec\n")
    write_file(wt, "star*.txt", "glob\n")


def nested_repositories(wt: Path) -> None:
    inner = wt / "vendor" / "inner"
    write_file(inner, "x.txt", "inner\n")
    git(inner, "init", "-q")
    git(inner, "add", "x.txt")
    git(inner, "commit", "-q", "-m", "inner")
    write_file(inner, "y.txt", "untracked inside it\n")
    empty = wt / "scratch"
    empty.mkdir()
    git(empty, "init", "-q")  # no commit
    write_file(empty, "z.txt", "z\n")
    write_file(wt, "vendor/own.txt", "the outer repository's file\n")


def submodule_moved_and_dirty(wt: Path) -> None:
    sub = wt / "sub"
    write_file(sub, "s.txt", "moved\n")
    git(sub, "commit", "-q", "-am", "move the submodule")
    write_file(sub, "s.txt", "dirty inside\n")
    write_file(sub, "u.txt", "untracked inside\n")


def submodule_dirty_only(wt: Path) -> None:
    write_file(wt / "sub", "s.txt", "dirty inside\n")


def unmerged(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 'branch'\n")
    git(wt, "commit", "-q", "-am", "branch side")
    git(wt, "merge", "-q", "side", check=False)  # conflicts on src/a.py
    assert git(wt, "diff", "--name-only", "--diff-filter=U") == "src/a.py"
    write_file(wt, "src/other.py", "edited during the merge\n")


def everything(wt: Path) -> None:
    for case in (staged_then_edited, untracked_and_ignored, symlinks, executable_bits, odd_names, file_became_folder):
        case(wt)
    (wt / "src" / "d.py").unlink()
    nested_repositories(wt)
    submodule_moved_and_dirty(wt)


CASES: list[Callable[[Path], None]] = [
    edited,
    staged_then_edited,
    untracked_and_ignored,
    tracked_but_ignored_edited,
    deletions,
    staged_rename,
    intent_to_add,
    symlinks,
    executable_bits,
    file_became_folder,
    staged_deletion_then_folder,
    odd_names,
    nested_repositories,
    submodule_moved_and_dirty,
    submodule_dirty_only,
    unmerged,
    everything,
]


def _prepare(repo: Repo, tmp: Path) -> Path:
    """A repository with a bit of everything committed, a submodule, and a linked worktree
    of it (where tasks live) on a branch with the submodule checked out."""
    upstream = tmp / "upstream-sub"
    upstream.mkdir()
    git(upstream, "init", "-q")
    write_file(upstream, "s.txt", "sub\n")
    git(upstream, "add", "s.txt")
    git(upstream, "commit", "-q", "-m", "sub")
    files = {f"src/{n}.py": f"{n} = 1\n" for n in "abcd"}
    files |= {".gitignore": "build/\n*.log\n", "notes": "a file\n", "lib/x.py": "x\n", "lib/y/z.py": "z\n"}
    for rel, text in files.items():
        repo.write(rel, text)
    repo.write("run.sh", "#!/bin/sh\n").chmod(0o755)
    (repo.path / "link").symlink_to("src/a.py")
    repo.write("logs/kept.log", "kept\n")
    repo.git("add", "-A")
    repo.git("add", "-f", "logs/kept.log")  # tracked, though ignored
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(upstream), "sub")
    repo.git("commit", "-q", "-m", "everything")
    repo.git("branch", "side")
    wt = tmp / "task"
    repo.git("worktree", "add", "-q", "-b", "task", str(wt))
    git(wt, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    # 'side' changes src/a.py, for the unmerged case
    side = tmp / "side"
    repo.git("worktree", "add", "-q", str(side), "side")
    write_file(side, "src/a.py", "a = 'side'\n")
    git(side, "commit", "-q", "-am", "side")
    return wt


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_snapshot_tree_equals_add_all(repo: Repo, tmp_path: Path, case: Callable[[Path], None]) -> None:
    wt = _prepare(repo, tmp_path)
    case(wt)
    before = _untouched(wt)
    dirty = gitops.dirty_of(wt)
    assert dirty.head == git(wt, "rev-parse", "HEAD")
    nested = [p.rstrip("/") for p in dirty.paths if p.endswith("/")]
    commit, tree = gitops.snapshot(wt, exclude=nested, dirty=dirty)
    assert _untouched(wt) == before  # the user's index and files as they were
    assert tree == _add_all_tree(wt, tmp_path, nested)
    assert git(wt, "rev-parse", f"{commit}^{{tree}}", f"{commit}^") == f"{tree}\n{dirty.head}"
    # Asked without the status at hand, it takes its own: the same tree.
    assert gitops.snapshot(wt, exclude=nested)[1] == tree


def test_snapshot_in_the_main_worktree_and_on_an_unborn_branch(repo: Repo, tmp_path: Path) -> None:
    repo.write("README.md", "changed\n")
    repo.write("fresh/f.txt", "f\n")
    before = _untouched(repo.path)
    commit, tree = gitops.snapshot(repo.path)
    assert _untouched(repo.path) == before
    assert tree == _add_all_tree(repo.path, tmp_path, [])
    assert git(repo.path, "rev-parse", f"{commit}^") == git(repo.path, "rev-parse", "HEAD")

    unborn = tmp_path / "unborn"
    unborn.mkdir()
    git(unborn, "init", "-q")
    write_file(unborn, "first.txt", "1\n")
    dirty = gitops.dirty_of(unborn)
    assert dirty == gitops.Dirty(["first.txt"], None)
    commit, tree = gitops.snapshot(unborn, dirty=dirty)
    assert git(unborn, "ls-tree", "-r", "--name-only", tree) == "first.txt"
    assert git(unborn, "rev-list", "--parents", "-n1", commit) == commit  # no parent
    assert not (unborn / ".git" / "index").exists()  # the user's index was not made either


def test_an_edit_git_sees_only_by_content_is_in_the_snapshot(repo: Repo) -> None:
    """A file edited in the same second as the index was written, keeping its size, looks
    unchanged by its stat data; git reads such a "racily clean" entry's content because the
    entry is not older than the index file.  The snapshot's copy of the index must keep the
    index's time, or a copy made a second later hides the edit: 'wtp check' lost a task's
    conflict with its base when the task's edit came in the second the task started (CI)."""
    repo.git("config", "core.checkStat", "minimal")  # mtime seconds and size: ctime can't be set
    repo.commit({"RELEASE": "1.0.0\n"}, msg="release")
    index = Path(git(repo.path, "rev-parse", "--path-format=absolute", "--git-dir")) / "index"
    release = repo.path / "RELEASE"
    then = release.stat().st_mtime_ns - 10_000_000_000  # ten seconds ago
    os.utime(release, ns=(then, then))
    repo.git("update-index", "--refresh")  # the index records that time
    os.utime(index, ns=(then, then))  # and was written in that second
    release.write_text("1.1.0\n")  # the same size
    os.utime(release, ns=(then, then))  # in the same second
    dirty = gitops.dirty_of(repo.path)
    assert dirty.paths == ["RELEASE"]  # git status reads the content and sees the edit
    _, tree = gitops.snapshot(repo.path, dirty=dirty)
    assert git(repo.path, "cat-file", "-p", f"{tree}:RELEASE") == "1.1.0"
