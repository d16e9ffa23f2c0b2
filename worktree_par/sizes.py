"""How much of a worktree's ignored files a forced archive takes (guard.archive): each
file up to a limit, and all of them up to another; the rest is named, not archived."""

from __future__ import annotations

import os
from pathlib import Path

ARCHIVE_FILE_LIMIT = 1 << 20  # ignored files up to 1 MiB each go into a forced archive
ARCHIVE_TOTAL_LIMIT = 64 << 20


def split_by_size(root: Path, paths: list[str]) -> tuple[list[str], list[str]]:
    """Ignored files small enough to archive, and the ones too large (deleted, and named)."""
    small, large, total = [], [], 0
    for p in paths:
        n = size(root / p)
        if n <= ARCHIVE_FILE_LIMIT and total + n <= ARCHIVE_TOTAL_LIMIT:
            small.append(p.rstrip("/"))
            total += n
        else:
            large.append(p)
    return small, large


def size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        total += sum(size(Path(dirpath, f)) for f in files)  # a file: its lstat size, 0 if it vanished
        if total > ARCHIVE_FILE_LIMIT:
            break
    return total
