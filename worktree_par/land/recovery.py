"""Finishing or rolling back a land whose conductor died or was interrupted.  Whether a
candidate was published is decided by asking the remote (a fetch), never from a
remote-tracking ref left from before."""

from __future__ import annotations

import time
from pathlib import Path

from .. import gitops, guard, interrupts, locks, procs
from ..errors import Say, UsageError, WaitTimeout, WouldLoseWork, count
from ..gates import Gate
from ..gitops import Sha
from ..locks import me
from ..repo import Ctx
from ..state import ACTIVE, BLOCKED, LANDED, LANDING, LANDING_PHASE, PUBLISHING, WITHDRAWN, Task
from . import forge_lane, settle
from .entry import Entry
from .request import QUEUE
from .withdraw import WAITING_NOTE

MOVED = "refs/wtp/archive-moved/"  # under archive*: a kept ref (guard.KEEP_GLOBS)
AS_IT_IS = "is given back as it is"  # commits made on its candidate could not move: its land stops there


GIT_WAIT = 30.0  # seconds recovery waits for a git rebase a dead land left running


def _rebase_left_running(wt: Path, name: str, until: float | None) -> None:
    """A land killed while git rebased its task left that git running (the kill does not reach
    it): recovery waits for it to end, or it would restore the worktree while git writes it, and
    git would move the branch after (review 50).  Given up (exit 3, nothing changed) after
    GIT_WAIT seconds, or at ``until`` (monotonic) if that comes first."""
    deadline, told = min(time.monotonic() + GIT_WAIT, until or float("inf")), False
    while running := [p.pid for p in procs.processes_in([wt])[wt] if procs.command_of(p.pid)[1:2] == ["rebase"]]:
        if not told:
            locks.notify(f"waiting for a 'git rebase' (pid {running[0]}) that a land that died left running in {wt}")
            told = True
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"a 'git rebase' (pid {running[0]}) still runs in the worktree of '{name}', left by a land that "
                f"died: wait for it to end, then run 'wtp doctor --fix'"
            )
        time.sleep(0.05)


def published(ctx: Ctx, base: str, candidate: str, remote: str | None) -> bool:
    """Whether ``candidate`` is on ``base``, as the remote says now (a fetch), or the local
    base when landing without a remote.  A remote that cannot be asked raises."""
    ref = f"refs/heads/{base}"
    if remote:
        ref = f"refs/remotes/{remote}/{base}"
        gitops.fetch_branch(ctx.root, remote, base, ref)
    tip = gitops.ref_value(ctx.root, ref)
    return (
        tip is not None
        and gitops.rev_parse(ctx.root, candidate) is not None
        and gitops.is_ancestor(ctx.root, candidate, tip)
    )


def landed_commit(ctx: Ctx, t: Task) -> str | None:
    """The commit the base took for ``t``'s interrupted land, asked of the remote (its
    candidate, if on the base) or, through a forge, of its recorded request (the merge
    commit, once merged with its candidate); None when it did not land.  A remote or forge that cannot be
    asked raises."""
    if t.request is not None and forge_lane.enabled(ctx):
        state, sha = forge_lane.landed_commit(ctx, t)
        return sha if state == "merged" else None
    if t.candidate and published(ctx, t.base, t.candidate, ctx.remote()):
        return t.candidate
    return None


def recover(ctx: Ctx, t: Task, say: Say, retake: int | None = None, until: float | None = None) -> str:
    """Finish or roll back a land whose process died.  Returns what was done.  ``retake``: a
    conductor's queue ticket for the task; a rolled-back task is then landing again under
    it in the same state write, so its own waiting lander never sees it idle in between.
    ``until``: when to give up waiting for a git the dead land left running (the command's
    --timeout when not given).  A worktree whose link to the repository broke meanwhile is
    mended first (git cannot read it until then), or the recovery refuses, nothing changed."""
    Gate(ctx.store, QUEUE).tickets()  # drops the dead lander's ticket
    wt = Path(t.path) if t.path else None
    if wt and wt.is_dir():  # (first: the mend below must not refuse while that land's git still runs)
        _rebase_left_running(wt, t.name, until if until is not None else locks.deadline())
    landed: str | None = None
    try:
        mended = _mend(ctx, t, wt)
    except WouldLoseWork:
        if (landed := landed_commit(ctx, t)) is None:
            raise
        mended, wt = "", None  # it had published: landed, whatever its worktree (its removal says what it holds)
    done = _recover(ctx, t, wt, retake, landed)
    return f"{mended}; {done}" if mended else done


