"""Remotes: fetching the base, asking the remote what it holds, and the compare-and-swap push."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import GitError
from .core import run
from .parse import PushResult, parse_push

# --- remotes ----------------------------------------------------------------------


def fetch_branch(cwd: Path, remote: str, branch: str, dest_ref: str) -> None:
    """Fetch ``branch`` from ``remote`` into ``dest_ref``; retried, because a fetch racing
    pushes (and the repacks they trigger) into the same remote can fail once with 'did not
    send all necessary objects'."""
    args = ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{dest_ref}"]
    for attempt in range(3):
        res = run(args, cwd, check=False)
        if res.code == 0:
            return
        time.sleep(0.2 * (attempt + 1))
    raise GitError(args, res.code, res.out, res.err, str(cwd))


def fetch_commits(cwd: Path, source: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Fetch commits (by id) from another repository into refs here: [(commit, ref), ...]."""
    if pairs:
        run(["fetch", "--quiet", "--no-tags", source, *(f"+{c}:{r}" for c, r in pairs)], cwd)


def push_cas(cwd: Path, remote: str, ref: str, new: str, expected: str) -> PushResult:
    """Push ``new`` to ``ref`` on ``remote`` only if the remote still holds ``expected``."""
    res = run(["push", "--porcelain", f"--force-with-lease={ref}:{expected}", remote, f"{new}:{ref}"], cwd, check=False)
    result = parse_push(res.out, res.err, ref)
    if not result.flag and res.code != 0 and not result.messages:
        raise GitError(["push", remote, ref], res.code, res.out, res.err, str(cwd))
    return result
