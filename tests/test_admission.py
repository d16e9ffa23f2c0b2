"""Admission control, gates, ports and warm worktrees (issue 3), with real processes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import Repo, wait_for


def _state_of(repo: Repo, name: str) -> str | None:
    """Task ``name``'s state in the registry as stored now (None while it has no entry)."""
    if not repo.state_file.exists():
        return None
    return next((t["state"] for t in repo.state()["tasks"] if t["name"] == name), None)


def _arrived(repo: Repo, gate: str, proc: subprocess.Popen[str]) -> Callable[[], bool]:
    """Has ``proc`` taken its place in line for ``gate`` (a ticket, waiting or holding), or
    already ended (then it had its turn)?"""
    return lambda: (
        proc.poll() is not None
        or any(t["pid"] == proc.pid for t in repo.wtp("gate", gate, "--status", "--json").json()["tickets"])
    )


def test_the_fourth_start_is_queued_and_starts_when_a_slot_frees(repo: Repo) -> None:
    for n in "abc":
        assert repo.wtp("start", n).code == 0
    out = repo.wtp("start", "d", "--json")
    assert out.code == 4  # accepted, not started
    d = out.json()
    assert (d["state"], d["path"], d["port"]) == ("queued", None, None)
    assert "wtp/d" not in repo.branches()
    human = repo.wtp("start", "e")
    assert (human.code, human.out) == (4, "")  # stdout stays for the path: 'cd "$(wtp start e)"' is safe
    assert human.err == "task 'e' is queued (place 2): waits because no slot is free: 3 of 3 taken\n"
    rm = repo.wtp("rm", "b")
    assert rm.code == 0
    assert "started queued task 'd'" in rm.err
    tasks = {t["name"]: t for t in repo.wtp("list", "--json").json()["tasks"]}
    assert tasks["d"]["state"] == "active" and Path(tasks["d"]["path"]).is_dir()
    assert tasks["d"]["port"] == 4101  # b's port, reused
    assert tasks["e"]["state"] == "queued"


