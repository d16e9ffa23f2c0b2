"""What ``setup.copy`` put in a task's worktree, told apart from what was made there since.

The guard (guard.py) does not ask anyone to keep what setup.copy copied: it is in the main
worktree still.  But a copied folder ('data/', '.venv/') is a place people and tools write
to, and a copied '.env' is edited for the task: those files are the user's, and until
review 35 the guard skipped everything under a copied path, so a plain 'wtp rm' deleted
them.  So when a start copies, it records each copied file's kind, size and modification
time in the state dir (``cp -a`` keeps the source's times; any write changes them); the
guard exempts a file only while it is still as recorded, or (a task started before the
record existed, or one past its limit) as the same path in the main worktree is now.
Everything else under a copied path is judged as any ignored file: kept, archived, or
disposable by its name.  A folder holding a repository of its own is named as a folder, for
the guard's nested-repository search."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from . import atomic
from .repo import Ctx
from .state import Task

if TYPE_CHECKING:
    from .nested import Nested

LIMIT = 200_000  # files recorded per task; past it, the rest are judged against the main worktree

Seen = tuple[str, int, int]  # (kind: 'f' file, 'l' link, 'o' other; size; mtime in ns)


def _seen(st: os.stat_result) -> Seen:
    kind = "f" if stat.S_ISREG(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "o"
    return (kind, st.st_size, st.st_mtime_ns)


def _record_file(ctx: Ctx, name: str) -> Path:
    return ctx.store.subdir("copied") / f"{name}.json"


def under(path: str, entries: tuple[str, ...]) -> bool:
    """``path`` (as git status names it) is, or lies in, one of the setup.copy entries."""
    p = path.rstrip("/")
    return any(p == c or p.startswith(c + "/") for c in entries)


def entries_of(ctx: Ctx) -> tuple[str, ...]:
    """The setup.copy paths as git status names them ('./data/' is 'data'), each once."""
    return tuple(dict.fromkeys(os.path.normpath(e) for e in ctx.cfg.setup_copy))


class Recorder:
    """What a start's copy puts in the task's worktree, for the guard: each setup.copy entry's
    files, read from the main worktree just before the entry is copied ('cp -a' gives each
    copy its source's kind, size and time), never from the worktree, where the user or an
    agent may write while the start goes on; saved once the copy is done (or failed), over
    what the task's record held of those entries (copied anew, their old record is stale).
    An entry a start does not copy (a resumed or retried start finds it there) is not
    recorded again: the user's edits made since would be taken for the copy's.  Best effort:
    an entry without a record is compared with the main worktree, which only ever keeps more."""

    def __init__(self, ctx: Ctx, task: Task) -> None:
        self.ctx, self.task = ctx, task
        self.files: dict[str, Seen] = {}

    def before(self, entry: str) -> None:
        """``entry`` (one of ``entries_of``) is about to be copied."""
        from . import disposable

        if disposable.matches(entry + "/", disposable.DISPOSABLE + self.ctx.cfg.rm_disposable):
            return  # deleted with the worktree whatever it holds: nothing to tell apart
        for rel, st in _walk(self.ctx.repo.config_root, entry):
            if len(self.files) >= LIMIT:
                break
            self.files.setdefault(rel, _seen(st))

    def save(self) -> None:
        if not self.files:
            return
        at = _record_file(self.ctx, self.task.name)
        # An entry this start copied was not in the worktree before: what an earlier start
        # recorded of it is stale (its copy was removed, and made again just now).
        files = {**(_load(at, self.task.seq) or {}), **self.files}
        try:
            atomic.replace(at, json.dumps({"seq": self.task.seq, "files": files}).encode())
        except OSError:
            pass  # best effort (above)


def forget(ctx: Ctx, task: Task) -> None:
    """The task's worktree is gone: its record goes too (one of another task of that name stays)."""
    at = _record_file(ctx, task.name)
    if _load(at, task.seq) is not None:
        at.unlink(missing_ok=True)


def _load(at: Path, seq: int) -> dict[str, Seen] | None:
    try:  # never a FIFO or a device planted there: one that blocks would hang every rm
        data = json.loads(atomic.read_regular(at))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("seq") != seq or not isinstance(data.get("files"), dict):
        return None
    return {k: tuple(v) for k, v in data["files"].items() if isinstance(v, list) and len(v) == 3}


def made_here(ctx: Ctx, task: Task, wt: Path, paths: list[str]) -> list[str]:
    """Of ``paths`` (ignored paths under setup.copy entries, as git status names them), what
    was made or changed in the worktree after the copy: files, and folders holding a
    repository of their own (with '/')."""
    if not paths:
        return []
    recorded = _load(_record_file(ctx, task.name), task.seq) or {}
    main = ctx.repo.config_root
    out: list[str] = []
    for p in paths:
        for rel, st in _walk(wt, p.rstrip("/"), repos=out):
            now = _seen(st)
            if recorded.get(rel) == now:
                continue
            try:
                if _seen(os.lstat(main / rel)) == now:
                    continue  # as the main worktree holds it: safely there
            except OSError:
                pass
            out.append(rel)
    return out


def _walk(wt: Path, rel: str, repos: list[str] | None = None) -> list[tuple[str, os.stat_result]]:
    """Every file and link at or under ``rel`` in ``wt``, with its lstat; a folder holding a
    '.git' is not entered, and is added to ``repos`` (with '/') when given."""
    found: list[tuple[str, os.stat_result]] = []
    stack = [rel]
    while stack:
        cur = stack.pop()
        try:
            st = os.lstat(wt / cur)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            found.append((cur, st))
            continue
        if cur != rel and os.path.lexists(wt / cur / ".git"):
            if repos is not None:
                repos.append(cur + "/")
            continue
        try:
            names = os.listdir(wt / cur)
        except OSError:
            continue
        stack.extend(f"{cur}/{n}" for n in names)
    return found


def as_in_main(ctx: Ctx, n: Nested) -> bool:
    """A nested repository that the main worktree holds at the same path, as it is here (its
    HEAD and every ref the same) with nothing uncommitted here: what setup.copy brought (a
    'pip install -e' clone in a copied '.venv'), whose work is in the main worktree."""
    from . import disposable, gitops
    from .errors import GitError

    main = ctx.repo.config_root / n.path
    if n.dirty or not os.path.lexists(main / ".git"):
        return False
    try:
        if gitops.head(main) != (n.head, n.head_ref) or gitops.refs_under(main, "refs/") != n.refs:
            return False
    except GitError:
        return False
    # Its files too, those its own .gitignore hides from 'git status' (a local.cfg edited here):
    # each as the main worktree's copy of it is (cp -a keeps the times; an edit changes them).
    try:
        top = [name for name in os.listdir(n.repo) if name != ".git"]
    except OSError:
        return False
    for rel, st in (found for name in top for found in _walk(n.repo, name, repos=[])):
        if disposable.refilled(rel):
            continue  # a cache a run refills (__pycache__ of an import): not the user's work
        try:
            if _seen(os.lstat(main / rel)) != _seen(st):
                return False
        except OSError:
            return False
    return True
