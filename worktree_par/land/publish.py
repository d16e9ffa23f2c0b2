"""The one publication point: nothing else moves or pushes the base.

For each task in what it publishes it proves, right before the compare-and-swap:
- the task is still wanted: its lander did not withdraw it (Ctrl-C, 'wtp rm'), and it is
  still the task this conductor took (same seq, still landing, held by us);
- its branch has not moved since its candidate was built (a commit made meanwhile stays
  on the branch, untested, and keeps the task out);
- its own gate passed on a tree that is exactly what is published for it: its candidate's,
  or a candidate's above it in the same push (a batch gated at its top).
The first task that fails a proof cuts the push below it; the caller settles it and rebuilds
what stood on it.  The tasks that pass are then committed to ("publishing": from here their
landers cannot withdraw them, and are told they landed), and the base is moved by one
compare-and-swap (a push that fails unless the remote still holds what was tested, or
update-ref locally).  Also here: bringing the local base and the worktree that has it
checked out along, without touching uncommitted work.
"""

from __future__ import annotations

import contextvars
import sys
from pathlib import Path

from .. import crashpoints, gitops, interrupts
from ..errors import ExitCode, GateFailed, LandBlocked, RemoteTimeout, Say
from ..gitops import Sha
from ..locks import Lock, me
from ..repo import Ctx, few
from ..state import LANDING, LANDING_PHASE, PUBLISHING, WITHDRAWN, State, Task
from . import forge_lane, settle
from .entry import Entry, PublishUnknown, Withdrawn
from .gating import branch_moved
from .verdicts import Proofs


class Outcome:
    """What a publication did: ``done`` entries of the stack are on the base now; ``race``:
    the base moved under us (rebuild); ``refused``: the entry a proof kept out (its error set)."""

    def __init__(self, done: int, race: bool = False, refused: Entry | None = None) -> None:
        self.done, self.race, self.refused = done, race, refused


def publish(ctx: Ctx, stack: list[Entry], done: int, k: int, base_tip: Sha, remote: str | None, say: Say) -> Outcome:
    """Publish ``stack[done:k]`` (the base is ``base_tip``, holding ``stack[:done]``) in one
    compare-and-swap of the top that passes every proof, and settle those entries landed."""
    cut, refused = _prove(ctx, stack, done, k)
    if remote and forge_lane.enabled(ctx) and cut > done + 1:
        cut, refused = done + 1, None  # a forge merges one request at a time: the rest next
    if cut == done:
        return Outcome(done, refused=refused)
    going = stack[done:cut]
    cut2, late = _commit(ctx, going)
    if cut2 < len(going):  # withdrawn between the proof and the commitment: prove the rest again
        return publish(ctx, stack, done, done + cut2, base_tip, remote, say) if cut2 else Outcome(done, refused=late)
    top = going[-1]
    crashpoints.step("land:before-publish")
    try:
        if remote and forge_lane.enabled(ctx):
            try:
                top.landed_as = forge_lane.publish(ctx, top, base_tip, remote, say)
            except LandBlocked as refused_by_forge:  # closed, a failing required check: the task is blocked
                _uncommit(ctx, going)
                top.error = refused_by_forge
                return Outcome(done, refused=top)
            moved = top.landed_as is not None
        else:
            moved = _cas(ctx, top.task, top.published_commit, base_tip, remote, say)
    except LandBlocked:  # the remote said no: nothing was published
        _uncommit(ctx, going)
        raise
    except Exception as failed:  # e.g. the remote took the push, then did not answer in time
        took = _asked(ctx, going, remote, failed)
        if took is None:
            _uncommit(ctx, going)
            raise
        if remote and forge_lane.enabled(ctx):
            top.landed_as = took
        answer = (
            f"{_gist(failed)}, but '{top.task.base}' took it{f' (asked {remote!r} again)' if remote else ''}: landed"
        )
        for e in going:
            e.messages.append(answer)
        moved = True
    except BaseException:  # Ctrl-C: recovery.interrupted settles what the base took
        if not _base_has(ctx, top, remote):
            _uncommit(ctx, going)
        raise
    if not moved:
        _uncommit(ctx, going)
        return Outcome(done, race=True)
    crashpoints.step("land:after-publish")
    together = [e.name for e in going]
    for e in going:
        if len(together) > 1:
            others = ", ".join(f"'{n}'" for n in together if n != e.name)
            how = "push" if remote else f"update of '{e.task.base}'"  # --no-push, or no remote: the local base
            e.messages.append(f"landed in one {how} together with {others}")
        settle.landed(ctx, e, e.landed_as or e.published_commit)
    return Outcome(cut, refused=refused)


