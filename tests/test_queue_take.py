"""What the conductor takes from the queue behind its own task (issue 28 takes them in one
state write): the tasks of its base, in queue order; a task waiting to land on another base
is left waiting and lands on its own."""

from __future__ import annotations

import functools
from pathlib import Path

from worktree_par.gates import Gate

from .conftest import Repo, wait_for


def _holds(queue: Gate, n: int) -> bool:
    return len(queue.tickets()) == n


def test_a_task_for_another_base_is_left_to_land_on_its_own(remote_repo: Repo, tmp_path: Path) -> None:
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    r = remote_repo
    r.git("branch", "dev")
    r.git("push", "-q", "origin", "dev")
    for name, base in (("t1", "main"), ("t2", "dev"), ("t3", "main")):
        out = r.wtp("start", name, "--base", base)
        assert out.code == 0, out.err
        r.commit({f"{name}.txt": f"{name}\n"}, f"{name} work", cwd=Path(out.lines[-1]))
    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()  # all three join before one conducts
    try:
        procs = []
        for n, name in enumerate(("t1", "t2", "t3"), 2):  # in this order in the queue
            procs.append(r.spawn("land", name, "--gate", "true"))
            wait_for(functools.partial(_holds, queue, n), f"{name} waiting in the queue")
    finally:
        queue.release()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    r.git("fetch", "-q", "origin")
    assert r.git("log", "--format=%s", "origin/main").splitlines() == ["t3 work", "t1 work", "initial"]
    assert r.git("log", "--format=%s", "origin/dev").splitlines() == ["t2 work", "initial"]
    # t1's conductor took t3 (same base), not t2; t2's lander landed it alone.
    assert "landing 't3' behind 't1' (speculative)" in results[0][1].splitlines()
    assert not any(line.startswith("landing ") for line in results[1][1].splitlines())
    tasks = {t["name"]: (t["state"], t["base"]) for t in r.wtp("list", "--all", "--json").json()["tasks"]}
    assert tasks == {"t1": ("landed", "main"), "t2": ("landed", "dev"), "t3": ("landed", "main")}
