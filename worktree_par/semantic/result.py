"""What ``check --test`` found, as JSON, and the last result kept for 'wtp list' and
'wtp check' (a courtesy file: losing it loses nothing, the next run writes it again)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..overlap import Collision
from ..repo import Ctx
from .runs import FAIL, TIMEOUT, Outcome

LAST = "check-test-last.json"


class Result:
    def __init__(self, gate: str, base: str, tasks: list[str], inputs: str) -> None:
        self.gate, self.base, self.tasks, self.inputs = gate, base, tasks, inputs
        self.skipped: dict[str, str] = {}  # task -> why it was not gated with the others (a textual conflict)
        self.outcomes: dict[tuple[str, ...], Outcome] = {}
        self.semantic: list[tuple[str, ...]] = []  # smallest sets that fail together while each passes alone
        self.alone: list[str] = []  # tasks whose gate fails with no other task merged
        self.base_red: Outcome | None = None  # the gate fails on the base itself: no task is at fault
        self.flaky_sets: list[tuple[str, ...]] = []  # failed once, passed when run again: not named
        self.timed_out: list[tuple[str, ...]] = []
        self.notes: list[str] = []  # what the runs did besides their verdicts (a file changed, a commit kept)
        self.runs = self.reused = self.peak = 0
        self.budget = 0
        self.timeout = 0.0  # seconds each gate run had
        self.when = time.time()

    @property
    def flaky(self) -> tuple[str, ...] | None:
        """The first set whose red did not hold (the JSON's "flaky")."""
        return self.flaky_sets[0] if self.flaky_sets else None

    @property
    def whole(self) -> Outcome | None:
        return self.outcomes.get(tuple(self.tasks)) if len(self.tasks) > 1 else None

    def verdict(self) -> str:
        """pass | fail | timeout | none (nothing to test together)."""
        if self.semantic or self.alone or self.base_red:
            return FAIL
        w = self.whole
        if w is None:
            return "none"
        if w.verdict == TIMEOUT or (w.verdict == FAIL and self.timed_out):
            return TIMEOUT
        return w.verdict  # the last run's: a red seen once and then a pass is a pass (flaky)

    def collisions(self) -> list[Collision]:
        out = []
        for s in self.semantic:
            o = self.outcomes[s]
            subsets = [v.to_json() for k, v in self.outcomes.items() if k and set(k) <= set(s)]
            extra: dict[str, object] = {
                "gate": self.gate,
                "tree": o.tree,
                "log": o.log,
                "output": o.tail,
                "verdicts": subsets,
            }
            out.append(Collision(list(s), "semantic", [], extra=extra))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "base": self.base,
            "tasks": self.tasks,
            "verdict": self.verdict(),
            "skipped": [{"task": k, "why": v} for k, v in self.skipped.items()],
            "semantic": [list(s) for s in self.semantic],
            "fails_alone": [
                {"task": n, "log": self.outcomes[(n,)].log, "output": self.outcomes[(n,)].tail} for n in self.alone
            ],
            "base_fails": {"log": self.base_red.log, "output": self.base_red.tail} if self.base_red else None,
            "flaky": list(self.flaky) if self.flaky else None,
            "flaky_sets": [list(f) for f in self.flaky_sets],
            "timed_out": [list(s) for s in self.timed_out],
            "notes": self.notes,
            "verdicts": [o.to_json() for o in self.outcomes.values()],
            "runs": self.runs,
            "reused": self.reused,
            "budget": self.budget,
            "at_once": self.peak,
            "when": self.when,
            "inputs": self.inputs,
        }


# --- the last result --------------------------------------------------------------------


def save(ctx: Ctx, data: dict[str, Any]) -> None:
    path = ctx.store.ensure_dir() / LAST
    tmp = path.with_name(f".{LAST}-{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass


def last(ctx: Ctx) -> dict[str, Any] | None:
    """The last result written (a running background run writes ``{"running": ...}``)."""
    try:
        data = json.loads((ctx.store.dir / LAST).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("when"), (int, float)):
        return None
    return data


def age(when: float) -> str:
    secs = max(0, int(time.time() - when))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{secs // n}{unit}"
    return f"{secs}s"


def summary(data: dict[str, Any]) -> str:
    """One line for 'wtp list' and 'wtp check': the last result and its age."""
    when = float(data.get("when", 0))
    if data.get("error"):
        return f"semantic: not tested in the background: {data['error']}"
    if data.get("running"):
        return f"semantic: testing {' + '.join(map(str, data.get('tasks', [])))} (started {age(when)} ago)"
    sem = data.get("semantic") or []
    alone = [str(a.get("task")) for a in data.get("fails_alone") or [] if isinstance(a, dict)]
    parts = [f"{' + '.join(map(str, s))} fail together" for s in sem if isinstance(s, list)]
    parts += [f"{a} fails alone" for a in alone]
    if data.get("base_fails"):
        parts.append("the gate fails on the base itself (no task is at fault)")
    verdict = data.get("verdict")
    if not parts:
        tasks = " + ".join(map(str, data.get("tasks", [])))
        said = {"pass": f"the merge of {tasks} passes", "timeout": f"the gate timed out on {tasks}"}
        parts = [said.get(str(verdict), "nothing to test together")]
    stale = " (inputs changed since)" if data.get("stale") else ""
    return f"semantic: {'; '.join(parts)} ({age(when)} ago{stale})"
