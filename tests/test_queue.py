"""The land queue with several candidates in flight (issue 16): speculative and batch modes,
verdicts by tree, --detach, 'wtp queue', and a conductor killed mid-gate.  The tests count
gate runs and check outcomes; how fast it is lives in scripts/bench_queue.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from worktree_par.procs import pid_alive

from .conftest import Repo, git, queued_landers, wait_for


def _tasks(r: Repo, n: int, broken: set[int] | None = None) -> None:
    for i in range(1, n + 1):
        p = Path(r.wtp("start", f"t{i}").lines[-1])
        files = {f"f{i}.txt": f"{i}\n", **({"BROKEN": "yes\n"} if i in (broken or set()) else {})}
        r.commit(files, f"t{i} work", cwd=p)


def _gate(tmp: Path) -> str:
    return f"echo run >> {tmp}/runs; ./check.sh"


def _runs(tmp: Path) -> int:
    f = tmp / "runs"
    return len(f.read_text().splitlines()) if f.exists() else 0


def _land_all_at_once(r: Repo, names: list[str], *extra: str) -> list[tuple[int, str, str]]:
    """Start every lander while the queue is held, so they all wait in it; then let go."""
    procs = queued_landers(r, names, *extra)
    outs = [p.communicate(timeout=120) for p in procs]
    return [(p.returncode, o, e) for p, (o, e) in zip(procs, outs)]


def _first_parents_pass(r: Repo) -> list[str]:
    """Every first-parent commit on origin/main, each checked with the project's test."""
    r.git("fetch", "-q", "origin")
    commits = r.git("rev-list", "--first-parent", "origin/main").split()
    for c in commits:
        files = r.git("ls-tree", "--name-only", c).split()
        assert "BROKEN" not in files, f"{c} would fail the test"
    return [r.git("log", "-1", "--format=%s", c) for c in commits]


def test_speculative_lands_five_tasks_with_one_gate_run_each(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 5)
    results = _land_all_at_once(project, [f"t{i}" for i in range(1, 6)], "--gate", _gate(tmp_path))
    assert [code for code, _, _ in results] == [0] * 5, results
    assert _runs(tmp_path) == 5  # side by side, each candidate gated once
    assert sorted(_first_parents_pass(project)) == sorted([f"t{i} work" for i in range(1, 6)] + ["the test", "initial"])
    assert all(out.splitlines()[0].startswith(f"landed 't{i}' at ") for i, (_, out, _) in enumerate(results, 1))


def test_speculative_blocks_the_red_task_and_lands_the_others(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 5, broken={3})
    results = _land_all_at_once(project, [f"t{i}" for i in range(1, 6)], "--gate", _gate(tmp_path))
    assert [code for code, _, _ in results] == [0, 0, 1, 0, 0], results
    assert "gate 'echo run" in results[2][2] and "exited 1 on the candidate of 't3'" in results[2][2]
    landed_out = "".join(
        line  # the conductor's lander returns with its own task, naming what it still lands in the background
        for code, out, _ in results
        if code == 0
        for line in out.splitlines(keepends=True)
        if not line.startswith("the land queue goes on for ")
    )
    assert "t3" not in landed_out.replace("rebuilt without 't3', which was blocked", "")  # t3 landed with nobody
    subjects = _first_parents_pass(project)
    assert sorted(subjects) == sorted(["t1 work", "t2 work", "t4 work", "t5 work", "the test", "initial"])
    tasks = {t["name"]: t for t in project.wtp("list", "--json").json()["tasks"]}
    assert tasks["t3"]["state"] == "blocked"  # kept with its commits, nothing lost
    assert project.git("log", "-1", "--format=%s", "wtp/t3") == "t3 work"


def test_batch_lands_four_clean_tasks_with_one_gate_run(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 4)
    results = _land_all_at_once(project, [f"t{i}" for i in range(1, 5)], "--mode", "batch", "--gate", _gate(tmp_path))
    assert [code for code, _, _ in results] == [0] * 4, results
    assert _runs(tmp_path) == 1
    assert "landed in one push together with" in results[0][1]
    assert sorted(_first_parents_pass(project)) == sorted([f"t{i} work" for i in range(1, 5)] + ["the test", "initial"])


