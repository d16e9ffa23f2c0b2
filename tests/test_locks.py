"""The flock-based Lock every state write, ticket and gate stands on: exclusion between
holders, timeouts, re-entry, and release when the holder dies (a real process, killed)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from worktree_par import locks, procs
from worktree_par.locks import Lock

from .conftest import wait_for


def test_holders_exclude_each_other_and_a_second_acquire_raises_instead_of_hanging(tmp_path: Path) -> None:
    a, b = Lock(tmp_path / "x.lock", what="the state lock"), Lock(tmp_path / "x.lock")
    a.acquire()
    with pytest.raises(RuntimeError, match="is already held by this process"):
        a.acquire()  # the same process taking it twice would wait for itself forever
    with pytest.raises(RuntimeError, match="is already held by this process"):
        b.acquire()
    a.release()
    assert b.try_acquire()
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from pathlib import Path; from worktree_par.locks import Lock; Lock(Path({str(tmp_path / 'x.lock')!r}), what='the state lock').acquire(timeout=0.05)",
        ],
        capture_output=True,
        text=True,
    )
    assert "WaitTimeout: timed out after 0.05s waiting for the state lock" in other.stderr
    assert f"held by pid {os.getpid()}" in other.stderr  # the waiter names the holder
    b.release()
    with a:
        holder = a.holder()
        assert holder is not None and holder.pid == os.getpid()
    assert b.try_acquire()
    b.release()


def test_a_lock_file_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (tmp_path / "x.lock").symlink_to(target)
    from worktree_par.errors import StateError

    with pytest.raises(StateError, match="cannot open"):
        Lock(tmp_path / "x.lock").acquire()
    assert target.read_text() == "precious\n"


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from worktree_par.locks import Lock; "
            f"Lock(__import__('pathlib').Path({str(path)!r})).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiter = Lock(path)
        assert not waiter.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        waiter.acquire(timeout=5)
        waiter.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_lock_is_not_inherited_by_child_processes(tmp_path: Path) -> None:
    """A gate held around 'wtp run' must end with wtp, not with the longest-lived child."""
    lock = Lock(tmp_path / "x.lock")
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        close_fds=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Popen may return while exec is still closing the child's close-on-exec descriptors
        # (vfork); once the child runs Python they are gone.
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        lock.release()
        assert Lock(tmp_path / "x.lock").try_acquire()
    finally:
        child.kill()
        child.wait()


def test_a_lock_interrupted_while_being_taken_is_not_left_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between the flock and the end of 'with lock:' setting up: the lock is given back,
    so the clean-up that takes it again does not find it 'already held by this process'."""
    from worktree_par import locks

    lock = locks.Lock(tmp_path / "x.lock", what="the test lock")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(locks.Lock, "_record", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        with lock:
            raise AssertionError("not reached")
    monkeypatch.undo()
    with lock:  # taken again at once: nothing was left behind
        pass
    assert str(tmp_path / "x.lock") not in locks._held


def test_a_zombie_holds_nothing(tmp_path: Path) -> None:
    """A dead process not yet reaped (an init that reaps late keeps it for seconds) is not a
    live holder: a queue ticket or phase it left is recovered at once."""
    child = subprocess.Popen(["sleep", "0"])
    holder = locks.holder_of(child.pid)
    try:
        wait_for(lambda: procs.dying(child.pid), "the child to exit (a zombie until this test reaps it)")
        assert not locks.is_alive(holder)
    finally:
        child.wait()
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        assert locks.is_alive(locks.holder_of(sleeper.pid)) and not procs.dying(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


class _Interrupted(Exception):
    """What the handler raises: a land's handler raises KeyboardInterrupt, which a test must not."""


def _raising(sig: int, _frame: object) -> None:
    raise _Interrupted(sig)  # as a land turns SIGTERM and SIGHUP into Ctrl-C


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_taking_a_lock_defers_sigterm_and_sighup_as_ctrl_c(sig: signal.Signals) -> None:
    """A land turns SIGHUP into Ctrl-C too: one arriving while a lock is taken must wait for the
    block's end, or the lock's bookkeeping is left half done (the flock held, not recorded)."""
    before = signal.signal(sig, _raising)
    inside = False
    try:
        with pytest.raises(_Interrupted):
            with locks.no_interrupt():
                signal.pthread_kill(threading.main_thread().ident or 0, sig)  # (a test runner has threads)
                inside = True  # reached: the signal waited
        assert inside
    finally:
        signal.signal(sig, before)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_clean_up_of_an_interrupted_land_is_not_cut_short_by_another_signal(sig: signal.Signals) -> None:
    from worktree_par.interrupts import finishing

    before = signal.signal(sig, _raising)
    done = False
    try:
        # A second Ctrl-C is dropped; SIGTERM and SIGHUP reach the caller's handler once the
        # clean-up is done (a background lander told to stop still stops).
        with pytest.raises(_Interrupted) if sig != signal.SIGINT else contextlib.nullcontext():
            try:
                raise KeyboardInterrupt  # the first Ctrl-C: what the clean-up answers
            except KeyboardInterrupt:
                with finishing():
                    signal.pthread_kill(threading.main_thread().ident or 0, sig)
                    done = True  # reached: the clean-up goes on
        assert done and signal.getsignal(sig) is _raising  # the caller's handler is back
    finally:
        signal.signal(sig, before)


def test_wtps_own_threads_leave_ctrl_c_sigterm_and_sighup_to_the_main_thread() -> None:
    """A signal sent to the process goes to any thread that does not block it: a heartbeat or
    progress thread took it at once, and the main thread's deferral (no_interrupt) did not hold."""
    from worktree_par.interrupts import INTERRUPTS, start_quiet

    seen: list[set[int]] = []
    t = threading.Thread(target=lambda: seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, []))))
    start_quiet(t)
    t.join()
    assert set(INTERRUPTS) <= seen[0]
    assert not set(INTERRUPTS) & set(signal.pthread_sigmask(signal.SIG_BLOCK, []))  # the caller's mask is back
