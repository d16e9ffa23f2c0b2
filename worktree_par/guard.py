"""The one guard for destruction.  Every step that deletes a task's worktree or branch, or moves a task ref backwards,
goes through here (README, "Nothing is lost, and nothing needs a manual unlock").

It collects everything a worktree holds: HEAD (attached or detached), the task branch, ``refs/worktree/*``, a stopped
rebase, merge or cherry-pick (its original head and every commit still to replay), commits and changes inside
initialised submodules, uncommitted and untracked files, ignored files that wtp did not put there, and nested
repositories (their refs and files, kept as objects: nested.py).  Then it proves all of it reachable from refs that
stay (branches, tags, remote-tracking refs, archives, the stash), checked with git, or refuses naming what would be
lost.  Forced, it archives all of it under one commit, ``refs/wtp/archive/<task>`` (parents: every tip found; tree: the
files as they are), verifies the archive with git, and only then deletes, saying what it kept and what it dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from . import agentfiles, copies, crashpoints, disposable, gitops, nested, sizes, stacking
from .errors import GitError, WouldLoseWork, count
from .gitops import MergeTree, Sha, edits
from .refnames import ARCHIVE, ARCHIVE_PREV, ARCHIVE_SUB, BACKUP, EDITS, PRE_LAND, archive_ref, backup_ref
from .repo import Ctx, few
from .state import Task

TRASH_PREFIX = ".wtp-trash-"
# Refs that stay when a task goes: what proves a commit kept.  (The task's own backup ref
# is not among them: it goes with the task.)
KEEP_GLOBS = ("refs/wtp/archive*", "refs/stas[h]")  # '[h]': a pattern, so git appends no '/*'
STAY = ("--branches", "--tags", "--remotes")  # with KEEP_GLOBS, the refs that stay (--remotes last)


class Submodule(NamedTuple):
    path: str  # inside the worktree
    repo: Path
    tips: list[Sha]  # its HEAD and local branches
    unpushed: list[Sha]  # commits on them that none of its remote-tracking refs has
    dirty: list[str]


class Holdings:
    """Everything a task's worktree and branch hold."""

    def __init__(self, task: Task, path: Path | None) -> None:
        self.task, self.path = task, path
        self.head: Sha | None = None
        self.head_ref: str | None = None  # the branch HEAD is attached to; None when detached
        self.branch_tip: Sha | None = None
        self.backup: Sha | None = None  # the pre-land tip kept by an unfinished land
        self.worktree_refs: dict[str, Sha] = {}
        self.op = ""  # a stopped rebase, merge, cherry-pick...
        self.op_commits: list[Sha] = []
        self.dirty: list[str] = []  # uncommitted and untracked files
        self.ignored: list[str] = []  # ignored files wtp did not put there, other than build outputs
        self.disposable: list[str] = []  # ignored build outputs and caches: deleted, never archived
        self.submodules: list[Submodule] = []
        self.nested: list[nested.Nested] = []  # git repositories in untracked or ignored folders

    def tips(self) -> list[Sha]:
        found = [self.head, self.branch_tip, self.backup, *self.worktree_refs.values(), *self.op_commits]
        return list(dict.fromkeys(s for s in found if s))


