"""Agents' hooks: "may this task edit this file now?" asked before the edit, and before a
commit.

``pre_edit`` speaks Claude Code's PreToolUse hook protocol: the hook's JSON on stdin; the
answer on stdout as JSON (``hookSpecificOutput.permissionDecision`` "deny" or "ask" with
a reason, or allowed with ``additionalContext`` under ``[hook] on_collision = "warn"``),
exit 0; nothing at all when the edit is simply allowed; malformed input is one line on
stderr with exit 1, the protocol's non-blocking error.  An allowed edit in a task's
worktree is recorded for the task (claims.py), so a second task asking for the same file
is refused before anything is written.  It reads the state without its lock.

``pre_commit`` is the git hook's body: a commit in a task's worktree that touches a path
another live task declared, changed or edited is refused, naming it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from . import claims, gitops
from .agentfiles import (
    CLAUDE_LOCAL,
    CLAUDE_SETTINGS,
    EDIT_TOOLS,
    MATCHER,
    merge_claude_hook,
    read_settings,
    unmerge_claude_hook,
)
from .errors import NotARepo, Refusal
from .repo import Ctx, open_ctx
from .state import LIVE, State, Task

WHAT_TO_DO = "wait for it to land ('wtp list' shows it), pick another file, or coordinate with that task"


class Answer(NamedTuple):
    code: int
    out: str = ""
    err: str = ""


ALLOW = Answer(0)


def _malformed(why: str) -> Answer:
    return Answer(1, "", f"wtp hook pre-edit: {why}; the edit goes ahead unchecked\n")


def _nearest_dir(p: Path) -> Path:
    """The deepest folder of ``p`` that exists (a Write may create the file and its folders)."""
    d = p.parent
    while not d.is_dir() and d != d.parent:
        d = d.parent
    return d


def _owner(st: State, target: str) -> Task | None:
    for t in sorted(st.tasks.values(), key=lambda t: -t.seq):
        if t.state in LIVE and t.path and (target == t.path or target.startswith(t.path.rstrip("/") + "/")):
            return t
    return None


def locate(target: Path) -> tuple[Ctx, State, Task | None, str] | None:
    """The repository, state, owning task (None: the main worktree or another one) and the
    path relative to its worktree; None when the path is outside any repository."""
    where = _nearest_dir(target)
    try:
        ctx = open_ctx(where)
    except NotARepo:
        return None
    real = Path(os.path.realpath(where)) / target.relative_to(where) if target != where else target
    st = ctx.store.read()
    me = _owner(st, str(real))
    top = Path(me.path) if me is not None and me.path else ctx.repo.toplevel
    try:
        rel = real.relative_to(top).as_posix()
    except ValueError:
        return None
    if rel == "." or rel == ".git" or rel.startswith(".git/"):
        return None
    return ctx, st, me, rel


def pre_edit(raw: str) -> Answer:
    """The PreToolUse answer for one tool call."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        return _malformed(f"stdin is not JSON ({e.msg} at line {e.lineno} column {e.colno})")
    if not isinstance(data, dict):
        return _malformed("stdin must be a JSON object (Claude Code's PreToolUse hook input)")
    tool = data.get("tool_name")
    if not isinstance(tool, str):
        return _malformed("the input has no 'tool_name' string")
    if tool not in EDIT_TOOLS:
        return ALLOW
    tool_input = data.get("tool_input")
    key = EDIT_TOOLS[tool]
    path = tool_input.get(key) if isinstance(tool_input, dict) else None
    if not isinstance(path, str) or not path or "\0" in path:
        return _malformed(f"{tool} input has no '{key}' string")
    cwd = data.get("cwd")
    base = Path(cwd) if isinstance(cwd, str) and cwd else Path.cwd()
    found = locate(Path(os.path.normpath(base / path)))
    if found is None:
        return ALLOW  # outside any repository, or git's own files
    ctx, st, me, rel = found
    known = claims.recorded(ctx, me) if me is not None else []
    on = claims.claims_on(ctx, st, me, [rel])
    if not on:
        if me is not None:
            _record(ctx, me, rel, known)
        return ALLOW
    who = "this task" if me is None else f"task '{me.name}'"
    reason = f"wtp: {'; '.join(c.describe() for c in on)}, so {who} should not edit it now: {WHAT_TO_DO}"
    if me is None:
        reason = reason.replace(f"so {who}", "so the main worktree")
    policy = ctx.cfg.hook_on_collision
    out: dict[str, Any] = {"hookEventName": "PreToolUse"}
    if policy == "warn":
        if me is not None:
            _record(ctx, me, rel, known)
        out["additionalContext"] = reason.replace("should not edit it now", "may collide with it")
    else:
        out["permissionDecision"] = policy
        out["permissionDecisionReason"] = reason
    return Answer(0, json.dumps({"hookSpecificOutput": out}) + "\n")


