"""Nested git repositories inside a task's worktree (a clone made in it, a dependency
checked out into an ignored folder): the guard keeps them as objects, not as pointers.

'git add' records a nested repository as a gitlink, a pointer to a commit the superproject
does not have, so a worktree deleted after that kind of snapshot loses the nested
repository's commits and files.  Here each one is found, its refs and a snapshot of its
work tree are fetched into the superproject under ``refs/wtp/archive-sub/<task>/<id>/``,
and its files are grafted into the archive's tree at its folder (issue 24, B).
"""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path
from typing import NamedTuple

from . import gitops
from .errors import GitError, WouldLoseWork
from .gitops import Sha

# The archive of one nested repository, under <prefix>: its refs without 'refs/' (heads/main,
# tags/v1, remotes/origin/main, stash), 'wtp/HEAD' and 'wtp/worktree' (its files as they
# were, on top of its HEAD), so that fetching '<prefix>*:refs/*' into a new repository
# gives back its branches, tags and both.
HEAD_REF = "wtp/HEAD"
WORKTREE_REF = "wtp/worktree"


class Nested(NamedTuple):
    path: str  # folder inside the worktree
    repo: Path
    head: Sha | None
    head_ref: str | None  # the branch its HEAD is attached to
    refs: dict[str, Sha]  # every ref it has
    dirty: list[str]  # its uncommitted and untracked files

    def phrase(self) -> str:
        n, d = len(self.refs), len(self.dirty)
        return f"the nested repository '{self.path}' ({n} ref{'s' * (n != 1)}, {d} uncommitted file{'s' * (d != 1)})"


def find(wt: Path, folders: list[str], skip: frozenset[str]) -> tuple[list[Nested], set[str]]:
    """The git repositories below the worktree's untracked or ignored ``folders`` (paths as
    'git status' names them, with a trailing '/'), outer ones first, and the folders among
    ``folders`` that hold nothing else; folders named in ``skip`` (caches any build
    regenerates) are not searched."""
    found: list[str] = []
    only_repos = set()
    for folder in folders:
        top = wt / folder.rstrip("/")
        other = False  # a file of the folder's own, outside any nested repository
        for dirpath, dirs, files in os.walk(top):
            rel = os.path.relpath(dirpath, wt).replace(os.sep, "/")
            inside = any(rel == f or rel.startswith(f + "/") for f in found)
            if ".git" in dirs or ".git" in files:
                found.append(rel)
            elif not inside and (files or any(d in skip for d in dirs)):
                other = True
            dirs[:] = sorted(d for d in dirs if d != ".git" and d not in skip)
        if not other and found:
            only_repos.add(folder)
    out = []
    for rel in sorted(set(found)):
        repo = wt / rel
        try:
            head, head_ref = gitops.head(repo)
            # A linked worktree of a repository outside (its .git a file naming a git dir
            # elsewhere) keeps its commits there: only its HEAD and files live here.
            outside = not gitops.git_dir_of(repo).resolve().is_relative_to(wt.resolve())
            refs = {} if outside else gitops.refs_under(repo, "refs/")
            out.append(Nested(rel, repo, head, head_ref, refs, gitops.status_paths(repo)))
        except GitError:
            only_repos.clear()  # a '.git' git cannot open: git adds that folder's files as plain files
    return out, only_repos


class Kept(NamedTuple):
    nested: Nested
    at: str  # the archive's ref prefix, ending in '/'
    tree: Sha  # its files as they were
    refs: list[tuple[Sha, str]]  # (commit, ref) fetched into the superproject
    dropped: list[str]  # its ignored files too large to archive (deleted, and named)


def archive(root: Path, task: str, prefix: str, nested: list[Nested], disposable: tuple[str, ...] = ()) -> list[Kept]:
    """Fetch every nested repository's refs and a snapshot of its files into ``root``, under
    ``<prefix><task>/<snapshot id>/`` (the id keeps an older archive of the task apart): its
    ignored files too, as the guard keeps a worktree's (not its build outputs, nor the
    ``disposable`` globs; up to the archive's size limits)."""
    from . import copies, sizes
    from . import disposable as outputs

    mine = gitops.object_format(root)
    out: list[Kept] = []
    for n in nested:
        inner = [m.path[len(n.path) + 1 :] for m in nested if m.path.startswith(n.path + "/")]
        fmt = gitops.object_format(n.repo)
        if fmt != mine:
            raise WouldLoseWork(
                f"the nested repository '{n.path}' uses {fmt.name} object ids and this repository {mine.name}: "
                f"it cannot be archived here; move it out of the worktree, then run the command again"
            )
        ignored = [p for p in gitops.worktree_contents(n.repo)[1] if not copies.under(p, tuple(inner))]
        kept = outputs.split(ignored, disposable, functools.partial(gitops.check_ignore, n.repo))[0]
        small, dropped = sizes.split_by_size(n.repo, kept)
        commit, tree = gitops.snapshot(n.repo, small, exclude=inner)
        at = f"{prefix}{task}/{commit[:12]}/"
        pairs = [(c, at + r[len("refs/") :]) for r, c in sorted(n.refs.items())]
        pairs += [(c, at + name) for c, name in ((n.head, HEAD_REF), (commit, WORKTREE_REF)) if c]
        try:
            gitops.fetch_commits(root, str(n.repo), pairs)
        except GitError as e:
            raise WouldLoseWork(
                f"could not copy the nested repository '{n.path}' into the archive ({e.message}): nothing was deleted"
            ) from None
        out.append(Kept(n, at, tree, [(Sha(c), r) for c, r in pairs], dropped))
    return out


def kept_line(root: Path, k: Kept) -> str:
    """What ``rm --force`` says of a nested repository it archived: where, how to restore it,
    and the ignored files of it that were too large to keep."""
    line = f"kept the nested repository '{k.nested.path}' as objects under {k.at} (restore: '{restore_hint(root, k.nested, k.at)}')"
    if k.dropped:
        n = len(k.dropped)
        them = "them" if n != 1 else "it"
        line += f"; deleted {n} large ignored file{'s' * (n != 1)} of it without archiving {them}: {', '.join(k.dropped[:10])}"
    return line


def restore_hint(root: Path, n: Nested, at: str) -> str:
    """The commands that bring a nested repository back from its archive under ``at``, at its
    own path: run from one folder, the hints of a task put each nested repository back where it
    was, one inside another included (git init makes the folders on the way)."""
    name = shlex.quote(f"./{n.path}" if n.path.startswith("-") else n.path)  # never read as an option
    fetch = f'git init -q {name} && git -C {name} fetch -q --update-head-ok {shlex.quote(str(root))} "+{at}*:refs/*"'
    if n.head and n.head_ref:
        checkout = f" && git -C {name} checkout -q -f {n.head_ref.removeprefix('refs/heads/')}"
    elif n.head:
        checkout = f" && git -C {name} checkout -q -f --detach refs/{HEAD_REF}"
    else:
        checkout = ""
    return f"{fetch}{checkout} && git -C {name} restore -q --source=refs/{WORKTREE_REF} -- ."