def collect(ctx: Ctx, t: Task) -> Holdings:
    """What the task's worktree (if it still exists) and branch hold right now."""
    path = ctx.task_worktree(t.name, t.path)
    h = Holdings(t, path)
    found = gitops.refs(ctx.root, [f"refs/heads/{t.branch}", backup_ref(t.name)])  # both in one call
    h.branch_tip = found[f"refs/heads/{t.branch}"].commit if f"refs/heads/{t.branch}" in found else None
    h.backup = found[backup_ref(t.name)].commit if backup_ref(t.name) in found else None
    if path is None:
        return h
    dirty, ignored, h.head, h.head_ref = gitops.contents_and_head(path)
    if h.head is None:  # its branch deleted under it: what its HEAD last had (its reflog), as a detached HEAD
        h.head, h.head_ref = gitops.head_last_logged(path), None
    h.worktree_refs = gitops.private_refs(path, "refs/worktree/", "refs/bisect/")  # (a bisect's marks: this worktree's)
    h.op, h.op_commits = gitops.in_progress(path)
    h.op_commits = gitops.existing_commits(ctx.root, h.op_commits)  # ids of commits only, in one call
    h.dirty = sorted(set(dirty))
    copied, ours = copies.entries_of(ctx), lambda ps: gitops.check_ignore(path, ps)
    made = [p for p in ignored if not copies.under(p, copied) and not agentfiles.is_wtp_made(path, p)]
    h.ignored, h.disposable = disposable.split(made, ctx.cfg.rm_disposable, ours)
    # Under setup.copy: what was made or changed there since, judged by the copied path (copied outputs: exempt).
    theirs, outputs = disposable.split([p for p in ignored if copies.under(p, copied)], (), ours)
    h.ignored += copies.made_here(ctx, t, path, theirs)
    # A nested repository is kept even inside a build output (pip -e clones into .venv/src/).
    built = [p for p in (*h.disposable, *outputs) if not disposable.refilled(p)]
    folders = [p for p in (*h.dirty, *h.ignored, *built) if p.endswith("/")]
    if folders:
        h.nested, only_repos = nested.find(path, folders, disposable.CACHE_FOLDERS)
        h.nested = [n for n in h.nested if not copies.as_in_main(ctx, t, n)]  # a copy brought it: its work is there
        # A folder holding nothing but nested repositories is named as them, not as files.
        h.dirty = [p for p in h.dirty if p not in only_repos]
        h.ignored = [p for p in h.ignored if p not in only_repos]
        h.disposable = [p for p in h.disposable if p not in only_repos]
    # Submodules are initialised from .gitmodules; without one, no submodule lives here.
    for sub, _ in gitops.gitlinks(path) if (path / ".gitmodules").exists() else []:
        repo = path / sub
        if not (repo / ".git").exists():
            continue  # not initialised: nothing of it lives here
        head_sha, _ = gitops.head(repo)
        tips = list(
            dict.fromkeys([*([head_sha] if head_sha else []), *gitops.refs_under(repo, "refs/heads/").values()])
        )
        unpushed = gitops.commits_not_in(repo, list(tips), ["--remotes"])
        dirty = gitops.status_paths(repo)
        if unpushed or dirty:
            h.submodules.append(Submodule(sub, repo, tips, unpushed, dirty))
    return h


def losses(ctx: Ctx, h: Holdings, keep: list[str] | None = None) -> list[str]:
    """What deleting the worktree and branch would lose, one phrase each (empty: nothing); ``keep``: more refs or
    commits that stay (a landed commit), not the branches of tasks started on its work (stacking.py)."""
    t = h.task
    drop = [o.branch for o in stacking.above(ctx.store.read(), t)]  # their lands replay their own commits only
    gone = [f"--exclude={ctx.remote() or '*'}/{t.branch}"] * (t.request is not None)  # goes with its request
    keepers = [*(keep or []), *(f"--exclude={b}" for b in (*drop, t.branch)), *STAY[:2], *gone, STAY[2]]
    sources: list[tuple[str, list[Sha]]] = []
    if h.branch_tip:
        sources.append((f"branch '{t.branch}'", [h.branch_tip]))
    if h.head and h.head_ref is None and h.head != h.branch_tip:
        sources.append(("a detached HEAD", [h.head]))
    sources += [("the pre-land tip", [h.backup])] if h.backup and h.backup != h.branch_tip else []
    sources += [(r, [c]) for r, c in sorted(h.worktree_refs.items())]
    sources += [(f"the stopped {h.op}", h.op_commits)] if h.op_commits else []
    lost: set[Sha] = set()
    where = []
    for label, tips in sources:
        if set(tips) <= set(keep or []):
            continue  # the commits that stay themselves (a landed task's branch at its landed commit): no walk
        found = gitops.commits_not_in(ctx.root, tips, keepers, KEEP_GLOBS)
        if found:
            where.append(label)
            lost.update(found)
    out: list[str] = []
    if lost:
        but = f" but {', '.join(drop)}, whose task started on its work and lands only its own" if drop else ""
        out.append(f"{count(len(lost), 'commit')} not on '{t.base}' or any other branch{but} ({', '.join(where)})")
    elif h.op:
        out.append(f"a {h.op} in progress")
    if h.dirty:
        out.append(f"{count(len(h.dirty), 'uncommitted file')} ({few(h.dirty)})")
    if h.ignored:
        what = "that is not a build output" if len(h.ignored) == 1 else "that are not build outputs"
        out.append(f"{count(len(h.ignored), 'ignored file')} {what} ({few(h.ignored)})")
    out += [n.phrase() for n in h.nested]
    for s in h.submodules:
        if s.unpushed:
            out.append(f"{count(len(s.unpushed), 'unpushed commit')} in submodule '{s.path}'")
        if s.dirty:
            out.append(f"{count(len(s.dirty), 'uncommitted file')} in submodule '{s.path}' ({few(s.dirty)})")
    return out


