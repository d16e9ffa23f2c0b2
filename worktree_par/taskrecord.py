"""A task's record in the registry (``state.py`` keeps the registry): its fields, how it is
written, and how a record read back is checked."""

from __future__ import annotations

from typing import Any

from .locks import Holder

QUEUED = "queued"
ACTIVE = "active"
LANDING = "landing"
BLOCKED = "blocked"
LANDED = "landed"
ABANDONED = "abandoned"
FINAL = (LANDED, ABANDONED)
LIVE = (ACTIVE, LANDING, BLOCKED)  # states that own a branch, a worktree and a port
STATES = (QUEUED, *LIVE, *FINAL)
# Phases: an operation in flight on a task, recorded with its holder.  A dead holder means
# the operation was interrupted, and the next command meeting it completes or undoes it.
CREATING = "creating"
REMOVING = "removing"
LANDING_PHASE = "landing"
PHASES = ("", CREATING, REMOVING, LANDING_PHASE)
PUBLISHING = "publishing"
WITHDRAWN = "withdrawn"
INTENTS = ("", PUBLISHING, WITHDRAWN)
# Finished tasks kept in the registry ('list --all', "already landed" answers).  Older ones are forgotten when the
# state is next written, so a command's cost does not grow with history: their work is on the base, or archived by 'rm'.
KEEP_FINISHED = 200

# Plain classes, not dataclasses, here and across the package: importing dataclasses (and
# the inspect module it needs) and building each class is paid by every command (README, Performance).


class Task:
    """One task's record: its state, branch, base, absolute worktree path, port, declarations, and an operation in
    flight (``phase`` and its ``holder``).  A snapshot of the record as read: setting attributes changes nothing on
    disk; change a task through ``Store.update`` or ``Store.phase``, which act only while it is the same task (seq)."""

    def __init__(
        self,
        name: str,
        state: str,
        branch: str,
        base: str,  # branch the task lands onto
        seq: int,  # arrival order, for the queue
        path: str | None = None,  # absolute worktree path; None while queued
        fork: str | None = None,  # commit the task was started from
        start_ref: str | None = None,  # what --base asked for, resolved when admitted
        port: int | None = None,
        touch: list[str] | None = None,
        use: list[str] | None = None,
        created: float = 0.0,
        phase: str = "",  # an operation in flight (PHASES: creating, removing, landing), held by ``holder``
        holder: dict[str, Any] | None = None,
        setup: str = "",  # "", "done", "failed: <why>"
        commit: str | None = None,  # landed tip
        paths: list[str] | None = None,  # conflicting paths when blocked
        note: str = "",
        candidate: str | None = None,  # the commit a land is publishing (recovery asks the remote for it)
        ticket: int | None = None,  # the land queue ticket whose request the conductor served
        attempts: int = 0,  # how many times the conductor built the task's candidate
        held: list[str] | None = None,  # tasks it likely collides with ([check] cochange = "hold")
        # While a conductor holds the task's land: "publishing" once the publication point has committed to pushing
        # it (its lander can no longer withdraw it), "withdrawn" when its lander (Ctrl-C) or 'wtp rm' took it back.
        intent: str = "",
        request: int | None = None,  # the forge's pull/merge request number ([land] via a forge)
        # Started on the work of a task that was landing (its name and seq): it lands after it (stacking.py).
        stacked_on: str | None = None,
        stacked_seq: int | None = None,
        stacked_under: list[str] | None = None,  # "seq:name" of each task below, nearest first
    ) -> None:
        self.name, self.state, self.branch, self.base, self.seq = name, state, branch, base, seq
        self.path, self.fork, self.start_ref, self.port = path, fork, start_ref, port
        self.touch, self.use, self.created = touch if touch is not None else [], use if use is not None else [], created
        self.phase, self.holder, self.setup, self.commit = phase, holder, setup, commit
        self.paths, self.note = paths if paths is not None else [], note
        self.candidate = candidate
        self.ticket, self.attempts = ticket, attempts
        self.held = held if held is not None else []
        self.intent = intent
        self.request = request
        self.stacked_on, self.stacked_seq = stacked_on, stacked_seq
        self.stacked_under = stacked_under if stacked_under is not None else []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        return f"Task({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its recursive deep copy made serializing a registry of a
        # few hundred tasks cost tens of ms per transaction.  Lists and the holder are the
        # only mutable fields; they are copied so a snapshot does not change with the task.
        d = dict(self.__dict__)
        d["touch"], d["use"], d["paths"], d["held"], d["stacked_under"] = (
            list(self.touch),
            list(self.use),
            list(self.paths),
            list(self.held),
            list(self.stacked_under),
        )
        d["holder"] = dict(self.holder) if self.holder is not None else None
        return d

    def copy(self) -> Task:
        """A snapshot of its own: changing it (or its lists) leaves this one as it is."""
        t = Task.__new__(Task)
        t.__dict__.update(self.to_json())
        return t

    @classmethod
    def from_json(cls, d: object) -> Task:
        """A task from its record; ValueError naming the field when the record has the wrong shape."""
        if not isinstance(d, dict):
            raise ValueError(f"a task must be an object, not {type(d).__name__}")
        fields = {k: v for k, v in d.items() if k in _TASK_TYPES}
        for k, types in _TASK_TYPES.items():
            if k in fields and not isinstance(fields[k], types) or (k in _REQUIRED and k not in fields):
                raise ValueError(f"task field {k!r} is {fields.get(k)!r}")
        for k in ("touch", "use", "paths", "held", "stacked_under"):
            if not all(isinstance(x, str) for x in fields.get(k) or []):
                raise ValueError(f"task field {k!r} must list strings")
        if (
            fields["state"] not in STATES
            or fields.get("phase", "") not in PHASES
            or fields.get("intent", "") not in INTENTS
        ):
            raise ValueError(f"task {fields['name']!r} has an unknown state or phase")
        Holder.from_json(fields.get("holder"))  # raises on a bad holder
        under, on = fields.get("stacked_under") or [], fields.get("stacked_on")
        links = [x.partition(":") for x in under]
        if any(not (q.isascii() and q.isdigit()) or not n for q, _, n in links) or (
            under and (on is None or under[0] != f"{fields.get('stacked_seq')}:{on}")
        ):  # the chain a land checks before landing the task: never read past a damaged one
            raise ValueError(f"task field 'stacked_under' is {under!r}, not the chain below '{on}'")
        return cls(**fields)


_S, _N, _I = (str,), (str, type(None)), (int,)
_TASK_TYPES: dict[str, tuple[type, ...]] = {
    "name": _S,
    "state": _S,
    "branch": _S,
    "base": _S,
    "seq": _I,
    "path": _N,
    "fork": _N,
    "start_ref": _N,
    "port": (int, type(None)),
    "touch": (list,),
    "use": (list,),
    "created": (int, float),
    "phase": _S,
    "holder": (dict, type(None)),
    "setup": _S,
    "commit": _N,
    "paths": (list,),
    "note": _S,
    "candidate": _N,
    "ticket": (int, type(None)),
    "attempts": (int,),
    "held": (list,),
    "intent": _S,
    "request": (int, type(None)),
    "stacked_on": _N,
    "stacked_seq": (int, type(None)),
    "stacked_under": (list,),
}
_REQUIRED = ("name", "state", "branch", "base", "seq")
