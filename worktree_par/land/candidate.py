"""Building a candidate: the task's own commits on top of what is below it in the stack
(gating it is gating.py's)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

from .. import crashpoints, gitops, guard
from ..errors import DirtyWorktree, GitError, LandBlocked, LandConflict, Refusal, WouldLoseWork
from ..gitops import Sha, edits
from ..repo import Ctx, few
from ..state import Task
from .entry import Entry


def check_worktree(ctx: Ctx, t: Task, wt: Path) -> Sha:
    """The task branch's tip, once the worktree is fit to land: the task branch checked out,
    nothing in progress, nothing uncommitted."""
    broken = gitops.link_problem(wt)
    if broken:
        raise Refusal(f"the worktree of task '{t.name}' is broken ({broken}): {gitops.link_fix(wt)}, then land again")
    head, attached, dirty_paths = gitops.head_status(wt)  # one git call for both
    op, _ = gitops.in_progress(wt)
    if attached != f"refs/heads/{t.branch}" and op != "bisect":  # (a bisect's advice is below)
        what = (
            f"branch '{attached.removeprefix('refs/heads/')}'" if attached else f"a detached HEAD ({(head or '')[:12]})"
        )
        raise Refusal(
            f"the worktree of task '{t.name}' has {what} checked out, not '{t.branch}': "
            f"'git -C {wt} switch {t.branch}' (after committing what you want to land there), then land again"
        )
    if op:
        raise Refusal(
            f"task '{t.name}' has a {op} in progress in {wt}: end it with {gitops.ending(op, wt)}, then land again"
        )
    dirty = sorted(set(dirty_paths))
    if dirty:
        raise DirtyWorktree(
            f"task '{t.name}' has {len(dirty)} uncommitted file{'s' * (len(dirty) != 1)} ({few(dirty)}): "
            f"commit or stash them, then run 'wtp land {t.name}' again"
        )
    if head is None:
        raise Refusal(f"branch '{t.branch}' of task '{t.name}' has no commit: run 'wtp doctor'")
    if head == t.fork:
        raise Refusal(f"task '{t.name}' has no commits to land: commit your work in {wt} first")
    return head


def still_linked(e: Entry) -> None:
    """The worktree of a task taken into the stack is still linked to the repository (review 54:
    the conductor's own land ended on a crash log).  WouldLoseWork, nothing of it touched, if not."""
    broken = e.unlinked("while its land waited", " or touched")
    if broken is not None:
        raise broken


def keep_tip(ctx: Ctx, t: Task, tip: Sha) -> None:
    """Keep the task's tip under its backup ref before anything can change the branch.  One
    git call when there is no backup ref (a land that finished removed its own): it is
    created only if still absent.  Otherwise an older tip that ``tip`` does not contain is
    kept under a ref of its own first (replacing it must not drop a tip the branch no longer
    holds), then the ref is moved from what it held."""
    backup, why = guard.backup_ref(t.name), f"pre-land tip of {t.name}"
    if gitops.update_ref(ctx.root, backup, tip, None, why):
        return
    old = gitops.ref_value(ctx.root, backup)
    if old and old != tip and not gitops.is_ancestor(ctx.root, old, tip):
        guard.keep_pre_land(ctx, t, old)
    if old == tip or gitops.update_ref(ctx.root, backup, tip, old, why):
        return
    raise Refusal(
        f"could not keep the pre-land tip of '{t.name}' under {backup}: git could not write that ref (another "
        f"git writing it, or a '{backup}.lock' left by one that crashed); nothing was changed: run 'wtp land "
        f"{t.name}' again, or remove that .lock file under .git once no git runs"
    )


class Look(NamedTuple):
    """What a build of an entry starts from, read in one git call (``look``)."""

    branch: Sha | None  # the task branch now
    kept: Sha | None  # the backup ref now (the pre-land tip it keeps)
    on_base: bool  # the pre-land tip is already in the history of the base asked about
    from_fork: bool  # the task's recorded fork is in the history of its pre-land tip


def look(ctx: Ctx, e: Entry, base: Sha | None) -> Look:
    """The task branch and backup ref of ``e`` and, when ``base`` is given, whether its
    pre-land tip is on it: one ``for-each-ref`` that lists both refs only when they contain
    the task's recorded fork and are not reachable from ``base``.  When the backup ref is
    listed holding the tip, that answers both questions; otherwise (rare: a task already
    landed, a fork rewritten away) each is asked of git as before."""
    t = e.task
    branch, backup = f"refs/heads/{t.branch}", guard.backup_ref(t.name)
    found = gitops.refs_past(ctx.root, [branch, backup], t.fork, base)
    if found is not None and branch in found and found.get(backup, _NONE).commit == e.tip:
        return Look(found[branch].commit, e.tip, False, bool(t.fork))
    found = gitops.refs(ctx.root, [branch, backup])
    on_base = base is not None and gitops.is_ancestor(ctx.root, e.tip, base)
    return Look(found.get(branch, _NONE).commit, found.get(backup, _NONE).commit, on_base, False)


_NONE = gitops.RefInfo(None, "")


def fork(ctx: Ctx, t: Task, tip: Sha, before: Sha | None, from_fork: bool = False) -> Sha:
    """Where the task's own commits begin: the newest of the commit it was started from and
    its merge-base with the base as known before this land.  A base force-pushed since does
    not move it back, so commits dropped from the base are never replayed.  ``from_fork``:
    the recorded fork is known to be in the tip's history (``look``); when the base has not
    moved from it either, it is that merge-base, and git is not asked."""
    if from_fork and t.fork and before in (None, t.fork):
        return Sha(t.fork)
    mb = gitops.merge_base(ctx.root, tip, before) if before else None  # an ancestor of tip by definition
    options = [c for c in (t.fork, mb) if c and (c == mb or _in_history(ctx, c, tip))]
    options = list(dict.fromkeys(options))
    best = options[0] if options else gitops.merge_base(ctx.root, tip, f"refs/heads/{t.base}") or tip
    for c in options[1:]:
        if gitops.is_ancestor(ctx.root, best, c):
            best = c
    return Sha(best)


def _in_history(ctx: Ctx, c: str, tip: Sha) -> bool:
    """``c`` is in the tip's history; False for a commit git no longer has (a recorded fork
    collected after the base was rewritten and the task rebased onto it)."""
    try:
        return gitops.is_ancestor(ctx.root, c, tip)
    except GitError:
        return False


def _no_ignored_overwritten(ctx: Ctx, e: Entry, target: Sha) -> None:
    """A file the task's worktree holds ignored (its own '.env' or data, an edit of what
    setup.copy brought) where ``target`` (what the worktree moves to) has a file, or a folder:
    git overwrites ignored files, and the user's would be lost.  LandBlocked, nothing moved
    (review 43; review 45: a folder the base came to track where the file was)."""
    # What the move writes that the task's tip does not track: paths 'target' has and the tip lacks.
    diffs = gitops.diff_names(ctx.root, e.tip, target)
    added = [p for s, p in diffs if s == "A"]
    there = [p for p in added if _a_file(e.wt / p)]
    hit = sorted(set(there) - gitops.same_as_tracked(e.wt, target, there)) if there else []  # (the same: no loss)
    gone = {p for s, p in diffs if s == "D"}  # a file the tip tracks where a folder comes: a conflict, git's to say
    hit += sorted({a for p in added for a in _parents(p) if a not in gone and _a_file(e.wt / a)})
    if hit:
        raise LandBlocked(
            f"landing task '{e.name}' would write what '{e.task.base}' has at {few(hit)} over the ignored "
            f"file{'s' * (len(hit) != 1)} its worktree holds there (git overwrites ignored files): move "
            f"{'it' if len(hit) == 1 else 'them'} away, or commit {'it' if len(hit) == 1 else 'them'} to the task, "
            f"then run 'wtp land {e.name}' again"
        )


def _a_file(path: Path) -> bool:
    """A file (or a symlink) is there; a folder (the task's own, where the base has a file) is a conflict, not a loss."""
    return os.path.lexists(path) and (os.path.islink(path) or not path.is_dir())


def _parents(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: k + 1]) for k in range(len(parts))]


