"""'wtp land A B ...': the tasks the landing child says landed at once are cleaned up side by
side, the parent's share here and the rest in helpers forked for it (issue 28: each removal
costs some 30 ms, and the command waited for them in turn).  Every task is still reported,
in order, when a helper dies or the command is stopped while one works.

To be sure a helper is forked, the test holds the base-follow lock: the parent's first
clean-up waits on it while the one push of the batch says all three tasks landed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from worktree_par import procs
from worktree_par.locks import Lock

from .conftest import Repo, wait_for
from .test_handoff import _states, _tasks
from .test_land_many import logged_land

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="helpers are forked only with two processors")

TASKS = ("t1", "t2", "t3")


@contextmanager
def _landing(
    r: Repo, tmp: Path, at: str, preexec_fn: Callable[[], object] | None = None
) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """'wtp land t1 t2 t3 --mode batch' started while the test holds the base-follow lock, the
    crash point land:helper set to ``at`` ("hold" or "kill"); once its parent waits for that
    lock in its first clean-up (all three landed by then), the lock is let go and, held there,
    a helper reached: the process, its stderr file (its stdout: the same with .out) and the
    hold file (touch it to go on)."""
    _tasks(r, *TASKS)
    hold = tmp / "hold"
    env = {"WTP_TEST_HOLD_AT": "land:helper", "WTP_TEST_HOLD_FILE": str(hold)} if at == "hold" else {}
    follow = Lock(r.path / ".git" / "wtp" / "follow.lock")
    follow.acquire()
    err_file = tmp / "err"
    lander = logged_land(
        r,
        [*TASKS, "--mode", "batch", "--gate", "./check.sh"],
        err_file,
        env or {"WTP_TEST_KILL_AT": "land:helper"},
        preexec_fn,
    )
    try:
        try:
            wait_for(lambda: "waiting for the base-follow lock" in err_file.read_text(), "a clean-up to wait")
            assert _states(r) == dict.fromkeys(TASKS, "landed")
        finally:
            follow.release()
        if env:
            wait_for(Path(f"{hold}.reached").exists, "a helper to be forked")
        yield lander, err_file, hold
    finally:
        if lander.poll() is None:
            lander.kill()
        lander.wait()


def _removed_in_order(out: str, tasks: tuple[str, ...] = TASKS) -> None:
    lines = out.splitlines()
    assert [line.split("'")[1] for line in lines if line.startswith("landed '")] == list(tasks), out
    assert [line.split("'")[1] for line in lines if line.startswith("removed task '")] == list(tasks), out


def _worktrees(r: Repo) -> int:
    return r.git("worktree", "list", "--porcelain").count("worktree ")


def test_tasks_that_landed_together_are_cleaned_up_by_a_helper_and_reported_in_order(
    project: Repo, tmp_path: Path
) -> None:
    with _landing(project, tmp_path, "hold") as (lander, err_file, hold):
        hold.touch()
        lander.wait(timeout=60)
        out = err_file.with_suffix(".out").read_text()
    assert lander.returncode == 0, err_file.read_text()
    _removed_in_order(out)
    assert _worktrees(project) == 1  # the main checkout alone
    beats = (
        project.path / ".git" / "wtp" / "beats"
    )  # the helpers and the parent end by os._exit: their heartbeats go too
    assert [b.name for b in beats.iterdir() if not procs.pid_alive(int(b.name.rsplit("-", 2)[1]))] == []


def test_a_helper_that_dies_leaves_its_share_to_the_parent(project: Repo, tmp_path: Path) -> None:
    with _landing(project, tmp_path, "kill") as (lander, err_file, _):
        lander.wait(timeout=60)
        out = err_file.with_suffix(".out").read_text()
    assert lander.returncode == 0, err_file.read_text()
    _removed_in_order(out)
    assert _worktrees(project) == 1


def test_ctrl_c_while_a_helper_works_stops_it_and_says_what_each_task_left(project: Repo, tmp_path: Path) -> None:
    with _landing(project, tmp_path, "hold") as (lander, err_file, _):
        lander.send_signal(signal.SIGINT)  # the command's pid alone, as a tool stopping it does
        lander.wait(timeout=60)
        out = err_file.with_suffix(".out").read_text()
    _stopped(project, lander, err_file, out)


def _ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell without job control starts 'cmd &'


@pytest.mark.parametrize(("sig", "ignored"), [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)])
def test_a_signal_while_the_parent_waits_for_a_helper_stops_the_helper_at_once(
    project: Repo, tmp_path: Path, sig: int, ignored: bool
) -> None:
    """The parent has said its own share and waits for the helper's reports (the helper held):
    a signal to the parent's pid alone stops the helper and the command at once (review 46:
    it waited for the helper's whole share), also when the command was started with Ctrl-C
    ignored, which the helper then ignores too."""
    with _landing(project, tmp_path, "hold", _ignore_ctrl_c if ignored else None) as (lander, err_file, _):
        out_file = err_file.with_suffix(".out")
        wait_for(lambda: "removed task 't2'" in out_file.read_text(), "the parent's own share to be said")
        lander.send_signal(sig)
        lander.wait(timeout=30)  # the helper is held until the test ends: only a stop ends it
        out = out_file.read_text()
    _stopped(project, lander, err_file, out)


def _stopped(r: Repo, lander: subprocess.Popen[str], err_file: Path, out: str) -> None:
    """The command stopped while a helper worked on t3: exit 130, every task said, t3's
    worktree kept and removable (nothing left held)."""
    err = err_file.read_text()
    assert lander.returncode == 130, err
    assert [line.split("'")[1] for line in out.splitlines() if line.startswith("landed '")] == list(TASKS), out
    assert "interrupted after task 't3' landed at " in out and "'wtp rm t3' removes it" in out, out
    assert _states(r) == dict.fromkeys(TASKS, "landed")
    kept = Path(r.wtp("path", "t3").lines[-1])
    assert kept.is_dir()
    assert r.wtp("rm", "t3").code == 0  # nothing left held: the helper was stopped, and waited for
    assert not kept.exists()


def test_what_a_helper_says_of_a_task_comes_with_that_tasks_report(project: Repo, tmp_path: Path) -> None:
    """t1 lands first and its clean-up is held; meanwhile t2 lands and t3's gate fails: the two
    are then settled together, t3 by a helper, and its gate's log tail is said right before
    its error line, after t2's report, not whenever the helper got to it (stdout and stderr
    read as a terminal shows them, in one stream)."""
    _tasks(project, "t1", "t2", "t3", broken="t3")
    go, hold = tmp_path / "go", tmp_path / "hold"
    gate = f'if [ "$WTP_TASK" != t1 ]; then while [ ! -e {go} ]; do sleep 0.02; done; fi; echo "gate of $WTP_TASK"; ./check.sh'
    env = {**os.environ, "WTP_TEST_HOLD_AT": "rm:before-worktree", "WTP_TEST_HOLD_FILE": str(hold)}
    with open(tmp_path / "out", "w") as both:
        lander = subprocess.Popen(
            [sys.executable, "-m", "worktree_par", "land", "t1", "t2", "t3", "--gate", gate],
            cwd=project.path,
            stdout=both,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(Path(f"{hold}.reached").exists, "t1's clean-up to be held")
        go.touch()
        wait_for(lambda: _states(project)["t3"] == "blocked" and _states(project)["t2"] == "landed", "t2 and t3")
        hold.touch()
        assert lander.wait(timeout=60) == 1
    finally:
        go.touch()
        hold.touch()
        if lander.poll() is None:
            lander.kill()
            lander.wait()
    lines = (tmp_path / "out").read_text().splitlines()
    t2 = lines.index("removed task 't2' (worktree and branch 'wtp/t2')")
    tail = next(i for i, line in enumerate(lines) if line.startswith("--- the last ") and "land-t3.log" in line)
    failed = next(i for i, line in enumerate(lines) if line.startswith("wtp: gate") and "'t3'" in line)
    assert t2 < tail < failed, lines
    assert "gate of t3" in lines[tail + 1 : failed], lines


def test_a_command_stopped_whole_and_continued_by_its_pid_continues_its_helper(project: Repo, tmp_path: Path) -> None:
    """Ctrl-Z stops the command's whole group, its helper included; a 'kill -CONT PID' (a
    supervisor's) reaches the parent alone, which passes it on to the helper as to the land,
    and to what else runs in its group (a git command, stopped with it) (review 47: the
    helper stayed stopped and the parent waited for it for ever; one run in ten still did
    while the parent's heartbeat thread could take the continue, which the main thread,
    blocked in its wait, then never handled)."""
    with _landing(project, tmp_path, "hold", os.setsid) as (lander, err_file, hold):
        _stop_group(lander.pid)
        os.kill(lander.pid, signal.SIGCONT)
        hold.touch()
        assert lander.wait(timeout=60) == 0, err_file.read_text()
        out = err_file.with_suffix(".out").read_text()
    _removed_in_order(out)


def _stop_group(pid: int) -> None:
    """Stop the group led by ``pid`` (as Ctrl-Z does) once its leader is seen stopped.  A
    leader caught starting a command cannot stop: the kernel holds it (state D) until its
    child, just forked (vfork) and stopped with the group before its exec, goes on; seen so,
    the group is continued whole and stopped again (README: continue the whole job)."""
    for _ in range(50):
        os.killpg(pid, signal.SIGSTOP)
        wait_for(lambda: procs.process_stopped(pid) or _held_by_a_stopped_child(pid), "the command to stop")
        if procs.process_stopped(pid):
            return
        os.killpg(pid, signal.SIGCONT)
        wait_for(lambda: not _held_by_a_stopped_child(pid), "the command's child to go on")
    raise AssertionError(f"the command (pid {pid}) never stopped")


def _held_by_a_stopped_child(pid: int) -> bool:
    """``pid`` waits, in state D, for a child of its that is stopped (a vfork before its exec)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError):
        return False
    return state == b"D" and any(procs.process_stopped(int(c)) for c in children)