class Archived(NamedTuple):
    ref: str
    commit: Sha
    kept: list[str]  # what it holds, one phrase each
    dropped: list[str]  # what was deleted without being archived (large ignored files)
    nested: list[nested.Kept]  # the nested repositories, kept as objects


def archive(ctx: Ctx, h: Holdings) -> Archived:
    """Keep everything ``h`` holds under refs/wtp/archive/<task>, verify it, and say what."""
    t = h.task
    kept, dropped = losses(ctx, h), list[str]()
    small: list[str] = []
    if h.path is not None and h.ignored:
        small, dropped = sizes.split_by_size(h.path, h.ignored)
    parents = h.tips()
    # Nested repositories first: their objects must be here before their files join the tree.
    kept_nested = nested.archive(ctx.root, t.name, ARCHIVE_SUB, h.nested, ctx.cfg.rm_disposable)
    files = h.path is not None and bool(h.dirty or small or h.submodules or h.op or h.nested)
    if files:
        assert h.path is not None
        grafts = [(k.nested.path, k.tree) for k in kept_nested]
        tree = gitops.snapshot(h.path, small, exclude=[n.path for n in h.nested], grafts=grafts)[1]
    else:
        tree = gitops.tree_of(ctx.root, parents[0]) if parents else gitops.tree_of(ctx.root, f"refs/heads/{t.base}")
    if len(parents) == 1 and not files:
        commit = parents[0]  # one tip and nothing else: the archive is that commit itself
    else:
        message = f"wtp archive of task '{t.name}'\n\n" + "".join(f"- {k}\n" for k in kept)
        message += "".join(f"\nthe nested repository '{k.nested.path}': refs under {k.at}" for k in kept_nested)
        commit = gitops.commit_tree(ctx.root, tree, parents, message)
    subs = []
    for i, s in enumerate(h.submodules):
        tips = list(s.tips)
        if s.dirty:
            tips.append(gitops.snapshot(s.repo)[0])
        # The commit in the name keeps a later archive of the task from overwriting this one's.
        refs = [(c, f"{ARCHIVE_SUB}{t.name}/{i}-{j}-{c[:12]}") for j, c in enumerate(tips)]
        gitops.fetch_commits(ctx.root, str(s.repo), refs)
        subs += refs
    subs += [r for k in kept_nested for r in k.refs]
    ref = archive_ref(t.name)
    old = gitops.ref_value(ctx.root, ref)
    if old is not None:  # an older archive of the same name is kept aside, under its own id
        gitops.update_ref(ctx.root, f"{ARCHIVE_PREV}{t.name}/{old}", old, None, f"older archive of {t.name}")
    if not gitops.update_ref(ctx.root, ref, commit, old, f"archive {t.name}"):
        raise WouldLoseWork(
            f"the archive ref {ref} moved while archiving task '{t.name}': nothing was deleted; run the command again"
        )
    crashpoints.step("guard:archived")
    # Verify with git, never assume: every tip reachable from the archive, the files in its tree.
    missing = gitops.commits_not_in(ctx.root, h.tips(), [ref])
    if missing or gitops.tree_of(ctx.root, ref) != tree or any(gitops.ref_value(ctx.root, r) != c for c, r in subs):
        raise WouldLoseWork(f"the archive {ref} of task '{t.name}' does not hold everything: nothing was deleted")
    return Archived(ref, commit, kept, dropped, kept_nested)


