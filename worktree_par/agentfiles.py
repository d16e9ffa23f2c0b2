"""The agent settings files wtp writes, as plain data: the Claude Code PreToolUse hook it
merges into (and removes from) a settings object, and how to tell a file wtp made from the
user's own.  No I/O beyond reading one file; the guard asks it about ignored files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import Refusal, WtpError
from .repo import Ctx

EDIT_TOOLS = {"Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path", "NotebookEdit": "notebook_path"}
MATCHER = "|".join(EDIT_TOOLS)
CLAUDE_SETTINGS = Path(".claude") / "settings.json"
CLAUDE_LOCAL = Path(".claude") / "settings.local.json"


def _is_ours(command: object, sub: str) -> bool:
    return isinstance(command, str) and command.endswith(sub) and ("wtp" in command or "worktree_par" in command)


MAX_DEPTH = 100  # Claude settings are a few levels deep; deeper is not settings, and json would recurse


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true or false"
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(v), "a number")


def _too_deep(data: object) -> bool:
    """Deeper than MAX_DEPTH, measured without recursion."""
    stack = [(data, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            return True
        if isinstance(v, dict):
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return False


def parse_settings(text: str) -> dict[str, Any]:
    """Claude settings as an object whose 'hooks' and 'hooks.PreToolUse' have the types wtp
    edits; ValueError saying what is wrong otherwise (never a RecursionError)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError as e:
        raise ValueError(f"is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"is {_kind(data)}, not a JSON object")
    if _too_deep(data):
        raise ValueError(f"is nested too deeply (more than {MAX_DEPTH} levels)")
    if "hooks" in data:
        hooks = data["hooks"]
        if not isinstance(hooks, dict):
            raise ValueError(f"has 'hooks' that is {_kind(hooks)}, not an object")
        if "PreToolUse" in hooks and not isinstance(hooks["PreToolUse"], list):
            raise ValueError(f"has 'hooks.PreToolUse' that is {_kind(hooks['PreToolUse'])}, not a list")
    return data


def read_settings(path: Path) -> dict[str, Any]:
    """The Claude settings in ``path`` ({} when there is none); Refusal in one line when they
    cannot be read or are not what Claude Code reads as settings."""
    if not path.exists():
        return {}
    try:
        return parse_settings(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise Refusal(f"{path} {e}: fix it (or set it aside), then run 'wtp hook install claude' again") from None


def _ours(group: object) -> bool:
    inner = group.get("hooks") if isinstance(group, dict) else None
    return isinstance(inner, list) and any(
        isinstance(h, dict) and _is_ours(h.get("command"), "hook pre-edit") for h in inner
    )


def has_claude_hook(data: dict[str, Any]) -> bool:
    hooks = data.get("hooks")
    groups = hooks.get("PreToolUse") if isinstance(hooks, dict) else None
    return isinstance(groups, list) and any(_ours(g) for g in groups)


def merge_claude_hook(data: dict[str, Any], command: str) -> str | None:
    """Add the PreToolUse hook to Claude Code settings ``data`` (as ``parse_settings``
    returns them): "added"; "updated" when wtp's hook was there with another command (an
    older install calling 'wtp' through PATH, or another [hook] on_missing); None when it
    was there as it is."""
    if has_claude_hook(data):
        changed = False
        for g in data["hooks"]["PreToolUse"]:
            for h in g.get("hooks", []) if _ours(g) else []:
                if isinstance(h, dict) and _is_ours(h.get("command"), "hook pre-edit") and h["command"] != command:
                    h["command"], changed = command, True
        return "updated" if changed else None
    hooks = data.setdefault("hooks", {})
    groups = hooks.setdefault("PreToolUse", []) if isinstance(hooks, dict) else None
    if not isinstance(groups, list):
        raise Refusal("the Claude settings' 'hooks.PreToolUse' is not a list: fix it, then install again")
    groups.append({"matcher": MATCHER, "hooks": [{"type": "command", "command": command}]})
    return "added"


def unmerge_claude_hook(data: dict[str, Any]) -> bool:
    """Remove exactly what ``merge_claude_hook`` added; False when nothing was there."""
    hooks = data.get("hooks")
    groups = hooks.get("PreToolUse") if isinstance(hooks, dict) else None
    if not isinstance(groups, list):
        return False
    removed = False
    kept = []
    for g in groups:
        inner = g.get("hooks") if isinstance(g, dict) else None
        if isinstance(inner, list):
            rest = [h for h in inner if not (isinstance(h, dict) and _is_ours(h.get("command"), "hook pre-edit"))]
            if len(rest) != len(inner):
                removed = True
                if not rest:
                    continue
                g = {**g, "hooks": rest}
        kept.append(g)
    if removed:
        assert isinstance(hooks, dict)
        if kept:
            hooks["PreToolUse"] = kept
        else:
            del hooks["PreToolUse"]
            if not hooks:
                del data["hooks"]
    return removed


def is_wtp_made(wt: Path, rel: str) -> bool:
    """An ignored file wtp itself put in a task worktree (not the user's data)."""
    if rel != CLAUDE_LOCAL.as_posix():
        return False
    try:
        data = parse_settings((wt / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return unmerge_claude_hook(data) and not data


# --- a new task worktree gets the hook (tasks calls this; the installers live in agents/) ---


def wtp_argv() -> tuple[list[str], list[str]]:
    """This wtp as a command a hook can run, and the files that must exist for it to work:
    the executable that is running (by absolute path: an agent's PATH may lack it, and a
    hook that exits 127 lets every edit through, issue 29), or this Python with
    '-m worktree_par' when wtp runs as a module."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "wtp" and os.path.isfile(argv0):  # the console script
        script = os.path.abspath(argv0)
        return [script], [sys.executable, script]
    return [sys.executable, "-m", "worktree_par"], [sys.executable, str(Path(__file__).with_name("__main__.py"))]


def _installed(sub: str) -> str:
    """Shell: exec this wtp when its files are still there (else go on to the next line)."""
    import shlex

    argv, needs = wtp_argv()
    there = " && ".join(f"[ -e {shlex.quote(f)} ]" for f in needs)
    return f"if {there}; then exec {shlex.join(argv)} {sub}; fi"


def hook_command(sub: str = "hook pre-edit", on_missing: str = "deny") -> str:
    """The Claude Code hook command: runs the wtp that installed it, else the one on PATH;
    when neither is there, denies the edit saying why and what to do, in the PreToolUse
    protocol (JSON on stdout, exit 0), or with on_missing "allow", lets it through with one
    line on stderr and exit 1 (the protocol's non-blocking error)."""
    import shlex

    why = (
        f"wtp is missing: this hook runs {shlex.join(wtp_argv()[0])}, which is gone, and no wtp is on "
        "PATH, so the edit cannot be checked against the other tasks"
    )
    if on_missing == "allow":
        answer = f"printf '%s\\n' {shlex.quote(f'wtp hook: {why}; the edit goes ahead unchecked')} >&2; exit 1;"
    else:
        decision = {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": f"{why}: install wtp (or put it on PATH), then run: wtp hook install claude",
        }
        answer = f"printf '%s\\n' {shlex.quote(json.dumps({'hookSpecificOutput': decision}))}; exit 0;"
    # it ends with 'wtp hook pre-edit', as every install did: that is how uninstall finds it
    return f"{_installed(sub)}; command -v wtp >/dev/null 2>&1 || {{ {answer} }}; exec wtp {sub}"


def git_hook_command(sub: str = "hook pre-commit", on_missing: str = "deny") -> str:
    """The git pre-commit hook's command: this wtp, else the one on PATH; when neither is
    there, the commit is refused saying why (a bare 'exec wtp' would fail with 'wtp: not
    found', exit 127, which refuses the commit without a word of what to do), or with
    on_missing "allow", goes ahead with one line on stderr."""
    import shlex

    why = f"wtp is missing: this hook runs {shlex.join(wtp_argv()[0])}, which is gone, and no wtp is on PATH"
    if on_missing == "allow":
        say, code = f"wtp pre-commit hook: {why}; the commit goes ahead unchecked", 0
    else:
        say = (
            f"wtp pre-commit hook: {why}, so the commit cannot be checked against the other tasks: install wtp "
            "(or put it on PATH) and run 'wtp hook install git', or commit with --no-verify"
        )
        code = 1
    return f"{_installed(sub)}; command -v wtp >/dev/null 2>&1 || {{ printf '%s\\n' {shlex.quote(say)} >&2; exit {code}; }}; exec wtp {sub}"


def claude_installed(ctx: Ctx) -> bool:
    try:
        return has_claude_hook(read_settings(ctx.repo.config_root / CLAUDE_SETTINGS))
    except Refusal:
        return False  # another tool's file wtp cannot read: not wtp's hook, and not its business


def local_settings_text(command: str) -> str:
    data: dict[str, Any] = {}
    merge_claude_hook(data, command)
    return json.dumps(data, indent=2) + "\n"


def prepare_worktree(ctx: Ctx, wt: Path) -> str | None:
    """A new task worktree gets the agent hook when the main worktree has it installed but
    the task's checkout does not (the settings are not committed yet): in its
    .claude/settings.local.json, which git is told to ignore.  Returns what was done, or
    why not when the task's settings cannot be read.  Never raises: a settings file must
    not fail 'wtp start' after its worktree exists (issue 24)."""
    try:
        return _prepare(ctx, wt)
    except (WtpError, OSError, ValueError, RecursionError) as e:
        why = e.message if isinstance(e, WtpError) else str(e)
        return f"the agent hook was not added to task worktree {wt}: {why}"


def _prepare(ctx: Ctx, wt: Path) -> str | None:
    if not claude_installed(ctx):
        return None
    mine = wt / CLAUDE_SETTINGS
    try:
        if mine.exists() and has_claude_hook(parse_settings(mine.read_text(encoding="utf-8"))):
            return None  # the branch has it already
    except ValueError as e:
        return (
            f"the agent hook was not added to task worktree {wt}: its {CLAUDE_SETTINGS} {e}, "
            "so its agent works without the wtp hook until that file is fixed"
        )
    local = wt / CLAUDE_LOCAL
    if local.exists() or local.is_symlink():
        return None  # the user's own local settings: left alone
    if Path(os.path.realpath(local.parent)) != Path(os.path.realpath(wt)) / CLAUDE_LOCAL.parent:
        return None  # a linked .claude folder: writing there would write outside the worktree
    exclude = ctx.repo.common_dir / "info" / "exclude"
    line = f"/{CLAUDE_LOCAL.as_posix()}"
    text = exclude.read_text() if exclude.exists() else ""
    if line not in text.splitlines():
        exclude.parent.mkdir(exist_ok=True)
        exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")
    local.parent.mkdir(exist_ok=True)
    local.write_text(local_settings_text(hook_command(on_missing=ctx.cfg.hook_on_missing)))
    return f"the agent hook is in {local} (the branch's .claude/settings.json does not have it yet)"
