"""Refs and commits: reading them, moving them only by compare-and-swap, and asking what
reaches what."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .. import atomic
from ..errors import GitError
from .core import run
from .parse import Sha, is_object_id

# --- refs -------------------------------------------------------------------------


def rev_parse(cwd: Path, rev: str) -> Sha | None:
    """The commit ``rev`` names, or None when it names no commit."""
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def ref_value(cwd: Path, ref: str) -> Sha | None:
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", ref], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def stored_ref(cwd: Path, common_dir: Path, ref: str) -> Sha | None:
    """``ref_value`` of a ref under refs/, read without a git call where the files backend keeps
    it: the loose ref, else its line in packed-refs (a loose one overrides it).  Asked of git for
    a reftable store, or for anything else found there (a symbolic ref, a folder, a FIFO)."""
    if os.path.lexists(common_dir / "reftable") or not ref.startswith("refs/"):
        return ref_value(cwd, ref)
    try:
        text = atomic.read_regular(common_dir / ref).decode(errors="replace").strip()
    except FileNotFoundError:
        text = None
    except OSError:
        return ref_value(cwd, ref)
    if text is not None:
        return Sha(text) if is_object_id(text) else ref_value(cwd, ref)
    try:
        packed = atomic.read_regular(common_dir / "packed-refs")
    except FileNotFoundError:
        return None
    except OSError:
        return ref_value(cwd, ref)
    want = ref.encode()
    for line in packed.splitlines():
        sha, _, name = line.partition(b" ")
        if name == want:
            return Sha(sha.decode()) if is_object_id(sha.decode(errors="replace")) else ref_value(cwd, ref)
    return None


def tree_of(cwd: Path, rev: str) -> Sha:
    return Sha(run(["rev-parse", "--verify", "--end-of-options", f"{rev}^{{tree}}"], cwd).out.strip())


def head(wt: Path) -> tuple[Sha | None, str | None]:
    """(HEAD commit, the branch it is attached to or None when detached) of a worktree."""
    res = run(["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"], wt, check=False)
    lines = res.out.split()
    commit = Sha(lines[0]) if res.code == 0 and lines and is_object_id(lines[0]) else None
    branch = lines[1] if commit and len(lines) > 1 and lines[1].startswith("refs/") else None
    if commit is None:  # an unborn branch: HEAD names it, but no commit yet
        sym = run(["symbolic-ref", "--quiet", "HEAD"], wt, check=False)
        return None, sym.out.strip() if sym.code == 0 else None
    return commit, branch


_PLAIN_REF = re.compile(r"[A-Za-z0-9._/-]+")


def check_ref_format(cwd: Path, ref: str) -> bool:
    """git's rules for a ref name.  Names made only of letters, digits and ``._/-`` (every
    wtp branch with the default prefix) are checked here by the rules that can apply to
    them, saving a git call per command; anything else is asked of git itself."""
    if _PLAIN_REF.fullmatch(ref):
        parts = ref.split("/")
        return not (
            len(parts) < 2
            or "" in parts
            or ".." in ref
            or ref.endswith(".")
            or any(p.startswith(".") or p.endswith(".lock") for p in parts)
        )
    return run(["check-ref-format", ref], cwd, check=False).code == 0


class RefInfo(NamedTuple):
    commit: Sha | None  # the commit the ref peels to, None when it names no commit
    symref: str  # the target of a symbolic ref, else ""


_REF_FORMAT = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00%(symref)"


def refs(cwd: Path, names: list[str]) -> dict[str, RefInfo]:
    """The refs among ``names`` that exist, looked up in one ``for-each-ref`` call."""
    if not names:
        return {}
    return _ref_infos(run(["for-each-ref", f"--format={_REF_FORMAT}", *names], cwd).out, names)


def refs_past(cwd: Path, names: list[str], since: str | None, not_in: str | None) -> dict[str, RefInfo] | None:
    """The refs among ``names`` that exist, have commit ``since`` in their history and are
    not reachable from commit ``not_in`` (git's ``--contains`` and ``--no-merged``; a None
    filter is not applied), in one ``for-each-ref`` call.  A ref left out exists only when
    a filter excluded it.  None when git cannot tell (a filter commit it does not have)."""
    if not names:
        return {}
    filters = [*([f"--contains={since}"] if since else []), *([f"--no-merged={not_in}"] if not_in else [])]
    res = run(["for-each-ref", f"--format={_REF_FORMAT}", *filters, *names], cwd, check=False)
    return _ref_infos(res.out, names) if res.code == 0 else None


def _ref_infos(out: str, names: list[str]) -> dict[str, RefInfo]:
    wanted = set(names)
    found: dict[str, RefInfo] = {}
    for line in out.splitlines():
        f = line.split("\0")
        if len(f) != 6 or f[0] not in wanted:  # patterns also match refs below a name
            continue
        commit = f[2] if f[1] == "commit" else f[4] if f[3] == "commit" else None
        found[f[0]] = RefInfo(Sha(commit) if commit else None, f[5])
    return found


def refs_under(cwd: Path, *prefixes: str) -> dict[str, Sha]:
    """Every ref below the ``prefixes`` (e.g. 'refs/heads/wtp/') with the object it names."""
    out = run(["for-each-ref", "--format=%(refname)%00%(objectname)", *prefixes], cwd).out
    return {f[0]: Sha(f[1]) for f in (line.split("\0") for line in out.splitlines()) if len(f) == 2}


def config_values(cwd: Path, pattern: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the git config whose key matches the regular expression."""
    res = run(["config", "-z", "--get-regexp", pattern], cwd, ok_codes=(0, 1))
    return [(k, v) for k, _, v in (e.partition("\n") for e in res.z())]


