"""What ``setup.copy`` put in a task's worktree, told apart from what was made there since.

The guard (guard.py) does not ask anyone to keep what setup.copy copied: it is in the main
worktree still.  But a copied folder ('data/', '.venv/') is a place people and tools write
to, and a copied '.env' is edited for the task: those files are the user's, and until
review 35 the guard skipped everything under a copied path, so a plain 'wtp rm' deleted
them.  So when a start copies, it records each copied file's kind, size and modification
time in the state dir (``cp -a`` keeps the source's times; any write changes them); the
guard exempts a file only while it is still as recorded, or (a task started before the
record existed, or one past its limit) as the same path in the main worktree is now.
Kind, size and time are not enough alone: an edit of the same size in the timestamp tick of
the copy (a filesystem stamping in whole seconds), or one whose time was put back ('touch
-r', a 'mv' of a file given the old time), looks as copied.  So the record also holds, for
each entry, the change time its copied files have at most, read off the filesystem itself
once the copy is done; every change since (a write, a rename over, a chmod, a 'touch') sets
a later change time, which no one can put back.  A file changed since is the user's, also
when it matches the record or the main worktree.  Everything else under a copied path is
judged as any ignored file: kept, archived, or disposable by its name.  A folder holding a
repository of its own is named as a folder, for the guard's nested-repository search."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import atomic
from .repo import Ctx
from .state import Task

if TYPE_CHECKING:
    from .nested import Nested

LIMIT = 200_000  # files recorded per task; past it, the rest are judged against the main worktree

Seen = tuple[str, int, int]  # (kind: 'f' file, 'l' link, 'o' other; size; mtime in ns)
TICK_WAIT = 5.0  # seconds the change time may take to move on: FAT stamps in 2 s steps, a FUSE mount caches 1 s


class Record(NamedTuple):
    files: dict[str, Seen]
    until: dict[str, int]  # entry -> the latest change time its copy gave (records made before it: none)


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
    recorded again: the user's edits made since would be taken for the copy's.  With each
    entry, once its copy is over, the change time the worktree's filesystem gives a change
    made then: no file of that copy has a later one, every later change has.  Best effort:
    an entry without a record is compared with the main worktree, which only ever keeps more."""

    def __init__(self, ctx: Ctx, task: Task) -> None:
        self.ctx, self.task = ctx, task
        self.root = Path(task.path) if task.path else None
        self.files: dict[str, Seen] = {}
        self.until: dict[str, int] = {}
        self.copying: list[str] = []  # the entries this start copies, the last one still being copied

    def before(self, entry: str) -> None:
        """``entry`` (one of ``entries_of``) is about to be copied: the one before it is done
        (the copy goes one entry at a time)."""
        from . import disposable

        self._copied()
        if disposable.matches(entry + "/", disposable.DISPOSABLE + self.ctx.cfg.rm_disposable):
            return  # deleted with the worktree whatever it holds: nothing to tell apart
        self.copying.append(entry)
        for rel, st in _walk(self.ctx.repo.config_root, entry):
            if len(self.files) >= LIMIT:
                break
            self.files.setdefault(rel, _seen(st))

    def _copied(self) -> None:
        """The last entry's copy is over: the change time a change made now is given bounds
        what that copy made (the filesystem's own stamp, from its clock, in its steps)."""
        if self.copying and self.copying[-1] not in self.until and self.root is not None:
            if (now := change_time(self.root)) is not None:
                self.until[self.copying[-1]] = now

    def save(self) -> None:
        self._copied()
        # A change made in the tick of that last stamp is given that stamp too: not told from
        # the copy.  Wait for the next tick, so every change from now on is stamped later.
        if self.root is not None and self.until and change_time(self.root, max(self.until.values())) is None:
            self.until = {}  # the change time does not move on here: it tells nothing, as records before it
        if not self.files and not self.until:  # (an empty folder copied: what is made in it later is the user's)
            return
        at = _record_file(self.ctx, self.task.name)
        # An entry this start copied was not in the worktree before: what an earlier start
        # recorded of it is stale (its copy was removed, and made again just now).
        old = _load(at, self.task.seq) or Record({}, {})
        files = {**old.files, **self.files}
        until = {e: t for e, t in old.until.items() if e not in self.copying} | self.until
        try:
            atomic.replace(at, json.dumps({"seq": self.task.seq, "files": files, "until": until}).encode())
        except OSError:
            pass  # best effort (above)


