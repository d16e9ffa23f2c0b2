"""Gating a candidate: the task's gate run in its worktree (started as soon as the candidate
is built, re-run once to confirm a red), its verdict recorded by tree, and whether the
worktree still held the candidate when it ended."""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import atomic, gitops, interrupts
from ..errors import GateFailed, LandBlocked, Say, WouldLoseWork
from ..guarded import Guarded
from ..repo import Ctx, few
from ..state import WITHDRAWN
from . import flaky, verdicts
from .entry import Entry, Withdrawn, gate_log
from .status import QueueStatus

WITHDRAW_LOOK = 0.2  # seconds between looks for a withdrawn entry while its gate runs


def start_gate(ctx: Ctx, e: Entry, say: Say, status: QueueStatus) -> None:
    from .. import isolate

    if not e.gate:
        return
    tree = e.tree(ctx.root)
    known = verdicts.lookup(ctx, e.gate, tree)
    if known is not None and known.ok:
        e.cached = True
        e.messages.append(verdicts.reused_from_check(known))
        return
    ctx.store.subdir("logs")  # (made when missing)
    e.log = gate_log(ctx, e.name)
    atomic.write_log(e.log, f"$ {e.gate}\n# candidate {e.cand}\n", fresh=True)
    say(f"gate: {e.gate} on the candidate of '{e.name}' (attempt {e.attempts}); log: {e.log}")
    e.reds, e.red_code, e.flaky, e.halted, e.red, e.tested, e.kept_red = 0, 0, "", False, False, False, ""
    e.gate_began = time.time() - 1  # file times are coarser than the clock on some filesystems
    env = {**isolate.task_env(ctx, e.task), "WTP_CANDIDATE": e.published_commit}
    e.run = Guarded(["/bin/sh", "-c", e.gate], e.wt, env, e.log, ended=status.gate_ran)
    status.set(e, "gating")


def _rerun(ctx: Ctx, e: Entry, status: QueueStatus) -> None:
    """Run the entry's red gate again, on the same candidate, to confirm the red."""
    from .. import isolate

    assert e.run is not None and e.log is not None
    if not e.reds:
        e.red_code = e.run.code or 0
    e.reds += 1
    atomic.write_log(e.log, f"\n# exited {e.run.code}: re-run {e.reds}/{ctx.cfg.land_confirm_red} to confirm the red\n")
    env = {**isolate.task_env(ctx, e.task), "WTP_CANDIDATE": e.published_commit}
    e.run = Guarded(["/bin/sh", "-c", e.gate], e.wt, env, e.log, ended=status.gate_ran)
    status.set(e, "confirming")


def confirm_reds(ctx: Ctx, entries: list[Entry], status: QueueStatus) -> None:
    """Start the confirming re-run of the lowest of ``entries`` (a stack's unpublished part,
    bottom first) whose gate just went red, as soon as it does, not when its turn to be
    published comes.  Only the lowest: the candidates above a red contain it, and their
    reds are likely its own (they are rebuilt without it when it holds)."""
    for e in entries:
        run = e.run
        if run is None or e.halted or e.outcome:
            continue
        code = run.poll()
        if code == 0:
            continue
        if code is None:
            if e.reds:
                return  # being confirmed: what stands on it waits for its verdict
            continue
        if e.reds < ctx.cfg.land_confirm_red and time.monotonic() - run.started <= ctx.cfg.land_timeout:
            if _moved_under(ctx, e) is None and not flaky.left_by_run(ctx, e):
                _rerun(ctx, e, status)
        return


def stop_gates(entries: list[Entry], status: QueueStatus) -> None:
    for e in entries:
        e.halt()
        status.set(e, "waiting")


def gate_passed(ctx: Ctx, e: Entry, status: QueueStatus, meanwhile: Callable[[], None] | None = None) -> bool:
    """Wait for the entry's gate; True when it passed and the branch is still its candidate
    (False at once when its lander withdraws it meanwhile).  ``meanwhile`` is called while
    it runs (at most every 0.1 s)."""
    looked = time.monotonic()
    while True:
        verdict = poll_gate(ctx, e, status)
        if verdict is not None:
            return verdict
        if meanwhile is not None:
            meanwhile()
        if time.monotonic() - looked > WITHDRAW_LOOK:
            looked = time.monotonic()
            cur = ctx.store.read().tasks.get(e.name)
            if cur is not None and cur.seq == e.task.seq and cur.intent == WITHDRAWN:
                e.halt()
                e.error = Withdrawn.of(e.name)
                return False
        interrupts.check()
        time.sleep(0.01)


