"""The merge of a set of tasks' work onto the base, and the throw-away worktree it is
gated in: made by wtp beside the task worktrees (never in one of them), detached at the
merge commit wtp made, removed afterwards, and swept when the process that made it died."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .. import gitops, guard, isolate, locks, procs, schedule
from ..gitops import Sha
from ..repo import Ctx
from ..state import LIVE, Task

SCRATCH = ".wtp-check-"  # a task name never starts with '.', so no task's worktree is named so
PORTS = 1000  # the port range tasks take theirs from (config: port_base + this stays valid)


class Work(NamedTuple):
    """One task's work as of now: its commit (HEAD, or a snapshot of its uncommitted files)."""

    name: str
    commit: str
    tree: str
    changed: frozenset[str]


class Merged(NamedTuple):
    commit: Sha
    tree: Sha


class Clash(NamedTuple):
    """Adding ``task`` to the merge of the others gives a textual conflict in ``paths``."""

    task: str
    paths: list[str]


class Merger:
    """Merges of subsets of the tasks onto the base, each prefix merged once."""

    def __init__(self, root: Path, base_tip: str, work: Sequence[Work]) -> None:
        self.root, self.base_tip = root, base_tip
        self.order = {w.name: i for i, w in enumerate(work)}
        self.work = {w.name: w for w in work}
        self.memo: dict[tuple[str, ...], Merged | Clash] = {}

    def key(self, names: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(names, key=self.order.__getitem__))

    def merge(self, names: Sequence[str]) -> Merged | Clash:
        key = self.key(names)
        if key in self.memo:
            return self.memo[key]
        if not key:
            below: Merged | Clash = Merged(Sha(self.base_tip), gitops.tree_of(self.root, self.base_tip))
        else:
            below = self.merge(key[:-1])
        if isinstance(below, Clash) or not key:
            self.memo[key] = below
            return below
        w = self.work[key[-1]]
        mt = gitops.merge_tree(self.root, below.commit, w.commit)
        if mt.conflicts:
            out: Merged | Clash = Clash(w.name, mt.conflicts)
        else:
            msg = f"{MERGE_NOTE}{' + '.join(key)} merged onto the base"
            out = Merged(gitops.commit_tree(self.root, mt.tree, [below.commit, w.commit], msg), mt.tree)
        self.memo[key] = out
        return out


# --- the throw-away worktree -----------------------------------------------------------


def _owner_tag(pid: int) -> str:
    """The process, as a worktree's name carries it: its pid and its start time (a later
    process that reuses the pid, as containers started afresh do, is told apart)."""
    return f"{pid}.{procs.process_start(pid)}"


def scratch_path(ctx: Ctx, n: int) -> Path:
    return ctx.worktree_root() / f"{SCRATCH}{_owner_tag(os.getpid())}-{n}"


def _owner_alive(name: str) -> bool:
    """Whether the check run that named a throw-away worktree ``name`` still runs."""
    tag = name[len(SCRATCH) :].rsplit("-", 1)[0]
    pid, _, start = tag.partition(".")
    if not pid.isdigit():
        return False
    return procs.pid_alive(int(pid)) and (not start or _owner_tag(int(pid)) == tag)


MERGE_NOTE = "wtp check --test: "  # the subject of every merge commit check --test makes


def make(ctx: Ctx, commit: str, n: int) -> Path:
    """A worktree detached at ``commit`` (a merge wtp made), beside the task worktrees."""
    path = scratch_path(ctx, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    gitops.worktree(ctx.root, ["add", "--detach", "--quiet", str(path), commit], ctx.worktree_lock, hooks=False)
    return path


def remove(ctx: Ctx, path: Path, commit: str) -> str:
    """Remove a throw-away worktree through the guard (a commit someone made there is kept).
    ``commit``: the merge it is detached at; "" for a run that was killed, whose merges are
    told by their subject."""
    if not commit and (path / ".git").exists():
        head, _ = gitops.head(path)
        if head is not None and gitops.commit_message(ctx.root, head).startswith(MERGE_NOTE):
            commit = head
    return guard.remove_throwaway(ctx, path, commit)


LOGS_KEPT = 200  # newest check --test logs kept


def leftovers(ctx: Ctx) -> list[Path]:
    """The throw-away worktrees of check runs whose process is gone (killed with -9)."""
    root = ctx.worktree_root()
    return [
        w.path
        for w in ctx.worktrees()
        if w.path.parent == root and w.path.name.startswith(SCRATCH) and not _owner_alive(w.path.name)
    ]


def sweep(ctx: Ctx) -> None:
    """Remove the throw-away worktrees of check runs whose process is gone (killed with -9),
    and all but the newest LOGS_KEPT check logs."""
    logs = sorted(ctx.store.subdir("logs").glob("check-test-*-*.log"), key=_mtime)
    for old in logs[:-LOGS_KEPT]:
        old.unlink(missing_ok=True)
    for path in leftovers(ctx):
        try:
            remove(ctx, path, "")  # "": what wtp made is told by the merge commit's subject
        except (OSError, gitops.GitError):
            pass  # another sweeper got there first; the next check tries again


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


# --- the environment: a port no live task has ----------------------------------------------


class Port(NamedTuple):
    port: int | None
    lock: locks.Lock | None


def claim_port(ctx: Ctx, taken: set[int]) -> Port:
    """A port from the top of the tasks' range that no live task holds, held by a lock file
    while the run lasts, so concurrent check runs (another shell, the background one) never
    share one.  Tasks take theirs from the bottom."""
    live = {t.port for t in ctx.store.read().tasks.values() if t.state in LIVE and t.port is not None}
    folder = ctx.store.subdir("check-ports")
    for i in range(PORTS - 1, -1, -1):
        port = ctx.cfg.port_base + i
        if port in live or port in taken or port > 65535:
            continue
        lock = locks.Lock(folder / f"{port}.lock", what=f"check port {port}")
        try:
            if lock.try_acquire():
                if schedule.bindable(port):
                    return Port(port, lock)
                lock.release()  # in use on this machine (a server an earlier gate left running): not this one
        except RuntimeError:
            continue  # held by another run of this process

    return Port(None, None)


def env(ctx: Ctx, base: str, path: Path, port: int | None, names: Sequence[str], commit: str) -> dict[str, str]:
    """The task environment for a gate run on a merge: WTP_TASK names the tasks merged."""
    t = Task("+".join(names), "active", "", base, 0, path=str(path), port=port)
    return {**isolate.task_env(ctx, t), "WTP_CANDIDATE": commit, "WTP_CHECK_TASKS": " ".join(names)}
