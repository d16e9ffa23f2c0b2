"""What ``check --test`` found, as JSON, and the last result kept for 'wtp list' and
'wtp check' (a courtesy file: losing it loses nothing, the next run writes it again)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from .. import atomic
from ..overlap import Collision
from ..records import shown
from ..repo import Ctx
from .runs import FAIL, PASS, TIMEOUT, Outcome, output_tail

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
    try:
        atomic.replace(path, json.dumps(data).encode(), durable=False)
    except OSError:
        pass


def last(ctx: Ctx) -> dict[str, Any] | None:
    """The last result written (a running background run writes ``{"running": ...}``); None
    when there is none or it is damaged (then the next observer starts a run that writes it
    again).  NaN and infinities are not numbers here: they would be printed as JSON no reader
    takes, and have no age."""
    try:
        data = json.loads(atomic.read_regular(ctx.store.dir / LAST), parse_constant=_no_constant, parse_float=_finite)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or _when(data.get("when")) is None:
        return None
    return data


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e400
        raise ValueError(f"{text} is not a finite number")
    return v


def _when(v: object) -> float | None:
    """A time as a result records it (seconds since the epoch), or None when it is not one."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        when = float(v)
    except OverflowError:  # an integer too large for a float
        return None
    return when if math.isfinite(when) and 0 <= when else None


def age(when: object) -> str:
    """'2m ago', or 'at an unknown time' for a time that is not one (a damaged file); a
    time in the future (a clock set back since) counts as now."""
    t = _when(when)
    if t is None or t > time.time() + 86400:  # a day ahead is no clock set back: a damaged file
        return "at an unknown time"
    secs = max(0, int(min(time.time() - t, 1e12)))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{secs // n}{unit} ago"
    return f"{secs}s ago"


def _names(v: object) -> list[str]:
    """A list of task names from the file, each safe to print on one line (anything else: none)."""
    return [shown(x) for x in v if isinstance(x, str)] if isinstance(v, list) else []


def current(data: dict[str, Any] | None) -> bool:
    """A background result that holds for the tasks' commits as they are (not stale, not a
    run under way, not an error): what it found counts, as a 'check --test' run's does."""
    if not data:
        return False
    return not (data.get("stale") or data.get("running") or data.get("error"))


def background_collisions(data: dict[str, Any], live: set[str], logs: Path) -> list[Collision]:
    """The semantic collisions of a current background result, shaped as 'check --test'
    gives them (plus ``"background": true`` and its ``when``).  The file is a courtesy:
    a set naming anything but live tasks is left out, and a log is read only in ``logs``."""
    sets = data.get("semantic")
    outcomes = [v for v in data.get("verdicts") or [] if isinstance(v, dict) and isinstance(v.get("tasks"), list)]
    gate = data.get("gate")
    out = []
    for s in sets if isinstance(sets, list) else []:
        if not isinstance(s, list) or len(s) < 2 or not all(isinstance(n, str) and n in live for n in s):
            continue
        mine = [v for v in outcomes if v["tasks"] == s]
        log = mine[0].get("log") if mine else None
        extra: dict[str, object] = {
            "gate": gate if isinstance(gate, str) else "",
            "tree": str(mine[0].get("tree", "")) if mine else "",
            "log": log if isinstance(log, str) else "",
            "output": output_tail(Path(log)) if isinstance(log, str) and Path(log).parent == logs else [],
            "verdicts": [v for v in outcomes if v["tasks"] and set(map(str, v["tasks"])) <= set(s)],
            "background": True,
            "when": _when(data.get("when")),
        }
        out.append(Collision(list(s), "semantic", [], extra=extra))
    return out


def background_red(data: dict[str, Any], live: set[str], names: list[str] | None) -> bool:
    """A current background result in which a live task (one of ``names``, when given)
    fails its gate alone, or the gate fails on the base itself."""
    alone = data.get("fails_alone")
    tasks = [a.get("task") for a in (alone if isinstance(alone, list) else []) if isinstance(a, dict)]
    mine = [n for n in tasks if isinstance(n, str) and n in live and (not names or n in names)]
    return bool(mine) or isinstance(data.get("base_fails"), dict)


def summary(data: dict[str, Any]) -> str:
    """One line for 'wtp list' and 'wtp check': the last result and its age."""
    when = data.get("when")
    error = data.get("error")
    if error:
        return f"semantic: not tested in the background: {shown(str(error))}"
    if data.get("running"):
        tasks = " + ".join(_names(data.get("tasks"))) or "the tasks' commits"
        return f"semantic: testing {tasks} (started {age(when)})"
    sem = data.get("semantic")
    parts = [f"{' + '.join(_names(s))} fail together" for s in (sem if isinstance(sem, list) else []) if _names(s)]
    alone = data.get("fails_alone")
    for a in alone if isinstance(alone, list) else []:
        if isinstance(a, dict) and isinstance(a.get("task"), str):
            parts.append(f"{shown(a['task'])} fails alone")
    if data.get("base_fails"):
        parts.append("the gate fails on the base itself (no task is at fault)")
    if not parts:
        tasks = " + ".join(_names(data.get("tasks")))
        verdict = data.get("verdict")
        if tasks and verdict == PASS:
            parts = [f"the merge of {tasks} passes"]
        elif tasks and verdict == TIMEOUT:
            parts = [f"the gate timed out on {tasks}"]
        else:
            parts = ["nothing to test together"]
    stale = "; inputs changed since" if data.get("stale") else ""
    return f"semantic: {'; '.join(parts)} ({age(when)}{stale})"