def wanted(cur: Task | None, e: Entry) -> bool:
    """The task is still the one this conductor took and its lander still wants it landed."""
    return (
        cur is not None
        and cur.seq == e.task.seq
        and cur.state == LANDING
        and cur.phase == LANDING_PHASE
        and cur.holder == me().to_json()
        and cur.intent != WITHDRAWN
    )


def _prove(ctx: Ctx, stack: list[Entry], done: int, k: int) -> tuple[int, Entry | None]:
    """How far ``stack[done:k]`` may be published, and the first entry kept out (error set).

    An entry withdrawn, or whose branch moved, cuts the push below it; what is below it is
    then proved by the trees below the cut alone.  Its entries were vouched for by a tree
    above them (a batch's top) that no longer goes: those without a proof of their own stay
    out unsettled, for the caller to rebuild and gate, and only the entry that cut is kept
    out (issue 28's review: a batch published the tasks below a withdrawn one ungated)."""
    st = ctx.store.read()
    heads = gitops.refs(ctx.root, [f"refs/heads/{e.task.branch}" for e in stack[done:k]])
    cut, kept = k, None
    for i in range(done, k):
        e = stack[i]
        if not wanted(st.tasks.get(e.name), e):
            e.error = Withdrawn.of(e.name, f"'{e.task.base}' untouched by it")
            cut, kept = i, e
            break
        head = heads.get(f"refs/heads/{e.task.branch}")
        if (head.commit if head else None) != e.cand:
            e.error = branch_moved(e)
            cut, kept = i, e
            break
    proofs = Proofs(ctx)
    trees = {i: stack[i].tree(ctx.root) for i in range(done, cut)}  # by commit: a commit's tree never changes
    for i in range(done, cut):
        e = stack[i]
        if e.gate and not any(proofs.passed(e.gate, trees[m]) for m in range(i, cut)):
            if kept is not None:
                return i, kept  # vouched for by what no longer goes: rebuilt and gated, not blocked
            e.error = GateFailed(
                f"the gate of '{e.name}' ({e.gate!r}) has not passed on what would be published for it: "
                f"kept out, '{e.task.base}' untouched by it; run 'wtp land {e.name}' again"
            )
            return i, e
    return cut, kept


def _commit(ctx: Ctx, going: list[Entry]) -> tuple[int, Entry | None]:
    """Mark ``going`` as being published, in queue order, in one state write; stops at the
    first one withdrawn meanwhile (how many were marked, and that entry)."""
    with ctx.store.transaction() as st:
        for n, e in enumerate(going):
            cur = st.tasks.get(e.name)
            if not wanted(cur, e):
                e.error = Withdrawn.of(e.name)
                _clear(st, going[:n])  # in the same write: nothing is left marked
                return n, e
            assert cur is not None
            cur.intent = PUBLISHING
    return len(going), None


def _uncommit(ctx: Ctx, entries: list[Entry]) -> None:
    with ctx.store.transaction() as st:
        _clear(st, entries)


def _clear(st: State, entries: list[Entry]) -> None:
    for e in entries:
        cur = st.tasks.get(e.name)
        if cur is not None and cur.seq == e.task.seq and cur.intent == PUBLISHING:
            cur.intent = ""


