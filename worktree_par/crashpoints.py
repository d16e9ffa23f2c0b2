"""Crash points for the crash-safety tests.  Off unless WTP_TEST_KILL_AT is set.

``WTP_TEST_KILL_AT=<step>`` makes wtp SIGKILL itself when it reaches the named step
boundary (for example ``land:before-publish``), so tests can show that the next
command completes or rolls back every interrupted operation; ``WTP_TEST_INT_AT=<step>``
sends it SIGINT there instead, as a Ctrl-C at that moment would.  Steps are marked in
the code with ``crashpoints.step("...")``.  (Not git hooks: those are in ``agents``.)
"""

from __future__ import annotations

import os
import signal


def step(name: str) -> None:
    if os.environ.get("WTP_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("WTP_TEST_INT_AT") == name:
        os.kill(os.getpid(), signal.SIGINT)