def test_a_continue_to_the_command_alone_leaves_the_rest_of_its_group_stopped(project: Repo, tmp_path: Path) -> None:
    """What the parent continues, continued alone, is its own (the helper, the git commands
    below it), not every process of its group: a script's two lands in one group passed one
    continue back and forth, dozens a second, to everything in the group, and a process the
    script had stopped went on."""
    bystander = tmp_path / "bystander.pid"

    def session_with_a_bystander() -> None:  # (between fork and exec of the command)
        os.setsid()
        middle = os.fork()
        if middle == 0:  # a process of the group that is not the command's: its parent ends
            if os.fork() == 0:
                bystander.write_text(str(os.getpid()))
                os.execvp("sleep", ["sleep", "300"])
            os._exit(0)
        os.waitpid(middle, 0)

    with _landing(project, tmp_path, "hold", session_with_a_bystander) as (lander, err_file, hold):
        wait_for(bystander.exists, "the bystander to start")
        other = int(bystander.read_text())
        try:
            assert os.getpgid(other) == lander.pid
            _stop_group(lander.pid)
            wait_for(lambda: procs.process_stopped(other), "the bystander to stop")
            os.kill(lander.pid, signal.SIGCONT)
            hold.touch()
            assert lander.wait(timeout=60) == 0, err_file.read_text()
            assert procs.process_stopped(other)
        finally:
            os.kill(other, signal.SIGKILL)
    _removed_in_order(err_file.with_suffix(".out").read_text())


