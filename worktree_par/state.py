"""The task registry: versioned JSON under ``<git-common-dir>/wtp/``, written to a temp file in the same folder
then ``os.replace``d (pre-commit's store.py), under a separate lock file (filelock's docs: don't lock the file you
write).  The previous good copy is kept as ``state.json.bak`` so a corrupt file is never silent loss of the registry.
Readers that do not change anything read without the lock: ``os.replace`` makes every read see a whole file.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import atomic
from .errors import StateError, TaskNotFound, WtpError
from .locks import Holder, Lock, is_alive, me, set_beats_dir
from .names import shown, validate_name
from .taskrecord import (
    ABANDONED,
    ACTIVE,
    BLOCKED,
    CREATING,
    FINAL,
    INTENTS,
    KEEP_FINISHED,
    LANDED,
    LANDING,
    LANDING_PHASE,
    LIVE,
    PHASES,
    PUBLISHING,
    QUEUED,
    REMOVING,
    STATES,
    WITHDRAWN,
    Task,
)

# The task record, its states and its name contract, with the registry.
__all__ = [
    "ABANDONED",
    "ACTIVE",
    "BLOCKED",
    "CREATING",
    "FINAL",
    "INTENTS",
    "KEEP_FINISHED",
    "LANDED",
    "LANDING",
    "LANDING_PHASE",
    "LIVE",
    "PHASES",
    "PUBLISHING",
    "QUEUED",
    "REMOVING",
    "STATES",
    "WITHDRAWN",
    "Task",
    "shown",
    "validate_name",
]

VERSION = 1


class Unset:
    """The default of a field ``Store.update`` leaves as it is."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


class State:
    """The whole registry at one moment: tasks by name, the arrival counter, other modules' records (``extra``).
    From ``Store.read`` it is a snapshot to read, maybe stale; only the one a ``Store.transaction`` yields may be
    changed.  Look a task up here once, by name (``task``) or by path (``task_at``), and pass the object on."""

    def __init__(self, seq: int = 0, tasks: dict[str, Task] | None = None, extra: dict[str, Any] | None = None) -> None:
        self.seq = seq
        self.tasks: dict[str, Task] = tasks if tasks is not None else {}
        self.extra: dict[str, Any] = extra if extra is not None else {}  # other modules' small records (trust, ...)

    def task(self, name: str) -> Task:
        """The task named ``name``: InvalidTaskName or TaskNotFound (naming the live ones)."""
        validate_name(name)
        t = self.tasks.get(name)
        if t is None:
            known = ", ".join(sorted(n for n, t in self.tasks.items() if t.state not in FINAL)) or "none"
            raise TaskNotFound(f"no task named '{name}' (tasks: {known}): see 'wtp list'")
        return t

    def task_at(self, path: Path | str) -> Task | None:
        """The task whose worktree holds ``path`` (an absolute path, resolved by the caller):
        the one answer to "which task do I stand in?" (the newest, should an old record
        still name the folder)."""
        p = str(path)
        for t in sorted(self.tasks.values(), key=lambda t: -t.seq):
            if t.path and (p == t.path or p.startswith(t.path.rstrip("/") + "/")):
                return t
        return None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def live(self) -> list[Task]:
        return sorted((t for t in self.tasks.values() if t.state in LIVE), key=lambda t: t.seq)

    def queued(self) -> list[Task]:
        return sorted((t for t in self.tasks.values() if t.state == QUEUED), key=lambda t: t.seq)

    def forget_old_finished(self) -> None:
        done = sorted((t for t in self.tasks.values() if t.state in FINAL and not t.path), key=lambda t: t.seq)
        for t in done[: max(0, len(done) - KEEP_FINISHED)]:
            del self.tasks[t.name]

    def copy(self) -> State:
        """A snapshot of its own (``Store``'s last decoded registry is handed out as copies)."""
        extra = copy.deepcopy(self.extra) if self.extra else {}
        return State(self.seq, {n: t.copy() for n, t in self.tasks.items()}, extra)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "seq": self.seq,
            "tasks": [t.to_json() for t in sorted(self.tasks.values(), key=lambda t: t.seq)],
            **({"extra": copy.deepcopy(self.extra)} if self.extra else {}),  # a snapshot, see transaction
        }


