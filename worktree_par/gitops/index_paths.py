"""Which of a few paths other tasks changed: what admission and the agent hook ask of every
other live task (committed on its branch, or uncommitted / untracked in its worktree).

The agent hook asks about one path on every edit.  On a large repository git's answer
for a worktree ('git status -- PATH') costs a read of that worktree's whole index and
more (about 25 ms at 100,000 files); for one path, the index entry is found in the file
itself and the worktree's file compared with it by its stat data, as git's own refresh
does, and the entry with HEAD's through one 'git cat-file' for every task at once.  That
shortcut is taken only where it gives git's answer: anything it does not know for sure
(no entry and a file on disk, a stat mismatch, a racy entry, flags, a conflict, a
submodule, index version 4, a split or sparse index, sha256) asks git status instead.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from ..errors import GitError
from .core import spawn
from .parse import parse_status_entries
from .status import STATUS_ARGS
from .work import git_dir_of

PATHSPEC_LIMIT = 200  # more paths than this: ask about everything and pick the answers
_STAT = struct.Struct(">10I")  # ctime s, ns, mtime s, ns, dev, ino, mode, uid, gid, size
_OID = 20  # sha1: the shortcut is not taken in a sha256 repository


class Entry(NamedTuple):
    mode: int
    oid: bytes


class Local(NamedTuple):
    """A worktree's file at a path matches its index entry (both may be absent)."""

    entry: Entry | None  # the index entry; None: neither in the index nor on disk
    head: str  # the revision HEAD names there (a ref, or a commit id when detached)


def _head_rev(gd: Path) -> str | None:
    try:
        text = (gd / "HEAD").read_text().strip()
    except OSError:
        return None
    if text.startswith("ref: refs/"):
        return text[len("ref: ") :]
    return text if len(text) == 2 * _OID and all(c in "0123456789abcdef" for c in text) else None


def _plain(gd: Path, common: Path) -> bool:
    """No split index, sparse checkout or sha256 here: an index file we read as git would."""
    for d in {gd, common}:
        try:
            if any(n.startswith("sharedindex.") for n in os.listdir(d)):
                return False
        except OSError:
            return False
        if (d / "info" / "sparse-checkout").exists():
            return False
    try:
        config = (common / "config").read_text(errors="replace").lower()
    except OSError:
        return False
    return "objectformat" not in config and "sparse" not in config and "splitindex" not in config


def _entry_at(data: bytes, path: bytes, version: int) -> tuple[Entry, int] | None | Literal[False]:
    """The stage-0 entry for ``path`` in an index file's bytes and where it starts: None when
    there is none, False when one is there that the shortcut leaves to git (flags, a conflict,
    a submodule).  Found by its name, checked to be a whole entry where one can start."""
    key = path + b"\0"
    start = 12
    while True:
        pos = data.find(key, start)
        if pos < 0:
            return None
        start = pos + 1
        if version >= 3 and pos - 4 >= 12:
            (outer,) = struct.unpack_from(">H", data, pos - 4)
            at = pos - 4 - _OID - 40
            if outer & 0x4000 and (outer & 0xFFF) == min(len(path), 0xFFF) and at >= 12 and (at - 12) % 8 == 0:
                return False  # extended flags (intent-to-add, skip-worktree)
        (flags,) = struct.unpack_from(">H", data, pos - 2)
        at = pos - 2 - _OID - 40
        if (flags & 0xFFF) != min(len(path), 0xFFF) or at < 12 or (at - 12) % 8:
            continue  # the name inside a longer one: entries start on 8-byte boundaries
        mode = _STAT.unpack_from(data, at)[6]
        if mode not in (0o100644, 0o100755, 0o120000, 0o160000):
            continue
        if flags & 0xF000 or mode == 0o160000:
            return False  # assume-valid, extended flags, a conflict stage, a submodule
        return Entry(mode, data[at + 40 : at + 40 + _OID]), at