def _mend(ctx: Ctx, t: Task, wt: Path | None) -> str:
    """The task's worktree link mended (guard.mend), unless its record names a folder of the main
    worktree: a damaged record, which doctor sets aside once the land is settled (review 54)."""
    if wt is None or not wt.is_dir():
        return ""
    try:
        return guard.mend(ctx, t)
    except UsageError:  # (ctx.task_worktree's refusal of such a record, before anything is done)
        return ""


def _recover(ctx: Ctx, t: Task, wt: Path | None, retake: int | None, landed: str | None) -> str:
    """``recover`` once the worktree is readable (or not looked at: ``wt`` None); ``landed``:
    the commit the base took for it, when already asked."""
    if wt and wt.is_dir():
        if gitops.rebase_in_progress(wt):
            gitops.rebase_abort(wt)
    landed = landed or landed_commit(ctx, t)
    if landed is not None:
        ctx.store.update(
            t,
            state=LANDED,
            commit=landed,
            phase="",
            holder=None,
            paths=[],
            note="",
            candidate=None,
            ticket=None,
            intent="",
        )
        guard.forget_backup(ctx, t.name)
        if t.request is not None and forge_lane.enabled(ctx):
            forge_lane.tidy_landed(ctx, t)
        return f"the interrupted land of '{t.name}' had published {landed[:12]}: marked landed"
    backup = gitops.ref_value(ctx.root, guard.backup_ref(t.name))
    kept, moved = "", False  # where edits that could not go along with the rewind are kept; commits moved
    if backup is not None and wt and wt.is_dir():
        try:
            kept = guard.rewind(ctx, t, wt, backup, [Sha(t.candidate)] if t.candidate else [])
        except WouldLoseWork as w:  # commits made on the candidate since
            kept = _onto_pre_land(ctx, t, wt, backup)
            moved = bool(kept)
            if not kept:  # they could not go along: the branch stays, the task is given back
                c = (t.candidate or "")[:12]
                on = (
                    f"its branch stays on the candidate of the interrupted land ({c}), which also holds the "
                    f"rebased commits of any task stacked below it: move yours onto its pre-land tip "
                    f"('git -C {wt} rebase --onto {backup[:12]} {c}') before landing it again; "
                )
                note = f"{on if t.candidate else ''}{w.message}"
                ctx.store.update(
                    t, state=BLOCKED, phase="", holder=None, note=note, candidate=None, ticket=None, intent=""
                )
                return f"the interrupted land of '{t.name}' {AS_IT_IS}: {note}"
    if retake is not None and backup is not None and t.intent != WITHDRAWN:
        ctx.store.update(
            t, state=LANDING, phase=LANDING_PHASE, holder=me().to_json(), candidate=None, ticket=retake, intent=""
        )
    else:  # given back: no longer "waiting in the land queue" (review 44)
        note = "" if t.note == WAITING_NOTE else t.note
        ctx.store.update(t, state=ACTIVE, phase="", holder=None, candidate=None, intent="", note=note)
    said = forge_lane.landed_commit(ctx, t)[0] if t.request is not None and forge_lane.enabled(ctx) else ""
    if said in ("closed", "taken", "lacking"):
        note = (
            f"its request #{t.request} was closed on the forge: reopen it there, or land again for a new one"
            if said == "closed"
            else f"its request #{t.request} was merged with another head than its candidate (someone else pushed "
            "to its head branch): its own work is not on the base; land it again for a new request"
            if said == "taken"
            else f"the forge says its request #{t.request} merged, but '{t.base}' does not hold that merge: it is "
            "not landed; check the base on the forge, then land it again for a new request"
        )
        ctx.store.update(t, state=BLOCKED, phase="", holder=None, note=note, request=None)
        return f"the interrupted land of '{t.name}' is blocked: {note}"
    if moved:
        return f"rolled back the interrupted land of '{t.name}': {kept}"
    return f"rolled back the interrupted land of '{t.name}' to its pre-land tip" + (f"; {kept}" if kept else "")


