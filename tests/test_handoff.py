"""A foreground 'wtp land' returns once its own task is landed or blocked, even when it
conducts the queue: the conductor goes on in the background for the tasks stacked behind
it (issue 28).  Real landers, real gates that wait on files the test writes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest

from worktree_par import procs

from .conftest import Repo, queued_landers, wait_for

HANDED = re.compile(r"the land queue goes on for 't2' in the background \(pid (\d+), log: (\S+)\)")


def _tasks(r: Repo, *names: str, broken: str = "") -> None:
    for name in names:
        p = Path(r.wtp("start", name).lines[-1])
        r.commit({f"{name}.txt": "x\n", **({"BROKEN": "yes\n"} if name == broken else {})}, f"{name} work", cwd=p)


def _stacked(r: Repo, gate: str, *first: str, **popen: Any) -> list[subprocess.Popen[str]]:
    """t1 and t2 join the queue while it is held, in that order: t1's lander (with the
    options ``first``, started with ``popen``'s arguments) conducts both."""

    def spawn(name: str) -> subprocess.Popen[str]:
        if name != "t1" or not (first or popen):
            return r.spawn("land", name, "--gate", gate)
        argv = [sys.executable, "-m", "worktree_par", "land", "t1", "--gate", gate, *first]
        return subprocess.Popen(argv, cwd=r.path, text=True, **{"stdout": PIPE, "stderr": PIPE, **popen})

    return queued_landers(r, ["t1", "t2"], spawn=spawn)


def _gone(pid: int) -> bool:
    return not procs.pid_alive(pid) or procs.dying(pid)  # a zombie waits for init to reap it


def _states(r: Repo) -> dict[str, str]:
    return {t["name"]: t["state"] for t in r.wtp("list", "--all", "--json").json()["tasks"]}


