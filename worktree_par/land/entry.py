"""One task in a conductor's stack, with how it is to be landed and how far it got."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import gitops
from ..errors import LandBlocked, WouldLoseWork, WtpError
from ..gitops import Sha
from ..guarded import Guarded
from ..state import Task

if TYPE_CHECKING:
    from ..repo import Ctx


def gate_log(ctx: Ctx, name: str) -> Path:
    """Where the gate of task ``name``'s candidate writes its output (rewritten each run)."""
    return ctx.store.dir / "logs" / f"land-{name}.log"


class Withdrawn(LandBlocked):
    """The task's lander no longer wants it landed (Ctrl-C, or 'wtp rm'): it is given back."""

    @classmethod
    def of(cls, name: str, more: str = "") -> Withdrawn:
        """What its lander is told (``more``: what that left of the base)."""
        why = f"task '{name}' was withdrawn from the land (its lander was stopped, or 'wtp rm' took it back)"
        return cls(f"{why}: {more}" if more else why)


class GateBroken(LandBlocked):
    """The gate fails on the base itself: the gate or the base is broken, not the task; the
    task is handed back landable (active), not blocked."""

    kind = "gate-broken"


class PublishUnknown(WtpError):
    """The push raised and the remote could not be asked whether it took it: the tasks are
    left mid-publication for the next command on them to ask again (recovery.recover)."""


UNKNOWN = "unknown"  # an entry's outcome while whether the base took it is not known


class Entry:
    """One task in the conductor's stack: the task as taken, its pre-land tip, its strategy
    and gate, the queue ticket it serves, and what happened to it (its candidate, the gate
    run, the outcome and the messages its lander shows)."""

    def __init__(self, task: Task, tip: Sha, strategy: str, gate: str, ticket: int | None = None) -> None:
        self.task, self.tip, self.strategy, self.gate, self.ticket = task, tip, strategy, gate, ticket
        self.wt = Path(task.path or "")
        self.cand: Sha | None = None
        self.run: Guarded | None = None
        self.log: Path | None = None
        self.cached = False  # its tree passed this gate before
        self.tested = False  # its gate passed on the candidate, its worktree untouched meanwhile
        self.outcome = ""  # LANDED or BLOCKED once settled (UNKNOWN: see PublishUnknown)
        self.commit: Sha | None = None
        self.messages: list[str] = []
        self.error: LandBlocked | WouldLoseWork | None = None
        self.attempts = 0
        self.races = 0  # rebuilds because the base moved under us
        self.landed_as: Sha | None = None  # the commit a forge's merge put on the base for it
        self.reds = 0  # re-runs of a red gate so far (confirming it, [land] confirm_red)
        self.red_code = 0  # the first red's exit code
        self.flaky = ""  # how a red that did not hold was overturned, once recorded
        self.kept_red = ""  # why a red was not run again to confirm it (what its run left behind)
        self.gate_began = 0.0  # when its gate's first run on this candidate began (wall clock)
        self.halted = False  # its gate was stopped by the conductor (not red of its own)
        self.red = False  # its gate's red held (on every re-run): the task, or the gate, is at fault
        self._tree: tuple[Sha, Sha] | None = None  # (commit, its tree): asked of git once per candidate

    @property
    def name(self) -> str:
        return self.task.name

    def tree(self, root: Path) -> Sha:
        """The tree of what the base takes for this entry (a commit's tree never changes)."""
        c = self.published_commit
        if self._tree is None or self._tree[0] != c:
            self._tree = (c, gitops.tree_of(root, c))
        return self._tree[1]

    def knows_tree(self, commit: Sha, tree: Sha) -> None:
        """``commit``'s tree is ``tree`` (as the build just learned): not asked of git again."""
        self._tree = (commit, tree)

    def unlinked(self, when: str, left: str) -> WouldLoseWork | None:
        """Why its worktree is no longer linked to the repository (None: it is): git, finding
        no repository there, would answer for a parent folder's, or fail (review 54, 55).
        ``left``: what the land left of the task, as the line says it."""
        broken = gitops.link_problem(self.wt)
        if not broken:
            return None
        return WouldLoseWork(
            f"the worktree of task '{self.name}' broke {when} ({broken}): nothing of it was landed{left}; "
            f"{gitops.link_fix(self.wt)}, then 'wtp land {self.name}' again"
        )

    def halt(self) -> None:
        """Stop its gate (its verdict is not needed, it ran out of time, or the task is given back)."""
        if self.run is not None and self.run.code is None:
            self.run.stop()
        self.halted = True

    @property
    def published_commit(self) -> Sha:
        """What the base takes for this entry: its candidate (the tip, when already on the base)."""
        return self.cand or self.tip
