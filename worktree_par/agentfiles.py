"""The agent settings files wtp writes, as plain data: the Claude Code PreToolUse hook it
merges into (and removes from) a settings object, and how to tell a file wtp made from the
user's own.  No I/O beyond reading one file; the guard asks it about ignored files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import Refusal

EDIT_TOOLS = {"Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path", "NotebookEdit": "notebook_path"}
MATCHER = "|".join(EDIT_TOOLS)
CLAUDE_SETTINGS = Path(".claude") / "settings.json"
CLAUDE_LOCAL = Path(".claude") / "settings.local.json"


def _is_ours(command: object, sub: str) -> bool:
    return isinstance(command, str) and command.endswith(sub) and ("wtp" in command or "worktree_par" in command)


CLAUDE_SETTINGS = Path(".claude") / "settings.json"
CLAUDE_LOCAL = Path(".claude") / "settings.local.json"


def read_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Refusal(f"{path} is not valid JSON ({e}): fix it, then install again") from None
    if not isinstance(data, dict):
        raise Refusal(f"{path} is not a JSON object: fix it, then install again")
    return data


def merge_claude_hook(data: dict[str, Any], command: str) -> bool:
    """Add the PreToolUse hook to Claude Code settings ``data``; False when it was there."""
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise Refusal("the 'hooks' of the Claude settings is not an object: fix it, then install again")
    groups = hooks.setdefault("PreToolUse", [])
    if not isinstance(groups, list):
        raise Refusal("'hooks.PreToolUse' of the Claude settings is not a list: fix it, then install again")
    for g in groups:
        if isinstance(g, dict) and any(
            isinstance(h, dict) and _is_ours(h.get("command"), "hook pre-edit") for h in g.get("hooks", [])
        ):
            return False
    groups.append({"matcher": MATCHER, "hooks": [{"type": "command", "command": command}]})
    return True


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
        data = json.loads((wt / rel).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and unmerge_claude_hook(data) and not data
