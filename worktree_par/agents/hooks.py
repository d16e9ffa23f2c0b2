"""Agents' hooks: "may this task edit this file now?" asked before the edit, and before a
commit.

``pre_edit`` speaks Claude Code's PreToolUse hook protocol: the hook's JSON on stdin; the
answer on stdout as JSON (``hookSpecificOutput.permissionDecision`` "deny" or "ask" with
a reason, or allowed with ``additionalContext`` under ``[hook] on_collision = "warn"``),
exit 0; nothing at all when the edit is simply allowed; malformed input is one line on
stderr with exit 1, the protocol's non-blocking error.  An allowed edit in a task's
worktree is recorded for the task (claims.py), so a second task asking for the same file
is refused before anything is written.  It reads the state without its lock.

The file judged is the one that will be written, not the path named: links are resolved
first (issue 24).  The editor is the live task whose worktree holds the hook input's
``cwd`` (the agent's working folder: Claude Code's Edit and Write always name absolute
paths, so the path alone would let a task's agent edit any worktree); when ``cwd`` is in
no task's worktree (the main worktree, or none given), the worktree the path is named in.
A path of the editor's that leads to another of its files is judged as that file; a file
in another live task's worktree is an edit of that task's file, never recorded as its
claim; a task's edit out of its own worktree (the main worktree's files included) is
refused too, since that edit would escape its branch and every check.  Both answer per
``[hook] on_collision``.

``pre_commit`` is the git hook's body: a commit in a task's worktree that touches a path
another live task declared, changed or edited is refused, naming it.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from .. import claims, gitops
from ..agentfiles import EDIT_TOOLS
from ..errors import NotARepo
from ..repo import Ctx, open_ctx
from ..state import LANDING, LIVE, State, Task

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
    """The live task whose worktree holds ``target`` (State.task_at: the one answer)."""
    t = st.task_at(target)
    return t if t is not None and t.state in LIVE else None


def _within(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def _open(named: Path) -> Ctx | None:
    """The repository the named path is in.  Git follows links: when the nearest folder leads
    out of every repository through one, its folders above are asked as written."""
    d = _nearest_dir(named)
    while True:
        try:
            return open_ctx(d)
        except NotARepo:
            if os.path.realpath(d) == str(d) or d == d.parent:
                return None
            d = _nearest_dir(d)


def _entered(named: Path, roots: list[Path]) -> Path | None:
    """The worktree the named path is in: the first of ``roots`` it enters read from the top,
    each link on the way followed (so a worktree reached through a link counts), and none
    followed after that (a link inside the worktree does not change whose edit it is)."""
    cur = Path(named.anchor)
    parts = named.parts[1:]
    for i, part in enumerate(parts):
        if part == "..":  # the parent of where the links led so far, as the kernel goes up
            cur = Path(os.path.realpath(cur)).parent
            continue
        cur = cur / part
        if cur.is_symlink():
            cur = Path(os.path.realpath(cur))
        if ".." not in parts[i + 1 :] and any(_within(cur, r) for r in roots):  # 'a/../b' goes on to b
            lexical = cur.joinpath(*parts[i + 1 :])
            return max((r for r in roots if _within(lexical, r)), key=lambda r: len(r.parts), default=None)
    return None


class Target(NamedTuple):
    """An edit as the hook judges it: who makes it and which file it writes."""

    ctx: Ctx
    st: State
    me: Task | None  # the task that edits (see locate); None: the main worktree
    named: Path  # the path as the agent named it
    real: Path  # the file that will be written: every link resolved
    rel: str | None  # ``real`` relative to the editor's worktree; None when it lies outside it
    owner: Task | None  # when it lies outside: the live task whose worktree holds it


def locate(named: Path, cwd: Path | None = None) -> Target | None:
    """Who edits and what is written; None for a path outside every worktree, or git's own files.
    The editor is the live task whose worktree holds ``cwd`` (the agent's working folder);
    when none does, or no ``cwd`` is known, the worktree the path is named in."""
    ctx = _open(named)
    if ctx is None:
        return None
    st = ctx.store.read()
    live = [t for t in sorted(st.tasks.values(), key=lambda t: -t.seq) if t.state in LIVE and t.path]
    by_root = {Path(os.path.realpath(str(t.path))): t for t in reversed(live)}
    roots = [*by_root, *{Path(os.path.realpath(r)) for r in (ctx.repo.toplevel, ctx.repo.config_root)}]
    # cwd is read as a named path is: a link into a worktree enters it, a link inside it
    # (b/peek -> a/src) does not make the agent standing there another task's
    at = _entered(cwd, roots) if cwd is not None else None
    editor = at if at in by_root else _entered(named, roots)
    if editor is None:
        return None
    me = by_root.get(editor)
    real = Path(os.path.realpath(named))
    if not _within(real, editor):
        holder = max((r for r in roots if _within(real, r)), key=lambda r: len(r.parts), default=None)
        owner = by_root.get(holder) if holder is not None else None
        return Target(ctx, st, me, named, real, None, owner)
    rel = real.relative_to(editor).as_posix()
    if rel == "." or rel == ".git" or rel.startswith(".git/"):
        return None
    return Target(ctx, st, me, named, real, rel, None)


def pre_edit(raw: str) -> Answer:
    """The PreToolUse answer for one tool call."""
    if not raw.strip():
        return _malformed("stdin is empty (the hook reads Claude Code's PreToolUse JSON there)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        return _malformed(f"stdin is not JSON ({e.msg} at line {e.lineno} column {e.colno})")
    except RecursionError:
        return _malformed("stdin is nested too deeply to be Claude Code's PreToolUse JSON")
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
    base = Path(os.getcwd(), cwd) if isinstance(cwd, str) and cwd else None
    # Absolute, from our cwd if relative, but not normalized: 'link/..' is the parent of where
    # the link leads, as the kernel writes it, not the folder the link is in.
    try:
        found = locate(Path(os.path.join(base or os.getcwd(), path)), base)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        return _malformed(f"the path is too long for this system ({len(path)} characters)")
    if found is None:
        return ALLOW  # outside any repository, or git's own files
    ctx, st, me, rel = found.ctx, found.st, found.me, found.rel
    who = "the main worktree" if me is None else f"task '{me.name}'"
    if rel is None:
        # The file written lies outside the editor's worktree: it is another task's, or no
        # task's work at all (see _escape).
        reason = _escape(found, who)
        if reason is None:
            return ALLOW
        return _answer(ctx, reason.replace("should not edit it now", "may collide with it"), reason)
    if me is not None and _landing(ctx, me):
        reason = _being_landed(me, EDIT_WHILE_LANDING)
        return _answer(ctx, reason.replace("is not part", "may not be part"), reason)
    on = claims.claims_on(ctx, st, me, [rel])
    warn = ctx.cfg.hook_on_collision == "warn"
    if me is not None and (warn or not on):
        # Looked at again under a lock with the record: another task may have recorded it meanwhile
        first, fresh = claims.record_first(ctx, st, me, rel, anyway=warn)
        on = on or first
        if fresh:
            _share(ctx, me)
    if not on:
        return ALLOW
    reason = f"wtp: {'; '.join(c.describe() for c in on)}, so {who} should not edit it now: {WHAT_TO_DO}"
    return _answer(ctx, reason.replace("should not edit it now", "may collide with it"), reason)


def _escape(found: Target, who: str) -> str | None:
    """Why an edit whose file lies outside the editor's worktree is not simply allowed: it
    writes another live task's file (a collision, whoever the editor), or a task's agent
    writes outside its own worktree, so the edit would escape its branch, 'wtp check' and
    every other task's view.  None: the main worktree writing outside every task, which is
    not wtp's business (as a path named outside the repository is not)."""
    linked = os.path.normpath(found.named) != str(found.real)  # a link on the way, not just '..'
    where = f"{found.named} resolves to {found.real}," if linked else f"{found.real} is"
    if found.owner is not None:
        return (
            f"wtp: {where} in the worktree of task '{found.owner.name}', so {who} should not edit it now: {WHAT_TO_DO}"
        )
    if found.me is None:
        return None
    return (
        f"wtp: {where} outside the worktree of {who}, so the edit would not be part of its work and no other "
        f"task would see it: edit a file inside the worktree{', or ask the user to change the link' if linked else ''}"
    )


def _landing(ctx: Ctx, t: Task) -> bool:
    """A land of the task runs now (not one that died: that one never ends by itself)."""
    if t.state != LANDING:
        return False
    from ..land.withdraw import running

    return running(ctx, t)


def _being_landed(t: Task, why: str) -> str:
    """Why a change to a task is refused while its land runs (its gate tests, and the base
    gets, the branch as committed when the land took it)."""
    return (
        f"wtp: task '{t.name}' is being landed, so {why}; "
        "wait until the land ends ('wtp list' shows it), then land again what is new"
    )


EDIT_WHILE_LANDING = (
    "an edit made in its worktree now is not part of what lands: its gate would see a new file that the base "
    "never gets, and a changed file of its branch stops the land"
)
COMMIT_WHILE_LANDING = (
    "a commit on its branch now moves the branch under the land (under a running gate, that stops the land)"
)


def _answer(ctx: Ctx, warning: str, reason: str) -> Answer:
    """The policy's answer: deny or ask with the reason, or allow with it as context (warn)."""
    policy = ctx.cfg.hook_on_collision
    out: dict[str, Any] = {"hookEventName": "PreToolUse"}
    if policy == "warn":
        out["additionalContext"] = warning
    else:
        out["permissionDecision"] = policy
        out["permissionDecisionReason"] = reason
    return Answer(0, json.dumps({"hookSpecificOutput": out}) + "\n")


def _share(ctx: Ctx, t: Task) -> None:
    """After a new record: with share = true, the task's claim on the remote is refreshed by a
    process of its own, so the edit is never kept waiting for the network."""
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
    if _landing(ctx, me):
        return Answer(1, "", f"{_being_landed(me, COMMIT_WHILE_LANDING)}; 'git commit --no-verify' commits anyway\n")
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
