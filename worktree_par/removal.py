"""Removing tasks: ``wtp rm`` and the clean-up after a land.  What may be deleted is the
guard's to decide (guard.py); this module says what the user asked and what happened."""

from __future__ import annotations

from pathlib import Path

from . import claims, crashpoints, guard, tasks
from .errors import Refusal, Say, WouldLoseWork, quiet
from .locks import Holder
from .repo import Ctx, few
from .state import ABANDONED, FINAL, LANDED, LANDING, LANDING_PHASE, PUBLISHING, QUEUED, REMOVING, Task, interrupted


def _processes(path: Path | None) -> list[str]:
    if path is None or not path.is_dir():
        return []
    from .procs import processes_in

    return [f"{p.name}[{p.pid}]" for p in processes_in([path])[path]]


def rm(ctx: Ctx, name: str, *, force: bool = False, say: Say = quiet) -> list[str]:
    """Remove a task's worktree and branch.  Refuses to lose anything the worktree holds, or
    a worktree in use, unless forced; forced, it archives first and says what."""
    t = ctx.store.read().task(name)
    crashpoints.step("rm:read")
    if t.state == QUEUED or (t.state in FINAL and not t.path):
        if t.state == LANDED:
            return [f"task '{name}' is landed and has no worktree left: nothing to remove"]
        if t.state == ABANDONED:
            return [f"task '{name}' is already removed"]
        crashpoints.step("rm:before-queued")
        with ctx.store.transaction() as st:  # still queued: a freed slot may be starting it right now
            cur = st.tasks.get(name)
            still = cur is not None and cur.seq == t.seq and cur.state == QUEUED and not cur.phase
            if still and cur is not None:
                cur.state, cur.note = ABANDONED, ""
        if not still and cur is not None and cur.seq == t.seq and cur.state == ABANDONED:
            return [f"task '{name}' was removed meanwhile, by another command"]
        if not still:
            raise Refusal(f"task '{name}' was started meanwhile (see 'wtp list'): run 'wtp rm {name}' again")
        return [f"removed queued task '{name}'"]
    if t.state == LANDING and t.phase == LANDING_PHASE and not interrupted(t):
        if t.intent == PUBLISHING:  # past the point of no return: --force cannot withdraw it either
            raise Refusal(_publishing(ctx, t))
        if not force and (lost := guard.losses(ctx, guard.collect(ctx, t))):  # refused before the land is touched
            raise WouldLoseWork(
                f"task '{name}' is being landed and has {'; '.join(lost)}: let its land finish, or run "
                f"'wtp rm {name} --force' to withdraw it from the land, archive and remove it",
                lost,
            )
        t = _withdraw_from_land(ctx, t, say)
    path = Path(t.path) if t.path else None
    with ctx.store.phase(t, REMOVING) as held:  # a second 'wtp rm' of the task is told it is busy
        if held.state in FINAL and not held.path and t.path:  # one that ran meanwhile removed it
            return [f"task '{name}' was removed meanwhile, by another command"]
        procs = _processes(path)
        if procs and not force:
            raise Refusal(
                f"task '{name}' has {len(procs)} process{'es' * (len(procs) != 1)} running inside ({few(procs)}): "
                f"stop them, or run 'wtp rm {name} --force'"
            )
        crashpoints.step("rm:before-archive")
        messages = guard.remove(ctx, held, force=force)
        forget_path(ctx, held)
    messages.insert(0, _removed(t, messages))
    if t.request is not None:  # its open request closed: no one merges it later
        from .land import forge_lane

        messages += forge_lane.abandoned(ctx, t)
    if procs:
        messages.append(f"left {len(procs)} process(es) running in the removed directory: {few(procs)}")
    tasks.promote_quietly(ctx, say)
    return messages


WITHDRAW_WAIT = 60.0  # seconds 'wtp rm' waits for a conductor to give a withdrawn task back


def _withdraw_from_land(ctx: Ctx, t: Task, say: Say) -> Task:
    """A conductor holds the task's land: withdraw it (nothing of it is published from now
    on) and wait for the conductor to give it back; the task as it is then."""
    from .land.withdraw import given_back, withdraw

    said = withdraw(ctx, t)
    if said == "publishing":
        raise Refusal(_publishing(ctx, t))
    if said:
        say(said)
    if not given_back(ctx, t, WITHDRAW_WAIT):
        raise Refusal(
            f"task '{t.name}' is withdrawn from the land, and its conductor has not given it back yet "
            f"(it does when its current step ends): run 'wtp rm {t.name}' again"
        )
    return ctx.store.read().task(t.name)


