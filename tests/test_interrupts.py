"""A Ctrl-C whose KeyboardInterrupt is raised inside a finalizer is lost by Python ("Exception
ignored in ..."); the loops a land waits in look at the signals counted since it began, so a
single Ctrl-C always stops it (CI once waited 120 s for a land whose Ctrl-C came while a
collected HTTP response was being closed)."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from worktree_par import interrupts

from .conftest import Repo


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
    p = Path(project.wtp("start", "t1").lines[-1])
    project.commit({"t1.txt": "t1\n"}, "t1 work", cwd=p)
    out = project.wtp("land", "t1", "--gate", "./check.sh")
    assert out.code == 0, out.err
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == [mine, mine, mine]
    assert not interrupts._armed