class Started(NamedTuple):
    """A candidate whose build ``begin`` started: git replaying the task's commits (``replay``),
    or, for a merge, the merge commit already made (``made``)."""

    entry: Entry
    onto: Sha
    fork: Sha
    replay: gitops.Replay | None
    made: Sha | None = None


def begin(ctx: Ctx, e: Entry, onto: Sha, fork: Sha, kept: Sha | None) -> Started:
    """Start building the candidate on ``onto`` from the task's commits after ``fork`` (the
    task branch and its clean worktree move to it): the checks, and git started on the
    replay; ``finish`` waits for it.  ``kept``: the backup ref's value (``look``).  In between
    the caller may do other work (the conductor starts the gate below this one), but nothing
    that looks at this task's worktree or branch."""
    t, wt, tip = e.task, e.wt, e.tip
    _backed_up(ctx, t, tip, kept)
    attached = gitops.head_names(wt)  # checked when the lander joined; the user may have switched since
    if attached != f"refs/heads/{t.branch}":
        what = f"'{attached.removeprefix('refs/heads/')}'" if attached else "a detached HEAD"
        raise LandBlocked(
            f"the worktree of task '{t.name}' switched to {what} while its land waited (nothing was rebased): "
            f"'git -C {wt} switch {t.branch}', then run 'wtp land {t.name}' again"
        )
    if e.strategy != "merge":
        if onto != fork:
            _no_ignored_overwritten(ctx, e, onto)  # the rebase writes 'onto' first, then the task's commits
        return Started(e, onto, fork, gitops.Replay(wt, onto, fork))
    dropped = gitops.commits_not_in(ctx.root, [fork], [onto])
    if dropped:
        raise LandBlocked(
            f"'{t.base}' does not have {len(dropped)} commit(s) that task '{t.name}' was started on (the base was "
            f"rewritten, or the task it was started on landed squashed or rebased): a merge would bring them "
            f"back; land with '--strategy rebase' or 'squash'"
        )
    merged = gitops.merge_tree(ctx.root, onto, tip)
    if merged.conflicts:
        raise LandConflict(_conflict_msg(t, merged.conflicts), merged.conflicts)
    cand = gitops.commit_tree(ctx.root, merged.tree, [onto, tip], f"Merge task '{t.name}' ({t.branch})")
    e.knows_tree(cand, Sha(merged.tree))
    _no_ignored_overwritten(ctx, e, cand)
    return Started(e, onto, fork, None, cand)


