"""What the agent hook asks of every other task, "did it change this path?", answered for one
path from the worktree's index file where that gives git's own answer (gitops/index_paths.py),
is held equal to git status's answer, case by case, and shown to be taken where it should."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Repo, git, write_file
from worktree_par.gitops.index_paths import Changes


def _setup(repo: Repo, tmp: Path) -> Path:
    for rel, text in {
        "src/a.py": "a = 1\n",
        "src/b.py": "b = 1\n",
        "x/src/a.py": "the same name deeper\n",
        "top.txt": "top\n",
        ".gitignore": "*.log\n",
    }.items():
        repo.write(rel, text)
    (repo.path / "run.sh").write_text("#!/bin/sh\n")
    (repo.path / "run.sh").chmod(0o755)
    (repo.path / "link").symlink_to("top.txt")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "files")
    wt = tmp / "other"
    repo.git("worktree", "add", "-q", "-b", "other", str(wt))
    return wt


def staged_edit(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 2\n")
    git(wt, "add", "src/a.py")


def unstaged_edit(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 3\n")


def staged_then_put_back(wt: Path) -> None:
    write_file(wt, "src/a.py", "a = 4\n")
    git(wt, "add", "src/a.py")
    write_file(wt, "src/a.py", "a = 1\n")


def staged_mode_only(wt: Path) -> None:
    git(wt, "update-index", "--chmod=+x", "src/a.py")


def unstaged_mode_only(wt: Path) -> None:
    (wt / "src" / "a.py").chmod(0o755)


def deleted(wt: Path) -> None:
    (wt / "src" / "a.py").unlink()


def deleted_staged(wt: Path) -> None:
    git(wt, "rm", "-q", "src/a.py")


def untracked(wt: Path) -> None:
    write_file(wt, "src/new.py", "new\n")


def ignored(wt: Path) -> None:
    write_file(wt, "src/new.log", "ignored\n")


def intent_to_add(wt: Path) -> None:
    write_file(wt, "src/new.py", "new\n")
    git(wt, "add", "-N", "src/new.py")


def added_staged(wt: Path) -> None:
    write_file(wt, "src/new.py", "new\n")
    git(wt, "add", "src/new.py")


def link_retargeted_staged(wt: Path) -> None:
    (wt / "link").unlink()
    (wt / "link").symlink_to("src/a.py")
    git(wt, "add", "link")


def nothing(wt: Path) -> None:
    pass


# (case, the path asked, git's answer for the other task, is the index file enough to say it)
CASES: list[tuple[Callable[[Path], None], str, str, bool]] = [
    (nothing, "src/a.py", "", True),
    (nothing, "x/src/a.py", "", True),
    (nothing, "top.txt", "", True),
    (nothing, "run.sh", "", True),
    (nothing, "link", "", True),
    (nothing, "src/none.py", "", True),
    (staged_edit, "src/a.py", "uncommitted", True),
    (staged_edit, "x/src/a.py", "", True),  # the same name deeper is another file
    (unstaged_edit, "src/a.py", "uncommitted", False),
    (staged_then_put_back, "src/a.py", "uncommitted", False),
    (staged_mode_only, "src/a.py", "uncommitted", False),  # the file on disk kept its mode
    (unstaged_mode_only, "src/a.py", "uncommitted", False),
    (deleted, "src/a.py", "uncommitted", False),
    (deleted_staged, "src/a.py", "uncommitted", True),
    (untracked, "src/new.py", "untracked", False),
    (ignored, "src/new.log", "", False),
    (intent_to_add, "src/new.py", "uncommitted", False),
    (added_staged, "src/new.py", "uncommitted", True),
    (link_retargeted_staged, "link", "uncommitted", True),
]


@pytest.mark.parametrize(
    ("case", "path", "answer", "from_index"), CASES, ids=[f"{c[0].__name__}-{c[1]}" for c in CASES]
)
def test_one_path_is_answered_as_git_status_answers(
    repo: Repo, tmp_path: Path, case: Callable[[Path], None], path: str, answer: str, from_index: bool
) -> None:
    wt = _setup(repo, tmp_path)
    case(wt)
    git(wt, "status", "--porcelain")  # git refreshes its index, as an agent's own git calls do
    index = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-dir")) / "index"
    st = index.stat()
    os.utime(index, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # no entry is racy
    common = repo.path / ".git"
    asked = Changes(repo.path, [wt], [path], common)
    assert (0 in asked.local) == from_index
    fast = asked.finish([("refs/heads/main", "refs/heads/other")])
    slow = Changes(repo.path, [wt], [path]).finish([("refs/heads/main", "refs/heads/other")])
    assert fast == slow == [{path: answer} if answer else {}]


def test_a_racy_entry_or_an_unusual_index_is_left_to_git(repo: Repo, tmp_path: Path) -> None:
    wt = _setup(repo, tmp_path)
    staged_edit(wt)
    common = repo.path / ".git"
    index = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-dir")) / "index"
    entry = (wt / "src" / "a.py").stat()
    os.utime(index, ns=(entry.st_atime_ns, entry.st_mtime_ns))  # written in the same instant: racy
    assert Changes(repo.path, [wt], ["src/a.py"], common).local == {}
    os.utime(index, ns=(entry.st_atime_ns, entry.st_mtime_ns + 2_000_000_000))
    assert list(Changes(repo.path, [wt], ["src/a.py"], common).local) == [0]
    git(wt, "update-index", "--index-version", "4")  # names compressed: not read here
    assert Changes(repo.path, [wt], ["src/a.py"], common).local == {}
    ranges = [("refs/heads/main", "refs/heads/other")]
    assert Changes(repo.path, [wt], ["src/a.py"], common).finish(ranges) == [{"src/a.py": "uncommitted"}]