def mend(ctx: Ctx, t: Task) -> str:
    """Mend the task's worktree if its link to the repository is broken (its .git file
    missing, its admin folder gone), before anything reads it: git would otherwise answer
    for the repository of a parent folder, or fail.  Says what it did ("" if nothing)."""
    path = ctx.task_worktree(t.name, t.path)
    problem = gitops.link_problem(path) if path is not None else ""
    if not problem:
        return ""
    assert path is not None
    fix = gitops.link_fix(path)
    # The user's link, a folder, a FIFO, an unreadable file: never written through nor replaced.
    if fix != gitops.DOCTOR_FIX:
        raise WouldLoseWork(f"the worktree of task '{t.name}' is broken ({problem}): nothing was deleted; {fix}")
    try:
        did = gitops.relink(ctx.root, ctx.repo.common_dir, path, t.branch, ctx.worktree_lock)
    except GitError as e:
        raise WouldLoseWork(
            f"the worktree of task '{t.name}' is broken ({problem}) and cannot be mended ({e.message}): "
            f"nothing was deleted; move {path} aside, then run 'wtp doctor --fix'"
        ) from None
    return f"the worktree of task '{t.name}' was broken ({problem}): {did}"


def remove(ctx: Ctx, t: Task, *, force: bool = False, keep: list[str] | None = None) -> list[str]:
    """Delete the task's worktree, branch and backup ref, once everything they hold is proven
    kept elsewhere; forced, archive it first.  WouldLoseWork (nothing deleted) otherwise."""
    mended = mend(ctx, t)
    h = collect(ctx, t)
    messages: list[str] = [mended] if mended else []
    lost = losses(ctx, h, keep)
    if lost and not force:
        end = f"end the {h.op} ({gitops.ending(h.op, h.path)})" if h.op and h.path else ""
        land = end if lost == [f"a {h.op} in progress"] else f"{end} and land it" if end else "land it"
        raise WouldLoseWork(
            f"task '{t.name}' has {'; '.join(lost)}: {land}, or run 'wtp rm {t.name} --force' to archive and remove it",
            lost,
        )
    if lost:
        a = archive(ctx, h)
        messages.append(
            f"archived {'; '.join(a.kept)} of task '{t.name}' under {a.ref} (restore: 'git branch {t.name}-restored {a.ref}')"
        )
        messages += [nested.kept_line(ctx.root, k) for k in a.nested]
        if a.dropped:
            messages.append(
                f"deleted {count(len(a.dropped), 'large ignored file')} without archiving them: {few(a.dropped, 10)}"
            )
    built = [p for p in h.disposable if not disposable.refilled(p)]
    if built:
        messages.append(f"deleted {len(built)} build output(s), made again by a build: {few(built, 10)}")
    crashpoints.step("rm:before-worktree")
    if h.path is not None:
        delete_worktree(ctx, h.path)
    else:
        gitops.worktree(ctx.root, ["prune"], ctx.worktree_lock)
    crashpoints.step("rm:before-branch")
    if h.branch_tip is not None and not gitops.delete_ref(ctx.root, f"refs/heads/{t.branch}", h.branch_tip):
        messages.append(f"kept branch '{t.branch}': it moved while the worktree was removed")
    if h.backup is not None:
        gitops.delete_ref(ctx.root, backup_ref(t.name), h.backup)
    copies.forget(ctx, t)
    return messages


def remove_throwaway(ctx: Ctx, path: Path, made: str) -> str:
    """Remove a worktree wtp made to run a gate in (check --test, the base check), detached
    at ``made``, the commit wtp made or chose for it ("" when unknown).  Everything else in
    it is what the gate wrote, but a commit made there anyway (one that neither ``made`` nor
    any ref holds) is kept under refs/wtp/archive/<folder name> first, and said."""
    if not path.exists():
        gitops.worktree(ctx.root, ["prune"], ctx.worktree_lock, check=False)
        return ""
    said = ""
    head, attached = gitops.head(path) if (path / ".git").exists() else (None, None)
    kept = head is None or not gitops.commits_not_in(ctx.root, [head], [made] if made else [], ("refs/*",))
    if head is not None and (attached or not kept):
        archive = f"{ARCHIVE}{path.name.lstrip('.')}"
        if gitops.update_ref(ctx.root, archive, head, None, "wtp: a commit made in a throw-away worktree"):
            said = f"a commit made in {path} is kept as {archive}"
    delete_worktree(ctx, path)
    return said