def _asked(ctx: Ctx, going: list[Entry], remote: str | None, failed: Exception) -> Sha | None:
    """The push of ``going`` raised: whether the base took it all the same, asked of the
    remote now as recovery asks it (the commit it took for the top; None when it did not).
    The question gets a network budget of its own: the push may have spent the command's.
    When the remote cannot be asked either, ``going`` is left for the next command on it to
    ask (settle.unknown) and PublishUnknown says so."""
    from .recovery import landed_commit

    top = going[-1]

    def ask() -> str | None:
        gitops.unbound_network()  # in a copy of the context: the command's own deadline stays
        cur = ctx.store.read().tasks.get(top.name)
        return landed_commit(ctx, cur) if cur is not None else None

    try:
        took = contextvars.copy_context().run(ask)
    except Exception as asking:  # noqa: BLE001 - the outcome is not known here: said, and left to recovery
        names = ", ".join(f"'{e.name}'" for e in going)
        where = f"'{remote}'" if remote else "the repository"
        again = "" if _gist(asking) == _gist(failed) else f" ({_gist(asking)})"  # said once
        why = (
            f"{_gist(failed)}, and {where} could not be asked whether it took the push{again}: "
            f"whether {names} landed is not known"
        )
        settle.unknown(ctx, going, f"{why}; landing it again asks {where} and finishes the land, or gives it back")
        timed_out = isinstance(failed, RemoteTimeout) or isinstance(asking, RemoteTimeout)
        raise PublishUnknown(
            f"{why}: run 'wtp land {top.name}' again once {where} answers (or 'wtp doctor --fix'): "
            f"it asks {where} and finishes the land, or gives the task back",
            exit_code=RemoteTimeout.exit_code if timed_out else getattr(failed, "exit_code", ExitCode.FINDING),
        ) from failed
    return Sha(took) if took else None


def _gist(e: BaseException) -> str:
    """An error's first clause: what happened, without its advice."""
    return str(e).split(": ", 1)[0]


def _base_has(ctx: Ctx, e: Entry, remote: str | None) -> bool:
    """Interrupted around the push: whether the base took it (then it stays committed)."""
    from .recovery import landed_commit

    try:
        cur = ctx.store.read().tasks.get(e.name)
        return cur is not None and landed_commit(ctx, cur) is not None
    except Exception:  # noqa: BLE001 - cannot ask: recovery asks again and decides
        return True


def _cas(ctx: Ctx, t: Task, cand: Sha, base_tip: Sha, remote: str | None, say: Say) -> bool:
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
                + _forge_suggestion(ctx, remote)
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


# --- bringing the local base along ------------------------------------------------------


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


def landed_left(ctx: Ctx, t: Task) -> str:
    """What an interrupt or a failure left of a landed task's clean-up: its worktree, or (the
    worktree already removed) its branch, and a local base not brought along; "" when nothing
    is left."""
    left = []
    if t.path and Path(t.path).is_dir():
        left.append(f"its worktree is kept ('wtp rm {t.name}' removes it)")
    elif gitops.ref_value(ctx.root, f"refs/heads/{t.branch}") is not None:
        left.append(f"its clean-up was cut short, its branch '{t.branch}' is kept ('wtp rm {t.name}' finishes it)")
    remote = ctx.remote()
    if remote:
        local, tracking = f"refs/heads/{t.base}", f"refs/remotes/{remote}/{t.base}"
        found = gitops.refs(ctx.root, [local, tracking])
        if local in found and tracking in found and found[local].commit != found[tracking].commit:
            if gitops.is_ancestor(ctx.root, found[local].commit or "", found[tracking].commit or ""):
                left.append(f"local '{t.base}' is behind {remote}/{t.base} ('git pull --ff-only' in {ctx.root})")
    return "; ".join(left)


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
        op = gitops.in_progress(w)[0]
        if op:  # its index holds the user's conflicts: no stash, no switch until it is done
            return [
                f"'{base}' moved, but {w} has a {op} in progress, so its files were not brought along: it was "
                f"left detached at the previous commit so nothing looks reverted; finish the {op} there (it commits "
                f"on the detached HEAD), then run 'git -C {w} switch {base} && git -C {w} merge HEAD@{{1}}'"
            ]
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
    with interrupts.finishing():
        if gitops.read_tree_2way(w, old, new)[0]:
            gitops.attach_head(w, ref, f"follow {base}")


DETACH_WHY = "keep the worktree as it was"  # doctor looks for this in the reflog


def _forge_suggestion(ctx: Ctx, remote: str) -> str:
    """For a push the remote refused: the [land] via that lands through its forge, if the
    remote's URL names one ('' otherwise)."""
    from ..forge import from_remote_url

    try:
        kind, _ = from_remote_url(ctx.git_setting(f"remote.{remote}.url") or "")
    except Exception:  # noqa: BLE001 - a URL we cannot read: no suggestion
        return ""
    return f'; if the branch is protected, land through its pull requests: set [land] via = "{kind}"' if kind else ""
