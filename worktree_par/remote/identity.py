"""This clone's id, bound to the clone it names.

The id names this clone's refs on the remote (``refs/wtp/claims/<id>/...``) and its remote
gate tickets, so it must not travel: a clone copied with ``cp -a`` or restored from a
backup carries the original's state dir, and with it the original's id, and would take the
original's claims for its own.  The id file therefore also records the device and inode of
the common git dir it was made in; a clone whose git dir is another directory makes a new id
on first use.  A clone moved with ``mv`` on one file system keeps its inode, and its id.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from .. import atomic
from ..locks import Lock
from ..repo import Ctx

ID_FILE = "clone-id"


def _place(common: Path) -> str:
    st = os.stat(common)
    return f"{st.st_dev}:{st.st_ino}"


def _read(path: Path) -> tuple[str, str] | None:
    """(id, place) as recorded, or None when there is no valid record."""
    try:
        fields = atomic.read_regular(path).decode("utf-8", errors="replace").split()
    except OSError:
        return None
    if not fields or not (4 <= len(fields[0]) <= 64) or not fields[0].isalnum():
        return None
    return fields[0], fields[1] if len(fields) > 1 else ""


def clone_id(ctx: Ctx) -> str:
    """This clone's id: made once, and again when the clone turns out to be a copy."""
    d = ctx.store.ensure_dir()
    path = d / ID_FILE
    here = _place(ctx.repo.common_dir)
    found = _read(path)
    if found is not None and found[1] == here:
        return found[0]
    with Lock(d / "clone-id.lock", what="the clone-id lock"):
        found = _read(path)  # another process of this clone may have made it meanwhile
        if found is not None and found[1] == here:
            return found[0]
        if found is not None and found[1] == "":
            cid = found[0]  # written before ids were bound: this is the clone that made it
        else:
            cid = uuid.uuid4().hex[:12]  # new, or copied from another clone: an id of our own
        atomic.replace(path, f"{cid} {here}\n".encode())
        return cid
