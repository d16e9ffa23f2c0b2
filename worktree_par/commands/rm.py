"""'wtp rm': removing a task (the guard decides what may go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exits import err, open_repo
from .common import current_task, left_behind

if TYPE_CHECKING:
    pass


def rm(where: str | None, task: str | None, force: bool = False) -> int:
    from .. import removal

    c = open_repo(where)
    name = current_task(c, where, task)
    for m in removal.rm(c, name, force=force, say=err):
        print(m)
    left_behind(c, where)
    return 0