def _onto_pre_land(ctx: Ctx, t: Task, wt: Path, backup: Sha) -> str:
    """Commits made on the candidate of an interrupted land (which holds the rebased commits of
    the tasks stacked below it, too) moved onto the pre-land tip, the commits as made kept
    under a ref of their own; what was done, or "" when they could not go (nothing changed)."""
    now = gitops.head_status(wt, untracked=False)  # untracked files (a gate's output) do not stop a rebase
    head = now.head
    if not t.candidate or head is None or now.attached != f"refs/heads/{t.branch}" or now.paths:
        return ""
    if not gitops.is_ancestor(ctx.root, t.candidate, head):
        return ""
    kept = f"{MOVED}{t.name}/{head[:12]}"
    gitops.update_ref(ctx.root, kept, head, None, f"commits made on the candidate of {t.name}'s interrupted land")
    if not gitops.rebase_onto(wt, backup, t.candidate).ok:  # aborted: as before (the kept ref stays, as all do)
        return ""
    n = len(gitops.commits_not_in(ctx.root, [head], [t.candidate]))
    return f"the {count(n, 'commit')} made on its candidate moved onto its pre-land tip (as made: {kept})"


def interrupted(ctx: Ctx, open_entries: list[Entry], why: str = "") -> None:
    """Ctrl-C or a failure mid-way (``why``): a candidate the base already took is landed
    (never rolled back); the rest goes back to its pre-land tip, waiting in the queue again
    for its lander, or active when its lander withdrew it or is gone (its wait ran out while
    the task was being published, say): nobody would land it again, nor say why."""
    with interrupts.finishing():
        for e in open_entries:
            cur = ctx.store.read().tasks.get(e.name)
            try:
                landed = landed_commit(ctx, cur) if cur is not None else None
            except Exception:  # noqa: BLE001 - the remote cannot be asked: keep what is there
                if cur is not None and cur.intent == PUBLISHING:  # it may have been pushed: never rolled back unasked
                    why = (
                        f"interrupted while '{e.task.base}' was pushed, "
                        "and the remote could not be asked whether it took it"
                    )
                    settle.unknown(
                        ctx, [e], f"{why}; landing it again asks the remote and finishes the land, or gives it back"
                    )
                    continue
                landed = None
            if landed is not None:
                e.messages.append(f"interrupted after '{e.task.base}' took the candidate: task '{e.name}' is landed")
                settle.landed(ctx, e, Sha(landed))
                continue
            kept = ""
            try:
                kept = settle.give_back(ctx, e)
            except WouldLoseWork:
                pass  # the branch keeps the new commit; the task goes back as it is
            withdrawn = cur is not None and cur.intent == WITHDRAWN
            if cur is not None and (left := forge_lane.left_open(ctx, cur)):  # said by 'wtp list'
                kept = f"{kept}; {left}" if kept else left
            alone = not withdrawn and not _awaited(ctx, e.name)
            if alone:
                stopped = f"its land stopped ({why})" if why else "its land stopped"
                gone = f"{stopped} after its 'wtp land' had gone: 'wtp land {e.name}' lands it again"
                kept = f"{gone}; {kept}" if kept else gone
            active = withdrawn or alone
            back = ctx.store.update(
                e.task,
                state=ACTIVE if active else LANDING,
                phase="",
                holder=None,
                candidate=None,
                intent="",
            )
            if back is not None and (kept or active and back.note == WAITING_NOTE):
                ctx.store.update(back, note=kept)  # what could not go along and where it is; or no longer waiting


def _awaited(ctx: Ctx, name: str) -> bool:
    """A live 'wtp land' (this process's included: a background lander serving its tickets)
    has a ticket for task ``name`` in the land queue, and takes it up again."""
    return any(k.get("label") == name for k in Gate(ctx.store, QUEUE).tickets())