def delete_worktree(ctx: Ctx, path: Path) -> None:
    """'git worktree remove', with the files deleted outside the repo-wide worktree lock: only ``remove`` calls this,
    after the proof.  The folder is renamed aside (atomic, same parent), git drops its record of the now missing
    worktree under the lock, and the files are deleted after it, so several clean-ups run side by side; a removal
    killed while deleting leaves ``.wtp-trash-<task>-<pid>``, which doctor deletes.  Never the main checkout."""
    if path.resolve() == ctx.root.resolve():  # (not 'toplevel': that is where the command runs)
        raise WouldLoseWork(f"{path} is the repository's main checkout, not a task's worktree: nothing was removed")
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{os.getpid()}")
    os.rename(path, trash)
    try:
        gitops.worktree(ctx.root, ["remove", "--force", "--force", str(path)], ctx.worktree_lock)
    except BaseException as e:  # git refused: put it back as it was, unless a prune beside us (doctor, an rm) ...
        real = os.path.realpath(path)
        if not isinstance(e, GitError) or any(os.path.realpath(w.path) == real for w in gitops.worktrees(ctx.root)):
            os.rename(trash, path)
            raise  # ... dropped its record first: then it is gone from git, as asked
    delete_tree(trash)


def delete_tree(path: Path) -> None:
    """Delete a folder that is no longer anybody's worktree (a removal's trash), best effort,
    never following symlinks ('rm -rf' in C: faster than shutil.rmtree, README, Performance)."""
    import shutil
    import subprocess

    rm = shutil.which("rm")
    if rm is None or subprocess.run([rm, "-rf", "--", str(path)], stderr=subprocess.DEVNULL).returncode != 0:
        shutil.rmtree(path, ignore_errors=True)


def rewind(ctx: Ctx, t: Task, wt: Path, target: Sha, ours: list[Sha]) -> str:
    """Move the task branch (checked out in ``wt``) back to ``target``, with the user's edits (``_carry``).  Only
    commits wtp made itself may be left behind: ``ours`` (a candidate it built) and copies of commits ``target``
    has (a rebase).  A commit anyone else made there (an agent, while the gate ran) refuses the move, naming it."""
    ref = f"refs/heads/{t.branch}"
    cur = gitops.ref_value(ctx.root, ref)
    if cur is None or cur == target:
        return ""
    up = {o.name: o.branch for o in stacking.above(ctx.store.read(), t)}  # started on its work: they keep none of it
    keepers = [target, *(f"--exclude={b}" for b in (*up.values(), t.branch)), *STAY]
    left = set(gitops.commits_not_in(ctx.root, [cur], keepers, KEEP_GLOBS))
    if ours and left:
        left -= set(gitops.commits_not_in(ctx.root, ours, [target]))
    if left:
        left &= set(gitops.unmatched_commits(ctx.root, target, cur))  # not a rebased copy of the task's own
    if left:  # nor a copy of another task's commit, stacked under this one by a conductor
        for other in (v for k, v in gitops.refs_under(ctx.root, BACKUP).items() if k[len(BACKUP) :] not in up):
            left &= set(gitops.unmatched_commits(ctx.root, other, cur))
            if not left:
                break
    if left:
        pre = keep_pre_land(ctx, t, target)
        subj = gitops.subjects(ctx.root, sorted(left))
        shown = [f"{c[:10]} {subj.get(c, '')}".strip() for c in sorted(left)]
        raise WouldLoseWork(
            f"branch '{t.branch}' gained {count(len(left), 'commit')} wtp did not make while landing ({few(shown)}): "
            f"they are kept on the branch, untested{f' (its pre-land tip: {pre})' if pre else ''}; "
            f"run 'wtp land {t.name}' again to test and land them"
        )
    if gitops.head(wt) == (cur, ref):
        return _carry(ctx, t, wt, cur, target)
    if not gitops.update_ref(ctx.root, ref, target, cur, "restore the pre-land tip"):  # no files go with it
        raise WouldLoseWork(f"branch '{t.branch}' moved while wtp restored it: it is kept where it is")
    return ""