def _publishing(ctx: Ctx, t: Task) -> str:
    """Why a task being published cannot be removed now, and what to do.  A request waiting
    in the forge's merge queue may merge at any moment, and only its land can take it out."""
    cur = ctx.store.read().tasks.get(t.name) or t
    try:
        h = Holder.from_json(cur.holder)
    except ValueError:
        h = None
    if h is not None and h.stopped():  # Ctrl-Z mid-publication: nothing moves until it is resumed
        return (
            f"task '{t.name}' is being published by pid {h.pid}, which is stopped: resume it ('fg' in its shell, "
            f"or 'kill -CONT {h.pid}') and it finishes; 'wtp list' then says whether it landed"
        )
    if cur.request is not None and cur.state == LANDING and ctx.cfg.forge_merge == "queue":
        stop = f" (pid {h.pid}) with Ctrl-C or 'kill {h.pid}'" if h is not None and h.local() else " with Ctrl-C"
        return (
            f"task '{t.name}' waits in the forge's merge queue (request #{cur.request}), which may merge it at any "
            f"moment: stop its 'wtp land'{stop}, which takes the request out of the queue, then run "
            f"'wtp rm {t.name}' again"
        )
    return f"task '{t.name}' is being published right now: see 'wtp list' in a moment (it is then landed)"


def forget_path(ctx: Ctx, t: Task) -> None:
    """The task no longer has a worktree: landed stays landed, anything else is abandoned
    (and the paths the agent hook recorded for it go)."""
    claims.forget(ctx, t)
    if ctx.cfg.share:
        from .remote import sharing

        sharing.withdraw(ctx, t.name)
    ctx.store.update(
        t, state=LANDED if t.state == LANDED else ABANDONED, path=None, port=None, phase="", holder=None, note=""
    )


def remove_landed(ctx: Ctx, t: Task, *, keep: bool, say: Say = quiet) -> list[str]:
    """Clean up after a land: remove the worktree and branch unless asked to keep them,
    processes still run inside, or the guard finds something there that is kept nowhere
    else (a gate's output, a commit made meanwhile); then the task is landed-and-kept."""
    path = Path(t.path) if t.path else None
    if keep:
        return [f"kept the worktree {t.path} (--keep); 'wtp rm {t.name}' removes it"]
    procs = _processes(path)
    if procs:
        return [
            f"kept the worktree {t.path}: processes still run inside ({few(procs)}); 'wtp rm {t.name}' when they are done"
        ]
    try:
        with ctx.store.phase(t, REMOVING) as held:
            said = guard.remove(ctx, held, keep=_landed_as(ctx, t))
            forget_path(ctx, held)
    except WouldLoseWork as e:
        if not e.lost:  # not what it holds, but the worktree itself (a broken link the user must mend): as said
            return [f"kept the worktree {t.path}: {e.message}"]
        # Build outputs alone never keep a worktree (disposable.py): what is named here is not one.
        return [
            f"kept the worktree {t.path}: it has {'; '.join(e.lost)}, kept nowhere else; "
            f"save what you need from it and run 'wtp rm {t.name}', "
            f"or run 'wtp rm {t.name} --force' to archive it under {guard.archive_ref(t.name)} and remove the worktree"
        ]
    messages = [_removed(t, said), *(m for m in said if m.startswith("kept branch"))]
    tasks.promote_quietly(ctx, say)
    return messages


def _removed(t: Task, said: list[str]) -> str:
    """The first line of a removal: the branch is said removed only when it was (the guard
    keeps one that moved meanwhile, and says so in ``said``)."""
    if any(m.startswith(f"kept branch '{t.branch}'") for m in said):
        return f"removed task '{t.name}' (its worktree; its branch is kept, below)"
    return f"removed task '{t.name}' (worktree and branch '{t.branch}')"


def _landed_as(ctx: Ctx, t: Task) -> list[str] | None:
    """What counts as kept for a landed task: its landed commit, and, when a forge merged it
    (its commits rewritten by the forge's rebase or squash), the task branch's tip too once
    the recorded merge commit holds exactly its tree: its changes reached the base."""
    if not t.commit:
        return None
    keep = [t.commit]
    if t.request is not None:
        from . import gitops

        tip = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
        if (
            tip
            and gitops.rev_parse(ctx.root, t.commit)
            and gitops.tree_of(ctx.root, tip) == gitops.tree_of(ctx.root, t.commit)
        ):
            keep.append(tip)
    return keep
