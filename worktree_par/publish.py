"""Publishing a tested candidate: compare-and-swap onto the base (a push that fails unless
the remote still holds what was tested, or update-ref locally), and bringing the local
base, and the worktree that has it checked out, along without touching uncommitted work."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from . import crashpoints, gitops
from .errors import LandBlocked, Say
from .gitops import Sha
from .locks import Lock
from .repo import Ctx, few
from .state import Task


def publish(ctx: Ctx, t: Task, cand: Sha, base_tip: Sha, remote: str | None, say: Say) -> bool:
    """Compare-and-swap the base from base_tip to cand; False when the base moved."""
    if remote:
        dest = f"refs/heads/{t.base}"
        pushed = gitops.push_cas(ctx.root, remote, dest, cand, base_tip)
        if pushed.lost_race:
            return False
        if not pushed.updated:
            said = "; ".join(pushed.messages[-3:])
            raise LandBlocked(
                f"{remote} refused '{t.base}' ({pushed.reason or pushed.summary}){': ' + said if said else ''}; "
                f"nothing was published: fix that on the remote's side, then run 'wtp land {t.name}' again"
            )
        # Just fetched: the tracking ref holds what we pushed against (CAS from it).
        gitops.update_ref(ctx.root, f"refs/remotes/{remote}/{t.base}", cand, base_tip, "landed")
        return True
    msgs = sync_base(ctx, t.base, base_tip, cand)
    if msgs is None:
        return False
    for m in msgs:
        say(m)
    return True


def follow_remote(ctx: Ctx, base: str, remote: str) -> list[str]:
    """After a land to the remote, fast-forward the local ``base`` (and the worktree that has
    it checked out) to the remote-tracking one, as 'git pull --ff-only' would."""
    local_ref, tracking_ref = f"refs/heads/{base}", f"refs/remotes/{remote}/{base}"
    with Lock(ctx.store.ensure_dir() / "follow.lock", what="the base-follow lock"):
        found = gitops.refs(ctx.root, [local_ref, tracking_ref])
        local, tracking = (found[r].commit if r in found else None for r in (local_ref, tracking_ref))
        if local is None or tracking is None or local == tracking:
            return []
        if not gitops.is_ancestor(ctx.root, local, tracking):
            if gitops.is_ancestor(ctx.root, tracking, local):
                return []
            return [f"local '{base}' has commits that are not on {remote}/{base}: left as it is"]
        return sync_base(ctx, base, local, tracking) or []


def sync_base(ctx: Ctx, base: str, old: str, new: str) -> list[str] | None:
    """Move local ``base`` from old to new (CAS), keeping a worktree that has it checked out
    in step without touching its uncommitted changes.  None when ``base`` was not at old."""
    ref = f"refs/heads/{base}"
    checked = [w for w in ctx.worktrees() if w.branch == ref]
    if not checked:
        return [] if gitops.update_ref(ctx.root, ref, new, old, f"land onto {base}") else None
    w = checked[0].path
    # Detach that worktree at the old commit first: while its files are brought along, a
    # commit made there cannot land on the moved branch with the old files.  Interrupted
    # before the files are touched, it is attached again at once; interrupted while they
    # are brought along, doctor finds it detached and finishes the job.
    gitops.update_ref(w, "HEAD", old, old, DETACH_WHY, no_deref=True)
    moved = False
    try:
        if not gitops.update_ref(ctx.root, ref, new, old, f"land onto {base}"):
            return None
        moved = True
        crashpoints.step("land:base-detached")
        ok, touched = gitops.read_tree_2way(w, old, new)
        if ok:
            gitops.attach_head(w, ref, f"follow {base}")
            return []
        return [
            f"'{base}' moved, but {w} has uncommitted changes to files the landing changed ({few(touched)}); "
            f"it was left detached at the previous commit so nothing looks reverted: run "
            f"'git -C {w} stash && git -C {w} switch {base} && git -C {w} stash pop'"
        ]
    finally:
        if not moved:
            gitops.attach_head(w, ref, f"back on {base}")  # nothing moved: as it was
        elif sys.exc_info()[0] is not None:
            _finish_follow(w, ref, base, old, new)


def _finish_follow(w: Path, ref: str, base: str, old: str, new: str) -> None:
    """Interrupted (Ctrl-C) after the branch moved: bring the files along before leaving,
    so the worktree is not left detached; where that cannot be done, doctor says so."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if gitops.read_tree_2way(w, old, new)[0]:
            gitops.attach_head(w, ref, f"follow {base}")
    finally:
        signal.signal(signal.SIGINT, previous)


DETACH_WHY = "keep the worktree as it was"  # doctor looks for this in the reflog