def local_view(wt: Path, common: Path, rel: str) -> Local | None:
    """What the worktree's index says of ``rel`` when its file matches it exactly (by git's
    own stat check, entry not racy); None: ask git."""
    gd = git_dir_of(wt)
    head = _head_rev(gd)
    if head is None or not _plain(gd, common):
        return None
    index = gd / "index"
    try:
        before = os.stat(index)
        with open(index, "rb") as f:
            data = f.read()
        after = os.stat(index)
    except OSError:
        return None
    if (before.st_mtime_ns, before.st_size, before.st_ino) != (after.st_mtime_ns, after.st_size, after.st_ino):
        return None  # written meanwhile
    if data[:4] != b"DIRC" or len(data) < 12:
        return None
    version = struct.unpack_from(">I", data, 4)[0]
    if version not in (2, 3):
        return None
    found = _entry_at(data, os.fsencode(rel), version)
    if found is False:
        return None
    try:
        st = os.lstat(wt / rel)
    except FileNotFoundError:
        st = None
    except OSError:
        return None
    if found is None:
        return Local(None, head) if st is None else None  # a file not in the index: untracked or ignored
    entry, at = found
    if st is None:
        return None  # deleted in the worktree: git says how
    fields = _STAT.unpack_from(data, at)
    mode = 0o120000 if stat.S_ISLNK(st.st_mode) else (0o100755 if st.st_mode & 0o100 else 0o100644)
    mask = 0xFFFFFFFF
    same = (
        fields[0] == st.st_ctime_ns // 10**9 & mask
        and fields[1] == st.st_ctime_ns % 10**9
        and fields[2] == st.st_mtime_ns // 10**9 & mask
        and fields[3] == st.st_mtime_ns % 10**9
        and fields[5] == st.st_ino & mask
        and fields[6] == mode
        and fields[7] == st.st_uid & mask
        and fields[8] == st.st_gid & mask
        and fields[9] == st.st_size & mask
        and stat.S_ISREG(st.st_mode) | stat.S_ISLNK(st.st_mode)
    )
    racy = (fields[2], fields[3]) >= (before.st_mtime_ns // 10**9 & mask, before.st_mtime_ns % 10**9)
    return Local(entry, head) if same and not racy else None


def _tree_entry(tree: bytes, name: bytes) -> Entry | None:
    """``name``'s (mode, id) in a raw tree object; None when absent or a folder."""
    i = 0
    while i < len(tree):
        sp = tree.index(b" ", i)
        nul = tree.index(b"\0", sp)
        if tree[sp + 1 : nul] == name:
            mode = int(tree[i:sp], 8)
            return None if mode == 0o40000 else Entry(mode, tree[nul + 1 : nul + 1 + _OID])
        i = nul + 1 + _OID
    return None


def _head_entries(out: bytes, count: int, names: list[bytes]) -> list[Entry | None] | None:
    """'git cat-file --batch' output for ``count`` folders: each one's entry for its name."""
    found: list[Entry | None] = []
    i = 0
    for n in range(count):
        eol = out.index(b"\n", i)
        header = out[i:eol].split(b" ")
        if header[-1] == b"missing":
            found.append(None)  # no such folder at HEAD (or no HEAD yet)
            i = eol + 1
            continue
        if len(header) != 3 or header[1] != b"tree" or len(header[0]) != 2 * _OID:
            return None
        size = int(header[2])
        found.append(_tree_entry(out[eol + 1 : eol + 1 + size], names[n]))
        i = eol + 1 + size + 1
    return found


def changed_among(root: Path, tasks: Sequence[tuple[Path, str, str]], paths: Sequence[str]) -> list[dict[str, str]]:
    """For each (worktree, base ref, branch ref): which of ``paths`` its task changed, and how
    ("committed", "uncommitted" or "untracked"); every git call of every task runs side by
    side (the branch since its fork point, and the worktree's status)."""
    return Changes(root, [wt for wt, _, _ in tasks], paths).finish([(base, ref) for _, base, ref in tasks])


class Changes:
    """changed_among begun early: the worktrees are looked at at once (their statuses, the
    costly calls, started), the branches' diffs when ``finish`` is given their base refs,
    which a caller may still be working out meanwhile.

    Statuses take no optional lock (``--no-optional-locks``): they read another task's
    worktree, and must not write its index back, nor hold its lock while its agent commits.
    One path asked: each worktree whose index answers for it (local_view) needs no status,
    and HEAD's side of all of them comes from one 'git cat-file'."""

    def __init__(self, root: Path, worktrees: Sequence[Path], paths: Sequence[str], common: Path | None = None) -> None:
        self.root, self.paths, self.count, self.worktrees = root, list(paths), len(worktrees), list(worktrees)
        self.spec = ["--", *paths] if len(paths) <= PATHSPEC_LIMIT else ["--"]
        self.local: dict[int, Local] = {}
        if len(paths) == 1 and "\n" not in paths[0] and common is not None:
            for i, wt in enumerate(worktrees):
                try:
                    view = local_view(wt, common, paths[0])
                except (OSError, ValueError, GitError):  # a broken worktree: git's status says so
                    view = None
                if view is not None:
                    self.local[i] = view
        lit = ["--literal-pathspecs"]
        status = [*lit, *STATUS_ARGS, *self.spec]
        self.statuses = {i: spawn(status, wt) for i, wt in enumerate(worktrees) if paths and i not in self.local}
        self.heads = None
        if self.local:
            folder = os.path.dirname(self.paths[0])
            self.heads = spawn(["cat-file", "--batch"], root, stdin=True)
            asked = "".join(f"{v.head}:{folder}\n" for v in self.local.values())
            assert self.heads.stdin is not None
            self.heads.stdin.write(asked.encode("utf-8", "surrogateescape"))
            self.heads.stdin.close()

    def _local_answers(self) -> dict[int, dict[str, str]] | None:
        if self.heads is None:
            return {}
        assert self.heads.stdout is not None
        out = self.heads.stdout.read()
        self.heads.wait()
        name = os.fsencode(os.path.basename(self.paths[0]))
        try:
            entries = (
                _head_entries(out, len(self.local), [name] * len(self.local)) if self.heads.returncode == 0 else None
            )
        except ValueError:  # not the output asked for
            entries = None
        if entries is None:
            return None
        return {
            i: ({self.paths[0]: "uncommitted"} if v.entry != e else {})
            for (i, v), e in zip(self.local.items(), entries)
        }

    def finish(self, ranges: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        """Per worktree, in order: which paths changed and how; ``ranges``: each one's (base ref, branch ref)."""
        if not self.paths:
            return [{} for _ in range(self.count)]
        lit = ["--literal-pathspecs"]
        diffs = [
            spawn([*lit, "diff", "--name-only", "-z", "--no-renames", f"{base}...{ref}", *self.spec], self.root)
            for base, ref in ranges
        ]
        local = self._local_answers()
        if local is None:  # git did not answer as expected: ask it the long way
            asked = [*lit, *STATUS_ARGS, *self.spec]
            self.statuses.update({i: spawn(asked, self.worktrees[i]) for i in self.local})
            local = {}
        wanted = set(self.paths)
        out: list[dict[str, str]] = []
        for i, diff in enumerate(diffs):
            d_out = diff.communicate()[0].decode("utf-8", "surrogateescape")
            found: dict[str, str] = {}
            if diff.returncode == 0:
                found.update((p, "committed") for p in d_out.split("\0") if p in wanted)
            if i in local:
                found.update(local[i])
            else:
                proc = self.statuses[i]
                s_out = proc.communicate()[0].decode("utf-8", "surrogateescape")
                if proc.returncode == 0:
                    for e in parse_status_entries(s_out):
                        if e.path in wanted and e.kind != "!":
                            found[e.path] = "untracked" if e.kind == "?" else "uncommitted"
            out.append(found)
        return out
