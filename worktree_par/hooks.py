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
from .agentfiles import EDIT_TOOLS
from .errors import NotARepo
from .hook_install import (  # noqa: F401 - the command bodies and 'start' reach the installers here
    install_claude,
    install_git,
    prepare_worktree,
    uninstall_claude,
    uninstall_git,
    write_agents,
)
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
