"""Making a new worktree ready to build: the task environment, warm copies of
ignored caches, and setup commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import atomic, gitops
from .errors import Refusal, Say, UsageError
from .repo import Ctx
from .state import FINAL, LANDING, LANDING_PHASE, QUEUED, State, Task


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


# --- setup ---------------------------------------------------------------------------


def copy_ignored(ctx: Ctx, task: Task, say: Say, before: Callable[[str], None] | None = None) -> list[str]:
    """Copy configured gitignored paths from the main worktree; symlinks stay symlinks,
    copy-on-write where the filesystem can, never hard links to the original.  ``before``:
    told each entry just before it is copied (the guard's record of what the copy holds)."""
    import shutil

    from . import copies  # only a start copies ('wtp path' and 'wtp run' are hot)

    src_root = ctx.repo.config_root  # the main worktree (this one, in a bare repository)
    entries = [e for e in copies.entries_of(ctx) if (src_root / e).exists() or (src_root / e).is_symlink()]
    if not entries:
        return []
    # Only ignored paths: tracked ones are already in the new worktree, from the task's commit.
    ignored = gitops.check_ignore(src_root, entries)
    tracked = gitops.tracked_among(src_root, [e for e in entries if e not in ignored])
    copied: list[str] = []
    assert task.path is not None
    for e in entries:
        if e in tracked:
            say(f"setup: not copying '{e}': git tracks it (tracked files come with the branch)")
            continue
        if e not in ignored:
            say(
                f"setup: not copying '{e}': it is untracked but not ignored by git (only ignored paths are copied): "
                f"add it to .gitignore to have it copied, or commit it to have it come with the branch"
            )
            continue
        src, dst = src_root / e, Path(task.path) / e
        if dst.exists() or dst.is_symlink():
            inside = [c for c in copied if Path(c).is_relative_to(e)]
            around = [c for c in copied if Path(e).is_relative_to(c)]
            if around:  # 'data' listed before 'data/sub': it came with it
                say(f"setup: '{e}' came with '{around[0]}'")
            elif inside:  # 'data/sub' listed before 'data': copying it made 'data'
                say(f"setup: not copying '{e}': copying '{inside[0]}' made it; list '{e}' before what is in it")
            elif gitops.tracked_among(Path(task.path), [e]):  # an ignored folder holding a tracked file
                say(
                    f"setup: not copying '{e}': the branch brings it, with files git tracks in it; list the "
                    f"ignored files in it in setup.copy to have them copied"
                )
            else:  # a resumed setup: copied before, maybe cut short
                say(
                    f"setup: '{e}' is in the worktree already (an earlier start of '{task.name}'): not copied "
                    f"again; if that copy was cut short, remove it there and copy it again from {src}"
                )
            continue
        if before is not None:
            before(e)
        dst.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        if sys.platform.startswith("linux") and shutil.which("cp"):
            done = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(src), str(dst)])
            if done.returncode != 0:  # a full disk, a file-size limit: said by cp on stderr
                raise OSError(f"'cp -a {src} {dst}' exited {done.returncode}")
        elif src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        say(f"setup: copied {e} ({time.monotonic() - t0:.1f}s)")
        copied.append(e)
    return copied


def run_setup(ctx: Ctx, task: Task, log: Path, say: Say) -> str | None:
    """Run setup commands in the worktree; None on success, else what failed."""
    from .guarded import run_guarded

    cmds = ctx.cfg.setup_run
    for i, cmd in enumerate(cmds, 1):
        say(f"setup [{i}/{len(cmds)}]: {cmd}")
        atomic.write_log(log, f"$ {cmd}\n")
        assert task.path is not None
        # A trusted command from the committed config, written as a shell line by its author.
        outcome = run_guarded(["/bin/sh", "-c", cmd], Path(task.path), task_env(ctx, task), log=log)
        if outcome.code != 0:
            return f"'{cmd}' exited {outcome.code}"
    return None


def run_in(ctx: Ctx, name: str) -> tuple[Task, dict[str, str]]:
    """The task whose worktree a command runs in, and its environment."""
    t = ctx.store.read().task(name)
    if not t.path or t.state == QUEUED or (t.state in FINAL and not os.path.isdir(t.path)):
        raise Refusal(
            f"task '{name}' is {t.state} and has no worktree"
            + (f": start it with 'wtp start {name} --wait'" if t.state == QUEUED else "")
        )
    if not os.path.isdir(t.path):
        raise Refusal(f"the worktree of task '{name}' ({t.path}) is missing: run 'wtp doctor'")
    return t, task_env(ctx, t)


def worktree_path(ctx: Ctx, name: str) -> Path:
    root = ctx.worktree_root()
    path = (root / name).resolve()
    # Names are validated, but a planted symlink under the root must not lead elsewhere.
    if path.parent != root:
        raise UsageError(f"worktree path for '{name}' resolves outside {root}: remove the link at {root / name}")
    return path


def check_worktree_root(ctx: Ctx) -> Path:
    root = ctx.worktree_root()
    for wt_top in {ctx.root, ctx.repo.toplevel}:
        if root == wt_top or wt_top in root.parents:
            raise UsageError(
                f"worktree_root {ctx.cfg.worktree_root!r} is inside the worktree {wt_top}: "
                "worktrees must not nest; use a path outside it, like '../{repo}.worktrees'"
            )
    # A submodule sits in its superproject's worktree: a '.git' in a folder above ours (its git
    # dir absorbed under the superproject's .git/modules, or a folder of its own).
    if any((d / ".git").exists() for d in ctx.repo.toplevel.parents):
        sup = gitops.superproject(ctx.root)
        if sup is not None and (root == sup or sup in root.parents):
            raise UsageError(
                f"worktree_root {ctx.cfg.worktree_root!r} is inside the superproject's worktree {sup}, of which "
                f"this repository is a submodule: its 'git add -A' or 'git clean' would take the task worktrees; "
                f"set worktree_root outside it, like '{os.path.relpath(sup.parent, ctx.root)}/{{repo}}.worktrees'"
            )
    return root


def landing_tips(ctx: Ctx, st: State) -> dict[str, str]:
    """The work each landing task lands, by name.  Until a conductor takes it (no phase yet),
    its branch: the land checked it and keeps it as it is (a backup ref there may be an
    earlier land's, the new one not kept yet).  Once a conductor holds it, its pre-land tip,
    the backup ref its land kept before it joined the queue: the branch may be a candidate
    by then.  No git call when no task is landing.  Read before the registry's lock is taken:
    no git runs under it."""
    landing = [t for t in st.tasks.values() if t.state == LANDING and t.path]
    if not landing:
        return {}
    from .refnames import backup_ref

    names = [n for t in landing for n in (backup_ref(t.name), f"refs/heads/{t.branch}")]
    found = gitops.refs(ctx.root, names)
    out: dict[str, str] = {}
    for t in landing:
        kept, branch = found.get(backup_ref(t.name)), found.get(f"refs/heads/{t.branch}")
        ref = (kept or branch) if t.phase == LANDING_PHASE else (branch or kept)
        if ref is not None and ref.commit:
            out[t.name] = ref.commit
    return out