def change_time(folder: Path, past: int = -1) -> int | None:
    """The change time (ns) the filesystem of ``folder`` gives a change made now, once it is
    later than ``past``; None when it cannot be read there, or does not pass ``past`` within
    TICK_WAIT.  Read off a file of our own, without a name where the system allows it."""
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)  # nothing left, even if killed
    except (AttributeError, OSError):  # not Linux, or a filesystem without O_TMPFILE
        name = folder / f".wtp-clock-{os.getpid()}-{time.monotonic_ns()}.tmp"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        name.unlink(missing_ok=True)
    try:
        deadline, pause = time.monotonic() + TICK_WAIT, 0.001
        while True:
            os.fchmod(fd, 0o600)  # sets the change time, as a write, a rename or a 'touch' does
            if (now := os.fstat(fd).st_ctime_ns) > past:
                return now
            if time.monotonic() > deadline:
                return None
            time.sleep(pause)  # the filesystem's clock moves on in its own steps (a jiffy, a second)
            pause = min(pause * 2, 0.05)
    except OSError:
        return None
    finally:
        os.close(fd)


def forget(ctx: Ctx, task: Task) -> None:
    """The task's worktree is gone: its record goes too (one of another task of that name stays)."""
    at = _record_file(ctx, task.name)
    if _load(at, task.seq) is not None:
        at.unlink(missing_ok=True)


def _load(at: Path, seq: int) -> Record | None:
    try:  # never a FIFO or a device planted there: one that blocks would hang every rm
        data = json.loads(atomic.read_regular(at))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("seq") != seq or not isinstance(data.get("files"), dict):
        return None
    until = data.get("until")
    return Record(
        {k: tuple(v) for k, v in data["files"].items() if isinstance(v, list) and len(v) == 3},
        {
            e: t
            for e, t in (until.items() if isinstance(until, dict) else ())
            if isinstance(t, int) and not isinstance(t, bool)
        },
    )


def _until(until: dict[str, int], rel: str) -> int | None:
    """The latest change time the copy that brought ``rel`` gave, when the record says it."""
    return max((t for e, t in until.items() if rel == e or rel.startswith(e + "/")), default=None)


def made_here(ctx: Ctx, task: Task, wt: Path, paths: list[str]) -> list[str]:
    """Of ``paths`` (ignored paths under setup.copy entries, as git status names them), what
    was made or changed in the worktree after the copy: files, and folders holding a
    repository of their own (with '/')."""
    if not paths:
        return []
    recorded = _load(_record_file(ctx, task.name), task.seq) or Record({}, {})
    main = ctx.repo.config_root
    out: list[str] = []
    for p in paths:
        for rel, st in _walk(wt, p.rstrip("/"), repos=out):
            if (until := _until(recorded.until, rel)) is not None and st.st_ctime_ns > until:
                out.append(rel)  # changed since the copy, whatever it looks like now
                continue
            now = _seen(st)
            if recorded.files.get(rel) == now:
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


def as_in_main(ctx: Ctx, task: Task, n: Nested) -> bool:
    """A nested repository that the main worktree holds at the same path, as it is here (its
    HEAD and every ref the same) with nothing uncommitted here: what setup.copy brought (a
    'pip install -e' clone in a copied '.venv'), whose work is in the main worktree.  None of
    its files changed since the task's copy, when the record says when that copy ended."""
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
    until = _until((_load(_record_file(ctx, task.name), task.seq) or Record({}, {})).until, n.path)
    for rel, st in (found for name in top for found in _walk(n.repo, name, repos=[])):
        if disposable.refilled(rel):
            continue  # a cache a run refills (__pycache__ of an import): not the user's work
        if until is not None and st.st_ctime_ns > until:
            return False  # changed since the copy, whatever it looks like now
        try:
            if _seen(os.lstat(main / rel)) != _seen(st):
                return False
        except OSError:
            return False
    return True
