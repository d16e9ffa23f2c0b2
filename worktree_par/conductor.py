"""The conductor: whoever holds the land queue lands the tasks at its head, several at once.

It builds a stack from the queue's head, each candidate on the one before it (C1 = base +
T1, C2 = C1 + T2, ...), each in its own task's worktree, and verifies it by mode:

- ``speculative``: the gates of every candidate run side by side; the base moves to Cj as
  soon as C1..Cj passed, while the gates above still run (candidates that pass together go
  in one push); a failing Ci blocks Ti, the gates above it are stopped, and the tasks above
  it are rebuilt without it and gated again.
- ``batch``: only the top of the stack is gated (one run for k tasks); when it fails,
  probes spread over the stack are gated side by side until the culprit is found, landing
  the green prefix.
- ``serial``: one candidate at a time.

Publishing stays compare-and-swap and in queue order: the base only ever moves to a
candidate whose gate passed (with every candidate below it), and a verdict is recorded
against (gate command, tree), so a tree that passed is never gated twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from . import crashpoints, gitops, guard, publish, tasks
from .errors import GateFailed, LandBlocked, LandConflict, Say, WouldLoseWork
from .gitops import Sha
from .procs import Guarded
from .repo import Ctx, few
from .state import BLOCKED, LANDED, LANDING, Task

MAX_ATTEMPTS = 10  # rebuilds when the base moves under us (other clones landing)


class Entry:
    """One task in the conductor's stack, with how it is to be landed."""

    def __init__(self, task: Task, tip: Sha, strategy: str, gate: str, ticket: int | None = None) -> None:
        self.task, self.tip, self.strategy, self.gate, self.ticket = task, tip, strategy, gate, ticket
        self.wt = Path(task.path or "")
        self.cand: Sha | None = None
        self.run: Guarded | None = None
        self.log: Path | None = None
        self.cached = False  # its tree passed this gate before
        self.outcome = ""  # LANDED or BLOCKED once settled
        self.commit: Sha | None = None
        self.messages: list[str] = []
        self.error: LandBlocked | WouldLoseWork | None = None
        self.attempts = 0
        self.races = 0  # rebuilds because the base moved under us

    @property
    def name(self) -> str:
        return self.task.name


def conduct(
    ctx: Ctx,
    entries: list[Entry],
    mode: str,
    remote: str | None,
    say: Say,
    more: Callable[[int], list[Entry]] | None = None,
) -> None:
    """Land ``entries`` (queue order, one base), leaving each landed or blocked in the state.
    ``more(n)``: up to n further entries that joined the queue meanwhile (speculative mode
    stacks them on top while the gates below run).  Interrupted, it gives back what it had
    not published and re-raises."""
    base = entries[0].task.base
    base_ref = f"refs/remotes/{remote}/{base}" if remote else f"refs/heads/{base}"
    before = gitops.ref_value(ctx.root, base_ref)  # the base as known before fetching: a fork bound
    pending = list(entries)
    status = QueueStatus(ctx)
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if not pending:
                return
            if remote:
                gitops.fetch_branch(ctx.root, remote, base, base_ref)
            base_tip = gitops.ref_value(ctx.root, base_ref)
            if base_tip is None:
                for e in pending:
                    _settle_blocked(
                        ctx, e, LandBlocked(f"base branch '{base}' does not exist{' on ' + remote if remote else ''}")
                    )
                return
            stack = _build(ctx, pending, base_tip, before, attempt, status)
            grow = None
            if more is not None and mode == "speculative":

                def grow(
                    n: int,
                    stack: list[Entry] = stack,
                    pending: list[Entry] = pending,
                    base_tip: Sha = base_tip,
                    attempt: int = attempt,
                ) -> None:
                    new = more(n)
                    entries.extend(new)
                    pending.extend(new)
                    top = stack[-1].cand if stack else base_tip
                    stack.extend(_build(ctx, new, top or base_tip, before, attempt, status))

            landed = 0  # how many of the stack are published

            def land_prefix(k: int, stack: list[Entry] = stack) -> bool:
                """Publish stack[:k], all green, in one compare-and-swap push of its top."""
                nonlocal base_tip, landed
                top = stack[k - 1]
                status.set(top, "publishing")
                crashpoints.step("land:before-publish")
                assert base_tip is not None
                if not publish.publish(ctx, top.task, top.cand or top.tip, base_tip, remote, say):
                    return False
                crashpoints.step("land:after-publish")
                together = [e.name for e in stack[landed:k]]
                for e in stack[landed:k]:
                    if len(together) > 1:
                        others = ", ".join(f"'{n}'" for n in together if n != e.name)
                        e.messages.append(f"landed in one push together with {others}")
                    _settle_landed(ctx, e, e.cand or e.tip)
                base_tip, landed = Sha(top.cand or top.tip), k
                # What waited for these tasks' slots or files starts now, not when the
                # gates still running above them end.
                tasks.promote_quietly(ctx, say)
                return True

            failed, published = _verify(ctx, stack, mode, say, status, land_prefix, grow)
            for e in failed:
                _settle_blocked(ctx, e, e.error or LandBlocked(f"the land of '{e.name}' failed"))
                for above in stack[stack.index(e) + 1 :]:
                    above.messages.append(f"rebuilt without '{e.name}', which was blocked")
            if not published:
                behind = [e for e in stack if not e.outcome]
                for e in behind:
                    e.races += 1
                names = ", ".join(f"'{e.name}'" for e in behind)
                say(f"'{base}' moved while landing {names}: rebuilding (attempt {attempt + 1}/{MAX_ATTEMPTS})")
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
            pending = [e for e in pending if not e.outcome]
        for e in pending:
            _settle_blocked(
                ctx,
                e,
                LandBlocked(
                    f"'{base}' kept moving: gave up after {MAX_ATTEMPTS} attempts; run 'wtp land {e.name}' again"
                ),
            )
    except BaseException:
        _interrupted(ctx, [e for e in entries if not e.outcome])
        raise
    finally:
        for e in entries:
            if e.run is not None and e.run.code is None:
                e.run.stop()
        status.clear()