def finish(ctx: Ctx, started: Started) -> Sha:
    """The candidate ``begin`` started, once git has replayed the commits (a conflict or a
    failure raised, the rebase aborted)."""
    e, onto, fork = started.entry, started.onto, started.fork
    t, wt, tip = e.task, e.wt, e.tip
    cand, at = started.made, tip
    if started.replay is not None:
        reb = started.replay.end()
        for wait in LOCK_WAITS:  # another git in the worktree ('git status', 'wtp list') held its index
            if reb.ok or reb.conflicts or reb.no_space or not _index_busy(reb.error):
                break
            time.sleep(wait)
            reb = gitops.rebase_onto(wt, onto, fork)  # the failed one was aborted: as before it
        if not reb.ok:
            if reb.conflicts:
                raise LandConflict(_conflict_msg(t, reb.conflicts), reb.conflicts)
            if reb.no_space:
                raise LandBlocked(_no_space(t, wt, tip, onto))
            raise LandBlocked(f"rebase of '{t.name}' onto '{t.base}' failed: {reb.error}")
        # (its tree is asked as its gate starts, beside the next build)
        rebased = gitops.replayed_to(wt, ctx.repo.common_dir)
        if rebased != tip:  # git replays only when 'onto' is not the fork; otherwise it left the branch as it found it
            found = gitops.replayed_from(wt) if onto != fork else rebased
            if found is not None and found != tip:
                _kept_back(ctx, e, found, rebased)
        if e.strategy == "rebase":
            return rebased
        tree = gitops.tree_of(ctx.root, rebased)
        msgs, author = gitops.log_messages(ctx.root, fork, tip)
        msg = squash_message(t.name, msgs)
        cand, at = gitops.commit_tree(ctx.root, tree, [onto], msg, env=author), rebased
        e.knows_tree(cand, tree)
    assert cand is not None
    # Recorded before the branch moves to it: a land killed in between leaves a branch on a
    # commit recovery knows to be wtp's own (a squash or merge commit is no copy of the
    # task's commits), so it can be rewound instead of refused.
    ctx.store.update(t, candidate=cand)
    _advance(ctx, t, wt, tip, cand, at)
    crashpoints.step("land:after-candidate")
    return cand


def _kept_back(ctx: Ctx, e: Entry, found: Sha, rebased: Sha) -> None:
    """git found the branch on a commit the land did not take (``found``: one made there after
    the land looked at it, as the rebase began): the branch goes back to it, and the task is
    blocked with it (WouldLoseWork).  Replayed with the task's own, it was taken for wtp's
    copy when a red gate gave the task back, and lost (review 50)."""
    t, wt = e.task, e.wt
    if found != rebased:
        guard.rewind(ctx, t, wt, found, [rebased])  # where git found it: only wtp's copies dropped
    guard.rewind(ctx, t, wt, e.tip, [])  # names what the branch gained, and keeps it there
    raise LandBlocked(  # (it gained only copies of the task's own commits: given back to its pre-land tip)
        f"branch '{t.branch}' moved while wtp built the candidate of '{t.name}': nothing was published; "
        f"run 'wtp land {t.name}' again"
    )


