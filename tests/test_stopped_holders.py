"""A named gate or the land queue held by a process stopped with Ctrl-Z (SIGSTOP, SIGTSTP):
its waiters say so and give up with exit 3, as a lock's do (README, Guarantees), instead of
saying 'held by ... for 0s' for ever; 'wtp queue' and 'wtp list' say it is stopped.  Real
processes, stopped and always resumed (SIGCONT in a finally)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from worktree_par import locks, procs
from worktree_par.gates import Gate
from worktree_par.land.request import QUEUE
from worktree_par.state import Store

from .conftest import Repo, wait_for

STOPPED = re.escape("(stopped: resume it with 'fg' or end it)")


def _resume(*pids: int) -> None:
    for pid in pids:
        if procs.pid_alive(pid):
            os.kill(pid, signal.SIGCONT)


def _ctrl_z_between_writes(r: Repo, lander: subprocess.Popen[str], conductor: int) -> None:
    """Ctrl-Z of a 'wtp land' conducting the queue, at a moment it holds neither the state lock
    nor the queue's ticket lock (stopped holding one, every command rightly waits for that
    lock instead, and gives up on it as on any lock with a stopped holder)."""
    held = [Store(r.path / ".git").lock(), Gate(Store(r.path / ".git"), QUEUE).meta]
    while True:
        lander.send_signal(signal.SIGTSTP)  # what the terminal sends the command on Ctrl-Z
        wait_for(lambda: procs.process_stopped(lander.pid) and procs.process_stopped(conductor), "both to stop")
        free = [lock for lock in held if lock.try_acquire()]
        for lock in free:
            lock.release()
        if len(free) == len(held):
            return
        _resume(lander.pid, conductor)


def test_a_waiter_behind_a_stopped_gate_holder_says_so_and_gives_up_with_exit_3(repo: Repo, tmp_path: Path) -> None:
    held = tmp_path / "held"
    holder = repo.spawn("gate", "dep", "--", "sh", "-c", f"touch {held}; sleep 60", new_session=True)
    try:
        wait_for(held.exists, "the gate to be held")
        os.kill(holder.pid, signal.SIGSTOP)
        wait_for(lambda: procs.process_stopped(holder.pid), "the holder to stop")
        out = repo.wtp_proc("gate", "dep", "--", "touch", str(tmp_path / "ran"))
        who = re.escape(f"pid {holder.pid} (wtp gate dep -- sh -c 'touch {held}; sleep 60'), for ") + r"\d+s " + STOPPED
        assert out.code == 3, out.err
        assert re.fullmatch(
            f"waiting for dep \\(place 2\\): held by {who}\n"
            f"wtp: dep is held by {who}; nothing else can proceed until then\n",
            out.err,
        ), out.err
        assert not (tmp_path / "ran").exists()
        # the waiter left the queue: only the stopped holder is in it
        tickets = repo.wtp("gate", "dep", "--status", "--json").json()["tickets"]
        assert [(t["pid"], t["holds"]) for t in tickets] == [(holder.pid, True)]
    finally:
        _resume(holder.pid)
        os.killpg(holder.pid, signal.SIGTERM)
        # (under load its exit has taken 25-30 s, once past 30: carried in the closing note)
        holder.wait(timeout=90)
    assert repo.wtp_proc("gate", "dep", "--", "true").code == 0  # nothing needs a manual unlock


def test_a_plain_lander_behind_a_stopped_conductor_exits_3_and_its_task_is_active_again(
    project: Repo, tmp_path: Path
) -> None:
    for name in ("t1", "t2"):
        p = Path(project.wtp("start", name).lines[-1])
        project.commit({f"{name}.txt": "x\n"}, f"{name} work", cwd=p)
    started, release = tmp_path / "started", tmp_path / "release"
    gate = f"touch {started}; while [ ! -f {release} ]; do sleep 0.05; done; ./check.sh"
    lander = project.spawn("land", "t1", "--gate", gate)
    wait_for(started.exists, "t1's gate to start")
    # the conductor says it gates once the gate runs: stopped before that, it would say nothing
    wait_for(lambda: project.wtp("queue", "--json").json()["entries"][0]["gate"].startswith("gating"), "'gating'")
    holder = next(t["holder"] for t in project.state()["tasks"] if t["name"] == "t1")
    conductor, cmd = holder["pid"], holder["cmd"]  # the command line as recorded, cut at 200 characters
    tip = project.git("rev-parse", "wtp/t2")
    main = project.git("rev-parse", "origin/main")
    try:
        _ctrl_z_between_writes(project, lander, conductor)
        out = project.wtp_proc("land", "t2", "--gate", "./check.sh")
        assert cmd.startswith("wtp land t1 --gate 'touch ")
        who = re.escape(f"task 't1', pid {conductor} ({cmd}), for ") + r"\d+s " + STOPPED
        assert out.code == 3, out.err
        assert out.out == ""
        assert re.fullmatch(
            f"waiting for the land queue \\(place 2\\): held by {who}\n"
            f"wtp: the land queue is held by {who}; nothing else can proceed until then\n",
            out.err,
        ), out.err
        # as a lander that timed out: its task is active again, untouched, and out of the queue
        (t2,) = [t for t in project.wtp("list", "--json").json()["tasks"] if t["name"] == "t2"]
        assert (t2["state"], t2["note"], t2["queue_place"], t2["problem"]) == ("active", None, None, None)
        assert project.git("rev-parse", "wtp/t2") == tip
        # 'wtp queue' and 'wtp list' do not show the stopped conductor as if it were gating
        (entry,) = project.wtp("queue", "--json").json()["entries"]
        assert (entry["task"], entry["pid"]) == ("t1", conductor)
        assert re.fullmatch(r"gating \d+s " + STOPPED, entry["gate"]), entry
        (t1,) = [t for t in project.wtp("list", "--json").json()["tasks"] if t["name"] == "t1"]
        assert t1["problem"] == f"landing by pid {conductor}, which is stopped: resume it with 'fg' or end it"
    finally:  # never leave this test's processes stopped
        _resume(lander.pid, conductor)
        release.touch()
    lander_out, lander_err = lander.communicate(timeout=60)
    assert lander.returncode == 0, lander_err
    assert lander_out.splitlines()[0].startswith("landed 't1' at ")
    assert project.git("rev-parse", "origin/main") != main
    again = project.wtp_proc("land", "t2", "--gate", "./check.sh")
    assert again.code == 0, again.err


def test_a_waiter_whose_ticket_was_torn_away_names_the_holder_not_itself(repo: Repo, tmp_path: Path) -> None:
    """Found by review: after a torn ticket file, a waiter said the gate was held by itself."""
    gate = Gate(Store(repo.path / ".git"), "dep")
    gate.acquire()
    said = tmp_path / "said"
    try:
        with open(said, "w") as err:
            waiter = subprocess.Popen(
                [sys.executable, "-m", "worktree_par", "gate", "dep", "--", "true"],
                cwd=repo.path,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        wait_for(lambda: "(place 2)" in said.read_text(), "the waiter to say its place")
        gate.file.write_text(gate.file.read_text()[:40])  # torn: both tickets are lost
        wait_for(lambda: "(place 1)" in said.read_text(), "the waiter to queue again")
    finally:
        gate.release()
    assert waiter.wait(timeout=60) == 0
    me = re.escape(f"pid {os.getpid()} ({locks.me().cmd}), for ") + r"\d+s"
    assert re.fullmatch(
        f"waiting for dep \\(place 2\\): held by {me}\nwaiting for dep \\(place 1\\): held by {me}\n", said.read_text()
    ), said.read_text()
