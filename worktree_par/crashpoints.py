"""Crash points for the crash-safety tests.  Off unless WTP_TEST_KILL_AT is set.

``WTP_TEST_KILL_AT=<step>`` makes wtp SIGKILL itself when it reaches the named step
boundary (for example ``land:before-publish``), so tests can show that the next
command completes or rolls back every interrupted operation; ``WTP_TEST_INT_AT=<step>``
sends it SIGINT there instead, as a Ctrl-C at that moment would.  Steps are marked in
the code with ``crashpoints.step("...")``.  ``WTP_TEST_HOLD_AT=<step>`` with
``WTP_TEST_HOLD_FILE=<path>`` holds it there instead: it creates ``<path>.reached`` and
waits until ``<path>`` exists, so a test can act at exactly that moment.  (Not git hooks: those are in ``agents.hooks``.)
"""

from __future__ import annotations

import os
import signal
import time


def step(name: str) -> None:
    if os.environ.get("WTP_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("WTP_TEST_INT_AT") == name:
        os.kill(os.getpid(), signal.SIGINT)
    if os.environ.get("WTP_TEST_HOLD_AT") == name:
        hold = os.environ["WTP_TEST_HOLD_FILE"]
        with open(f"{hold}.reached", "w"):
            pass
        while not os.path.exists(hold):
            time.sleep(0.01)
