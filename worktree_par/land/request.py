"""What a lander asks for: a typed request, built once by the command and passed whole, to
the conductor (on the queue ticket) and to a detached child (as JSON, never re-parsed from
an argv)."""

from __future__ import annotations

import json
from typing import Any

from ..config import MODES, STRATEGIES

QUEUE = "#land"  # the land queue's gate name ('#' keeps it apart from every user gate name)


class LandRequest:
    """``wtp land TASK``'s options, resolved against the config: the task (and its ``seq``,
    so a task removed and started again under the same name is not mistaken for it), how its
    commits land, the gate that must pass, whether to push, keep the worktree, the queue
    mode, and how long the lander waits (``timeout``, None: for ever)."""

    def __init__(
        self,
        task: str,
        seq: int,
        *,
        strategy: str,
        gate: str,
        push: bool = True,
        keep: bool = False,
        mode: str = "speculative",
        timeout: float | None = None,
    ) -> None:
        self.task, self.seq, self.strategy, self.gate = task, seq, strategy, gate
        self.push, self.keep, self.mode, self.timeout = push, keep, mode, timeout

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LandRequest) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        return f"LandRequest({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, d: object) -> LandRequest | None:
        """The request a ticket or a detached child carries; None when it is not one (a ticket
        written by another version, or damaged): such a ticket is skipped, never trusted."""
        if not isinstance(d, dict):
            return None
        task, seq, strategy, gate, mode = (d.get(k) for k in ("task", "seq", "strategy", "gate", "mode"))
        timeout = d.get("timeout")
        if not (isinstance(task, str) and task and isinstance(seq, int) and not isinstance(seq, bool)):
            return None
        if strategy not in STRATEGIES or mode not in MODES or not isinstance(gate, str):
            return None
        if not (
            timeout is None or (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout >= 0)
        ):
            return None
        push, keep = d.get("push", True), d.get("keep", False)
        if not isinstance(push, bool) or not isinstance(keep, bool):
            return None
        return cls(task, seq, strategy=strategy, gate=gate, push=push, keep=keep, mode=mode, timeout=timeout)

    @classmethod
    def loads(cls, text: str) -> LandRequest | None:
        try:
            return cls.from_json(json.loads(text))
        except ValueError:
            return None