def update_ref(cwd: Path, ref: str, new: str, old: str | None, why: str, *, no_deref: bool = False) -> bool:
    """Compare-and-swap ``ref`` from ``old`` (None: must not exist) to ``new``."""
    expected = old if old is not None else ""  # git's "must not exist", in every object format
    args = [
        "update-ref",
        "--create-reflog",
        "-m",
        f"wtp: {why}",
        *(["--no-deref"] if no_deref else []),
        ref,
        new,
        expected,
    ]
    return run(args, cwd, check=False).code == 0


def delete_ref(cwd: Path, ref: str, old: str) -> bool:
    """Delete ``ref`` if it still names ``old`` (only the guard calls this for task refs)."""
    return run(["update-ref", "-d", ref, old], cwd, check=False).code == 0


def attach_head(wt: Path, ref: str, why: str) -> None:
    run(["symbolic-ref", "-m", f"wtp: {why}", "HEAD", ref], wt)


def is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return run(["merge-base", "--is-ancestor", a, b], cwd, ok_codes=(0, 1)).code == 0


def merge_base(cwd: Path, a: str, b: str) -> Sha | None:
    res = run(["merge-base", a, b], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def commits_not_in(cwd: Path, tips: Sequence[str], keep: Sequence[str], keep_globs: tuple[str, ...] = ()) -> list[Sha]:
    """Commits reachable from ``tips`` but from none of ``keep`` (refs or commits) nor the
    refs matching ``keep_globs`` (``--glob`` patterns): what deleting the tips would lose."""
    if not tips:
        return []
    args = ["rev-list", *tips, "--not", *keep, *(f"--glob={g}" for g in keep_globs), "--"]
    for attempt in range(3):
        res = run(args, cwd, check=False)
        # A ref deleted by another process while git walks --branches reads as a bad object:
        # that race is over in moments, so look again.
        if res.code == 0 or "bad object" not in res.err or attempt == 2:
            break
        time.sleep(0.05)
    if res.code != 0:
        raise GitError(args, res.code, res.out, res.err, str(cwd))
    return [Sha(s) for s in res.out.split()]


def unmatched_commits(cwd: Path, left: str, right: str) -> list[Sha]:
    """Commits of ``right`` not on ``left`` that ``left`` has no copy of: the same change (patch
    id) with the same message and author (a rebase keeps both; a commit reworded, or
    re-authored, is the user's own, not a copy)."""
    rng = [f"{left}...{right}", "--"]
    out = run(["rev-list", "--cherry-pick", "--right-only", "--no-merges", *rng], cwd).out
    unmatched = [Sha(s) for s in out.split()]
    fmt = "--format=%m%x00%H%x00%an%x00%ae%x00%at%x00%B%x01"
    sides: dict[str, list[tuple[str, tuple[str, ...]]]] = {"<": [], ">": []}
    for rec in run(["log", "--left-right", "--no-merges", fmt, *rng], cwd).out.split("\x01"):
        f = rec.lstrip("\n").split("\0")
        if len(f) == 6 and f[0] in sides:
            sides[f[0]].append((f[1], tuple(f[2:])))
    copies_of = {key for _, key in sides["<"]}
    return unmatched + [Sha(c) for c, key in sides[">"] if key not in copies_of and c not in unmatched]


def subjects(cwd: Path, commits: Sequence[str]) -> dict[str, str]:
    """The one-line subject of each commit."""
    if not commits:
        return {}
    out = run(["log", "--no-walk=unsorted", "--format=%H%x00%s", *commits, "--"], cwd).out
    return dict(line.split("\0", 1) for line in out.splitlines() if "\0" in line)


def last_reflog_message(cwd: Path, ref: str) -> str:
    """Why ``ref`` last moved, as its reflog says ('' without a reflog)."""
    return run(["reflog", "-1", "--format=%gs", ref, "--"], cwd, check=False).out.strip()


def existing_commits(cwd: Path, ids: Sequence[str]) -> list[Sha]:
    """The ids among ``ids`` that name commits in the repository, asked in one call."""
    if not ids:
        return []
    res = run(["cat-file", "--batch-check=%(objectname) %(objecttype)"], cwd, input="\n".join(ids) + "\n", check=False)
    return [Sha(f[0]) for f in (line.split() for line in res.out.splitlines()) if len(f) == 2 and f[1] == "commit"]


def config_value(cwd: Path, key: str) -> str | None:
    """One git setting, as git resolves it (None when unset)."""
    res = run(["config", "--get", key], cwd, check=False)
    return res.out.strip("\n") if res.code == 0 else None


def moved_from(common_dir: Path, ref: str, to: str) -> Sha | None:
    """Where the last move of ``ref`` to ``to`` took it from, as the ref's reflog file says
    (read without a git call): None without a reflog, or no such move among its last entries."""
    try:
        lines = atomic.read_regular(common_dir / "logs" / ref).decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[-20:]):
        fields = line.split(" ", 2)
        if len(fields) == 3 and fields[1] == to and is_object_id(fields[0]):
            return Sha(fields[0])
    return None