def _carry(ctx: Ctx, t: Task, wt: Path, cur: Sha, target: Sha) -> str:
    """Move the checked-out branch from ``cur`` to ``target`` with the user's edits: saved under
    a ref, re-applied by a 3-way merge (base ``cur``), checked; if they clash, the files go to
    ``target`` and the line returned says how to get the edits back (untracked files stay)."""
    stay = WouldLoseWork(f"the worktree of task '{t.name}' could not go back to {target[:12]}: it is kept as it is")
    try:
        e = edits.save(wt, cur)
    except GitError:  # an unmerged index: a merge the user started
        raise stay from None
    if e.stash is None and gitops.reset_keep(wt, target):
        return ""  # nothing uncommitted: git moves the branch and the files in one step
    kept = f"{EDITS}{t.name}/{e.stash[:12]}" if e.stash else ""
    if e.stash:
        gitops.update_ref(ctx.root, kept, e.stash, None, f"uncommitted edits of {t.name}")
    index, work = edits.rebased(wt, e, target)
    clash = sorted({*index.conflicts, *work.conflicts}) or edits.put(wt, (e.staged, e.files), (index.tree, work.tree))
    if clash:
        index = work = MergeTree(gitops.tree_of(ctx.root, target), [])
        if edits.put(wt, (e.staged, e.files), (index.tree, work.tree)):
            raise stay  # refused, nothing changed: a file in the way (the edits are kept under the ref)
    if not gitops.update_ref(ctx.root, f"refs/heads/{t.branch}", target, cur, "restore the pre-land tip"):
        edits.put(wt, (index.tree, work.tree), (e.staged, e.files))  # the files as they were
        raise stay
    if not edits.holds(wt, index.tree, work.tree):
        clash = clash or ["the files did not come back as expected"]
    if clash and kept:
        return (
            f"the uncommitted edits in {wt} clash with undoing the rebase ({few(clash)}): they are kept under "
            f"{kept}; bring them back with 'git -C {wt} stash apply --index {kept}'"
        )
    if kept:  # the worktree holds them again, checked
        gitops.delete_ref(ctx.root, kept, e.stash or "")
    return ""


def rebranch(ctx: Ctx, t: Task, at: Sha) -> str:
    """Make the task's branch again at ``at``, where it is absent (deleted under its worktree)."""
    if not gitops.update_ref(ctx.root, f"refs/heads/{t.branch}", at, None, "the branch deleted under its worktree"):
        raise WouldLoseWork(f"branch '{t.branch}' was made again meanwhile: nothing was changed")
    return f"made branch '{t.branch}' again at {at[:12]}, the last commit its worktree had"


def keep_pre_land(ctx: Ctx, t: Task, tip: Sha) -> str:
    """Keep a pre-land tip the task branch no longer holds (it stayed on wtp's candidate, which
    a squash or merge makes of none of its commits) under a ref of its own, since the next
    land replaces the backup ref; names that ref ("" when the branch still holds the tip)."""
    cur = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
    if cur is not None and gitops.is_ancestor(ctx.root, tip, cur):
        return ""
    pre, why = f"{PRE_LAND}{t.name}/{tip[:12]}", f"pre-land tip of {t.name}"
    if not gitops.update_ref(ctx.root, pre, tip, None, why) and gitops.ref_value(ctx.root, pre) != tip:
        raise WouldLoseWork(f"could not keep the {why} ({tip[:12]}) under {pre}: a stale .lock? Nothing was changed")
    return pre


def forget_backup(ctx: Ctx, name: str, backup: str | None = None, landed: bool = True) -> None:
    """Drop the pre-land tip of a task that has landed: the land superseded it.  ``backup``:
    what it is known to hold (it is deleted only from that).  ``landed`` False: another land
    of it landed, and the tip goes only when no commit of it is kept by it alone."""
    backup = backup or gitops.ref_value(ctx.root, backup_ref(name))
    if backup is not None and (landed or not gitops.commits_not_in(ctx.root, [backup], STAY, KEEP_GLOBS)):
        gitops.delete_ref(ctx.root, backup_ref(name), backup)
