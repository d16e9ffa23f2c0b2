"""How much of a worktree's ignored files a forced archive takes (guard.archive): each
file up to a limit, and all of them up to another; the rest is named, not archived."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

ARCHIVE_FILE_LIMIT = 1 << 20  # ignored files up to 1 MiB each go into a forced archive
ARCHIVE_TOTAL_LIMIT = 64 << 20


def split_by_size(root: Path, paths: list[str]) -> tuple[list[str], list[str]]:
    """Ignored files small enough to archive, and the ones too large (deleted, and named).
    A folder is taken file by file: each file of it up to the limit goes in (review 45: a
    folder of small files weighed as one was dropped whole, named as one large file)."""
    small, large, total = [], [], 0
    for p in paths:
        for rel, n in _files(root, p.rstrip("/")):
            if n <= ARCHIVE_FILE_LIMIT and total + n <= ARCHIVE_TOTAL_LIMIT:
                small.append(rel)
                total += n
            else:
                large.append(rel)
    return small, large


def _files(root: Path, rel: str) -> Iterator[tuple[str, int]]:
    """(path, size) of the file ``rel``, or of every file below the folder ``rel`` (a
    repository's own '.git' left out: a nested repository is archived as one)."""
    top = root / rel
    if top.is_symlink() or not top.is_dir():
        yield rel, _size(top)
        return
    for dirpath, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        here = Path(dirpath)
        for f in sorted(files):
            yield (here / f).relative_to(root).as_posix(), _size(here / f)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0  # it vanished meanwhile