def test_the_conductors_lander_returns_with_its_task_while_the_queue_goes_on(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    release, started = tmp_path / "release", tmp_path / "t2-started"
    gate = (
        f'if [ "$WTP_TASK" = t2 ]; then touch {started}; while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    )
    t1, t2 = _stacked(project, gate)
    try:
        out, err = t1.communicate(timeout=60)  # while t2's gate still waits for the file
        assert t1.returncode == 0, err
        assert started.exists() and not release.exists() and t2.poll() is None
        project.git("fetch", "-q", "origin")
        landed = project.git("rev-parse", "origin/main")
        lines = out.splitlines()
        assert lines[:2] == [f"landed 't1' at {landed}", "removed task 't1' (worktree and branch 'wtp/t1')"]
        handed = HANDED.fullmatch(lines[2])
        assert handed is not None and len(lines) == 3, out
        conductor, log = int(handed[1]), Path(handed[2])
        assert conductor != t1.pid and not _gone(conductor)  # the rest is landed by the lander's child
        assert _states(project) == {"t1": "landed", "t2": "landing"}
        assert not (project.path.parent / "repo.worktrees" / "t1").exists()
        entries = project.wtp("queue", "--json").json()["entries"]
        assert [e["task"] for e in entries] == ["t1", "t2"] and entries[0]["pid"] == conductor
        assert entries[0]["gate"] == "landed; conducting the rest" and entries[1]["gate"].startswith("gating")
    finally:
        release.write_text("go\n")
    out2, err2 = t2.communicate(timeout=60)
    assert t2.returncode == 0, err2
    assert out2.splitlines()[0].startswith("landed 't2' at ")
    wait_for(lambda: _gone(conductor), "the background conductor to exit once t2 is landed")
    assert (
        log.read_text().splitlines()[0] == "t1: landed or blocked; its lander returned, this process conducts the rest"
    )
    assert project.git("log", "--format=%s", "-2", "origin/main").splitlines() == ["t2 work", "t1 work"]
    assert _states(project) == {"t1": "landed", "t2": "landed"}


def test_a_conductor_blocked_by_its_own_red_gate_returns_while_the_next_is_gated(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2", broken="t1")
    release = tmp_path / "release"
    gate = f'if [ "$WTP_TASK" = t2 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    t1, t2 = _stacked(project, gate)
    try:
        _, err = t1.communicate(timeout=60)
        assert t1.returncode == 1, err
        assert "gate './check.sh' exited 1 on the candidate of 't1'" in err.replace(gate, "./check.sh"), err
        assert t2.poll() is None and _states(project) == {"t1": "blocked", "t2": "landing"}
    finally:
        release.write_text("go\n")
    out2, err2 = t2.communicate(timeout=60)
    assert t2.returncode == 0, err2
    assert "rebuilt without 't1', which was blocked" in out2
    project.git("fetch", "-q", "origin")
    assert project.git("log", "-1", "--format=%s", "origin/main") == "t2 work"


def test_ctrl_c_to_the_lander_alone_reaches_its_land_once(project: Repo, tmp_path: Path) -> None:
    """SIGINT to the pid the caller started (an agent cancelling its command): the land
    behind it is withdrawn, the base untouched, and no process of it is left."""
    _tasks(project, "t1")
    started = tmp_path / "started"
    lander = project.spawn("land", "t1", "--gate", f"touch {started}; sleep 300")
    wait_for(started.exists, "t1's gate to start")
    holder = next(t["holder"]["pid"] for t in project.state()["tasks"] if t["name"] == "t1")
    assert holder != lander.pid  # the land runs in the command's child
    lander.send_signal(signal.SIGINT)
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 130, err
    assert "interrupted" in err.splitlines()[-1]
    wait_for(lambda: _gone(holder), "the land's process to end")
    assert _states(project) == {"t1": "active"}
    project.git("fetch", "-q", "origin")
    assert project.git("log", "-1", "--format=%s", "origin/main") == "the test"


def _held_gate(tmp: Path) -> tuple[str, Path]:
    """A gate that holds t2's candidate until the test writes the release file."""
    release = tmp / "release"
    return (
        f'echo gate-of-"$WTP_TASK"; if [ "$WTP_TASK" = t2 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh',
        release,
    )


def test_what_the_conductor_lands_after_its_lander_returned_is_not_bound_by_that_landers_timeout(
    project: Repo, tmp_path: Path
) -> None:
    _tasks(project, "t1", "t2")
    gate, release = _held_gate(tmp_path)
    t1, t2 = _stacked(project, gate, "--timeout", "2")
    t1.communicate(timeout=60)
    assert t1.returncode == 0
    until = time.monotonic() + 3
    wait_for(lambda: time.monotonic() > until, "t1's --timeout to have passed")  # the deadline is what is tested
    release.write_text("go\n")
    _, err = t2.communicate(timeout=60)
    assert t2.returncode == 0, err
    log = project.path / ".git" / "wtp" / "logs" / "land-conductor-t1.log"
    wait_for(lambda: len(log.read_text().splitlines()) == 2, "the conductor to log t2's outcome")
    project.git("fetch", "-q", "origin")
    assert log.read_text().splitlines() == [
        "t1: landed or blocked; its lander returned, this process conducts the rest",
        f"'t2' landed at {project.git('rev-parse', 'origin/main')[:12]}",  # each outcome, for whoever reads it later
    ]


def test_the_callers_other_descriptors_are_closed_when_the_command_returns(project: Repo, tmp_path: Path) -> None:
    """A caller that waits for EOF on a pipe it handed the command (a harness tracking its
    process tree, a jobserver) is not held by the background conductor."""
    _tasks(project, "t1", "t2")
    gate, release = _held_gate(tmp_path)
    r, w = os.pipe()
    try:
        t1, t2 = _stacked(project, gate, pass_fds=(w,))
        os.close(w)
        t1.communicate(timeout=60)
        assert t1.returncode == 0 and t2.poll() is None
        assert os.read(r, 1) == b""  # EOF: nobody holds the write end any more, though t2's land goes on
    finally:
        os.close(r)
        release.write_text("go\n")
    t2.communicate(timeout=60)
    assert t2.returncode == 0


_MANY_FILES_THEN_LAND = """
import os, sys
null = os.open(os.devnull, os.O_RDONLY)
for fd in range(3, 1200):  # every descriptor below 1200 open, as a caller with many files open leaves them
    if fd != null:
        os.dup2(null, fd)
os.execv(sys.executable, [sys.executable, "-m", "worktree_par", "land", *sys.argv[1:]])
"""


@pytest.mark.skipif(
    __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[0] < 1300, reason="needs 1300 open files"
)
def test_a_caller_that_hands_the_command_over_a_thousand_files_gets_its_land(project: Repo, tmp_path: Path) -> None:
    """The waiting parent's pipes then have numbers select() cannot take (FD_SETSIZE): it waits
    with poll (review 48: 'internal error (ValueError: filedescriptor out of range in
    select())', the land child dying with it, tasks left 'landing')."""
    _tasks(project, "t1", "t2")
    out = subprocess.run(
        [sys.executable, "-c", _MANY_FILES_THEN_LAND, "t1", "t2", "--gate", "sleep 0.5; ./check.sh"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert [t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]] == ["landed", "landed"]


def test_a_gate_gets_no_terminal_input_and_follow_shows_its_output_once(project: Repo, tmp_path: Path) -> None:
    """The gates the conductor started keep running after its lander returned: one of them
    must not read what the user types next.  --follow streams the conductor's own gate once."""
    _tasks(project, "t1", "t2")
    gate, release = _held_gate(tmp_path)
    gate = f"cat > {tmp_path}/stdin-of-$WTP_TASK; {gate}"
    t1, t2 = _stacked(project, gate, "--follow", stdin=PIPE)  # a stdin that stays open and silent
    try:
        t1.wait(timeout=60)  # its output is a few lines: the pipes hold it
        assert t1.stdin is not None and t1.stderr is not None
        t1.stdin.close()
        err = t1.stderr.read()
        assert t1.returncode == 0, err
        assert err.splitlines().count("gate-of-t1") == 1, err
        assert (tmp_path / "stdin-of-t1").read_text() == ""
    finally:
        release.write_text("go\n")
    t2.communicate(timeout=60)
    assert t2.returncode == 0


def test_ctrl_z_stops_the_land_with_the_command_and_fg_resumes_both(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1")
    started, release = tmp_path / "started", tmp_path / "release"
    lander = project.spawn("land", "t1", "--gate", f"touch {started}; while [ ! -f {release} ]; do sleep 0.05; done")
    wait_for(started.exists, "t1's gate to start")
    child = next(t["holder"]["pid"] for t in project.state()["tasks"] if t["name"] == "t1")
    try:
        lander.send_signal(signal.SIGTSTP)  # what the terminal sends the command on Ctrl-Z
        wait_for(lambda: procs.process_stopped(lander.pid) and procs.process_stopped(child), "both to stop")
        lander.send_signal(signal.SIGCONT)  # 'fg'
        wait_for(lambda: not procs.process_stopped(child), "the land to go on")
    finally:  # never leave this test's processes stopped
        for pid in (lander.pid, child):
            if procs.pid_alive(pid):
                os.kill(pid, signal.SIGCONT)
        release.write_text("go\n")
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert out.splitlines()[0].startswith("landed 't1' at ")


def test_a_caller_that_ignores_sigchld_does_not_make_a_red_gate_green(project: Repo) -> None:
    """With SIGCHLD ignored (inherited across exec), the kernel reaps children itself and
    every exit status reads 0: the red gate would pass and the task 'land'."""
    _tasks(project, "t1", broken="t1")
    ignored = subprocess.run(
        [sys.executable, "-m", "worktree_par", "land", "t1", "--gate", "./check.sh"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
    )
    assert ignored.returncode == 1, ignored.stderr
    assert "gate './check.sh' exited 1 on the candidate of 't1'" in ignored.stderr
    assert _states(project) == {"t1": "blocked"}
    project.git("fetch", "-q", "origin")
    assert project.git("log", "-1", "--format=%s", "origin/main") == "the test"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_a_waiting_lander_withdraws_its_task(project: Repo, sig: signal.Signals) -> None:
    """A tool that cancels a command with SIGTERM, or the terminal it ran in closed (SIGHUP):
    the land is withdrawn as by Ctrl-C, not left 'landing' with nobody landing it (or, once
    a conductor had stacked it, published with nobody to clean up after it)."""
    _tasks(project, "t1")
    ended: list[tuple[str, str]] = []

    def cancel(landers: list[subprocess.Popen[str]]) -> None:  # while t1 waits in the held queue
        landers[0].send_signal(sig)
        ended.append(landers[0].communicate(timeout=60))

    (lander,) = queued_landers(project, ["t1"], "--gate", "./check.sh", during=cancel)
    err = ended[0][1]
    assert lander.returncode == 130, err
    assert err.splitlines()[-2:] == [
        "interrupted: 'main' untouched by this land, task 't1' is active again",
        "wtp: interrupted",
    ]
    assert _states(project) == {"t1": "active"}


def test_the_conductors_lander_returns_before_a_queued_tasks_setup_runs(project: Repo, tmp_path: Path) -> None:
    """t1's landing frees the slot t3 waits for: the conductor starts t3, whose setup takes
    as long as the test says, after telling t1's lander, which returns at once."""
    release, gate_go = tmp_path / "setup-go", tmp_path / "gate-go"
    setup = f'if [ "$WTP_TASK" = t3 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi'
    project.commit({".wtp.toml": f"max_active = 2\n[setup]\nrun = [{json.dumps(setup)}]\n"}, "setup for t3")
    project.git("push", "-q", "origin", "main")
    assert project.wtp("trust").code == 0
    _tasks(project, "t1", "t2")
    assert project.wtp("start", "t3").code == 4  # queued for a slot
    t1, t2 = _stacked(project, f'if [ "$WTP_TASK" = t2 ]; then while [ ! -f {gate_go} ]; do sleep 0.05; done; fi')
    try:
        out, err = t1.communicate(timeout=60)  # while t3's setup still waits
        assert t1.returncode == 0, err
        assert out.splitlines()[0].startswith("landed 't1' at ") and not release.exists()
    finally:
        release.write_text("go\n")
        gate_go.write_text("go\n")
    assert t2.communicate(timeout=60) and t2.returncode == 0


def test_a_task_started_again_under_a_landed_name_is_stacked_by_the_running_conductor(
    project: Repo, tmp_path: Path
) -> None:
    """The conductor knew 't2' by name: a new 't2' (another task, started after the first
    landed) waited for the conductor to end before it was even built."""
    _tasks(project, "t1", "t2", "t3")
    release = tmp_path / "release"
    gate = f'if [ "$WTP_TASK" = t3 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    t1, t2, t3 = queued_landers(project, ["t1", "t2", "t3"], "--gate", gate)
    try:
        for lander in (t1, t2):
            assert lander.wait(timeout=60) == 0, lander.communicate()[1]
        p = Path(project.wtp("start", "t2").lines[-1])  # the name is free again: a new task
        project.commit({"t2-again.txt": "x\n"}, "t2 again", cwd=p)
        again = project.spawn("land", "t2", "--gate", gate)
        gated = lambda: [e["gate"] for e in project.wtp("queue", "--json").json()["entries"] if e["task"] == "t2"]  # noqa: E731
        wait_for(
            lambda: any(g.startswith("gating") for g in gated()),
            "the conductor to gate the new t2 while t3's gate waits",
        )
        assert t3.poll() is None and again.poll() is None
    finally:
        release.write_text("go\n")
    for lander in (t3, again):
        assert lander.wait(timeout=60) == 0, lander.communicate()[1]
    assert project.git("log", "--format=%s", "-4", "origin/main").splitlines() == [
        "t2 again",
        "t3 work",
        "t2 work",
        "t1 work",
    ]