def poll_gate(ctx: Ctx, e: Entry, status: QueueStatus) -> bool | None:
    """The entry's verdict once its gate is done (None while it runs): True when it passed
    and the branch is still its candidate."""
    held = False  # the worktree was just seen holding the candidate, on its branch
    if e.gate and not e.cached:
        assert e.run is not None and e.log is not None
        timeout = ctx.cfg.land_timeout
        timed_out = e.run.poll() is None and time.monotonic() - e.run.started > timeout
        if timed_out:
            e.halt()
        elif e.run.code is None:
            return None
        code = e.run.code
        # The gate ran in the task's worktree: it tested the candidate only if the worktree
        # still holds it, untouched (an agent editing or switching there meanwhile, a gate that
        # rewrites tracked files), whatever it said.  One status of the tracked files, once;
        # build output (untracked) is not looked at.
        if not e.tested and not timed_out and not e.halted:
            moved = _moved_under(ctx, e)
            if moved is not None:
                e.error = moved  # not the candidate's red, nor its pass
                status.set(e, "failed")
                return False
            held = True
        confirm = code != 0 and not timed_out and not e.halted and e.reds < ctx.cfg.land_confirm_red
        if confirm and not flaky.left_by_run(ctx, e):
            _rerun(ctx, e, status)  # the worktree holds the candidate, as the first run had it
            return None
        if code != 0 or timed_out:
            e.red = not timed_out and not e.halted
            why = f"timed out after {timeout:g}s" if timed_out else f"exited {code}"
            again = f", and again on {e.reds} re-run{'s' * (e.reds > 1)}" if e.reds else ""
            again += f" ({e.kept_red})" if e.kept_red and code != 0 else ""
            e.error = GateFailed(
                f"gate '{e.gate}' {why} on the candidate of '{e.name}'{again}; '{e.task.base}' is untouched "
                f"(its output: {e.log}; the task is blocked: fix it and land again)"
            )
            status.set(e, "failed")
            return False
        if not e.tested:
            e.tested = True
            tree = e.tree(ctx.root)
            verdicts.record(ctx, e.gate, tree)
            if e.reds and not e.flaky:
                note_flaky(ctx, e, tree, "re-run")
    if not held and gitops.ref_value(ctx.root, f"refs/heads/{e.task.branch}") != e.cand:
        e.error = branch_moved(e)
        return False
    status.set(e, "passed")
    return True


def _moved_under(ctx: Ctx, e: Entry) -> LandBlocked | WouldLoseWork | None:
    """Why the candidate's worktree no longer holds it as the gate's run began (None: it does).
    One git call when it does: HEAD attached to the branch, on the candidate, says where the
    branch is too; the branch is read only to tell which way it does not."""
    broken = e.unlinked("while its gate ran", ", and its branch stays on its candidate")  # (git cannot read it)
    if broken is not None:
        return broken
    branch = f"refs/heads/{e.task.branch}"
    now = gitops.head_status(e.wt, untracked=False)
    untouched = f"nothing was published, '{e.task.base}' is untouched by it"
    if now.head != e.cand or now.attached != branch:
        if gitops.ref_value(ctx.root, branch) != e.cand:
            return branch_moved(e)  # a commit made there: kept on the branch
        return LandBlocked(
            f"the worktree of '{e.name}' left branch '{e.task.branch}' while its gate ran, so the gate did not "
            f"test the candidate: {untouched}; run 'wtp land {e.name}' again"
        )
    if now.paths:
        n = len(now.paths)
        return LandBlocked(
            f"{n} tracked file{'s' * (n != 1)} of '{e.name}' changed while its gate ran ({few(now.paths)}), so the "
            f"gate did not test the candidate: {untouched}, and the changes are kept in {e.wt}; commit them "
            f"(or undo them) and run 'wtp land {e.name}' again"
        )
    return None


def note_flaky(ctx: Ctx, e: Entry, tree: str, how: str) -> None:
    """The entry's red did not hold: say so to its lander and note it in the ledger."""
    e.flaky = how
    e.messages.append(
        f"the gate exited {e.red_code} on the candidate of '{e.name}', then passed ({how}): "
        f"recorded as flaky ('wtp queue --flaky')"
    )
    flaky.record(ctx, e.gate, e.name, tree, e.red_code, how)


def branch_moved(e: Entry) -> WouldLoseWork:
    return WouldLoseWork(
        f"branch '{e.task.branch}' moved while the gate ran (a commit made in {e.wt}?): nothing was published "
        f"and the new commit is kept on the branch, untested; run 'wtp land {e.name}' again to test and land it"
    )