def test_batch_bisects_to_the_red_task_and_lands_the_green_ones(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 4, broken={2})
    results = _land_all_at_once(project, [f"t{i}" for i in range(1, 5)], "--mode", "batch", "--gate", _gate(tmp_path))
    assert [code for code, _, _ in results] == [0, 1, 0, 0], results
    assert sorted(_first_parents_pass(project)) == sorted(["t1 work", "t3 work", "t4 work", "the test", "initial"])
    # 1 top + 3 probes + 1 for the rest on top of t1, the two reds (the top's and t2's own)
    # each confirmed by one re-run ([land] confirm_red = 1), and one run on the base, whose
    # tree (committed outside wtp) no verdict knew, to tell a red task from a broken gate: 8.
    assert _runs(tmp_path) <= 8


def test_a_tree_that_passed_the_gate_is_not_gated_again(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 1)
    assert project.remote is not None
    hook = project.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen for the release'\nexit 1\n")
    hook.chmod(0o755)
    out = project.wtp("land", "t1", "--gate", _gate(tmp_path))
    assert out.code == 1
    assert out.err.splitlines()[-1].startswith(
        "wtp: origin refused 'main' (pre-receive hook declined): main is frozen for the release; nothing was published"
    )
    hook.unlink()
    out = project.wtp("land", "t1", "--gate", _gate(tmp_path))
    assert out.code == 0, out.err
    assert "gate passed earlier on this tree" in out.lines
    assert _runs(tmp_path) == 1


def test_detach_returns_at_once_and_the_queue_finishes_alone(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 3)
    stop = tmp_path / "go"
    gate = f"i=0; while [ ! -e {stop} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; ./check.sh"  # 30 s at most
    for i in (1, 2, 3):
        out = project.wtp_proc("land", f"t{i}", "--detach", "--gate", gate)
        assert out.code == 0, out.err
        assert out.out.startswith(f"queued 't{i}' to land at place {i}; 'wtp queue' follows it (log: ")
    q = json.loads(project.wtp_proc("queue", "--json").out)["entries"]
    assert [e["task"] for e in q] == ["t1", "t2", "t3"]
    assert [e["place"] for e in q] == [1, 2, 3] and q[0]["gate"].startswith("gating")
    listed = project.wtp("list", "--json").json()["tasks"]
    assert [(t["name"], t["state"], t["queue_place"]) for t in listed] == [(f"t{i}", "landing", i) for i in (1, 2, 3)]
    stop.touch()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]]
        if states == ["landed"] * 3:
            break
        time.sleep(0.1)
    notes = [t["note"] for t in project.wtp("list", "--all", "--json").json()["tasks"]]
    assert states == ["landed"] * 3, notes
    assert _first_parents_pass(project) == ["t3 work", "t2 work", "t1 work", "the test", "initial"]
    assert project.wtp_proc("queue").out == "the land queue is empty\n"


def test_a_detached_land_honours_its_timeout(project: Repo, tmp_path: Path) -> None:
    """The child is handed the typed request, timeout included (before: the argv it was
    re-parsed from lost --timeout, and it waited behind the queue for ever)."""
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    _tasks(project, 1)
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()
    try:
        out = project.wtp_proc("land", "t1", "--detach", "--timeout", "1", "--gate", "true")
        assert out.code == 0, out.err
        log = Path(out.out.rsplit("(log: ", 1)[1].rstrip(")\n"))
        wait_for(lambda: project.wtp("list", "--json").json()["tasks"][0]["state"] == "active", "the child's timeout")
    finally:
        queue.release()
    assert "timed out" in log.read_text()
    assert project.git("rev-parse", "main") == project.git("rev-parse", "origin/main")


def test_a_conductor_killed_mid_gate_loses_nothing_and_a_rerun_finishes(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 3)
    tips = {f"t{i}": project.git("rev-parse", f"wtp/t{i}") for i in (1, 2, 3)}
    started = tmp_path / "started"
    gate = f"touch {started}; sleep 60"
    conductor = project.spawn("land", "t1", "--gate", gate)
    wait_for(started.exists, "t1's gate to start")
    followers = [project.spawn("land", n, "--gate", "./check.sh") for n in ("t2", "t3")]
    wait_for(
        lambda: sorted(e["task"] for e in project.wtp("queue", "--json").json()["entries"]) == ["t1", "t2", "t3"],
        "t2 and t3 to wait in the queue behind t1",
    )
    conductor.kill()  # SIGKILL: its gate dies with it (the guardian), its task is mid-land
    conductor.wait()
    outs = [p.communicate(timeout=120) for p in followers]
    assert [p.returncode for p in followers] == [0, 0], outs
    again = project.wtp("land", "t1", "--gate", "./check.sh")
    assert again.code == 0, again.err
    assert "rolled back the interrupted land of 't1'" in again.err
    assert sorted(_first_parents_pass(project)) == sorted(["t1 work", "t2 work", "t3 work", "the test", "initial"])
    for name, tip in tips.items():  # every task's work is on main: nothing lost
        assert project.git("show", f"origin/main:f{name[1:]}.txt") == name[1:], tip
    assert subprocess.run(["pgrep", "-f", f"touch {started}"], capture_output=True).stdout == b""


