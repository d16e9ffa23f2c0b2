"""A Ctrl-C whose KeyboardInterrupt is raised inside a finalizer is lost by Python ("Exception
ignored in ..."); the loops a land waits in look at the signals counted since it began, so a
single Ctrl-C always stops it (CI once waited 120 s for a land whose Ctrl-C came while a
collected HTTP response was being closed)."""

from __future__ import annotations

import functools
import gc
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from worktree_par import interrupts, procs

from .conftest import Repo, wait_for
from .test_queue import _tasks


@pytest.fixture()
def handlers() -> Iterator[None]:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        interrupts._armed.clear()  # this test runner's later in-process commands are no land of ours


class _SignalsWhileCollected:
    """An object whose finalizer is running when the signal's handler runs."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next check, still inside this finalizer
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_a_finalizer_swallowed_is_acted_on_at_the_next_check(handlers: None) -> None:
    interrupts.as_ctrl_c()
    interrupts.arm()
    seen = len(interrupts.SEEN)
    _SignalsWhileCollected()  # collected at once: the KeyboardInterrupt is raised in __del__, and lost
    gc.collect()
    assert len(interrupts.SEEN) == seen + 1  # the signal came, and nothing was raised here
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    interrupts.check()  # acted on once: the clean-up that follows is not cut short again


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_check_inside_a_clean_up_block_nor_for_a_signal_before_arm(handlers: None) -> None:
    interrupts.as_ctrl_c()
    _SignalsWhileCollected()
    interrupts.arm()  # the land begins after it: not its to act on
    interrupts.check()
    _SignalsWhileCollected()
    with interrupts.finishing():
        interrupts.check()  # the clean-up of an interrupt goes on


def _signalled_during_clean_up(handling: BaseException) -> None:
    try:
        raise handling
    except BaseException:
        with interrupts.finishing():
            os.kill(os.getpid(), signal.SIGINT)  # taken by the block's own handler, at once


def test_a_first_ctrl_c_during_a_failures_clean_up_is_delivered_after_it(handlers: None) -> None:
    """Review 14: a clean-up block run for a failure (a forge call that failed while the land
    waited in its queue) dropped the first and only Ctrl-C, and the background lander went on
    to its next land.  It now waits for the block's end and is then delivered."""
    interrupts.as_ctrl_c()
    seen = len(interrupts.SEEN)
    with pytest.raises(KeyboardInterrupt):
        _signalled_during_clean_up(ValueError("the forge answered 401"))
    assert len(interrupts.SEEN) == seen + 1  # counted: the background lander stops after this land


def test_a_second_ctrl_c_during_a_ctrl_cs_clean_up_is_dropped(handlers: None) -> None:
    interrupts.as_ctrl_c()
    seen = len(interrupts.SEEN)
    _signalled_during_clean_up(KeyboardInterrupt())  # its user already asked, and is being answered
    assert len(interrupts.SEEN) == seen


def test_a_land_run_in_the_callers_process_gives_its_signal_handlers_back(project: Repo, handlers: None) -> None:
    """Review 14: a land run in-process (a test runner, a tool importing wtp) left its own
    Ctrl-C handler installed in its caller for good, and a wait armed."""

    def mine(_sig: int, _frame: object) -> None:
        pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, mine)
    _tasks(project, 1)
    out = project.wtp("land", "t1", "--gate", "./check.sh")
    assert out.code == 0, out.err
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == [mine, mine, mine]
    assert not interrupts._armed


