"""The refs wtp keeps a task's work under, by name: the guard's archives and the land's
backup ref.  Apart from guard.py, whose import (the archive machinery) a start or a land's
queue check need not pay for their names (~3 ms)."""

from __future__ import annotations

ARCHIVE = "refs/wtp/archive/"
ARCHIVE_PREV, ARCHIVE_SUB = "refs/wtp/archive-prev/", "refs/wtp/archive-sub/"
BACKUP = "refs/wtp/backup/"
EDITS, PRE_LAND = "refs/wtp/archive-edits/", "refs/wtp/archive-pre-land/"  # under archive*: kept refs


def backup_ref(name: str) -> str:
    return f"{BACKUP}{name}"


def archive_ref(name: str) -> str:
    return f"{ARCHIVE}{name}"
