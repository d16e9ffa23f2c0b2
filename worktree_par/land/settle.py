"""An entry's outcome, written to the state: landed (the base has its candidate) or blocked
(given back to its pre-land tip, with the reason its lander shows)."""

from __future__ import annotations

from .. import gitops, guard
from ..errors import LandBlocked, WouldLoseWork
from ..gitops import Sha
from ..repo import Ctx
from ..state import ACTIVE, BLOCKED, LANDED
from .entry import UNKNOWN, Entry, GateBroken, Withdrawn


def give_back(ctx: Ctx, e: Entry, branch: Sha | None = None) -> str:
    """Put the task branch back to its pre-land tip with the user's edits, leaving no commit
    behind but wtp's own (WouldLoseWork when someone committed there meanwhile: then it
    stays); says where edits that could not go along are kept ("" when they all did).
    ``branch``: the branch's value as the caller just read it, when it did."""
    if gitops.rebase_in_progress(e.wt):
        gitops.rebase_abort(e.wt)
    if branch is not None and branch == e.tip:
        return ""  # already there: what rewind would find by reading it again
    return guard.rewind(ctx, e.task, e.wt, e.tip, [e.cand] if e.cand else [])


def landed(ctx: Ctx, e: Entry, commit: Sha) -> None:
    e.outcome, e.commit = LANDED, commit
    if e.races:
        e.messages.append(f"landed after {e.attempts} attempts: '{e.task.base}' moved {e.races} time(s) meanwhile")
    note = "; ".join(e.messages)
    ctx.store.update(
        e.task,
        state=LANDED,
        commit=commit,
        phase="",
        holder=None,
        paths=[],
        note=note,
        candidate=None,
        ticket=e.ticket,
        attempts=e.attempts,
        intent="",
    )
    guard.forget_backup(ctx, e.name, e.tip)


def blocked(ctx: Ctx, e: Entry, err: LandBlocked | WouldLoseWork) -> None:
    """The task is given back to its pre-land tip and blocked with ``err`` (or, withdrawn by
    its lander, simply active again).  Its gate, if it still runs, is stopped first: the task's
    worktree is the user's again ('wtp rm' may be waiting to delete it)."""
    if e.run is not None and e.run.code is None:
        e.halt()
    kept = ""
    if not isinstance(err, WouldLoseWork):
        try:
            kept = give_back(ctx, e)
        except WouldLoseWork as w:
            kept = w.message
    elif (pre := guard.keep_pre_land(ctx, e.task, e.tip)) and pre not in str(err):  # the branch stays on the candidate
        kept = f"its pre-land tip is kept under {pre}"  # (said once: the refusal may name it already)
    e.outcome, e.error = BLOCKED, err
    paths = err.paths if isinstance(err, LandBlocked) else []
    note = f"{err}; {kept}" if kept else str(err)
    state = ACTIVE if isinstance(err, (Withdrawn, GateBroken)) else BLOCKED  # not the task's fault: landable
    ctx.store.update(
        e.task, state=state, phase="", holder=None, paths=paths, note=note, candidate=None, ticket=e.ticket, intent=""
    )


def unknown(ctx: Ctx, entries: list[Entry], note: str) -> None:
    """Whether the base took ``entries`` cannot be asked now: they stay mid-publication, held
    by nobody, so the next command on each ('wtp land', 'wtp doctor --fix') asks the remote
    and finishes the land or gives the task back, as after a killed conductor.  Never given
    back here: a land the base took is never rolled back."""
    for e in entries:
        e.outcome = UNKNOWN
        ctx.store.update(e.task, holder=None, note=note)