def test_ctrl_c_to_a_lander_whose_task_is_being_published_says_so_and_a_second_one_ends_the_wait(
    project: Repo, tmp_path: Path
) -> None:
    """Review 14: t2 is being published together with t1 by t1's conductor when its lander gets
    Ctrl-C.  It cannot be withdrawn then: the lander says at once that it waits to tell whether
    it landed; a second Ctrl-C ends that wait with a true line (before: a minute of silence, and
    the second Ctrl-C left only 'wtp: interrupted')."""
    r = project
    hold, release = tmp_path / "hold", tmp_path / "release"
    # Both pass, t2's gate ending before t1's (t2 holds a lock for its whole run, which t1's
    # waits for), so that t1's conductor publishes them together: t2 is being published.
    lock, locked = tmp_path / "t2.lock", tmp_path / "t2.locked"
    take = f"{sys.executable} -c 'import fcntl, sys; fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX)'"
    (tmp_path / "gate.sh").write_text(
        f'if [ "$WTP_TASK" = t2 ]; then exec 9>{lock}; {take} 9; touch {locked}; fi\n'
        f"until [ -e {release} ]; do sleep 0.05; done\n"
        f'if [ "$WTP_TASK" = t1 ]; then exec 8<{lock}; {take} 8; fi\n'
        "exec ./check.sh\n"
    )
    gate = f"sh {tmp_path / 'gate.sh'}"
    _tasks(r, 2)
    t1 = r.spawn(
        "land", "t1", "--gate", gate, env={"WTP_TEST_HOLD_AT": "land:before-publish", "WTP_TEST_HOLD_FILE": str(hold)}
    )
    err2 = tmp_path / "t2.err"
    try:
        wait_for(lambda: (r.path / ".git/wtp/logs/land-t1.log").exists(), "t1's gate")
        with open(err2, "w") as f:
            t2 = subprocess.Popen(
                [sys.executable, "-m", "worktree_par", "land", "t2", "--gate", gate],
                cwd=r.path,
                stdout=subprocess.DEVNULL,
                stderr=f,
                start_new_session=True,
            )
        wait_for(locked.exists, "t2 stacked on t1, its gate started")
        release.touch()
        wait_for(Path(f"{hold}.reached").exists, "t1 and t2 about to be published together")
        os.kill(t2.pid, signal.SIGINT)
        wait_for(lambda: "is being published: waiting" in err2.read_text(), "t2's lander to say it waits")
        os.kill(t2.pid, signal.SIGINT)
        assert t2.wait(timeout=60) == 130
        assert err2.read_text().splitlines()[-3:] == [
            "task 't2' is being published: waiting up to 60s to say whether it landed (Ctrl-C again stops "
            "waiting; the publication goes on either way)",
            "task 't2' was being published when interrupted: see 'wtp list' for how it ended",
            "wtp: interrupted",
        ]
    finally:
        hold.touch()
        release.touch()
        t1.communicate(timeout=120)
    assert t1.returncode == 0
    assert {t["name"]: t["state"] for t in r.wtp("list", "--all", "--json").json()["tasks"]} == {
        "t1": "landed",
        "t2": "landed",
    }


_LOSES_ONE_CTRL_C = """
import os, signal, sys, time
fire, sleep = sys.argv.pop(1), time.sleep
class Collected:
    def __del__(self):  # a Ctrl-C that comes while Python finalizes an object: its handler runs here
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        finally:
            open(fire + ".done", "w").close()
def once(s):
    if os.path.exists(fire) and not os.path.exists(fire + ".done"):
        Collected()
    sleep(s)
time.sleep = once
from worktree_par.entry import main
sys.argv[0] = "wtp"
main()
"""