def _build(
    ctx: Ctx, pending: list[Entry], base_tip: Sha, before: Sha | None, attempt: int, status: QueueStatus
) -> list[Entry]:
    """The stack on ``base_tip``; a task that conflicts is blocked at once and left out."""
    stack: list[Entry] = []
    prev = base_tip
    for e in pending:
        e.attempts = attempt
        if attempt == 1 and gitops.is_ancestor(ctx.root, e.tip, base_tip):
            e.messages.append(f"task '{e.name}' is already on '{e.task.base}'")
            _settle_landed(ctx, e, e.tip)
            continue
        status.set(e, "building")
        try:
            _give_back(ctx, e)  # every build starts from the pre-land tip
            crashpoints.step("land:before-candidate")
            e.cand = _candidate(ctx, e, prev, _fork(ctx, e.task, e.tip, before))
        except (LandBlocked, WouldLoseWork) as b:
            _settle_blocked(ctx, e, b)
            continue
        ctx.store.update(e.task, candidate=e.cand)  # from here, recovery asks the remote whether it landed
        stack.append(e)
        prev = e.cand
    return stack


def _verify(
    ctx: Ctx,
    stack: list[Entry],
    mode: str,
    say: Say,
    status: QueueStatus,
    land_prefix: Callable[[int], bool],
    grow: Callable[[int], None] | None = None,
) -> tuple[list[Entry], bool]:
    """Gate the stack and publish what passed: (the entries that failed, False when a push
    lost the race to another clone and the rest must be rebuilt on the new base).

    Speculative (and serial, a stack of one): every gate runs side by side, and the green
    prefix is published as soon as it is known, C1 while C2 still runs, so a task never
    waits for the gates of the tasks queued behind it; candidates that pass together go in
    one push.  Batch: gate the top once, bisect on failure, publish the green prefix."""
    if not stack:
        return [], True
    if mode == "batch":
        green, failed = _bisect(ctx, stack, say, status)
        return failed, land_prefix(green) if green else True
    crashpoints.step("land:before-gate")
    depth = ctx.cfg.land_depth or ctx.cfg.max_active
    started: set[str] = set()
    i = published = 0
    looked = 0.0
    while i < len(stack):
        for e in stack:
            if e.name not in started:
                _start_gate(ctx, e, say, status)
                started.add(e.name)
        verdict = _poll_gate(ctx, stack[i], status)
        if verdict is None:
            if grow is not None and len(stack) < depth and time.monotonic() - looked > 0.1:
                looked = time.monotonic()
                grow(depth - len(stack))  # stack what joined the queue meanwhile on the top
            time.sleep(0.01)
            continue
        if not verdict:
            if i > published and not land_prefix(i):
                _stop_gates(stack[i + 1 :], status)
                return [], False
            _stop_gates(stack[i + 1 :], status)  # their candidates contain the failed task: rebuilt without it
            return [stack[i]], True
        i += 1
        while i < len(stack) and _poll_gate(ctx, stack[i], status):  # passed meanwhile: the same push
            i += 1
        if not land_prefix(i):
            _stop_gates(stack[i:], status)
            return [], False
        published = i
    return [], True


