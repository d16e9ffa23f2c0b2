"""Parsers of git's porcelain output: pure functions, no git calls, tested on recorded
output (tests/test_gitparse.py).  The other gitops modules run git and hands its output here, so no
other module ever reads git's text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, NewType

Sha = NewType("Sha", str)
# An object id is 40 hex digits in a sha1 repository and 64 in a sha256 one
# (git init --object-format=sha256).  Parsers accept either: git never prints an id of the
# other length, and what the repository uses is known in one place (core.object_format).
_OID = r"(?:[0-9a-f]{64}|[0-9a-f]{40})"
_OBJECT_ID = re.compile(_OID)
_HEX_WORD = re.compile(rf"\b{_OID}\b")


def is_object_id(text: str, hexlen: int | None = None) -> bool:
    """``text`` is a full object id (of ``hexlen`` digits, when the format is known)."""
    return _OBJECT_ID.fullmatch(text) is not None and (hexlen is None or len(text) == hexlen)


class Worktree(NamedTuple):
    path: Path
    head: Sha | None
    branch: str | None  # full ref name, e.g. refs/heads/wtp/a
    prunable: bool
    locked: bool
    bare: bool = False
    lock_reason: str = ""


def parse_worktrees(out: str) -> list[Worktree]:
    """``git worktree list --porcelain -z``; the main worktree (or the bare repository) first."""
    result: list[Worktree] = []
    cur: dict[str, str] = {}
    for f in out.split("\0") + [""]:
        if f == "":
            if cur:
                result.append(
                    Worktree(
                        path=Path(cur["worktree"]),
                        head=Sha(cur["HEAD"]) if "HEAD" in cur else None,
                        branch=cur.get("branch"),
                        prunable="prunable" in cur,
                        locked="locked" in cur,
                        bare="bare" in cur,
                        lock_reason=cur.get("locked", ""),
                    )
                )
                cur = {}
            continue
        key, _, val = f.partition(" ")
        cur[key] = val
    return result


class StatusEntry(NamedTuple):
    kind: str  # "1" changed, "2" renamed/copied, "u" unmerged, "?" untracked, "!" ignored
    path: str
    sub: str = "N..."  # submodule field: "N..." not a submodule, else "S<c><m><u>"


def parse_status_entries(out: str) -> list[StatusEntry]:
    """``git status --porcelain=v2 -z`` entries; a rename yields its new and its old path."""
    fields = out.split("\0")
    entries: list[StatusEntry] = []
    i = 0
    while i < len(fields):
        f = fields[i]
        i += 1
        if not f:
            continue
        kind = f[0]
        if kind == "1":
            parts = f.split(" ", 8)
            entries.append(StatusEntry("1", parts[8], parts[2]))
        elif kind == "2":  # rename/copy: new path here, original in the next field
            parts = f.split(" ", 9)
            entries += [StatusEntry("2", parts[9], parts[2]), StatusEntry("2", fields[i], parts[2])]
            i += 1
        elif kind == "u":
            parts = f.split(" ", 10)
            entries.append(StatusEntry("u", parts[10], parts[2]))
        elif kind in "?!":
            entries.append(StatusEntry(kind, f[2:]))
    return entries


def parse_status(out: str) -> list[str]:
    """Paths with staged, unstaged or untracked changes (ignored ones left out)."""
    return [e.path for e in parse_status_entries(out) if e.kind != "!"]


class MergeTree(NamedTuple):
    tree: Sha
    conflicts: list[str]  # conflicting paths; empty when the merge is clean


_SIDE_SUFFIX = re.compile(rf"~{_OID}$")


def parse_merge_tree(code: int, out: str, sides: tuple[str, ...] = ()) -> MergeTree | None:
    """``git merge-tree --write-tree --name-only -z --no-messages A B`` output; None when it
    is not a merge result at all.  git 2.39 exits 1 both for a conflict and for a bad
    revision: a conflict is exit 1 *and* a first field that is a tree id."""
    fields = out.split("\0")
    if code not in (0, 1) or not is_object_id(fields[0]):
        return None
    if code == 0:
        return MergeTree(Sha(fields[0]), [])
    # The file side of a file/directory conflict is renamed 'path~<side>' (<side>: the
    # revision as given, A or B): name the path itself.
    suffixes = tuple(f"~{s}" for s in sides)

    def path(f: str) -> str:
        for suffix in suffixes:
            if f.endswith(suffix):
                return f[: -len(suffix)]
        return _SIDE_SUFFIX.sub("", f)

    return MergeTree(Sha(fields[0]), sorted({path(f) for f in fields[1:] if f}))


class PushResult(NamedTuple):
    flag: str  # git's flag column for the ref: ' ' '+' '-' '*' '=' '!' ('' when not reported)
    summary: str  # e.g. 'abc..def', '[rejected]', '[remote rejected]'
    reason: str  # the remote's or git's reason, e.g. 'stale info', 'pre-receive hook declined'
    messages: list[str]  # what the remote said ('remote: ...' lines)

    @property
    def updated(self) -> bool:
        """The remote's ref now holds what was pushed ('=': it already did; '-': deleted)."""
        return self.flag in (" ", "+", "*", "=", "-")

    @property
    def lost_race(self) -> bool:
        """Refused because the ref is no longer what we expected (someone else moved it)."""
        race = ("stale info", "fetch first", "non-fast-forward", "cannot lock ref", "failed to update ref")
        return self.flag == "!" and any(r in self.reason for r in race)


def parse_push(out: str, err: str, dest: str) -> PushResult:
    """``git push --porcelain`` for the ref ``dest``: lines ``<flag>\\t<from>:<to>\\t<summary> (<reason>)``."""
    messages = [line[len("remote: ") :].rstrip() for line in err.splitlines() if line.startswith("remote: ")]
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[0]) == 1 and parts[1].endswith(":" + dest):
            summary, _, reason = parts[2].partition(" (")
            return PushResult(parts[0], summary, reason.rstrip(")"), messages)
    # No report for the ref: git's own error says why ('fatal: Could not read from remote
    # repository.', which a hint of several lines follows), else the last line it printed.
    lines = [line.strip() for line in err.splitlines() if line.strip() and not line.startswith("remote: ")]
    said = next((line for line in lines if line.startswith(("fatal:", "error:"))), "")
    return PushResult("", "", said or (lines[-1] if lines else "no report for the ref"), messages)


def parse_read_tree_refusal(err: str) -> list[str]:
    """The files a refused ``git read-tree -m -u`` names (quoted on its lines, or tab-indented)."""
    named = re.compile(r"'([^']+)'")
    paths = sorted({m for line in err.splitlines() for m in named.findall(line)})
    return paths + sorted({line.strip() for line in err.splitlines() if line.startswith("\t")} - set(paths))


def commit_ids(text: str) -> list[Sha]:
    """Every full commit id in a text (a rebase todo list, say), in order, once each."""
    return [Sha(s) for s in dict.fromkeys(_HEX_WORD.findall(text))]


def parse_version(out: str) -> tuple[int, int]:
    """``git version 2.39.5`` -> (2, 39)."""
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