def test_a_waiting_landers_ctrl_c_lost_in_a_finalizer_still_withdraws_its_task(project: Repo, tmp_path: Path) -> None:
    """Review 14: t2 waits behind t1's conductor when its one Ctrl-C comes while a finalizer runs
    (simulated: the next sleep of its wait loop drops such an object).  Its KeyboardInterrupt is
    lost; the wait loop acts on the counted signal and t2 is withdrawn, not landed."""
    r = project
    release, fire = tmp_path / "release", tmp_path / "fire"
    gate = f"until [ -e {release} ]; do sleep 0.05; done; ./check.sh"
    _tasks(r, 2)
    (tmp_path / "loses.py").write_text(_LOSES_ONE_CTRL_C)
    t1 = r.spawn("land", "t1", "--gate", gate)
    err2 = tmp_path / "t2.err"
    try:
        wait_for(lambda: (r.path / ".git/wtp/logs/land-t1.log").exists(), "t1's gate")
        with open(err2, "w") as f:
            argv = [sys.executable, str(tmp_path / "loses.py"), str(fire), "land", "t2", "--gate", gate]
            t2 = subprocess.Popen(argv, cwd=r.path, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
        wait_for(lambda: "waiting for the land queue" in err2.read_text(), "t2 waiting behind t1")
        fire.touch()
        wait_for(Path(f"{fire}.done").exists, "the Ctrl-C taken inside a finalizer")
        release.touch()  # t1 lands now, and t2 with it unless its lost Ctrl-C was acted on
        assert t2.wait(timeout=60) == 130, err2.read_text()
    finally:
        release.touch()
        t1.communicate(timeout=120)
    assert "interrupted: task 't2' is withdrawn" in err2.read_text() or "'t2' is active again" in err2.read_text()
    assert {t["name"]: t["state"] for t in r.wtp("list", "--all", "--json").json()["tasks"]} == {
        "t1": "landed",
        "t2": "active",
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_a_land_in_its_clean_up_after_the_hand_off_says_what_it_left(
    project: Repo, tmp_path: Path, sig: signal.Signals
) -> None:
    """Review 15: t1's lander conducts t2; once t1 is landed its process does t1's clean-up while
    its child lands t2.  SIGTERM then killed it without a word (exit 143), and Ctrl-C said t1 was
    'being published: waiting up to 60s' though it had landed."""
    r = project
    rel1, rel2, hold, started = (tmp_path / n for n in ("rel1", "rel2", "hold", "t2.started"))
    _tasks(r, 2)
    env = {"WTP_TEST_HOLD_AT": "rm:before-worktree", "WTP_TEST_HOLD_FILE": str(hold)}
    t1 = r.spawn("land", "t1", "--gate", f"until [ -e {rel1} ]; do sleep 0.05; done; ./check.sh", env=env)
    t2 = None
    try:
        wait_for(lambda: (r.path / ".git/wtp/logs/land-t1.log").exists(), "t1's gate: t1 conducts")
        t2 = r.spawn("land", "t2", "--gate", f"touch {started}; until [ -e {rel2} ]; do sleep 0.05; done; ./check.sh")
        wait_for(started.exists, "t2 stacked on t1, its gate started")
        rel1.touch()
        wait_for(Path(f"{hold}.reached").exists, "t1 landed, its clean-up under way")
        t1.send_signal(sig)
        _, err = t1.communicate(timeout=60)
        landed = next(t for t in r.wtp("list", "--all", "--json").json()["tasks"] if t["name"] == "t1")["commit"]
        assert (t1.returncode, err.splitlines()[-2:]) == (
            130,
            [
                f"interrupted after task 't1' landed at {landed[:12]}: its worktree is kept ('wtp rm t1' removes it)",
                "wtp: interrupted",
            ],
        ), err
    finally:
        for f in (hold, rel1, rel2):
            f.touch()
        t1.communicate(timeout=60)
        if t2 is not None:
            t2.communicate(timeout=120)
    assert t2 is not None and t2.returncode == 0
    assert {t["name"]: t["state"] for t in r.wtp("list", "--all", "--json").json()["tasks"]} == {
        "t1": "landed",
        "t2": "landed",
    }


_WAITER = """
import os, select, signal, sys, threading, time
from worktree_par import interrupts, procs
out = int(sys.argv[1])
signal.signal(signal.SIGCONT, lambda *_: os.write(out, b"c"))
def beat():  # a heartbeat's kind of thread: asleep most of the time
    while True:
        time.sleep(0.05)
interrupts.start_quiet(threading.Thread(target=beat, daemon=True))
os.write(out, b"r")
r, _ = os.pipe()
with interrupts.Wakeup() as wake:
    wake.read(r)  # blocked for ever, as a parent waiting for a stopped helper's reports
"""


def test_a_continue_reaches_the_main_thread_blocked_in_a_wait_whatever_threads_run(tmp_path: Path) -> None:
    """A process stopped and continued (SIGCONT) runs its handler at once while its main thread
    waits, blocked, with a thread of wtp's running beside it.  A plain blocking read missed
    one continue in a few dozen, for ever (the land's parent then waited for a helper still
    stopped): the kernel gave the signal to the other thread, and Python only noted it; or it
    came after Python had looked for signals and before the read blocked.  The wait watches
    the pipe Python writes each signal to (Wakeup), and helper threads block the signals wtp
    handles (TO_MAIN)."""
    script = tmp_path / "waiter.py"
    script.write_text(_WAITER)
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, str(script), str(w)], pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 1) == b"r"
        for i in range(300):
            os.kill(proc.pid, signal.SIGSTOP)
            wait_for(lambda: procs.process_stopped(proc.pid), "the process to stop")
            os.kill(proc.pid, signal.SIGCONT)
            ready, _, _ = select.select([r], [], [], 30)
            assert ready and os.read(r, 1) == b"c", f"continue {i + 1}: the handler did not run"
    finally:
        proc.kill()
        proc.wait()
        os.close(r)


_BUSY = """
import os, signal, sys
from worktree_par import interrupts
out, go = int(sys.argv[1]), int(sys.argv[2])
with interrupts.Wakeup() as wake:
    def stop(*_):
        os.write(out, b"g" if wake.continued_since_stop() else b"s")
    signal.signal(signal.SIGTSTP, stop)
    signal.signal(signal.SIGCONT, lambda *_: None)
    for sig in (signal.SIGTSTP, signal.SIGCONT):  # their handlers wait for the read: a command being started
        signal.siginterrupt(sig, False)
    os.write(out, b"r")
    while os.read(go, 1) == b"n":  # one round of signals each
        pass
"""


def _taken(pid: int, sig: int) -> bool:
    """``sig`` is no longer pending and the process waits in its read again: its C handler
    ran (and wrote to the wakeup pipe), and the read went on (a handler not yet run leaves
    the process running, not waiting there)."""
    status = Path(f"/proc/{pid}/status").read_text()
    bit = 1 << (sig - 1)
    pending = any(
        int(line.split()[1], 16) & bit for line in status.splitlines() if line.startswith(("SigPnd", "ShdPnd"))
    )
    return not pending and Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_read")