def _record(ctx: Ctx, t: Task, rel: str, known: list[str]) -> None:
    """Record an edit for the task; with share = true, its claim on the remote is refreshed by
    a process of its own, so the edit is never kept waiting for the network."""
    if rel in known:
        return
    claims.record(ctx, t, rel, known)
    if ctx.cfg.share:
        import subprocess

        subprocess.Popen(
            [sys.executable, "-m", "worktree_par", "-C", str(ctx.repo.config_root), "__share", t.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def pre_commit(cwd: Path) -> Answer:
    """The git pre-commit hook: refuse a commit in a task's worktree whose staged paths
    another live task claims."""
    try:
        ctx = open_ctx(cwd)
    except NotARepo:
        return ALLOW
    st = ctx.store.read()
    me = _owner(st, str(ctx.repo.toplevel))
    if me is None:
        return ALLOW  # commits in the main worktree are not a task's
    staged = gitops.staged_paths(ctx.repo.toplevel)
    on = claims.claims_on(ctx, st, me, staged)
    if not on:
        return ALLOW
    lines = "".join(f"  {c.describe()}\n" for c in on[:20])
    more = f"  ... and {len(on) - 20} more\n" if len(on) > 20 else ""
    return Answer(
        1,
        "",
        f"wtp: this commit of task '{me.name}' touches paths another task claims:\n{lines}{more}"
        f"{WHAT_TO_DO}; 'git commit --no-verify' commits anyway\n",
    )


# --- installers ------------------------------------------------------------------------


def wtp_command(sub: str) -> str:
    """How a hook calls this wtp: 'wtp ...' when that is the one on PATH, else by full path."""
    import shlex
    import shutil

    found = shutil.which("wtp")
    argv0 = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and (argv0 is None or argv0.name != "wtp" or Path(found).resolve() == argv0):
        return f"wtp {sub}"
    return f"{shlex.quote(sys.executable)} -m worktree_par {sub}"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.wtp-{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def install_claude(ctx: Ctx) -> list[str]:
    path = ctx.repo.config_root / CLAUDE_SETTINGS
    data = read_settings(path)
    if not merge_claude_hook(data, wtp_command("hook pre-edit")):
        return [f"the wtp hook is already in {path}"]
    _write_json(path, data)
    return [
        f"added the PreToolUse hook 'wtp hook pre-edit' for {MATCHER} to {path}",
        f"commit it ('git add {CLAUDE_SETTINGS} && git commit') so every task's branch has it; "
        "until then, new task worktrees get it in their .claude/settings.local.json",
    ]


def uninstall_claude(ctx: Ctx) -> list[str]:
    path = ctx.repo.config_root / CLAUDE_SETTINGS
    data = read_settings(path)
    if not unmerge_claude_hook(data):
        return [f"no wtp hook in {path}"]
    if data:
        _write_json(path, data)
    else:
        path.unlink()
        try:
            path.parent.rmdir()  # the folder too, when the install made it and nothing else is in it
        except OSError:
            pass
    return [f"removed the wtp hook from {path}"]


def claude_installed(ctx: Ctx) -> bool:
    try:
        data = read_settings(ctx.repo.config_root / CLAUDE_SETTINGS)
    except Refusal:
        return False
    return not merge_claude_hook(json.loads(json.dumps(data)), "")


def local_settings_text(command: str) -> str:
    data: dict[str, Any] = {}
    merge_claude_hook(data, command)
    return json.dumps(data, indent=2) + "\n"


def prepare_worktree(ctx: Ctx, wt: Path) -> str | None:
    """A new task worktree gets the agent hook when the main worktree has it installed but
    the task's checkout does not (the settings are not committed yet): in its
    .claude/settings.local.json, which git is told to ignore.  Returns what was done."""
    if not claude_installed(ctx):
        return None
    try:
        mine = read_settings(wt / CLAUDE_SETTINGS)
    except Refusal:
        return None
    if not merge_claude_hook(mine, ""):
        return None  # the branch has it already
    local = wt / CLAUDE_LOCAL
    if local.exists():
        return None  # the user's own local settings: left alone
    exclude = ctx.repo.common_dir / "info" / "exclude"
    line = f"/{CLAUDE_LOCAL.as_posix()}"
    try:
        text = exclude.read_text() if exclude.exists() else ""
        if line not in text.splitlines():
            exclude.parent.mkdir(exist_ok=True)
            exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")
    except OSError:
        return None
    local.parent.mkdir(exist_ok=True)
    local.write_text(local_settings_text(wtp_command("hook pre-edit")))
    return f"the agent hook is in {local} (the branch's .claude/settings.json does not have it yet)"


GIT_HOOK_MARK = "# installed by wtp: refuses a commit that collides with another task"
CHAINED = "pre-commit.wtp-chained"


def hooks_dir(ctx: Ctx) -> Path:
    configured = gitops.config_value(ctx.root, "core.hooksPath")
    if configured:
        p = Path(os.path.expanduser(configured))
        return p if p.is_absolute() else ctx.root / p
    return ctx.repo.common_dir / "hooks"


def install_git(ctx: Ctx) -> list[str]:
    d = hooks_dir(ctx)
    hook = d / "pre-commit"
    if hook.exists() and GIT_HOOK_MARK in hook.read_text(errors="replace"):
        return [f"the wtp pre-commit hook is already in {hook}"]
    d.mkdir(parents=True, exist_ok=True)
    said = []
    if hook.exists() or hook.is_symlink():
        chained = d / CHAINED
        if chained.exists():
            raise Refusal(f"{chained} exists already: move it away, then install again")
        os.replace(hook, chained)
        said.append(f"the existing pre-commit hook now runs first, from {chained}")
    script = f"""#!/bin/sh
{GIT_HOOK_MARK}
# ('wtp hook uninstall git' removes it and puts back a hook it chained).
here=$(dirname "$0")
if [ -x "$here/{CHAINED}" ]; then "$here/{CHAINED}" "$@" || exit $?; fi
exec {wtp_command("hook pre-commit")}
"""
    tmp = d / f".pre-commit.wtp-{os.getpid()}"
    tmp.write_text(script)
    tmp.chmod(0o755)
    os.replace(tmp, hook)
    return [f"installed the pre-commit hook {hook}", *said]


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
