"""What is uncommitted in a worktree, and its HEAD, from 'git status'."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .core import run
from .parse import Sha, is_object_id, parse_status, parse_status_entries
from .refs import head

# Statuses read worktrees wtp does not own at that moment (a task's, while its agent or the
# land conductor runs git there): --no-optional-locks keeps them from writing the index back,
# which takes index.lock and made a concurrent rebase or commit there fail.
STATUS_ARGS = ["--no-optional-locks", "status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"]
# With the '# branch.*' headers, not the distance to an upstream (a walk of both histories).
BRANCH_STATUS_ARGS = [*STATUS_ARGS, "--branch", "--no-ahead-behind"]


def status_paths(wt: Path) -> list[str]:
    """Paths with staged, unstaged or untracked (not ignored) changes, renames under both names."""
    return parse_status(run(STATUS_ARGS, wt).out)


CONTENTS_ARGS = [
    "--no-optional-locks",
    "status",
    "--porcelain=v2",
    "-z",
    "--ignored=matching",
    "--untracked-files=normal",
]


def worktree_contents(wt: Path) -> tuple[list[str], list[str]]:
    """(uncommitted and untracked paths, ignored paths) of a worktree in one status call; a
    folder that is wholly untracked or wholly ignored is named once, with '/'."""
    return _contents(run(CONTENTS_ARGS, wt).out)


def _contents(out: str) -> tuple[list[str], list[str]]:
    entries = parse_status_entries(out)
    return [e.path for e in entries if e.kind != "!"], [e.path for e in entries if e.kind == "!"]


class Contents(NamedTuple):
    """What a worktree holds beside its commits, and its HEAD, from one status walk."""

    dirty: list[str]  # as worktree_contents
    ignored: list[str]
    head: Sha | None  # as head_status
    attached: str | None


def contents_and_head(wt: Path) -> Contents:
    """``worktree_contents`` and ``head`` in one status walk (the '# branch.*' headers): the
    guard reads both of every worktree it removes."""
    headers, out = _branch_status(wt, [*CONTENTS_ARGS, "--branch", "--no-ahead-behind"])
    return Contents(*_contents(out), *_head_of(wt, headers))


class Dirty(NamedTuple):
    """One status walk of a worktree: what is uncommitted in it, and its HEAD."""

    paths: list[str]  # as status_paths; a nested repository is a folder named with '/'
    head: Sha | None  # None on an unborn branch


def dirty_of(wt: Path) -> Dirty:
    """status_paths and HEAD in one call (the '# branch.oid' header)."""
    headers, out = _branch_status(wt, BRANCH_STATUS_ARGS)
    oid = headers.get("branch.oid", "")
    return Dirty(parse_status(out), Sha(oid) if is_object_id(oid) else None)


def _branch_status(wt: Path, args: list[str]) -> tuple[dict[str, str], str]:
    """A status with its '# branch.*' headers, as {'branch.oid': ..., 'branch.head': ...}."""
    out = run(args, wt).out
    headers = {}
    for field in out.split("\0"):
        if not field.startswith("# "):
            break
        key, _, value = field[2:].partition(" ")
        headers[key] = value
    return headers, out


class HeadStatus(NamedTuple):
    """A worktree's HEAD and what is uncommitted in it, from one status walk."""

    head: Sha | None  # None on an unborn branch
    attached: str | None  # the branch HEAD is attached to ('refs/heads/...'), None when detached
    paths: list[str]  # as status_paths


def head_status(wt: Path, *, untracked: bool = True) -> HeadStatus:
    """``head`` and ``status_paths`` in one call (the '# branch.oid' and '# branch.head'
    headers).  A HEAD status shows as '(detached)', or '(null)' (attached to a ref outside
    refs/heads), names a branch may also have, is asked of git again (``head``).
    ``untracked=False``: the tracked files' changes only, untracked ones not looked for."""
    args = BRANCH_STATUS_ARGS if untracked else [*BRANCH_STATUS_ARGS, "--untracked-files=no"]  # the last one counts
    headers, out = _branch_status(wt, args)
    return HeadStatus(*_head_of(wt, headers), parse_status(out))


def _head_of(wt: Path, headers: dict[str, str]) -> tuple[Sha | None, str | None]:
    """HEAD as ``head`` says it, from a status's '# branch.*' headers, or asked of git again."""
    oid, name = headers.get("branch.oid", ""), headers.get("branch.head", "")
    if not name or name.startswith("("):
        return head(wt)
    return Sha(oid) if is_object_id(oid) else None, f"refs/heads/{name}"


def same_as_tracked(wt: Path, commit: str, paths: list[str]) -> set[str]:
    """The ``paths`` (files in ``wt``, git's names) that hold what ``commit`` tracks there, as
    git would store them (its filters applied): a checkout of ``commit`` would leave them as
    they are."""
    listed = run(["ls-tree", "-z", commit, "--", *paths], wt).z()
    tracked = {f.split("\t", 1)[1]: f.split("\t", 1)[0].split()[-1] for f in listed if "\t" in f}
    files = [p for p in paths if p in tracked]
    if not files:
        return set()
    hashed = run(["hash-object", "--stdin-paths"], wt, input="\n".join(files) + "\n", check=False)
    oids = hashed.out.split() if hashed.code == 0 else []
    return {p for p, oid in zip(files, oids) if tracked[p] == oid}