def _stop_gates(entries: list[Entry], status: QueueStatus) -> None:
    for e in entries:
        if e.run is not None and e.run.code is None:
            e.run.stop()
        status.set(e, "waiting")


def _bisect(ctx: Ctx, stack: list[Entry], say: Say, status: QueueStatus) -> tuple[int, list[Entry]]:
    """Gate the top; on failure, gate probes spread over the rest side by side (up to the
    depth, less the failed top) until the first failing candidate is found.  The candidates
    below it are green: each contains the ones before it."""
    top = stack[-1]
    _start_gate(ctx, top, say, status)
    if _gate_passed(ctx, top, status):
        return len(stack), []
    width = max(1, (ctx.cfg.land_depth or ctx.cfg.max_active) - 1)
    green, failing = 0, len(stack) - 1  # stack[:green] passed; stack[failing] failed
    while green < failing:
        span = failing - green
        probes = sorted({green + (span * (k + 1)) // (min(width, span) + 1) for k in range(min(width, span))})
        probes = [p for p in probes if green <= p < failing] or [green]
        for p in probes:
            _start_gate(ctx, stack[p], say, status)
        for p in probes:  # in order: the first failure bounds the search, the passes below it raise 'green'
            if _gate_passed(ctx, stack[p], status):
                green = max(green, p + 1)
            else:
                failing = p
                break
        for p in probes:
            run = stack[p].run
            if run is not None and run.code is None:
                run.stop()  # above the failure: its verdict is not needed
    return green, [stack[failing]]


def _start_gate(ctx: Ctx, e: Entry, say: Say, status: QueueStatus) -> None:
    from . import isolate

    if not e.gate:
        return
    tree = gitops.tree_of(ctx.root, e.cand or e.tip)
    if verdict_passed(ctx, e.gate, tree):
        e.cached = True
        e.messages.append("gate passed earlier on this tree")
        return
    e.log = ctx.store.subdir("logs") / f"land-{e.name}.log"
    e.log.write_text(f"$ {e.gate}\n# candidate {e.cand}\n")
    say(f"gate: {e.gate} on the candidate of '{e.name}' (attempt {e.attempts}); log: {e.log}")
    env = {**isolate.task_env(ctx, e.task), "WTP_CANDIDATE": e.cand or e.tip}
    e.run = Guarded(["/bin/sh", "-c", e.gate], e.wt, env, e.log)
    status.set(e, "gating")


def _gate_passed(ctx: Ctx, e: Entry, status: QueueStatus) -> bool:
    """Wait for the entry's gate; True when it passed and the branch is still its candidate."""
    while True:
        verdict = _poll_gate(ctx, e, status)
        if verdict is not None:
            return verdict
        time.sleep(0.01)


def _poll_gate(ctx: Ctx, e: Entry, status: QueueStatus) -> bool | None:
    """The entry's verdict once its gate is done (None while it runs): True when it passed
    and the branch is still its candidate."""
    if e.gate and not e.cached:
        assert e.run is not None and e.log is not None
        timeout = ctx.cfg.land_timeout
        timed_out = e.run.poll() is None and time.monotonic() - e.run.started > timeout
        if timed_out:
            e.run.stop()
        elif e.run.code is None:
            return None
        code = e.run.code
        if code != 0 or timed_out:
            why = f"timed out after {timeout:g}s" if timed_out else f"exited {code}"
            e.error = GateFailed(
                f"gate '{e.gate}' {why} on the candidate of '{e.name}'; '{e.task.base}' is untouched "
                f"(its output: {e.log}; the task is blocked: fix it and land again)"
            )
            status.set(e, "failed")
            return False
        record_verdict(ctx, e.gate, gitops.tree_of(ctx.root, e.cand or e.tip))
    if gitops.ref_value(ctx.root, f"refs/heads/{e.task.branch}") != e.cand:
        e.error = WouldLoseWork(
            f"branch '{e.task.branch}' moved while the gate ran (a commit made in {e.wt}?): nothing was published "
            f"and the new commit is kept on the branch, untested; run 'wtp land {e.name}' again to test and land it"
        )
        return False
    status.set(e, "passed")
    return True


def _fork(ctx: Ctx, t: Task, tip: Sha, before: Sha | None) -> Sha:
    """Where the task's own commits begin: the newest of the commit it was started from and
    its merge-base with the base as known before this land.  A base force-pushed since does
    not move it back, so commits dropped from the base are never replayed."""
    mb = gitops.merge_base(ctx.root, tip, before) if before else None  # an ancestor of tip by definition
    options = [c for c in (t.fork, mb) if c and (c == mb or gitops.is_ancestor(ctx.root, c, tip))]
    options = list(dict.fromkeys(options))
    best = options[0] if options else gitops.merge_base(ctx.root, tip, f"refs/heads/{t.base}") or tip
    for c in options[1:]:
        if gitops.is_ancestor(ctx.root, best, c):
            best = c
    return Sha(best)


def _candidate(ctx: Ctx, e: Entry, onto: Sha, fork: Sha) -> Sha:
    """Build the candidate on ``onto`` from the task's commits after ``fork``; the task branch
    (and its clean worktree) moves to it."""
    t, wt, tip = e.task, e.wt, e.tip
    guard.backed_up(ctx, t, tip)
    if e.strategy == "merge":
        dropped = gitops.commits_not_in(ctx.root, [fork], [onto])
        if dropped:
            raise LandBlocked(
                f"'{t.base}' no longer has {len(dropped)} commit(s) that task '{t.name}' was started on (the base was "
                f"rewritten): a merge would bring them back; land with '--strategy rebase' or 'squash'"
            )
        merged = gitops.merge_tree(ctx.root, onto, tip)
        if merged.conflicts:
            raise LandConflict(_conflict_msg(t, merged.conflicts), merged.conflicts)
        cand = gitops.commit_tree(ctx.root, merged.tree, [onto, tip], f"Merge task '{t.name}' ({t.branch})")
    else:
        reb = gitops.rebase_onto(wt, onto, fork)
        if not reb.ok:
            if reb.conflicts:
                raise LandConflict(_conflict_msg(t, reb.conflicts), reb.conflicts)
            raise LandBlocked(f"rebase of '{t.name}' onto '{t.base}' failed: {reb.error}")
        rebased = gitops.head(wt)[0]
        assert rebased is not None
        if e.strategy == "rebase":
            return rebased
        msgs, author = gitops.log_messages(ctx.root, fork, tip)
        msg = f"{t.name}: squashed\n\n{msgs}\n" if "\n" in msgs else msgs
        cand = gitops.commit_tree(ctx.root, gitops.tree_of(ctx.root, rebased), [onto], msg or t.name, env=author)
    # Recorded before the branch moves to it: a land killed in between leaves a branch on a
    # commit recovery knows to be wtp's own (a squash or merge commit is no copy of the
    # task's commits), so it can be rewound instead of refused.
    ctx.store.update(t, candidate=cand)
    guard.advance(ctx, t, wt, tip, cand)
    crashpoints.step("land:after-candidate")
    return cand


def _conflict_msg(t: Task, paths: list[str]) -> str:
    return (
        f"task '{t.name}' conflicts with '{t.base}' in {len(paths)} path{'s' * (len(paths) != 1)} ({few(paths, 5)}): "
        f"it is blocked with its commits intact; rebase it onto '{t.base}' and resolve them in {t.path}, then run 'wtp land {t.name}' again"
    )


def _give_back(ctx: Ctx, e: Entry) -> None:
    """Put the task branch back to its pre-land tip, leaving no commit behind but wtp's own
    (WouldLoseWork when someone committed there meanwhile: then it stays)."""
    if gitops.rebase_in_progress(e.wt):
        gitops.rebase_abort(e.wt)
    guard.rewind(ctx, e.task, e.wt, e.tip, [e.cand] if e.cand else [])


def _settle_landed(ctx: Ctx, e: Entry, commit: Sha) -> None:
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
    )
    guard.forget_backup(ctx, e.name, e.tip)


def _settle_blocked(ctx: Ctx, e: Entry, err: LandBlocked | WouldLoseWork) -> None:
    kept = ""
    if not isinstance(err, WouldLoseWork):
        try:
            _give_back(ctx, e)
        except WouldLoseWork as w:
            kept = w.message
    e.outcome, e.error = BLOCKED, err
    paths = err.paths if isinstance(err, LandBlocked) else []
    note = f"{err}; {kept}" if kept else str(err)
    ctx.store.update(
        e.task, state=BLOCKED, phase="", holder=None, paths=paths, note=note, candidate=None, ticket=e.ticket
    )


def _interrupted(ctx: Ctx, open_entries: list[Entry]) -> None:
    """Ctrl-C or a failure mid-way: a candidate the base already took is landed (never rolled
    back); the rest goes back to its pre-land tip, waiting in the queue again."""
    from .land import published

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for e in open_entries:
            cur = ctx.store.read().tasks.get(e.name)
            try:
                landed = cur is not None and bool(cur.candidate) and published(ctx, cur)
            except Exception:  # noqa: BLE001 - the remote cannot be asked: keep what is there
                landed = False
            if landed and cur is not None:
                e.messages.append(f"interrupted after '{e.task.base}' took the candidate: task '{e.name}' is landed")
                _settle_landed(ctx, e, Sha(cur.candidate or ""))
                continue
            try:
                _give_back(ctx, e)
            except WouldLoseWork:
                pass  # the branch keeps the new commit; the task goes back as it is
            ctx.store.update(e.task, state=LANDING, phase="", holder=None, candidate=None)
    finally:
        signal.signal(signal.SIGINT, previous)


# --- verdicts and what 'wtp queue' shows ----------------------------------------------


def _verdicts(ctx: Ctx) -> Path:
    return ctx.store.ensure_dir() / "verdicts.json"


def _key(gate: str, tree: str) -> str:
    return hashlib.sha1(f"{gate}\0{tree}".encode()).hexdigest()


def verdict_passed(ctx: Ctx, gate: str, tree: str) -> bool:
    try:
        return _key(gate, tree) in json.loads(_verdicts(ctx).read_text())
    except (OSError, ValueError, TypeError):
        return False


def record_verdict(ctx: Ctx, gate: str, tree: str) -> None:
    """Remember that ``tree`` passed ``gate`` (the newest 500 verdicts are kept)."""
    path = _verdicts(ctx)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[_key(gate, tree)] = time.time()
    kept = dict(sorted(data.items(), key=lambda kv: kv[1] if isinstance(kv[1], (int, float)) else 0)[-500:])
    tmp = path.with_name(f".verdicts-{os.getpid()}.tmp")
    tmp.write_text(json.dumps(kept))
    os.replace(tmp, path)


class QueueStatus:
    """What the conductor is doing with each entry, for 'wtp queue' (a courtesy file: losing
    it loses nothing)."""

    def __init__(self, ctx: Ctx) -> None:
        self.path = ctx.store.ensure_dir() / "queue-status.json"
        self.entries: dict[str, dict[str, object]] = {}

    def set(self, e: Entry, what: str) -> None:
        self.entries[e.name] = {"gate": what, "since": time.time(), "candidate": e.cand}
        tmp = self.path.with_name(f".queue-status-{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"conductor": os.getpid(), "entries": self.entries}))
            os.replace(tmp, self.path)
        except OSError:
            pass

    def clear(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data.get("conductor") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def read_status(ctx: Ctx) -> dict[str, object]:
    try:
        data = json.loads((ctx.store.dir / "queue-status.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
