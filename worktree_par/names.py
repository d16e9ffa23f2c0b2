"""The task name contract (README, Usage: "Task names"): what a task may be called, and how a name
is printed safely."""

from __future__ import annotations

import re

from .errors import InvalidTaskName

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def shown(name: str, limit: int = 200) -> str:
    """A name as it is safe to print: control and odd characters escaped, and one past
    ``limit`` characters cut there (an error line never echoes 100 KB of input back)."""
    s = name.encode("unicode_escape").decode("ascii")
    return s if len(s) <= limit else f"{s[:limit]}... ({len(name)} characters)"


def validate_name(name: str) -> None:
    """Contract: 1-64 of [A-Za-z0-9._-], no leading '-' or '.', no '..', not ending in '.lock' or '.'."""
    bad = None
    if not _NAME.fullmatch(name):
        if not name:
            bad = "it is empty"
        elif len(name) > 64:
            bad = f"it is {len(name)} characters long (64 at most)"
        elif "/" in name:
            bad = "it may not contain '/' (a task is one branch and one worktree folder, not a path)"
        else:
            bad = "it may only contain letters, digits, '.', '_' and '-'"
    elif name[0] in "-.":
        bad = f"it may not start with '{name[0]}'"
    elif ".." in name:
        bad = "it may not contain '..'"
    elif name.endswith(".lock"):
        bad = "it may not end in '.lock'"
    elif name.endswith("."):
        bad = "it may not end in '.' (git refuses such a branch name)"
    if bad:
        raise InvalidTaskName(f"invalid task name '{shown(name)}': {bad}; try something like '{_suggest(name)}'")


def _suggest(name: str) -> str:
    """A valid name close to ``name`` ('feat/login' -> 'feat-login'), else 'fix-login'."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:64].lstrip("-.").removesuffix(".lock")
    s = re.sub(r"\.{2,}", ".", s).rstrip("-.")
    return s if s and _NAME.fullmatch(s) and s != name else "fix-login"
