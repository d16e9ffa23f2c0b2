"""Whether a confirmed red is the task's fault: a gate that fails on the base itself is a
broken gate (or a broken base), and the task is handed back landable, not blocked.

The verdicts by tree answer first (the base's tree passed this gate before: the task is at
fault, no run needed, the usual case, since every landed tree passed); otherwise (a failure
recorded for it included) the gate runs once on the base's tree in a throw-away worktree
under the state dir (detached at the base, prepared as a task's worktree is: setup.copy and
setup.run), removed afterwards."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from .. import atomic, gitops, guard, isolate
from ..errors import Say
from ..gitops import Sha
from ..guarded import run_guarded
from ..records import SCRATCH
from ..repo import Ctx
from . import verdicts
from .entry import Entry, GateBroken


class BaseCheck:
    """One conductor's verdicts on its base (gate, base tree -> the broken-gate error, or
    None when the base passes), so a stack whose every task fails on a broken gate runs the
    gate on the base once."""

    def __init__(self, ctx: Ctx, say: Say) -> None:
        self.ctx, self.say = ctx, say
        self.known: dict[tuple[str, str], GateBroken | None] = {}

    def broken(self, e: Entry, base: str, base_tip: Sha) -> GateBroken | None:
        """The error for ``e``'s confirmed red when its gate fails on ``base_tip`` too."""
        ctx = self.ctx
        tree = gitops.tree_of(ctx.root, base_tip)
        key = (e.gate, tree)
        if key not in self.known:
            # A pass of the base's tree is proof (every tree the queue landed passed); a failure
            # recorded for it is not (one flaky run of 'check --test', or of a base check, would
            # then hand every later red back as the gate's fault): the gate runs on it again.
            known = verdicts.lookup(ctx, e.gate, tree)
            if known is not None and known.ok:
                self.known[key] = None
            else:
                log = ctx.store.subdir("logs") / f"land-base-{base.replace('/', '-')}.log"
                self.say(f"gate: {e.gate} on '{base}' itself, to tell a broken gate from a red task; log: {log}")
                code = run_on(ctx, e, base_tip, log, self.say)
                verdicts.record(ctx, e.gate, tree, ok=code == 0, log=str(log))
                self.known[key] = None if code == 0 else _broken(e.gate, base, str(log))
        return self.known[key]


def _broken(gate: str, base: str, log: str) -> GateBroken:
    return GateBroken(
        f"gate '{gate}' fails on '{base}' itself (log: {log}): fix the gate or the base; "
        f"the task is not at fault and stays landable"
    )


def run_on(ctx: Ctx, e: Entry, commit: Sha, log: Path, say: Say) -> int:
    """Run ``e``'s gate on ``commit`` in a throw-away worktree; its exit code."""
    path = ctx.store.subdir(SCRATCH) / f"base-{os.getpid()}"
    guard.remove_throwaway(ctx, path, "")  # a killed check of a process with this pid
    atomic.write_log(log, f"$ {e.gate}\n# base {commit}\n", fresh=True)
    gitops.worktree(ctx.root, ["add", "--detach", "--quiet", str(path), commit], ctx.worktree_lock, hooks=False)
    try:
        t = copy.copy(e.task)
        t.path = str(path)
        isolate.copy_ignored(ctx, t, say)
        failed = isolate.run_setup(ctx, t, log, say)
        if failed:
            atomic.write_log(log, f"# setup failed: {failed}\n")
            return 1
        env = {**isolate.task_env(ctx, t), "WTP_CANDIDATE": commit}
        return run_guarded(["/bin/sh", "-c", e.gate], path, env, timeout=ctx.cfg.land_timeout, log=log).code
    finally:
        guard.remove_throwaway(ctx, path, commit)
