"""Installing the agent hooks: the Claude Code PreToolUse hook merged into (and removed
from) ``.claude/settings.json``, the same hook given to a new task worktree while the
settings are not committed yet, and the git pre-commit hook (chaining one already there).
The AGENTS.md / CLAUDE.md section that tells agents how to work with wtp is written here
too."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import atomic, gitops
from ..agentfiles import (
    CLAUDE_SETTINGS,
    MATCHER,
    git_hook_command,
    hook_command,
    merge_claude_hook,
    parse_settings,
    read_settings,
    unmerge_claude_hook,
)
from ..errors import Refusal
from ..repo import Ctx


def _write_text(path: Path, text: str) -> None:
    """Replace the file at ``path`` (never a link: callers pass the file a link points to)
    atomically, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.replace(path, text.encode("utf-8"), keep_mode=True)


def _settings_file(ctx: Ctx) -> tuple[Path, str]:
    """The file the Claude settings are in, and how to name it.  A settings file that is a
    link (or sits in a linked folder) is edited where it points, so the link stays the
    user's; unless it points out of the repository: a file shared with other projects
    (dotfiles, say) would give them all this repository's hook, so that is refused."""
    path = ctx.repo.config_root / CLAUDE_SETTINGS
    if not (path.is_symlink() or path.parent.is_symlink()):
        return path, str(path)
    real = Path(os.path.realpath(path))
    if Path(os.path.realpath(ctx.repo.config_root)) not in real.parents:
        raise Refusal(
            f"{path} links to {real}, outside the repository, which other projects may share: "
            "add the hook there yourself, or replace the link with a file of this repository"
        )
    return real, f"{real} (the file {path} links to)"


# What the settings file held before the install, so uninstall gives it back byte for byte
# (the user's layout, not json.dumps's) when nothing else changed in it since.
BEFORE = "claude-settings-before.json"


def _remember(ctx: Ctx, file: Path, before: str | None) -> None:
    record = {"version": 1, "file": str(file), "before": before}
    _write_text(ctx.store.ensure_dir() / BEFORE, json.dumps(record) + "\n")


def _before(ctx: Ctx, file: Path, data: dict[str, Any]) -> tuple[bool, str | None]:
    """(True, text) when the text from before the install is ``data`` exactly (None: there
    was no file); (False, None) when it is unknown or the file was edited since."""
    try:
        record = json.loads(atomic.read_regular(ctx.store.dir / BEFORE).decode("utf-8"))
        before = record["before"]
        if record["file"] != str(file) or not (before is None or isinstance(before, str)):
            return False, None
        return (before is None and not data) or (before is not None and parse_settings(before) == data), before
    except (OSError, ValueError, TypeError, KeyError):
        return False, None


def install_claude(ctx: Ctx) -> list[str]:
    file, shown = _settings_file(ctx)
    data = read_settings(file)
    before = file.read_text(encoding="utf-8") if file.exists() else None
    done = merge_claude_hook(data, hook_command(on_missing=ctx.cfg.hook_on_missing))
    if done is None:
        return [f"the wtp hook is already in {shown}"]
    if done == "added":
        _remember(ctx, file, before)
    _write_text(file, json.dumps(data, indent=2) + "\n")
    return [
        f"{done} the PreToolUse hook 'wtp hook pre-edit' for {MATCHER} {'to' if done == 'added' else 'in'} {shown}",
        f"commit it ('git add {CLAUDE_SETTINGS} && git commit') so every task's branch has it; "
        "until then, new task worktrees get it in their .claude/settings.local.json",
    ]


def uninstall_claude(ctx: Ctx) -> list[str]:
    file, shown = _settings_file(ctx)
    data = read_settings(file)
    if not unmerge_claude_hook(data):
        return [f"no wtp hook in {shown}"]
    same, before = _before(ctx, file, data)
    if same and before is not None:
        _write_text(file, before)
    elif data:
        _write_text(file, json.dumps(data, indent=2) + "\n")
    else:
        file.unlink()
        if file == ctx.repo.config_root / CLAUDE_SETTINGS:
            try:
                file.parent.rmdir()  # the folder too, when the install made it and nothing else is in it
            except OSError:
                pass
    (ctx.store.dir / BEFORE).unlink(missing_ok=True)
    return [f"removed the wtp hook from {shown}"]


GIT_HOOK_MARK = "# installed by wtp: refuses a commit that collides with another task"
CHAINED = "pre-commit.wtp-chained"


def hooks_dir(ctx: Ctx) -> Path:
    configured = gitops.config_value(ctx.root, "core.hooksPath")
    if configured:
        p = Path(os.path.expanduser(configured))
        return p if p.is_absolute() else ctx.root / p
    return ctx.repo.common_dir / "hooks"


