"""When this clone first saw each record on the remote unchanged (ref and object id), on its
own clock.  A record's age is judged from that, never from the timestamp its writer put in
it: a writer whose clock ran ahead would otherwise make its claim look young forever, and
one whose clock ran behind would make it look old at once (issue 24).

Kept in ``<common git dir>/wtp/remote-seen.json``.  No lock: a lost update only makes a
record look younger (it is first seen again, later), never older.  A file that is not what
we write is set aside with one line and started afresh (ages then start from now)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .. import atomic, records
from ..repo import Ctx

FILE = "remote-seen.json"
VERSION = 1


def _load(ctx: Ctx) -> dict[str, dict[str, Any]]:
    path = ctx.store.dir / FILE
    try:
        text = atomic.read_regular(path).decode("utf-8")
    except (OSError, ValueError):  # (a FIFO planted there, bytes that are not UTF-8: no record)
        return {}
    try:
        data = json.loads(text)
        seen = data["seen"] if isinstance(data, dict) and data.get("version") == VERSION else None
        if not isinstance(seen, dict) or not all(
            isinstance(k, str)
            and isinstance(v, dict)
            and isinstance(v.get("id"), str)
            and isinstance(v.get("first"), (int, float))
            and not isinstance(v.get("first"), bool)
            for k, v in seen.items()
        ):
            raise ValueError("not a record of first sightings")
    except (ValueError, KeyError, TypeError, RecursionError):
        records.set_aside(path, "the record of remote sightings", "ages of remote records start from now")
        return {}
    return seen


def first_seen(ctx: Ctx, remote: str, current: Mapping[str, str]) -> dict[str, float]:
    """For each ``ref -> object id`` the remote holds now, when this clone first saw that ref
    hold that id (now, for what is new or changed); refs no longer listed are forgotten."""
    now = time.time()
    seen = _load(ctx)
    key = f"{remote} "
    kept = {k: v for k, v in seen.items() if not k.startswith(key)}
    out: dict[str, float] = {}
    for ref, oid in current.items():
        was = seen.get(key + ref)
        first = float(was["first"]) if was is not None and was["id"] == oid else now
        first = min(first, now)  # our clock stepped back since: never older than now
        out[ref] = first
        kept[key + ref] = {"id": oid, "first": first}
    if kept != seen:
        _save(ctx, kept)
    return out


def _save(ctx: Ctx, seen: dict[str, dict[str, Any]]) -> None:
    d = ctx.store.ensure_dir()
    try:
        atomic.replace(d / FILE, json.dumps({"version": VERSION, "seen": seen}, sort_keys=True).encode(), durable=False)
    except OSError:
        pass  # ages then start again from the next sighting: younger, never older
