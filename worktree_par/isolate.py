"""Making a new worktree ready to build: the task environment, warm copies of
ignored caches, setup commands, and the trust that config commands need."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import gitops
from .errors import Refusal
from .repo import Ctx
from .state import State, Task


def task_env(ctx: Ctx, task: Task) -> dict[str, str]:
    env = dict(gitops.base_env())
    env.pop("LC_ALL", None)  # the user's locale, not the one wtp parses git output with
    if "LC_ALL" in os.environ:
        env["LC_ALL"] = os.environ["LC_ALL"]
    env.update(
        WTP_TASK=task.name,
        WTP_WORKTREE=task.path or "",
        WTP_BRANCH=task.branch,
        WTP_BASE=task.base,
        PORT=str(task.port) if task.port is not None else "",
    )
    return env


# --- trust ---------------------------------------------------------------------------


def config_commands(ctx: Ctx) -> dict[str, list[str]]:
    cmds = {}
    if ctx.cfg.setup_run:
        cmds["setup.run"] = list(ctx.cfg.setup_run)
    if ctx.cfg.land_gate:
        cmds["land.gate"] = [ctx.cfg.land_gate]
    return cmds


def untrusted(ctx: Ctx, state: State, key: str) -> list[str]:
    """The config commands under ``key`` that the user has not trusted yet."""
    cmds = config_commands(ctx).get(key, [])
    trusted = state.extra.get("trusted", {}).get(key, [])
    return [c for c in cmds if c not in trusted]


def require_trust(ctx: Ctx, state: State, key: str) -> None:
    new = untrusted(ctx, state, key)
    if new:
        raise Refusal(
            f"{key} in {ctx.cfg.source} runs commands you have not trusted yet "
            f"({'; '.join(new)}): review them, then run 'wtp trust'"
        )


def trust(ctx: Ctx, state: State) -> dict[str, list[str]]:
    """Record the current config commands as trusted; return what is newly trusted."""
    cmds = config_commands(ctx)
    before = state.extra.get("trusted", {})
    state.extra["trusted"] = cmds
    return {k: [c for c in v if c not in before.get(k, [])] for k, v in cmds.items() if v}


# --- setup ---------------------------------------------------------------------------


def copy_ignored(ctx: Ctx, task: Task, say: Callable[[str], None]) -> list[str]:
    """Copy configured gitignored paths from the main worktree; symlinks stay symlinks,
    copy-on-write where the filesystem can, never hard links to the original."""
    import shutil

    entries = [e for e in ctx.cfg.setup_copy if (ctx.root / e).exists() or (ctx.root / e).is_symlink()]
    if not entries:
        return []
    # Only ignored paths: tracked ones are already in the new worktree, from the task's commit.
    res = gitops.run(
        ["check-ignore", "-z", "--no-index", "--stdin"],
        ctx.root,
        input="\0".join(entries) + "\0",
        check=False,
        ok_codes=(0, 1),
    )
    ignored = set(res.z())
    copied = []
    assert task.path is not None
    for e in entries:
        if e not in ignored:
            say(f"setup: not copying '{e}': it is not ignored by git (tracked files come with the branch)")
            continue
        src, dst = ctx.root / e, Path(task.path) / e
        if dst.exists() or dst.is_symlink():
            continue  # a resumed setup: already copied
        dst.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        if sys.platform.startswith("linux") and shutil.which("cp"):
            subprocess.run(["cp", "-a", "--reflink=auto", "--", str(src), str(dst)], check=True)
        elif src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        say(f"setup: copied {e} ({time.monotonic() - t0:.1f}s)")
        copied.append(e)
    return copied


def run_setup(ctx: Ctx, task: Task, log: Path, say: Callable[[str], None]) -> str | None:
    """Run setup commands in the worktree; None on success, else what failed."""
    from .procs import run_guarded

    cmds = ctx.cfg.setup_run
    for i, cmd in enumerate(cmds, 1):
        say(f"setup [{i}/{len(cmds)}]: {cmd}")
        with open(log, "ab") as f:
            f.write(f"$ {cmd}\n".encode())
        assert task.path is not None
        # A trusted command from the committed config, written as a shell line by its author.
        outcome = run_guarded(["/bin/sh", "-c", cmd], Path(task.path), task_env(ctx, task), log=log)
        if outcome.code != 0:
            return f"'{cmd}' exited {outcome.code}"
    return None