def test_wait_blocks_until_admitted_and_times_out_with_exit_3(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    out = repo.wtp_proc("start", "b", "--wait", "--timeout", "0.5")
    assert out.code == 3
    assert (
        out.err.splitlines()[-1] == "wtp: timed out after 0.5s; task 'b' stays queued (no slot is free: 1 of 1 taken)"
    )
    waiter = repo.spawn("start", "c", "--wait", "--timeout", "60")
    wait_for(lambda: _state_of(repo, "c") == "queued", "'c' to join the queue")
    assert waiter.poll() is None
    assert repo.wtp("rm", "a").code == 0  # frees the slot: b is first in line

    # b is started by whoever looks first (here c's waiter, which then refuses an 'rm' of it
    # until its worktree is made): wait for that, as a user would read it in 'wtp list'.
    def started() -> bool:
        return any(t["name"] == "b" and t["state"] == "active" and not t.get("phase") for t in repo.state()["tasks"])

    wait_for(started, "'b' to be started in the freed slot")
    assert repo.wtp("rm", "b").code == 0  # and c gets the next one
    stdout, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, stderr
    assert stdout.splitlines()[-1] == str(repo.path.parent / "repo.worktrees" / "c")
    assert "waiting for a slot for 'c'" in stderr


def test_wait_sees_max_active_raised_in_the_config(repo: Repo) -> None:
    """Raising max_active writes nothing to the registry: the waiter reads the edited config."""
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    waiter = repo.spawn("start", "b", "--wait", "--timeout", "60")
    wait_for(lambda: _state_of(repo, "b") == "queued", "'b' to join the queue")
    repo.write(".wtp.toml", "max_active = 2\n")
    stdout, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, stderr
    assert stdout.splitlines()[-1] == str(repo.path.parent / "repo.worktrees" / "b")


def test_declared_path_collision_queues_and_names_the_earlier_task(repo: Repo) -> None:
    repo.wtp("start", "posts", "--touch", "content/posts/**")
    out = repo.wtp("start", "index", "--touch", "content/posts/index.md")
    assert (out.code, out.out) == (4, "")
    assert out.err.splitlines() == [
        "task 'index' is queued (place 1): waits because path content/posts/index.md ~ content/posts/** with task 'posts'"
    ]
    assert repo.wtp("start", "api", "--touch", "src/**").code == 0  # independent: starts
    assert [t["state"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["active", "queued", "active"]
    forced = repo.wtp("start", "index2", "--touch", "content", "--force")
    assert forced.code == 0
    assert "--force: started although path content ~ content/posts/** with task 'posts'" in forced.err


def test_resource_collision_and_fifo_among_queued_tasks(repo: Repo) -> None:
    repo.wtp("start", "deploy1", "--use", "deploy:prod")
    out = repo.wtp("start", "deploy2", "--use", "deploy:prod")
    assert out.code == 4 and "resource deploy:prod with task 'deploy1'" in out.err
    # a newcomer that collides with a queued task does not overtake it
    out3 = repo.wtp("start", "deploy3", "--use", "deploy")
    assert "deploy ~ deploy:prod with task 'deploy1'" in out3.err and "task 'deploy2'" in out3.err
    repo.wtp("rm", "deploy1")
    states = {t["name"]: t["state"] for t in repo.wtp("list", "--json").json()["tasks"]}
    assert states == {"deploy2": "active", "deploy3": "queued"}


def test_next_starts_what_can_run(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    repo.wtp("start", "b")
    assert repo.wtp("next").lines == ["nothing to start; 1 queued: b: no slot is free: 1 of 1 taken"]
    repo.write(".wtp.toml", "max_active = 2\n")
    out = repo.wtp("next")
    assert out.lines == [f"b\t{repo.path.parent / 'repo.worktrees' / 'b'}"]


def test_concurrent_starts_respect_the_cap(repo: Repo) -> None:
    procs = [repo.spawn("start", f"t{i}", "--json") for i in range(8)]
    for p in procs:
        p.communicate(timeout=120)
    assert sorted(p.returncode for p in procs) == [0] * 3 + [4] * 5  # started, or queued
    tasks = repo.wtp("list", "--json").json()["tasks"]
    assert sorted(t["state"] for t in tasks) == ["active"] * 3 + ["queued"] * 5
    assert len(repo.git("worktree", "list").splitlines()) == 4


# --- gates ----------------------------------------------------------------------------


def _gate_cmd(log: Path, tag: str, secs: float) -> list[str]:
    return [
        "sh",
        "-c",
        f'echo "start {tag} $(date +%s.%N)" >> {log}; sleep {secs}; echo "end {tag} $(date +%s.%N)" >> {log}',
    ]


def _intervals(log: Path) -> dict[str, tuple[float, float]]:
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        kind, tag, t = line.split()
        spans.setdefault(tag, [0.0, 0.0])[0 if kind == "start" else 1] = float(t)
    return {k: (v[0], v[1]) for k, v in spans.items()}


def test_holders_of_one_gate_never_overlap_and_run_in_arrival_order(repo: Repo, tmp_path: Path) -> None:
    log = tmp_path / "gate.log"
    procs = []
    for i in range(3):
        procs.append(repo.spawn("gate", "deploy:prod", "--", *_gate_cmd(log, f"g{i}", 0.4)))
        wait_for(_arrived(repo, "deploy:prod", procs[-1]), f"g{i} to arrive")  # arrival order g0, g1, g2
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    spans = sorted(_intervals(log).items(), key=lambda kv: kv[1][0])
    assert [k for k, _ in spans] == ["g0", "g1", "g2"]
    for (_, a), (_, b) in zip(spans, spans[1:]):
        assert a[1] <= b[0], "two holders of one gate overlapped"


def test_different_gates_run_side_by_side(repo: Repo, tmp_path: Path) -> None:
    log = tmp_path / "gate.log"
    procs = [repo.spawn("gate", f"db:{i}", "--", *_gate_cmd(log, f"g{i}", 1.0)) for i in range(3)]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    spans = list(_intervals(log).values())
    assert max(s for s, _ in spans) < min(e for _, e in spans), "different gates did not overlap"


def test_gate_exit_code_is_the_commands(repo: Repo) -> None:
    assert repo.wtp_proc("gate", "x", "--", "sh", "-c", "exit 5").code == 5


def test_a_killed_holder_neither_blocks_the_gate_nor_leaves_its_command_running(repo: Repo, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    holder = repo.spawn("gate", "deploy", "--", "sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    waiter = repo.spawn("gate", "deploy", "--timeout", "30", "--", "true")
    wait_for(_arrived(repo, "deploy", waiter), "the waiter to queue behind the holder")
    assert waiter.stderr is not None
    # Its first line says it waits: read before the holder is killed (its ticket joins a
    # moment before it says so; killed in between, the holder was gone before it looked).
    ready, _, _ = select.select([waiter.stderr], [], [], 30)
    first = waiter.stderr.readline() if ready else ""
    assert first.startswith("waiting for deploy (place 2): held by pid"), first
    assert waiter.poll() is None
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, first + err
    for _ in range(100):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the gate's command outlived its killed holder")


def test_gate_wait_times_out_with_exit_3(repo: Repo) -> None:
    holder = repo.spawn("gate", "g", "--", "sleep", "30")
    wait_for(
        lambda: any(
            t["pid"] == holder.pid and t["holds"] for t in repo.wtp("gate", "g", "--status", "--json").json()["tickets"]
        ),
        "the holder to hold g",
    )
    out = repo.wtp_proc("gate", "g", "--timeout", "0.3", "--", "true")
    assert out.code == 3 and "timed out after 0.3s waiting for g, held by pid" in out.err
    holder.kill()
    holder.wait()


# --- warm worktrees and trust -----------------------------------------------------------


def _warm_repo(repo: Repo) -> None:
    nm = repo.path / "node_modules"
    (nm / "left-pad").mkdir(parents=True)
    (nm / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    (nm / ".bin").mkdir()
    (nm / ".bin" / "left-pad").symlink_to("../left-pad/index.js")
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.commit(
        {
            ".wtp.toml": '[setup]\ncopy = ["node_modules", ".env", "package.json", "scratch"]\nrun = ["echo $WTP_TASK:$PORT > setup-ran.txt"]\n'
        }
    )


def test_setup_needs_trust_then_copies_and_runs(repo: Repo) -> None:
    _warm_repo(repo)
    out = repo.wtp("start", "a")
    assert out.code == 1
    assert (
        out.err
        == f"wtp: setup.run in {repo.path / '.wtp.toml'} runs commands you have not trusted yet (echo $WTP_TASK:$PORT > setup-ran.txt): review them, then run 'wtp trust'\n"
    )
    assert not repo.state_file.exists() or repo.state()["tasks"] == []
    assert repo.wtp("trust").lines == ["trusted setup.run: echo $WTP_TASK:$PORT > setup-ran.txt"]
    (repo.path / "scratch").mkdir()  # untracked, not ignored
    (repo.path / "scratch" / "notes.txt").write_text("mine\n")
    out = repo.wtp("start", "a")
    assert out.code == 0, out.err
    p = Path(out.lines[-1])
    assert (p / "setup-ran.txt").read_text() == "a:4100\n"
    said = [ln for ln in out.err.splitlines() if "not copying" in ln]
    assert said == [
        "setup: not copying 'package.json': git tracks it (tracked files come with the branch)",
        "setup: not copying 'scratch': it is untracked but not ignored by git (only ignored paths are copied): "
        "add it to .gitignore to have it copied, or commit it to have it come with the branch",
    ]
    assert not (p / "scratch").exists()
    link = p / "node_modules" / ".bin" / "left-pad"
    assert link.is_symlink() and os.readlink(link) == "../left-pad/index.js"
    copied = p / "node_modules" / "left-pad" / "index.js"
    orig = repo.path / "node_modules" / "left-pad" / "index.js"
    assert copied.stat().st_ino != orig.stat().st_ino
    copied.write_text("changed\n")
    assert orig.read_text() == "module.exports = 1;\n"
    assert (p / ".env").read_text() == "SECRET=1\n"
    assert repo.wtp("list", "--json").json()["tasks"][0]["setup"] == "done"
    # a changed command needs trust again, and says what is new
    repo.commit({".wtp.toml": '[setup]\nrun = ["make deps"]\n'})
    again = repo.wtp("start", "b")
    assert again.code == 1 and "(make deps)" in again.err


def test_failed_setup_is_marked_and_retried(repo: Repo) -> None:
    repo.commit({".wtp.toml": '[setup]\nrun = ["test -f ok || exit 3"]\n'})
    repo.wtp("trust")
    out = repo.wtp("start", "a")
    assert out.code == 0
    assert "setup of task 'a' failed: 'test -f ok || exit 3' exited 3" in out.err
    t = repo.wtp("list", "--json").json()["tasks"][0]
    assert (t["state"], t["setup"]) == ("active", "failed: 'test -f ok || exit 3' exited 3")
    log = repo.path / ".git" / "wtp" / "logs" / "setup-a.log"
    assert "$ test -f ok || exit 3" in log.read_text()
    Path(t["path"], "ok").write_text("")
    retry = repo.wtp("start", "a")
    assert retry.code == 0 and "resuming" in retry.err
    assert repo.wtp("list", "--json").json()["tasks"][0]["setup"] == "done"


def test_ports_are_unique_stable_and_reused(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 5\nport_base = 5000\n")
    for n in "abc":
        repo.wtp("start", n)
    repo.wtp("rm", "a")
    repo.wtp("start", "d")
    ports = {t["name"]: t["port"] for t in repo.wtp("list", "--json").json()["tasks"]}
    assert ports == {"b": 5001, "c": 5002, "d": 5000}


def test_wait_returns_the_task_a_land_started_when_its_declared_path_cleared(repo: Repo) -> None:
    """'wtp start --wait' needs no promotion of its own: the land that frees the path starts
    the waiting task, and the waiter returns it, active, with its worktree."""
    a = Path(repo.wtp("start", "a", "--touch", "src/shared.txt").out.strip())
    waiter = repo.spawn("start", "b", "--touch", "src/shared.txt", "--wait", "--timeout", "60", "--json")
    wait_for(lambda: _state_of(repo, "b") == "queued", "'b' to join the queue")
    assert waiter.poll() is None
    repo.commit({"src/shared.txt": "a\n"}, "a's change", cwd=a)
    landed = repo.wtp("land", "a", "--no-push")
    assert landed.code == 0, landed.err
    stdout, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, stderr
    b = json.loads(stdout)
    assert (b["name"], b["state"], b["touch"]) == ("b", "active", ["src/shared.txt"])
    assert b["path"] == str(repo.path.parent / "repo.worktrees" / "b")
    assert Path(b["path"], "src", "shared.txt").read_text() == "a\n"  # started from the base a landed on
    assert "waiting for a slot for 'b': path src/shared.txt with task 'a'" in stderr


def test_a_slot_freed_by_a_land_goes_to_the_task_queued_first_not_to_a_newcomer(repo: Repo, tmp_path: Path) -> None:
    """A landing task takes no slot: the task queued for it starts as the land begins (in the
    background), and a task started meanwhile queues behind it instead of overtaking it."""
    repo.write(".wtp.toml", "max_active = 1\n")
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    assert repo.wtp("start", "q1").code == 4
    gate = f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done"
    lander = repo.spawn("land", "a", "--gate", gate)
    try:
        wait_for(lambda: _state_of(repo, "q1") == "active", "'q1' to start as a's land began")
        assert _state_of(repo, "a") == "landing"
        late = repo.wtp("start", "q3")
        assert late.code == 4 and "no slot is free: 1 of 1 taken" in late.err, late.err
    finally:
        (tmp_path / "go").touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0 and "queued task 'q1' starts in the slot that is free, in the background" in err
    assert _state_of(repo, "q3") == "queued"


def test_a_newcomer_starts_the_tasks_queued_before_it_first(repo: Repo) -> None:
    """Slots freed with nothing to start the queue (max_active raised): a new start has the
    tasks queued before it started first, in the background and in order, and takes a slot
    only if one is left; it waits for none of their setups."""
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("start", "q1").code == 4
    assert repo.wtp("start", "q2").code == 4
    repo.write(".wtp.toml", "max_active = 3\n")
    out = repo.wtp("start", "q3")
    assert (out.code, out.out) == (4, ""), out.err
    assert "'q1', 'q2', queued before 'q3', start first, in the background (log: " in out.err
    assert "no slot is free: 3 of 3 taken" in out.err
    wait_for(lambda: [_state_of(repo, n) for n in ("q1", "q2")] == ["active", "active"], "q1 and q2 to start")
    assert _state_of(repo, "q3") == "queued"


def _held_at(step: str, hold: Path) -> dict[str, str]:
    return {"WTP_TEST_HOLD_AT": step, "WTP_TEST_HOLD_FILE": str(hold)}


def test_a_newcomer_that_read_the_registry_before_a_land_freed_a_slot_still_queues_behind(
    repo: Repo, tmp_path: Path
) -> None:
    """Review 26: 'wtp start x' read the registry (no slot free), then a's land began and freed
    a slot, and x's transaction came before the land's background 'wtp next': x took the slot
    ahead of q1.  It is decided in queue order inside its transaction now."""
    repo.write(".wtp.toml", "max_active = 1\n")
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    assert repo.wtp("start", "q1").code == 4
    h1, h2, go = tmp_path / "h1", tmp_path / "h2", tmp_path / "go"
    x = repo.spawn("start", "x", env=_held_at("start:before-decide", h1))
    lander = repo.spawn(
        "land", "a", "--gate", f"while [ ! -e {go} ]; do sleep 0.02; done", env=_held_at("promote:before", h2)
    )
    try:
        wait_for(lambda: h1.with_suffix(".reached").exists(), "x to have read the registry")
        wait_for(lambda: h2.with_suffix(".reached").exists(), "the land's background 'wtp next' to be held")
        assert _state_of(repo, "a") == "landing" and _state_of(repo, "q1") == "queued"
        h1.touch()  # x decides now, before the land's 'wtp next'
        out, err = x.communicate(timeout=60)
        assert (x.returncode, out) == (4, ""), err
        assert "'q1', queued before 'x', start first, in the background" in err
        wait_for(lambda: _state_of(repo, "q1") == "active", "q1 to start in the slot")
        assert _state_of(repo, "x") == "queued"
    finally:
        h1.touch()
        h2.touch()
        go.touch()
    assert lander.wait(timeout=60) == 0


def test_what_starts_in_a_freed_slot_is_what_the_land_says_when_a_base_is_gone(repo: Repo, tmp_path: Path) -> None:
    """Review 26: q1's --base was deleted while it waited; the land said q1 starts, but q1
    cannot, and q2 took the slot.  The forecast asks, as promote does, whether q1 can start."""
    repo.write(".wtp.toml", "max_active = 1\n")
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.git("branch", "feat")
    assert repo.wtp("start", "q1", "--base", "feat").code == 4
    assert repo.wtp("start", "q2").code == 4
    repo.git("branch", "-D", "feat")
    go = tmp_path / "go"
    lander = repo.spawn("land", "a", "--gate", f"while [ ! -e {go} ]; do sleep 0.02; done")
    try:
        wait_for(lambda: _state_of(repo, "q2") == "active", "q2 to start in the slot q1 cannot take")
    finally:
        go.touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "queued task 'q2' starts in the slot that is free" in err and "'q1' starts" not in err, err
    assert _state_of(repo, "q1") == "queued"
    note = next(t["note"] for t in repo.state()["tasks"] if t["name"] == "q1")
    assert note.startswith("cannot start: --base 'feat' names no branch") and note.endswith(
        "once that is fixed, 'wtp start q1' tries it again"
    ), note  # review 28: what to run was not said


def test_no_one_but_the_user_runs_an_untrusted_setup_of_a_queued_task(repo: Repo, tmp_path: Path) -> None:
    """Review 26: a committed change to setup.run, not trusted, was run for a queued task by
    the 'wtp next' a land starts (and by any promote): only 'wtp start' asked for trust."""
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.git("add", ".wtp.toml")
    repo.git("commit", "-q", "-m", "cap")
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    assert repo.wtp("start", "q1").code == 4
    pwned = tmp_path / "pwned"
    repo.write(".wtp.toml", f'max_active = 1\n[setup]\nrun = ["touch {pwned}"]\n')
    refused = repo.wtp_proc("start", "z")
    assert refused.code == 1 and "wtp trust" in refused.err
    landed = repo.wtp_proc("land", "a", "--gate", "true")
    assert landed.code == 0, landed.err
    assert "starts in the slot" not in landed.err  # nothing can start: nothing is said
    nxt = repo.wtp_proc("next")
    assert "setup.run" in nxt.err and "wtp trust" in nxt.err, nxt.err
    assert nxt.out == "nothing started; 1 queued\n"  # not q1's older note of a slot taken as well
    held = json.loads(repo.wtp("next", "--json").out)
    assert held["started"] == [] and [q["name"] for q in held["queued"]] == ["q1"], held
    assert held["queued"][0]["note"].startswith("setup.run in "), held  # why, not its older slot note
    assert any("wtp trust" in m for m in held["messages"]), held
    listed = {t["name"]: t for t in json.loads(repo.wtp("list", "--json").out)["tasks"]}
    assert listed["q1"]["problem"].startswith("waits for 'wtp trust': setup.run"), listed["q1"]
    assert not pwned.exists()
    assert _state_of(repo, "q1") == "queued"
    repo.wtp("trust")
    assert repo.wtp_proc("next").code == 0
    assert pwned.exists() and _state_of(repo, "q1") == "active"
    repo.write(".wtp.toml", f'max_active = 1\n[setup]\nrun = ["touch {pwned}-again"]\n')
    idle = repo.wtp_proc("next")  # nothing queued: nothing to say of trust
    assert (idle.out, idle.err) == ("nothing to start\n", ""), idle


def _occupy(repo: Repo, name: str) -> Path:
    """Task ``name``'s worktree path taken by a folder with a file: its start fails there."""
    where = repo.path.parent / f"{repo.path.name}.worktrees" / name
    where.mkdir(parents=True)
    (where / "precious.txt").write_text("mine\n")
    return where


def test_a_task_whose_start_fails_holds_nobody_back_and_waiters_do_not_spin(repo: Repo) -> None:
    """Review 27: q1's start kept failing (its worktree path is taken); every later start and
    'wtp next' gave q1 the free slot first, and a 'start --wait' retried it about 40 times a
    second, printing each failure.  A failed start waits for 'wtp start q1' to try it again."""
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("start", "q1").code == 4
    folder = _occupy(repo, "q1")
    repo.write(".wtp.toml", "max_active = 2\n")
    assert "queued task 'q1' cannot start" in repo.wtp("next").err
    x = repo.wtp("start", "x")
    assert x.code == 0, x.err  # the free slot, not q1's
    assert "'q1'" not in x.err
    assert "cannot start" not in repo.wtp("next").err  # not tried again behind the user's back
    waited = repo.wtp_proc("start", "y", "--wait", "--timeout", "1.5")
    assert waited.code == 3, waited.err
    assert len(waited.err.splitlines()) <= 4, waited.err
    assert (folder / "precious.txt").read_text() == "mine\n"
    (folder / "precious.txt").unlink()
    folder.rmdir()
    again = repo.wtp("start", "q1")
    assert again.code == 4 and "task 'q1' is queued again (place 1): waits because no slot is free" in again.err
    assert repo.wtp("rm", "x").code == 0  # its slot goes to q1, first in line again
    assert _state_of(repo, "q1") == "active" and _state_of(repo, "y") == "queued"


def test_a_retried_start_takes_its_place_in_line_and_does_not_overtake(repo: Repo, tmp_path: Path) -> None:
    """Review 27: 'wtp start q2', retrying a failed start, took the slot a's land freed ahead of
    q1, which could start on a's work and was queued first."""
    repo.write(".wtp.toml", "max_active = 1\n")
    p = Path(repo.wtp("start", "a", "--touch", "shared.txt").lines[-1])
    repo.commit({"shared.txt": "a\n"}, cwd=p)
    assert repo.wtp("start", "q1", "--touch", "shared.txt").code == 4
    assert repo.wtp("start", "q2").code == 4
    folder = _occupy(repo, "q2")
    repo.write(".wtp.toml", "max_active = 2\n")
    assert "queued task 'q2' cannot start" in repo.wtp("next").err  # q1 still collides with a
    (folder / "precious.txt").unlink()
    folder.rmdir()
    repo.write(".wtp.toml", "max_active = 1\n")
    hold, go = tmp_path / "hold", tmp_path / "go"
    lander = repo.spawn(
        "land", "a", "--gate", f"while [ ! -e {go} ]; do sleep 0.02; done", env=_held_at("promote:before", hold)
    )
    try:
        wait_for(lambda: hold.with_suffix(".reached").exists(), "the land's background 'wtp next' to be held")
        retry = repo.wtp("start", "q2")
        assert (retry.code, retry.out) == (4, ""), retry.err
        assert "task 'q2' is queued again (place 2)" in retry.err
        assert "'q1', queued before 'q2', start first, in the background" in retry.err
        wait_for(lambda: _state_of(repo, "q1") == "active", "q1 to start on a's work")
        assert _state_of(repo, "q2") == "queued"
    finally:
        hold.touch()
        go.touch()
    assert lander.wait(timeout=60) == 0


def test_a_forced_start_says_what_it_took(repo: Repo) -> None:
    """Review 27: 'wtp start x --force' took the slot q1 was to take, and said both that no
    slot was free ('2 of 2 taken' with one taken) and that q1 starts first."""
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("start", "q1").code == 4
    repo.write(".wtp.toml", "max_active = 2\n")
    x = repo.wtp("start", "x", "--force")
    assert x.code == 0, x.err
    assert "--force: started although no slot is free: 2 of 2 taken, 1 task queued before it starting in them" in x.err
    assert "start first" not in x.err and _state_of(repo, "q1") == "queued"


def test_a_failed_start_tried_again_while_its_cause_remains_stays_queued_and_nothing_of_the_users_is_touched(
    repo: Repo,
) -> None:
    """Review 28: 'wtp start q1' on a failed task whose folder is still taken left it 'active
    (creating)' holding a slot (or, with a branch checked out elsewhere, dropped it from the
    registry); it stays queued with the reason, and the slot goes to the next task."""
    repo.write(".wtp.toml", "max_active = 2\n")
    assert repo.wtp("start", "a").code == 0
    folder = _occupy(repo, "q1")
    out = repo.wtp("start", "q1")
    assert out.code == 1 and _state_of(repo, "q1") is None  # a new task: its start is undone, as before
    assert repo.wtp("start", "q1", "--base", "main").code == 1
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "q1").code == 4  # queued now; then its turn comes and its start fails
    repo.write(".wtp.toml", "max_active = 2\n")
    nxt = repo.wtp("next")
    assert "queued task 'q1' cannot start" in nxt.err
    again = repo.wtp("start", "q1")
    assert again.code == 1 and again.err.rstrip().endswith("; task 'q1' stays queued"), again.err
    q1 = next(t for t in repo.state()["tasks"] if t["name"] == "q1")
    assert q1["state"] == "queued" and q1["note"].startswith("cannot start: ")
    assert q1["note"].endswith("move it away, then run 'wtp start q1' again")
    assert (folder / "precious.txt").read_text() == "mine\n"
    doctor = repo.wtp("doctor")
    assert f"queued task 'q1' {q1['note']}" in doctor.out and "can start now" not in doctor.out
    assert repo.wtp("start", "x").code == 0  # the free slot
    (folder / "precious.txt").unlink()
    folder.rmdir()


def test_a_pass_whose_start_fails_hands_the_slot_on_and_a_waiter_for_it_stops(repo: Repo) -> None:
    """Review 28: when q1's start failed in the promote after 'wtp rm a', q2 was left queued
    ('1 of 1 taken' with none), and 'wtp start q1 --wait' waited forever."""
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("start", "q1").code == 4
    assert repo.wtp("start", "q2").code == 4
    folder = _occupy(repo, "q1")
    waiter = repo.spawn("start", "q1", "--wait", "--timeout", "60")
    assert waiter.stderr is not None
    said = [waiter.stderr.readline() for _ in range(2)]  # queued, then waiting: it is in its wait now
    assert said[-1].startswith("waiting for a slot for 'q1'"), said
    rm = repo.wtp("rm", "a")
    assert rm.code == 0, rm.err
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 1 and out == "", err
    assert err.splitlines()[-1].startswith("wtp: task 'q1' cannot start: ")
    assert _state_of(repo, "q2") == "active" and _state_of(repo, "q1") == "queued"
    assert (folder / "precious.txt").read_text() == "mine\n"


def test_a_worktree_of_the_users_own_at_a_tasks_path_is_not_taken_for_the_tasks(repo: Repo) -> None:
    """Review 29: a git worktree on another branch at the task's path counted as the task's:
    the failed start left the task 'active (creating)' on the user's folder, which a forced
    'wtp rm' then removed.  The start is undone; the user's worktree stays as it was."""
    where = repo.path.parent / f"{repo.path.name}.worktrees" / "n2"
    repo.git("worktree", "add", "-q", "-b", "mine", str(where), "main")
    (where / "notes.txt").write_text("mine\n")
    out = repo.wtp("start", "n2")
    assert out.code == 1 and "not of 'wtp/n2'" in out.err, out.err
    assert _state_of(repo, "n2") is None
    assert (where / "notes.txt").read_text() == "mine\n" and repo.git("branch", "--list", "mine").strip()
    assert repo.wtp("start", "x").code == 0  # no slot held by it


def test_the_start_behind_log_is_rotated_past_its_limit(repo: Repo) -> None:
    """The background starts' log is appended to on every land and start that starts queued
    tasks: past 1 MiB the last generation is kept as .log.1 and a new one begun."""
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("start", "q1").code == 4
    log = repo.path / ".git" / "wtp" / "logs" / "start-behind.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"x" * ((1 << 20) + 1))
    repo.write(".wtp.toml", "max_active = 2\n")
    assert "'q1', queued before 'q2', start first" in repo.wtp("start", "q2").err
    assert log.with_suffix(".log.1").stat().st_size == (1 << 20) + 1
    assert log.stat().st_size < 1000 and "'wtp start q2' found 'q1' able to start" in log.read_text()
