"""'wtp start' and 'wtp next': admitting, queueing and starting tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from ..exits import err, json_task, open_repo
from .common import bound_waits, emit

if TYPE_CHECKING:
    pass


def start(
    where: str | None,
    task: str,
    *,
    base: str | None = None,
    touch: Sequence[str] = (),
    use: Sequence[str] = (),
    wait: bool = False,
    timeout: float | None = None,
    force: bool = False,
    as_json: bool = False,
    touch_suggested: bool = False,
) -> int:
    """Stdout is the worktree's path and nothing else (so 'cd "$(wtp start x)"' is safe), or
    empty with exit 4 when the task was queued; notes and reasons go to stderr."""
    from .. import tasks
    from ..progress import Watch
    from ..state import QUEUED

    if timeout is not None and not wait:
        raise UsageError("--timeout goes with --wait: add --wait")
    bound_waits(timeout)
    c = open_repo(where)
    setup_log = c.store.dir / "logs" / f"setup-{task}.log"

    def note() -> str:
        cur = c.store.read().tasks.get(task)
        return cur.note if cur is not None and cur.state == QUEUED else ""

    json_task(task)  # a refusal from here on names the task in its --json document
    with Watch(f"starting '{task}'", err, log=lambda: setup_log) as w:
        result = tasks.start(
            c,
            task,
            base_ref=base,
            touch=list(touch),
            use=list(use),
            force=force,
            touch_suggested=touch_suggested,
            say=w.say,
        )
    t = result.task
    for m in result.messages:
        err(m)
    if wait and t.state == QUEUED:
        from .. import waiting  # (its gates import hashlib: ~2.5 ms of a start that does not wait)

        with Watch(f"waiting for a slot for '{task}'", err, detail=note, log=lambda: setup_log) as w:
            t = waiting.wait_active(c, task, timeout, say=w.say)
    if as_json:
        from .. import listing

        emit(listing.task_json(t))
    elif t.state != QUEUED:
        print(t.path)
    return ExitCode.QUEUED if t.state == QUEUED else 0


def next_(where: str | None, as_json: bool = False) -> int:
    from .. import listing, tasks

    c = open_repo(where)
    said: list[str] = []

    def say(m: str) -> None:
        said.append(m)
        err(m)

    started = tasks.promote(c, say=say)
    waiting = c.store.read().queued()
    held = next((m.split(": ", 1)[1] for m in said if m.startswith("queued tasks stay queued: ")), None)
    if as_json:  # why each queued task still waits (all of them, when held), and what promote said
        emit(
            {
                "started": [listing.task_json(t) for t in started],
                "queued": [{"name": t.name, "note": held or t.note} for t in waiting],
                "messages": said,
            }
        )
    elif started:
        for t in started:
            print(f"{t.name}\t{t.path}")
    elif held is not None:
        print(f"nothing started; {len(waiting)} queued")  # why is the line above, not their older notes
    else:
        print(
            "nothing to start"
            + (f"; {len(waiting)} queued: " + "; ".join(f"{t.name}: {t.note}" for t in waiting) if waiting else "")
        )
    return 0