def test_two_clones_landing_stacks_at_once_all_land(remote_repo: Repo, tmp_path: Path) -> None:
    assert remote_repo.remote is not None
    procs = []
    for c in range(2):
        clone = tmp_path / f"clone{c}"
        git(tmp_path, "clone", "-q", str(remote_repo.remote), str(clone))
        cr = Repo(clone)
        for i in range(3):
            p = Path(cr.wtp("start", f"c{c}t{i}").lines[-1])
            cr.commit({f"c{c}t{i}.txt": "x\n"}, f"c{c}t{i} work", cwd=p)
        procs += [cr.spawn("land", f"c{c}t{i}") for i in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outs
    log = git(remote_repo.remote, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert sorted(log) == sorted([f"c{c}t{i} work" for c in range(2) for i in range(3)] + ["initial"])
    assert len(log) == len(set(log))


def test_a_candidate_lands_as_soon_as_it_passes_not_when_the_gates_above_it_end(project: Repo, tmp_path: Path) -> None:
    """C1 is published, marked landed, and what waited for it is started, while C2's gate still runs."""
    for name in ("t1", "t2"):
        p = Path(project.wtp("start", name, *(["--touch", "f1.txt"] if name == "t1" else [])).lines[-1])
        project.commit({f"{name}.txt": "x\n"}, f"{name} work", cwd=p)
    assert project.wtp("start", "q", "--touch", "f1.txt").code == 4  # waits for t1
    release = tmp_path / "release"
    gate = f'if [ "$WTP_TASK" = t2 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # both join before either conducts: one stack, t2 on top of t1
    try:
        procs = []
        for n, name in enumerate(("t1", "t2"), 2):  # t1 first in the queue, then t2
            procs.append(project.spawn("land", name, "--gate", gate))
            deadline = time.monotonic() + 30
            while len(queue.tickets()) < n and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        queue.release()
    try:
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {t["name"]: t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]}
            if states.get("t1") == "landed" and states.get("q") == "active":
                break
            time.sleep(0.1)
        assert (states["t1"], states["q"], states["t2"]) == ("landed", "active", "landing")
        assert not release.exists() and all(p.poll() is None for p in procs[1:])  # t2's gate still waits
        project.git("fetch", "-q", "origin")
        assert project.git("log", "-1", "--format=%s", "origin/main") == "t1 work"
    finally:
        release.write_text("go\n")
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert _first_parents_pass(project)[:2] == ["t2 work", "t1 work"]


def test_a_single_task_first_batch_is_not_gated_in_series_with_the_next(project: Repo, tmp_path: Path) -> None:
    """t1 conducts alone; t2 and t3 join while its gate runs: their batch is gated on top of
    t1's candidate at once (t1's gate waits to see that happen, and fails if it never does)."""
    _tasks(project, 3)
    gate = (
        f'echo run >> {tmp_path}/runs; touch {tmp_path}/started-"$WTP_TASK"; if [ "$WTP_TASK" = t1 ]; then i=0; '
        f"while [ ! -e {tmp_path}/started-t2 ] && [ ! -e {tmp_path}/started-t3 ] && [ $i -lt 600 ]; "
        f"do sleep 0.05; i=$((i+1)); done; [ $i -lt 600 ] || exit 1; fi; ./check.sh"
    )
    first = project.spawn("land", "t1", "--mode", "batch", "--gate", gate)
    wait_for((tmp_path / "started-t1").exists, "t1's gate to start")
    others = [project.spawn("land", n, "--mode", "batch", "--gate", gate) for n in ("t2", "t3")]
    outs = [p.communicate(timeout=120) for p in [first, *others]]
    assert [p.returncode for p in [first, *others]] == [0, 0, 0], outs
    assert _runs(tmp_path) <= 3  # t1, the top of the batch above it, and t3 if it joined too late for that batch
    assert sorted(_first_parents_pass(project)) == sorted(["t1 work", "t2 work", "t3 work", "the test", "initial"])


def test_batches_that_join_during_a_gate_are_gated_at_once_on_top_of_it(project: Repo, tmp_path: Path) -> None:
    """Speculation over batches: t1's batch is gated; t2 joins and its batch is gated on top of
    t1's at once; t3 joins while both run and its batch is gated at once too.  Each gate waits
    to see the next one start, and fails if it never does (a batch gated only after the one
    below it ended)."""
    _tasks(project, 3)

    def waits_for(nxt: str) -> str:
        return (
            f"i=0; while [ ! -e {tmp_path}/started-{nxt} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
            f"[ $i -lt 600 ] || exit 1"
        )

    gate = (
        f'echo run >> {tmp_path}/runs; touch {tmp_path}/started-"$WTP_TASK"; '
        f'if [ "$WTP_TASK" = t1 ]; then {waits_for("t2")}; fi; if [ "$WTP_TASK" = t2 ]; then {waits_for("t3")}; fi; '
        f"./check.sh"
    )
    landers = [project.spawn("land", "t1", "--mode", "batch", "--gate", gate)]
    wait_for((tmp_path / "started-t1").exists, "t1's gate to start")
    landers.append(project.spawn("land", "t2", "--mode", "batch", "--gate", gate))
    wait_for((tmp_path / "started-t2").exists, "t2's batch to be gated on top of t1's")
    landers.append(project.spawn("land", "t3", "--mode", "batch", "--gate", gate))
    outs = [p.communicate(timeout=120) for p in landers]
    assert [p.returncode for p in landers] == [0, 0, 0], outs
    assert _runs(tmp_path) == 3  # one run per batch, no re-run
    assert _first_parents_pass(project)[:3] == ["t3 work", "t2 work", "t1 work"]


def test_a_conductor_killed_mid_gates_leaves_none_of_their_processes(project: Repo, tmp_path: Path) -> None:
    """Candidates gated side by side share one guardian: when the conductor dies (SIGKILL),
    it kills every gate's whole process group, background children included."""
    _tasks(project, 2)
    pids = tmp_path / "pids"
    gate = f"sleep 300 & echo $! >> {pids}; wait"  # a gate whose child outlives its shell if nobody kills it
    landers = [project.spawn("land", "t1", "--gate", gate)]
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 1, "t1's gate to start")
    landers.append(project.spawn("land", "t2", "--gate", gate))
    wait_for(lambda: len(pids.read_text().split()) == 2, "t2's gate to start beside it")
    children = [int(p) for p in pids.read_text().split()]
    for lander in landers:
        os.kill(lander.pid, signal.SIGKILL)
        lander.wait()
    wait_for(lambda: not any(pid_alive(p) for p in children), "both gates' children to be killed")