def install_git(ctx: Ctx) -> list[str]:
    configured = gitops.config_value(ctx.root, "core.hooksPath")
    if configured and not Path(os.path.expanduser(configured)).is_absolute():
        # git finds a relative hooks folder (husky's '.husky') in each worktree's own checkout:
        # a file the repository tracks, which an install here would change in the user's
        # checkout alone, and which no task's worktree would run.
        raise Refusal(
            f"core.hooksPath is '{configured}', relative: git runs each worktree's own copy of its "
            f"pre-commit, a file the repository tracks, so wtp does not install into it; add the line "
            f"'if command -v wtp >/dev/null; then wtp hook pre-commit || exit 1; fi' to {configured}/pre-commit "
            f"and commit it (every task's worktree then runs it), or set core.hooksPath to an absolute folder"
        )
    d = hooks_dir(ctx)
    hook = d / "pre-commit"
    script = f"""#!/bin/sh
{GIT_HOOK_MARK}
# ('wtp hook uninstall git' removes it and puts back a hook it chained).
here=$(dirname "$0")
if [ -x "$here/{CHAINED}" ]; then "$here/{CHAINED}" "$@" || exit $?; fi
{git_hook_command("hook pre-commit", ctx.cfg.hook_on_missing)}
"""
    old = hook.read_text(errors="replace") if hook.exists() else ""
    ours = GIT_HOOK_MARK in old
    if ours and old == script:
        return [f"the wtp pre-commit hook is already in {hook}"]
    if ours and _frame(old) != _frame(script):  # someone added to it: never overwritten
        raise Refusal(
            f"the wtp pre-commit hook {hook} was edited, so it is kept as it is: move your additions into "
            f"{d / CHAINED} (it runs first), delete {hook}, then run 'wtp hook install git' again"
        )
    d.mkdir(parents=True, exist_ok=True)
    said = []
    if ours:  # an older install (or another wtp, or [hook] on_missing changed): rewritten in place
        said.append(f"updated the wtp pre-commit hook {hook}")
    elif hook.exists() or hook.is_symlink():
        chained = d / CHAINED
        if chained.exists():
            raise Refusal(f"{chained} exists already: move it away, then install again")
        os.replace(hook, chained)
        said.append(f"the existing pre-commit hook now runs first, from {chained}")
    atomic.replace(hook, script.encode(), mode=0o755)
    own = (ctx.repo.common_dir.resolve(), ctx.repo.toplevel.resolve())
    if not any(d.resolve() == r or r in d.resolve().parents for r in own):  # a core.hooksPath set for more
        said.append(
            f"note: {d} is outside this repository (core.hooksPath): every repository that uses that folder "
            f"runs this hook too ('wtp hook uninstall git' removes it)"
        )
    return said if ours else [f"installed the pre-commit hook {hook}", *said]


def _frame(script: str) -> list[str]:
    """A wtp hook's lines but the command line(s) that run wtp (those differ by install:
    the wtp that installed it, [hook] on_missing, the wtp version that wrote it)."""
    return [ln for ln in script.splitlines() if "hook pre-commit" not in ln and ln.strip()]


def uninstall_git(ctx: Ctx) -> list[str]:
    d = hooks_dir(ctx)
    hook = d / "pre-commit"
    if not hook.exists() or GIT_HOOK_MARK not in hook.read_text(errors="replace"):
        return [f"no wtp pre-commit hook in {d}"]
    chained = d / CHAINED
    if chained.exists() or chained.is_symlink():
        os.replace(chained, hook)
        return [f"removed the wtp pre-commit hook; the one it chained is back at {hook}"]
    hook.unlink()
    return [f"removed the wtp pre-commit hook {hook}"]


# --- AGENTS.md / CLAUDE.md ----------------------------------------------------------------

BEGIN, END = (
    "<!-- wtp:begin (written by 'wtp init --agents'; edits between the markers are replaced) -->",
    "<!-- wtp:end -->",
)
AGENTS_TEXT = """\
## Working on this repository with wtp

Several tasks run here at once, each in its own git worktree and branch, managed by `wtp`.

- Start a task before editing: `cd "$(wtp start TASK --touch 'GLOB')"` (declare the files
  you expect to write). Exit 4 means it is queued: another task holds those files or all
  slots are taken; wait with `wtp start TASK --wait`, or pick other work.
- Work only inside your task's worktree (`wtp path TASK`); never edit the main worktree.
- An edit denied by the wtp hook means another live task declared, changed or is editing
  that file. Do not work around it: wait for that task to land (`wtp list`), choose another
  file, or say that the two tasks must be coordinated.
- `wtp check` shows collisions with other tasks before landing. Commit atomically.
- Land with `wtp land --detach` from the worktree (it rebases, runs the gate, publishes);
  follow it with `wtp queue` or `wtp list`. Exit 1 means blocked: read the message, fix,
  land again.
"""
AGENT_FILES = ("AGENTS.md", "CLAUDE.md")


def write_agents(root: Path) -> list[str]:
    """Write or update the wtp section of AGENTS.md and CLAUDE.md, between markers."""
    said = []
    block = f"{BEGIN}\n{AGENTS_TEXT}{END}\n"
    for name in AGENT_FILES:
        path = root / name
        text = path.read_text() if path.exists() else ""
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            new = head + block.rstrip("\n") + tail
        else:
            new = text + ("\n" if text and not text.endswith("\n\n") else "") + block if text else block
        if new == text:
            said.append(f"{path}: the wtp section is up to date")
            continue
        path.write_text(new)
        said.append(f"{path}: {'updated' if text else 'wrote'} the wtp section")
    return said
