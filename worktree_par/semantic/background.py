"""``[check] test = "auto"``: the merge of the live tasks' commits, gated in the background.

Triggered by the commands that look at the tasks ('wtp list', 'wtp check'): when the
tasks' commits (or the base, or the gate) changed since the last result, they start one
detached runner ('wtp check --background') and show the last result with its age.  Only
commits count ("when a task commits"): half-typed edits would restart the run on every
keystroke.  The runner holds a lock file (one at a time; a killed runner's lock goes with
its process, so the next observer takes over), runs at the lowest priority (nice 19), and
stops its gates as soon as the inputs change, then tests the new ones.  No daemon, no
hook to install: nothing runs while nobody looks, and nothing is left to unlock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import atomic, gitops, locks
from ..repo import Ctx
from ..state import LIVE
from . import result, search, trees

LOCK = "check-test-bg.lock"
LOOK = 0.5  # seconds between looks at the inputs while gates run
ROUNDS = 5  # inputs that keep changing: give up after this many restarts (the next observer starts again)


def committed(ctx: Ctx) -> tuple[str, str, str, list[trees.Work]]:
    """(key of the inputs, base, base tip, each live task's committed work)."""
    st = ctx.store.read()
    base = ctx.detect_base()
    tasks = sorted((t for t in st.tasks.values() if t.state in LIVE and t.path), key=lambda t: t.seq)
    base_ref = ctx.base_tip_ref(base)
    found = gitops.refs(ctx.root, [base_ref, *(f"refs/heads/{t.branch}" for t in tasks)])
    tip_info = found.get(base_ref)
    tip = (tip_info.commit if tip_info else None) or ""
    heads = [(t.name, c) for t in tasks if (c := _commit(found.get(f"refs/heads/{t.branch}")))]
    gate = ctx.cfg.land_gate
    key = hashlib.sha1("\0".join([gate, tip, *(f"{n}={c}" for n, c in heads)]).encode()).hexdigest()
    return key, base, tip, [trees.Work(n, c, "", frozenset()) for n, c in heads]


def _commit(info: gitops.RefInfo | None) -> str:
    return (info.commit if info is not None else None) or ""


def _with_changes(ctx: Ctx, tip: str, work: list[trees.Work]) -> list[trees.Work]:
    out = []
    for w in work:
        fork = gitops.merge_base(ctx.root, tip, w.commit) or tip
        changed = frozenset(p for _, p in gitops.diff_names(ctx.root, fork, w.commit))
        out.append(trees.Work(w.name, w.commit, gitops.tree_of(ctx.root, w.commit), changed))
    return out


def _busy(ctx: Ctx) -> bool:
    lock = locks.Lock(ctx.store.ensure_dir() / LOCK, what="the background check")
    if lock.try_acquire():
        lock.release()
        return False
    return True


def observe(ctx: Ctx) -> dict[str, Any] | None:
    """The last result (marked ``stale`` when the inputs changed since), starting a
    background run when it is stale or missing and none is running."""
    from ..errors import WtpError

    try:
        search.gate_of(ctx)
    except WtpError as e:  # no gate, or not trusted yet: said, nothing started
        return {"when": time.time(), "error": e.message}
    key, _, _, heads = committed(ctx)
    last = result.last(ctx)
    if last is not None and last.get("committed") == key and (not last.get("running") or _busy(ctx)):
        return last
    if not _busy(ctx):
        try:
            spawn(ctx)
        except OSError as e:  # its log cannot be written (something in the way): said, the command goes on
            from ..errors import os_said

            return {"when": time.time(), "error": f"the background check could not start: {os_said(e)}"}
    if last is None:
        return {"running": True, "when": time.time(), "tasks": [h.name for h in heads], "committed": key}
    return {**last, "stale": not last.get("running")}


def spawn(ctx: Ctx) -> None:
    """Start the runner detached: its own session (a Ctrl-C in this terminal is not for
    it), output to a log, nothing inherited but the environment."""
    log = ctx.store.subdir("logs") / "check-test-background.log"
    with atomic.open_log(log) as out:
        subprocess.Popen(
            [sys.executable, "-m", "worktree_par.semantic.background", str(ctx.root)],
            cwd=ctx.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _watch(ctx: Ctx, key: str) -> Callable[[], bool]:
    """Whether the inputs changed since ``key``, looked at every LOOK seconds at most."""
    looked = [time.monotonic()]

    def changed() -> bool:
        if time.monotonic() - looked[0] < LOOK:
            return False
        looked[0] = time.monotonic()
        return committed(ctx)[0] != key

    return changed


def run(ctx: Ctx) -> int:
    """The runner: test the committed work until a result matches the inputs as they are."""
    lock = locks.Lock(ctx.store.ensure_dir() / LOCK, what="the background check")
    if not lock.try_acquire():
        return 0  # another runner has it
    try:
        os.nice(19)
    except OSError:
        pass
    try:
        for _ in range(ROUNDS):
            key, base, tip, heads = committed(ctx)
            last = result.last(ctx)
            if last is not None and last.get("committed") == key and not last.get("running"):
                return 0
            if len(heads) < 2:
                result.save(
                    ctx, {"verdict": "none", "tasks": [h.name for h in heads], "when": time.time(), "committed": key}
                )
                return 0
            result.save(ctx, {"running": True, "tasks": [h.name for h in heads], "when": time.time(), "committed": key})
            from ..errors import WtpError
            from .runs import Cancelled

            try:
                res = search.check_test(
                    ctx,
                    None,
                    budget=1,  # lowest priority: one gate at a time
                    timeout=ctx.cfg.land_timeout,
                    cancelled=_watch(ctx, key),
                    prepared=(base, tip, _with_changes(ctx, tip, heads)),
                )
            except Cancelled:
                continue  # the inputs changed: test the new ones
            except WtpError as e:  # said once, for these inputs: no new runner until they change
                result.save(ctx, {"error": e.message, "when": time.time(), "committed": key})
                return int(e.exit_code)
            result.save(ctx, {**res.to_json(), "committed": key})
            return 0
        return 0
    finally:
        lock.release()


def main(where: str) -> None:
    """``python -m worktree_par.semantic.background ROOT``: the detached runner."""
    from ..exits import exit_for, open_repo

    try:
        sys.exit(run(open_repo(where)))
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - one line, as every command
        exit_for(e)


if __name__ == "__main__":
    main(sys.argv[1])