def test_commands_started_by_threads_at_once_share_one_guardian(tmp_path: Path) -> None:
    """Two guardians started by racing threads: the one dropped closes its pipe and kills
    every group it was told about.  One guardian, and every command still running."""
    import threading

    from worktree_par import guarded

    def guardians() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid() and b"groups, buf = set()" in cmdline:
                found.append(int(entry))
        return found

    old, guarded._shared = guarded._shared, guarded._Shared()
    fresh = guarded._shared
    runs: list[guarded.Guarded] = []
    start, done = threading.Barrier(8), threading.Event()

    def run() -> None:
        start.wait()
        runs.append(guarded.Guarded(["sleep", "30"], tmp_path, dict(os.environ)))
        done.wait()  # PR_SET_PDEATHSIG follows the thread that started the child: it stays

    threads = [threading.Thread(target=run) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(runs) == 8, "eight commands to start")
        mine = lambda: {fresh.proc.pid} if fresh.proc is not None else set()  # noqa: E731
        theirs = {old.proc.pid} if old.proc is not None else set()  # the worker's own, from earlier tests
        wait_for(lambda: set(guardians()) - theirs == mine(), "one guardian, and no other left")
        assert [r.poll() for r in runs] == [None] * 8
    finally:
        for r in runs:
            r.stop()
        done.set()
        for t in threads:
            t.join()
        if fresh.proc is not None:
            assert fresh.proc.stdin is not None
            fresh.proc.stdin.close()
            fresh.proc.wait()
        guarded._shared = old