def _backed_up(ctx: Ctx, t: Task, tip: Sha, kept: Sha | None) -> None:
    """Before a land rewrites the task branch into a candidate: its tip must be kept by the backup ref
    (refs/wtp/backup/<task>), or nothing is rewritten.  ``kept``: that ref's value, read with the branch."""
    if kept != tip and (kept is None or not gitops.is_ancestor(ctx.root, tip, kept)):
        raise WouldLoseWork(
            f"the pre-land tip of '{t.name}' is not kept under {guard.backup_ref(t.name)}: nothing was changed"
        )


def _advance(ctx: Ctx, t: Task, wt: Path, tip: Sha, to: Sha, at: Sha | None = None) -> None:
    """Move the task branch (checked out, clean) from ``at`` (default: ``tip``, proved kept by ``_backed_up``) to a
    candidate built from ``tip``.  A commit made there meanwhile stays: WouldLoseWork, nothing moved (review 50)."""
    ref = f"refs/heads/{t.branch}"
    moved = WouldLoseWork(
        f"branch '{t.branch}' moved while wtp built the candidate of '{t.name}' (a commit made in {wt}?): nothing was "
        f"published and the new commit is kept on the branch, untested; run 'wtp land {t.name}' again to land it"
    )
    if gitops.ref_value(ctx.root, ref) != (at or tip):
        raise moved
    crashpoints.step("land:before-advance")
    if not gitops.reset_keep(wt, to):
        raise WouldLoseWork(f"could not move the worktree of '{t.name}' to its candidate: nothing was changed")
    # A commit made as the reset began: the reset moved the branch from it (its reflog says), so
    # the branch goes back on it, with its files.  (A squash of one commit can be that commit.)
    if to != (at or tip) and (was := gitops.moved_from(ctx.repo.common_dir, ref, to)) not in (None, at or tip):
        guard.rewind(ctx, t, wt, was, [to])  # back through the guard: only wtp's candidate is left behind
        raise moved


LOCK_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)  # seconds between tries of a rebase that found the index locked


def _index_busy(error: str) -> bool:
    """git's 'Unable to create .../index.lock: File exists ... remove the file manually', or
    the checkout of the base that it stopped ('could not detach HEAD'; untracked files in
    the way stop it too: they are then refused after the last try, as before)."""
    return any(s in error for s in ("index.lock", "remove the file manually", "could not detach HEAD"))


def _no_space(t: Task, wt: Path, tip: Sha, onto: Sha) -> str:
    """The disk filled up while the rebase wrote the worktree: its files go back to the task's
    tip (never leaving the task's own files deleted, which 'git status' would offer to commit),
    or the one command that puts them back is named."""
    again = f"free space, then run 'wtp land {t.name}' again"
    if edits.put_back(wt, tip, onto):  # only the rebase's own writes are undone (it starts on a clean worktree)
        return f"the disk holding {wt} is full: the rebase of '{t.name}' stopped and its worktree is back as it was; {again}"
    if gitops.in_progress(wt)[0]:
        undo = f"git -C {wt} rebase --abort"
    else:
        undo = f"git -C {wt} read-tree {onto} && git -C {wt} reset --hard {tip}"
    return (
        f"the disk holding {wt} is full: the rebase of '{t.name}' stopped half-way and its files are not all back "
        f"(nothing is lost: its commits are on branch '{t.branch}'); free space, run '{undo}', then 'wtp land {t.name}'"
    )


def squash_message(task: str, msgs: str) -> str:
    """A squash commit's message, made from the task's commits (``msgs``: their messages,
    oldest first): the first one's subject as the title, every message below it; one
    commit's message stays as it is."""
    whole = msgs.strip()
    first = next((line.strip() for line in whole.splitlines() if line.strip()), task)
    if "\n" not in whole:
        return whole or task
    return f"{first}\n\nSquashed from task '{task}':\n\n{whole}\n"


def _conflict_msg(t: Task, paths: list[str]) -> str:
    return (
        f"task '{t.name}' conflicts with '{t.base}' in {len(paths)} path{'s' * (len(paths) != 1)} ({few(paths, 5)}): "
        f"it is blocked with its commits intact; rebase it onto '{t.base}' and resolve them in {t.path}, then run 'wtp land {t.name}' again"
    )
