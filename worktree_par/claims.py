"""Who else has a claim on a path: declared by another live task (``--touch``), recorded by
the agent hook when another task edited it, or changed by another task (committed, staged,
unstaged or untracked).  The question the pre-edit hook, the pre-commit hook and
admission ask.

Recorded paths live in one append-only file per task under the state dir
(``touched/<task>-<seq>``, one path per line; a path holding a line break, or starting
with a quote, is written as a JSON string): an edit is recorded without taking the state
lock, and a file that belongs to an earlier task of the same name is never read (the seq
differs).  The hook's look at the other tasks' records and its own record are one step
under ``touched.lock``, held for a few file reads, so of two tasks asking for one file at
once exactly one gets it.  They go when the task lands or is removed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from . import atomic
from .globs import glob_matches
from .locks import Lock
from .repo import Ctx
from .stacking import beneath
from .state import LIVE, State, Task

TOUCHED = "touched"
# Held for a few file reads and one append: a wait this long means a stopped or wedged
# holder, and the hook (run before every edit) answers instead of hanging.
RECORD_WAIT = 1.0


class Claim(NamedTuple):
    task: str  # the other task
    path: str  # the path asked about
    how: str  # "declared", "recorded" or "changed"
    detail: str  # the glob it declared, or what kind of change

    def describe(self) -> str:
        if self.how == "declared":
            return f"{self.path} is declared by task '{self.task}' (--touch {self.detail})"
        if self.how == "recorded":
            return f"{self.path} was already edited by task '{self.task}' (through the agent hook)"
        return f"{self.path} was changed by task '{self.task}' ({self.detail})"


def literal_glob(path: str) -> str:
    """A path as a --touch glob that matches exactly it."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def _file(ctx: Ctx, t: Task) -> Path:
    return ctx.store.dir / TOUCHED / f"{t.name}-{t.seq}"


def _line(rel: str) -> str:
    """``rel`` as one line of a record: as it is, or as a JSON string when it holds a line
    break (a file name may: written as it is, it was two false claims) or starts with a quote."""
    return json.dumps(rel) if "\n" in rel or rel.startswith('"') else rel


def _path(line: str) -> str:
    if line.startswith('"'):
        try:
            p = json.loads(line)
        except ValueError:
            return line  # not ours to decode (an older record): the path as written
        if isinstance(p, str):
            return p
    return line


def recorded(ctx: Ctx, t: Task) -> list[str]:
    """The paths the agent hook recorded for ``t``, in the order first recorded."""
    try:
        text = atomic.read_regular(_file(ctx, t)).decode("utf-8", "surrogateescape")  # bytes: a '\r' is no line end
    except OSError:
        return []
    return list(dict.fromkeys(_path(line) for line in text.split("\n") if line))


def record_first(ctx: Ctx, st: State, t: Task, rel: str, *, anyway: bool = False) -> tuple[list[Claim], bool]:
    """Record that ``t`` edits ``rel`` unless another live task recorded it first (``anyway``:
    even then).  The other tasks' records on it, and whether ``rel`` was newly recorded.
    WaitTimeout when the lock is not had within RECORD_WAIT seconds."""
    lock = Lock(ctx.store.ensure_dir() / "touched.lock", what="the record of the agents' edits")
    try:
        lock.acquire(timeout=RECORD_WAIT)
        on = [Claim(o.name, rel, "recorded", "") for o in _others(st, t) if rel in recorded(ctx, o)]
        if (on and not anyway) or rel in recorded(ctx, t):
            return on, False
        d = ctx.store.dir / TOUCHED
        d.mkdir(exist_ok=True)
        with atomic.open_log(_file(ctx, t)) as f:  # (a FIFO planted there: refused, never waited on)
            f.write((_line(rel) + "\n").encode("utf-8", "surrogateescape"))
        return on, True
    finally:
        lock.release()


def forget(ctx: Ctx, t: Task) -> None:
    try:
        _file(ctx, t).unlink()
    except OSError:
        pass


def declarations(ctx: Ctx, st: State) -> dict[str, list[str]]:
    """Each live or queued task's recorded paths, as globs, for admission and check."""
    return {t.name: [literal_glob(p) for p in recorded(ctx, t)] for t in st.tasks.values() if t.state in LIVE}


def _others(st: State, me: Task | None) -> list[Task]:
    """The live tasks whose claims count against ``me``'s edits."""
    under = beneath(me, st.tasks.values()) if me is not None else set()  # its edits go on top of theirs
    return [
        o for o in st.tasks.values() if o.state in LIVE and (me is None or o.name != me.name) and o.name not in under
    ]


def claims_on(ctx: Ctx, st: State, me: Task | None, paths: list[str], *, changed: bool = True) -> list[Claim]:
    """Every other live task's claim on ``paths`` (relative to the repository's top)."""
    found: list[Claim] = []
    others = _others(st, me)
    with_tree = [o for o in others if changed and o.path and os.path.isdir(o.path)]
    # The worktrees' statuses (the costly git calls) run while the rest is worked out.
    wts = [Path(str(o.path)) for o in with_tree]
    from .gitops.index_paths import Changes  # here: only the hook and start need it

    pending = Changes(ctx.root, wts, paths, ctx.repo.common_dir) if changed else None
    for o in others:
        for p in paths:
            g = next((g for g in o.touch if glob_matches(g, p)), None)
            if g is not None:
                found.append(Claim(o.name, p, "declared", g))
        done = {c.path for c in found if c.task == o.name}
        mine = set(recorded(ctx, o))
        found += [Claim(o.name, p, "recorded", "") for p in paths if p in mine and p not in done]
    if pending is not None:
        claimed = {(c.task, c.path) for c in found}
        bases = {o.base: ctx.base_tip_ref(o.base) for o in with_tree}
        hits = pending.finish([(bases[o.base], f"refs/heads/{o.branch}") for o in with_tree])
        for o, changes in zip(with_tree, hits, strict=True):
            found += [Claim(o.name, p, "changed", how) for p, how in changes.items() if (o.name, p) not in claimed]
    return found