def encode(data: dict[str, Any]) -> bytes:
    """The registry as written: a task per line, keys sorted, so it reads and diffs well;
    made by json's C encoder (an ``indent`` makes json fall back to its Python one, which
    cost 4 ms a write with 20 tasks: the land queue writes the registry every few ms)."""
    rest = {k: v for k, v in data.items() if k != "tasks"}
    lines = ",\n".join(json.dumps(t, sort_keys=True) for t in data.get("tasks", []))
    head = json.dumps(rest, sort_keys=True)[:-1]
    return f'{head}{", " if rest else ""}"tasks": [\n{lines}\n]}}\n'.encode()


_BAD_REF = ("..", "@{", "//", "/.", ".lock/")


def _check_meaning(tasks: dict[str, Task]) -> None:
    """Records of the right shape that no wtp writes (a damaged or planted file): rm and doctor
    would act on them, deleting the base branch a record names as its own, or another task's
    worktree.  ValueError naming the first."""
    branches: dict[str, str] = {}
    paths: dict[str, str] = {}
    for t in tasks.values():
        try:
            validate_name(t.name)
        except WtpError as e:
            raise ValueError(e.message.split("; try")[0]) from None
        b = t.branch
        # A task's branch is the branch prefix and its name (Ctx.branch_of), never its base.
        if (
            not b.endswith(t.name)
            or b == t.base
            or b.startswith(("-", "/", "refs/"))
            or any(x in b for x in _BAD_REF)
            or not b.isprintable()
            or any(c in b for c in " ~^:?*[\\")
        ):
            raise ValueError(f"task '{t.name}' names the branch '{shown(b)}', which is not a task branch")
        if t.path is not None and (not os.path.isabs(t.path) or "\0" in t.path):
            raise ValueError(f"task '{t.name}' has the worktree path '{shown(t.path)}', which is not absolute")
        if t.state in FINAL:
            continue
        for key, seen in ((b, branches), (os.path.normpath(t.path) if t.path else "", paths)):
            if key and seen.setdefault(key, t.name) != t.name:
                raise ValueError(f"tasks '{seen[key]}' and '{t.name}' are both recorded with '{shown(key)}'")


_DECODED: dict[Path, tuple[bytes, State]] = {}  # per file: the bytes last decoded, and what they held (Store._decode)


