"""Gate runs on merges: each in a throw-away worktree of its own, in its own process group,
at most ``budget`` at once; verdicts looked up and recorded by (gate, tree)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .. import atomic, gitops, locks
from ..errors import Say, UsageError, quiet
from ..guarded import Guarded
from ..land import verdicts
from ..logtail import last_lines
from ..repo import Ctx, few
from ..state import Task
from . import trees

PASS, FAIL, TIMEOUT, CONFLICT = "pass", "fail", "timeout", "conflict"
TAIL = 12  # lines of a failing run's output shown
GONE = "(its worktree)"  # what a run changed when it deleted the worktree it ran in


class Outcome(NamedTuple):
    names: tuple[str, ...]
    verdict: str  # PASS | FAIL | TIMEOUT | CONFLICT
    tree: str = ""
    log: str = ""
    cached: str = ""  # whose earlier verdict was reused: "land" | "check"; "" = gated now
    paths: list[str] = []  # CONFLICT: the conflicting paths
    clash: str = ""  # CONFLICT: the task whose addition conflicted
    tail: list[str] = []  # FAIL/TIMEOUT: the output's last lines
    changed: list[str] = []  # tracked files the run changed (or "HEAD" moved): its verdict is not kept

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"tasks": list(self.names), "verdict": self.verdict}
        if self.tree:
            out["tree"] = self.tree
        if self.log:
            out["log"] = self.log
        if self.cached:
            out["reused"] = self.cached
        if self.verdict == CONFLICT:
            out.update(paths=self.paths, conflicts_with=self.clash)
        if self.changed:
            out["changed"] = self.changed
        return out


class Cancelled(Exception):
    """The inputs changed while the background run was testing them."""


class _Live(NamedTuple):
    key: tuple[str, ...]
    tree: str
    commit: str
    path: Path
    log: Path
    run: Guarded
    port: trees.Port


class Runner:
    """Runs ``gate`` on merges of subsets of the tasks, at most ``budget`` at once."""

    def __init__(
        self,
        ctx: Ctx,
        gate: str,
        base: str,
        merger: trees.Merger,
        *,
        budget: int,
        timeout: float,
        cancelled: Callable[[], bool] | None = None,
        say: Say = quiet,
    ) -> None:
        self.ctx, self.gate, self.base, self.merger = ctx, gate, base, merger
        self.budget, self.timeout = max(1, budget), timeout
        self.cancelled, self.say = cancelled, say
        self.runs = 0  # gate runs started
        self.peak = 0  # most runs at once
        self.reused = 0  # verdicts taken from the cache instead of a run
        self._n = 0
        self.notes: list[str] = []

    def evaluate(self, sets: Sequence[Sequence[str]], *, fresh: bool = False) -> dict[tuple[str, ...], Outcome]:
        """The verdict on each set's merge: reused when the tree passed this gate before
        (unless ``fresh``), else gated now; a set that does not merge is a CONFLICT, not gated."""
        out: dict[tuple[str, ...], Outcome] = {}
        todo: dict[str, list[tuple[tuple[str, ...], str]]] = {}  # tree -> the sets merging to it
        for s in sets:
            key = self.merger.key(s)
            m = self.merger.merge(key)
            if isinstance(m, trees.Clash):
                out[key] = Outcome(key, CONFLICT, paths=m.paths, clash=m.task)
                continue
            known = None if fresh else verdicts.lookup(self.ctx, self.gate, m.tree)
            if known is not None and known.ok:
                self.reused += 1
                out[key] = Outcome(key, PASS, m.tree, known.log, cached=known.by)
                continue
            todo.setdefault(m.tree, []).append((key, m.commit))
        queue = list(todo.items())
        live: list[_Live] = []
        try:
            while queue or live:
                while queue and len(live) < self.budget:
                    tree, keys = queue.pop(0)
                    live.append(self._start(keys[0][0], tree, keys[0][1]))
                    self.peak = max(self.peak, len(live))
                for lv in list(live):
                    done = self._poll(lv)
                    if done is not None:
                        with locks.no_interrupt():  # a Ctrl-C now waits until the worktree is gone
                            live.remove(lv)
                            self._finish(lv)
                        for key, _ in todo[lv.tree]:
                            out[key] = done._replace(names=key)
                if self.cancelled is not None and self.cancelled():
                    raise Cancelled()
                if live:
                    time.sleep(0.02)
        finally:
            if live:
                with locks.no_interrupt():
                    for lv in live:
                        lv.run.stop()
                        self._finish(lv)
        return out

    def _start(self, key: tuple[str, ...], tree: str, commit: str) -> _Live:
        from .. import isolate

        self._n += 1
        self.runs += 1
        port = trees.claim_port(self.ctx, set())
        path = trees.make(self.ctx, commit, self._n)
        try:
            name = hashlib.sha1(f"{self.gate}\0{tree}".encode()).hexdigest()[:12]
            # the pid: a background run and a foreground one may gate the same tree at once
            log = self.ctx.store.subdir("logs") / f"check-test-{name}-{os.getpid()}.log"
            what = f"tasks: {' + '.join(key)}\n# merge" if key else f"no task: the base itself, '{self.base}'\n# commit"
            atomic.write_log(
                log, f"$ {self.gate}\n# {what} {commit} (tree {tree})\n", fresh=True
            )  # 3 lines: output_tail skips them
            env = trees.env(self.ctx, self.base, path, port.port, key, commit)
            pseudo = Task(env["WTP_TASK"], "active", "", self.base, 0, path=str(path), port=port.port)
            isolate.copy_ignored(self.ctx, pseudo, quiet)  # the warm caches a task worktree gets
            # [setup] run, then the gate, in one process group: stopped together.
            script = " && ".join([*(f"( {c} )" for c in self.ctx.cfg.setup_run), f"( {self.gate} )"])
            self.say(f"gate: {self.gate} on {label(key, self.base)}; log: {log}")
            run = Guarded(["/bin/sh", "-c", script], path, env, log)
        except BaseException:
            with locks.no_interrupt():
                trees.remove(self.ctx, path, commit)
                if port.lock is not None:
                    port.lock.release()
            raise
        return _Live(key, tree, commit, path, log, run, port)

    def _poll(self, lv: _Live) -> Outcome | None:
        code = lv.run.poll()
        if code is None:
            if time.monotonic() - lv.run.started <= self.timeout:
                return None
            lv.run.stop()
            atomic.write_log(lv.log, f"\n# wtp: stopped after {self.timeout:g}s (--timeout)\n")
            return Outcome(lv.key, TIMEOUT, lv.tree, str(lv.log), tail=output_tail(lv.log))
        ok = code == 0
        changed = _changed(lv)
        if changed:
            # The gate (or [setup] run) did not test the merge as wtp made it: its verdict is
            # reported, never kept for 'wtp land' to reuse (land refuses such a run of its own).
            n = len(changed)
            merge = _merge_of(lv.key, self.base)
            did = f"changed {n} tracked file{'s' * (n != 1)} ({few(changed)}) in {merge}"
            if changed == ["HEAD"]:
                did = f"changed its HEAD in {merge}"
            elif changed == [GONE]:
                did = f"deleted the throw-away worktree of {merge}"
            self._note(
                f"semantic: '{self.gate}' (or [setup] run) {did}, "
                "so its verdict is not kept for 'wtp land' (which runs the gate itself)"
            )
        else:
            verdicts.record(self.ctx, self.gate, lv.tree, ok=ok, by=verdicts.CHECK, tasks=list(lv.key), log=str(lv.log))
        tail = [] if ok else output_tail(lv.log)
        return Outcome(lv.key, PASS if ok else FAIL, lv.tree, str(lv.log), tail=tail, changed=changed)

    def _note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)
            self.say(msg)

    def _finish(self, lv: _Live) -> None:
        from ..procs import processes_in

        try:
            # The run's process group is stopped; what the gate started outside it (a daemon
            # in a session of its own) is not wtp's to kill: said, by name, as land says it.
            left = processes_in([lv.path])[lv.path]
            said = trees.remove(self.ctx, lv.path, lv.commit)
            if said:
                self._note(said)
            if left:
                self._note(
                    f"semantic: the gate on {label(lv.key, self.base)} left {few([f'{p.name}[{p.pid}]' for p in left])} "
                    f"running in its throw-away worktree {lv.path}, now removed: stop "
                    f"{'them' if len(left) > 1 else 'it'} ('kill {' '.join(str(p.pid) for p in left)}')"
                )
        finally:
            if lv.port.lock is not None:
                lv.port.lock.release()


def label(key: Sequence[str], base: str) -> str:
    """The set gated, as said: its tasks joined by '+', or the base itself (no task merged)."""
    return " + ".join(key) if key else f"'{base}' itself"


def _merge_of(key: Sequence[str], base: str) -> str:
    return f"the merge of {' + '.join(key)}" if key else f"'{base}' itself"


def _changed(lv: _Live) -> list[str]:
    """What the run changed in its worktree: the tracked files, or ["HEAD"] when it moved
    off the merge (a commit, a checkout); [] when the worktree still holds the merge."""
    if not lv.path.is_dir():
        return [GONE]  # the gate deleted its own folder ('cd .. && rm -rf "$OLDPWD"'): nothing proven
    try:
        now = gitops.head_status(lv.path, untracked=False)
    except (gitops.GitError, UsageError):  # its .git removed; its folder removed just now
        return ["HEAD"]  # the worktree is not one any more: nothing proven
    if now.head != lv.commit or now.attached is not None:
        return ["HEAD"]
    return sorted(now.paths)


def output_tail(log: Path) -> list[str]:
    """The last lines of a run's log that say something (its output's end), for the report."""
    return last_lines(log, TAIL, header=3)