@pytest.mark.parametrize(("first", "then", "decided"), [("TSTP", "CONT", b"g"), ("CONT", "TSTP", b"s")])
def test_a_ctrl_z_whose_handler_runs_after_the_jobs_continue_does_not_stop_it(
    tmp_path: Path, first: str, then: str, decided: bytes
) -> None:
    """Ctrl-Z, then 'fg', both come while the main thread is back from neither (starting a
    command that the same Ctrl-Z stopped: review 47): Python runs the continue's handler first
    (the lower number), then the stop's, which stopped the job with nothing to continue it.
    The order they came in decides: a continue after the stop, and the stop is dropped."""
    script = tmp_path / "busy.py"
    script.write_text(_BUSY)
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    proc = subprocess.Popen([sys.executable, str(script), str(out_w), str(go_r)], pass_fds=(out_w, go_r))
    os.close(out_w)
    os.close(go_r)
    try:
        assert os.read(out_r, 1) == b"r"
        wait_for(lambda: Path(f"/proc/{proc.pid}/wchan").read_text().endswith("pipe_read"), "the read to block")
        for name in (first, then):
            sig = signal.Signals[f"SIG{name}"]
            os.kill(proc.pid, sig)
            wait_for(functools.partial(_taken, proc.pid, sig), f"SIG{name} to be taken")
        os.write(go_w, b"n")
        assert os.read(out_r, 1) == decided
    finally:
        os.close(go_w)
        proc.wait(timeout=30)
        os.close(out_r)


def _held_status(repo: Repo, tmp_path: Path) -> tuple[Path, Path]:
    """Every git status in the repository held in its fsmonitor hook until ``release`` exists;
    each call leaves a file in ``marks``, named by the hook's pid, holding its git's pid."""
    marks, release = tmp_path / "marks", tmp_path / "release"
    marks.mkdir()
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho $PPID > {marks}/$$\nwhile [ ! -e {release} ]; do sleep 0.05; done\nexit 1\n")
    hook.chmod(0o755)
    repo.git("config", "core.fsmonitor", str(hook))
    return marks, release


@pytest.mark.parametrize("command", ["list", "check"])
def test_ctrl_c_during_list_or_check_of_many_tasks_starts_no_more_git(repo: Repo, tmp_path: Path, command: str) -> None:
    """Review 56: with more tasks than threads, a Ctrl-C let the threads go on to every task
    left (each its git status) before the command could end.  Each status is held in its
    fsmonitor hook until released; after the Ctrl-C (to the whole group, as a terminal sends
    it) the command ends with 130, and the tasks left are not all looked at: a thread whose
    git the Ctrl-C ended may take one more before the signal is seen (its git and the signal
    race on two busy cores), never more (the signal's wakeup byte is there by then)."""
    (repo.path / ".wtp.toml").write_text("max_active = 24\n")
    for i in range(24):
        repo.wtp("start", f"t{i}")
    marks, release = _held_status(repo, tmp_path)
    p = repo.spawn(command, new_session=True)
    try:
        wait_for(lambda: len(list(marks.iterdir())) >= 8, "eight git status calls under way")
        os.killpg(p.pid, signal.SIGINT)
    finally:
        release.touch()  # (a status started after the Ctrl-C ends too)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "wtp: interrupted", err
    # 8 under way; then at most one more task per thread, whose status (released) runs its hook
    # twice: 24 at most.  Before review 56's fix every task left ran: 8 + 2 x 16 = 40.
    assert len(list(marks.iterdir())) <= 24


@pytest.mark.parametrize("command", ["list", "check"])
def test_a_sigint_to_wtp_alone_during_list_or_check_leaves_no_git_running(
    repo: Repo, tmp_path: Path, command: str
) -> None:
    """Review 56: SIGINT to wtp's pid alone (a supervisor, an agent's harness; not the group, as
    a terminal sends it) while its one task's git status ran: the command ended at once and
    left that git running.  It ends once its git has (held here in its fsmonitor hook)."""
    repo.wtp("start", "t0")
    marks, release = _held_status(repo, tmp_path)
    p = repo.spawn(command, new_session=True)
    try:
        wait_for(lambda: any(marks.iterdir()), "its git status to be under way")
        git_pid = int(next(marks.iterdir()).read_text())
        os.kill(p.pid, signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(timeout=2)  # its git is held: the command waits for it (it used to exit at once)
    finally:
        release.touch()
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "wtp: interrupted", err
    assert not procs.pid_alive(git_pid)  # waited for (reaped) before the command ended