class Store:
    """The registry on disk and the one way to change it: ``update`` re-reads a task under the lock and sets typed
    fields only while it is the same task, ``phase`` marks one mid-operation for a body, ``transaction`` is for changes
    across tasks.  Readers ``read`` without the lock; what they decide is re-checked by the write that acts on it."""

    def __init__(self, common_dir: Path) -> None:
        self.dir = common_dir / "wtp"
        self.file = self.dir / "state.json"
        self.backup = self.dir / "state.json.bak"
        self.lock_file = self.dir / "state.lock"
        set_beats_dir(self.dir / "beats")

    def ensure_dir(self) -> Path:
        if self.dir.is_symlink():
            raise StateError(f"{self.dir} is a symlink: wtp keeps its state only in a real directory; remove the link")
        try:
            self.dir.mkdir(exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the state folder {self.dir} ({e.strerror})") from e
        return self.dir

    def subdir(self, name: str) -> Path:
        d = self.ensure_dir() / name
        if d.is_symlink():
            raise StateError(f"{d} is a symlink: remove it, wtp will recreate the directory")
        try:
            d.mkdir(exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create {d} ({e.strerror}): check that {self.dir} is writable") from e
        return d

    def read(self) -> State:
        raw = self._read_bytes(self.file)
        if raw is None:
            return State()
        return self._decode(raw, self.file)

    def _read_bytes(self, path: Path) -> bytes | None:
        try:
            return atomic.read_regular(path)  # a FIFO planted there is refused, not waited on
        except FileNotFoundError:
            return None
        except NotADirectoryError as e:
            raise StateError(f"cannot create the state folder {self.dir} (File exists)") from e
        except OSError as e:
            if e.errno == errno.EINVAL:  # not a regular file: a FIFO, a device, a folder
                if path.is_dir() and not path.is_symlink():
                    raise StateError(f"{path} is a directory, not the registry: move it aside") from None
                raise StateError(
                    f"state file {path} is not a regular file: run 'wtp doctor --fix' to set it aside"
                ) from None
            hint = "it is a symlink: remove it" if path.is_symlink() else e.strerror
            raise StateError(f"state file {path} cannot be read ({hint})") from e

    def _decode(self, raw: bytes, path: Path) -> State:
        """The registry in ``raw``, checked; StateError when it is corrupt.  The bytes last
        decoded from ``path`` are kept with what they held: a land queue reads the registry
        every few milliseconds and mostly finds it as it was, and checking every record again
        cost 0.6 ms with 20 tasks.  The bytes are compared whole, so the answer is the one a
        fresh decoding gives (a copy: the caller may change it)."""
        last = _DECODED.get(path)
        if last is not None and last[0] == raw:
            return last[1].copy()
        state = self._decode_fresh(raw, path)
        _DECODED.pop(path, None)
        _DECODED[path] = (raw, state.copy())
        while len(_DECODED) > 8:  # a long-lived process (the MCP server, a test runner) meets many repositories
            del _DECODED[next(iter(_DECODED))]
        return state

    def _decode_fresh(self, raw: bytes, path: Path) -> State:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("version"), int):
                raise ValueError("no version field")
            if data["version"] > VERSION:
                raise StateError(
                    f"state file {path} was written by a newer wtp (format {data['version']}, "
                    f"this wtp reads {VERSION}): upgrade wtp"
                )
            records, extra, seq = data.get("tasks", []), data.get("extra", {}), data.get("seq", 0)
            if not isinstance(records, list) or not isinstance(extra, dict) or not isinstance(seq, int):
                raise ValueError("'tasks' must be a list, 'extra' an object and 'seq' a number")
            tasks: dict[str, Task] = {}
            for d in records:
                t = Task.from_json(d)
                if t.name in tasks:
                    raise ValueError(f"two records of task '{shown(t.name)}'")
                tasks[t.name] = t
            _check_meaning(tasks)
            return State(seq=seq, tasks=tasks, extra=dict(extra))
        except StateError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
            hint = "run 'wtp doctor --fix' to restore the previous good copy"
            if path == self.backup or not self.backup.exists():
                hint = "run 'wtp doctor --fix': it sets the file aside and rebuilds the registry from git"
            raise StateError(f"state file {path} is corrupt ({e.__class__.__name__}: {e}): {hint}") from e

    def restore_backup(self) -> bool:
        """Replace a corrupt state file by the kept previous copy; False when there is none
        or it is no good either."""
        raw = self._read_bytes(self.backup)
        if raw is None:
            return False
        try:
            self._decode(raw, self.backup)  # only a good copy is restored
        except StateError:
            return False
        self._write_bytes(self.file, raw)
        return True

    def quarantine(self) -> Path:
        """Set a corrupt state file aside (never deleted) and start from an empty registry."""
        aside = self.dir / f"state.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        with self.lock():
            os.replace(self.file, aside)
        return aside

    def _write_bytes(self, path: Path, data: bytes) -> None:
        try:
            atomic.replace(path, data, self.dir)  # 0o666 less the user's umask, as any file they write
        except OSError as e:
            # ENOSPC, EROFS, EACCES: nothing was changed, the old file is whole.
            fix = (
                f"move the folder {path} aside (wtp keeps a file there)"
                if e.errno == errno.EISDIR
                else f"free space or make {self.dir} writable"
            )
            raise StateError(f"cannot write {path} ({e.strerror}); nothing was changed: {fix}") from None

    def lock(self) -> Lock:
        self.ensure_dir()
        return Lock(self.lock_file, what="the state lock")

    @contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, read, let the caller change the state, write it back if it changed."""
        with self.lock():
            raw = self._read_bytes(self.file)
            state = self._decode(raw, self.file) if raw is not None else State()
            before = state.to_json()
            yield state
            after = state.to_json()
            if after != before:
                state.forget_old_finished()
                if raw is not None:
                    self._write_bytes(self.backup, raw)
                self._write_bytes(self.file, encode(state.to_json()))

    def update(
        self,
        task: Task,
        *,
        state: str | Unset = UNSET,
        path: str | None | Unset = UNSET,
        fork: str | None | Unset = UNSET,
        port: int | None | Unset = UNSET,
        touch: list[str] | Unset = UNSET,
        use: list[str] | Unset = UNSET,
        phase: str | Unset = UNSET,
        holder: dict[str, Any] | None | Unset = UNSET,
        setup: str | Unset = UNSET,
        commit: str | None | Unset = UNSET,
        paths: list[str] | Unset = UNSET,
        note: str | Unset = UNSET,
        candidate: str | None | Unset = UNSET,
        ticket: int | None | Unset = UNSET,
        attempts: int | Unset = UNSET,
        held: list[str] | Unset = UNSET,
        intent: str | Unset = UNSET,
        request: int | None | Unset = UNSET,
    ) -> Task | None:
        """Re-read ``task`` under the lock and, if it is still the same task (same seq), set
        the fields given on it; the task as stored now, or None when it is gone or was
        replaced.  The one way the core changes a task it read earlier (re-check after the
        lock).  The fields are keyword-only and typed: a misspelt one is a type error for
        mypy and a TypeError at run time, never junk in state.json."""
        fields = {k: v for k, v in locals().items() if k not in ("self", "task") and not isinstance(v, Unset)}
        with self.transaction() as st:
            cur = st.tasks.get(task.name)
            if cur is None or cur.seq != task.seq:
                return None
            for k, v in fields.items():
                setattr(cur, k, v)
            return cur

    @contextmanager
    def phase(self, task: Task, name: str, *, expect_idle: bool = True) -> Iterator[Task]:
        """Record that ``task`` is mid-operation ``name``, held by this process, for the body;
        cleared when the body ends (unless it set another phase or state itself).  Refuses
        when another live process holds an operation on the task, or the task changed."""
        from .errors import Refusal

        with self.transaction() as st:
            cur = st.tasks.get(task.name)
            if cur is None or cur.seq != task.seq:
                raise Refusal(f"task '{task.name}' changed meanwhile: see 'wtp list'")
            if cur.phase and expect_idle:
                holder = Holder.from_json(cur.holder)
                if is_alive(holder) and (holder is None or holder.pid != os.getpid()):
                    raise Refusal(
                        f"task '{task.name}' is busy ({cur.phase}) by {holder.describe() if holder else 'another process'}: wait for it"
                    )
            cur.phase, cur.holder = name, me().to_json()
            held = Task.from_json(cur.to_json())
        try:
            yield held
        finally:
            with self.transaction() as st:
                cur = st.tasks.get(task.name)
                if cur is not None and cur.seq == task.seq and cur.phase == name and _mine(cur.holder):
                    cur.phase, cur.holder = "", None


def _mine(holder: dict[str, Any] | None) -> bool:
    try:
        h = Holder.from_json(holder)
    except ValueError:
        return False
    return h is not None and h.pid == os.getpid() and h.start == me().start


def _holder_gone(t: Task) -> bool:
    """The process the task's record names is gone (a record without one, or a damaged one,
    counts as gone)."""
    try:
        return not is_alive(Holder.from_json(t.holder))
    except ValueError:
        return True


def interrupted(t: Task) -> bool:
    """The task is mid-operation and the process doing it is gone."""
    return bool(t.phase) and _holder_gone(t)


def lander_gone(t: Task) -> bool:
    """The task is marked waiting to land (no operation under way) and the 'wtp land' that
    marked it is gone (a record without one, from an older wtp, counts as gone).  Whether a
    ticket of it still waits in the land queue (a detached land's) is the caller's to ask."""
    return t.state == LANDING and not t.phase and _holder_gone(t)