def _took_it(pid: int, sig: int) -> bool:
    """``sig`` is no longer pending and ``pid`` waits in its select again: its handler ran."""
    status = Path(f"/proc/{pid}/status").read_text()
    bit = 1 << (sig - 1)
    pending = any(
        int(line.split()[1], 16) & bit for line in status.splitlines() if line.startswith(("SigPnd", "ShdPnd"))
    )
    return not pending and "poll_schedule_timeout" in Path(f"/proc/{pid}/wchan").read_text()


def test_a_continue_to_the_command_leaves_what_its_gate_stopped_on_purpose_stopped(
    project: Repo, tmp_path: Path
) -> None:
    """The land's gate runs in a session of its own, which Ctrl-Z never stops: a process
    stopped there was stopped on purpose (a test suite checking how code copes with one).  A
    continue to the command does not reach it (review 48: the gate's own stopped child was
    continued, the gate failed, and its re-run's pass was recorded as a flaky red)."""
    _tasks(project, "t1")
    stopped, release, seen = tmp_path / "stopped", tmp_path / "release", tmp_path / "seen"
    gate = (
        f"sleep 300 & c=$!; kill -STOP $c; echo $c > {stopped}.tmp; mv {stopped}.tmp {stopped}; "
        f"while [ ! -f {release} ]; do sleep 0.05; done; cut -d' ' -f3 /proc/$c/stat > {seen}; kill -9 $c; ./check.sh"
    )
    err_file = tmp_path / "err"
    lander = logged_land(project, ["t1", "--gate", gate], err_file, None, os.setsid)
    try:
        wait_for(stopped.exists, "the gate to stop its own process")
        os.kill(lander.pid, signal.SIGCONT)
        wait_for(lambda: _took_it(lander.pid, signal.SIGCONT), "the command to take the continue")
        release.touch()
        assert lander.wait(timeout=60) == 0, err_file.read_text()
    finally:
        if lander.poll() is None:
            lander.kill()
            lander.wait()
    assert seen.read_text().strip() == "T"
    assert "flaky" not in err_file.read_text()


def test_a_continue_that_comes_while_ctrl_z_stops_the_land_leaves_the_command_running(
    project: Repo, tmp_path: Path
) -> None:
    """The parent, stopping the land for a Ctrl-Z (held there), gets a continue: a supervisor's
    stop and continue a millisecond apart (review 49).  It used that continue up and then
    stopped itself, with nothing left to continue it; now the land and the command go on."""
    _tasks(project, "t1")
    started, release, hold = tmp_path / "started", tmp_path / "release", tmp_path / "hold"
    gate = f"touch {started}; while [ ! -f {release} ]; do sleep 0.05; done; ./check.sh"
    err_file = tmp_path / "err"
    env = {"WTP_TEST_HOLD_AT": "land:suspend", "WTP_TEST_HOLD_FILE": str(hold)}
    lander = logged_land(project, ["t1", "--gate", gate], err_file, env, os.setsid)
    try:
        wait_for(started.exists, "the gate to start")
        child = int(Path(f"/proc/{lander.pid}/task/{lander.pid}/children").read_text().split()[0])
        os.kill(lander.pid, signal.SIGTSTP)
        wait_for(Path(f"{hold}.reached").exists, "the parent to stop the land")
        wait_for(lambda: procs.process_stopped(child), "the land to stop")
        os.kill(lander.pid, signal.SIGCONT)
        wait_for(lambda: not procs.process_stopped(child), "the land to go on")
        hold.touch()
        release.touch()
        assert lander.wait(timeout=60) == 0, err_file.read_text()
    finally:
        if lander.poll() is None:
            os.kill(lander.pid, signal.SIGCONT)
            lander.kill()
            lander.wait()
