"""``wtp check``: which tasks collide, and how badly.

Layers, for every pair of tasks and for each task against the base as it is now:
  declared / resource  -- declared --touch globs or --use resources intersect;
  overlap              -- both changed a path since their fork point (committed,
                          staged, unstaged and untracked work all count; a file on
                          one side and a directory on the other counts);
  conflict             -- merging their current work gives a textual conflict, as
                          ``git merge-tree --write-tree`` decides;
and overlaps on hot files (lockfiles, changelogs, version files, migrations) are
marked ``hot``.

Live work is compared through snapshot commits made with a throw-away index, so
the user's index, files and refs are never touched.  Cost grows with changed paths:
only pairs whose path sets intersect get a merge simulation, and verdicts are
cached by the pair of snapshot trees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import atomic, claims, gitops
from .errors import Refusal, UsageError
from .fanout import map_threads
from .globs import HOT_GLOBS, glob_matches
from .repo import Ctx
from .schedule import collisions as declared_clashes
from .stacking import beneath
from .state import FINAL, LIVE, Task

# 'semantic' (check --test) is the most severe: the merge is clean, so nothing but the gate
# would stop it, and it breaks the build where a conflict only stops a merge.
RANK = {"declared": 1, "resource": 1, "undeclared": 1, "likely": 1.5, "overlap": 2, "conflict": 3, "semantic": 4}
FAIL_ON = {"semantic": 4, "conflict": 3, "overlap": 2, "likely": 1.5, "declared": 1, "never": 99}

_MIGRATION_DIRS = ("migrations", "migrate", "versions", "alembic")


class Side:
    """One task's work as of now."""

    def __init__(self, name: str, task: Task | None, commit: str, tree: str, fork: str) -> None:
        self.name, self.task = name, task
        self.commit = commit  # HEAD, or a snapshot commit holding uncommitted work
        self.tree = tree
        self.fork = fork  # merge-base with the base tip
        self.changed: set[str] = set()
        self.added: set[str] = set()
        self.dirs: set[str] = set()  # every parent dir of a changed path


class Collision(NamedTuple):
    tasks: list[str]  # two tasks (the second may be the base); one for 'undeclared'
    kind: str
    paths: list[str]
    hot: bool = False
    hot_paths: list[str] = []
    evidence: list[dict[str, object]] = []  # 'likely': which file usually changes with which, how often
    extra: dict[str, object] = {}  # 'semantic': gate, tree, log, output, verdicts (semantic/result.py)

    def to_json(self) -> dict[str, object]:
        return {
            "tasks": self.tasks,
            "kind": self.kind,
            "paths": self.paths,
            "hot": self.hot,
            "hot_paths": self.hot_paths,
            **({"evidence": self.evidence} if self.kind == "likely" else {}),
            **self.extra,
        }


class Report(NamedTuple):
    tasks: list[dict[str, object]]
    collisions: list[Collision]
    base: str
    notes: list[str] = []  # the tasks not seen whole (a worktree or a branch gone), one line each

    def worst(self) -> float:
        return max((RANK[c.kind] for c in self.collisions), default=0)

    def to_json(self) -> dict[str, object]:
        return {"tasks": self.tasks, "collisions": [c.to_json() for c in self.collisions], "notes": self.notes}


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def sides(ctx: Ctx, tasks: list[Task], base_tip: str) -> tuple[list[Side], list[str]]:
    """Each task's side as of now, and one note for each task not seen whole: a worktree
    folder that is gone (its branch is compared: its commits, not what was uncommitted
    there), a branch that is gone under its worktree, or neither left (not compared)."""
    got = map_threads(lambda t: _side(ctx, t, base_tip), tasks)
    return [s for s, _ in got if s is not None], [note for _, note in got if note]


def _side(ctx: Ctx, t: Task, base_tip: str) -> tuple[Side | None, str]:
    wt = Path(t.path) if t.path else None
    note = ""
    if wt is None or not wt.is_dir():
        where = f"its worktree {wt} is missing" if wt else "it has no worktree"
        tip = gitops.ref_value(ctx.root, f"refs/heads/{t.branch}")
        if tip is None:
            return None, f"task '{t.name}': {where} and its branch '{t.branch}' is gone: not compared"
        commit, tree = tip, gitops.tree_of(ctx.root, tip)
        note = (
            f"task '{t.name}': {where}: compared from its branch '{t.branch}' (its commits; what was "
            "uncommitted there was not seen; 'wtp doctor --fix' makes the worktree again)"
        )
    else:
        broken = gitops.link_problem(wt)
        if broken:  # git would read a parent folder's repository, or fail
            raise Refusal(
                f"the worktree of task '{t.name}' is broken ({broken}): {gitops.link_fix(wt)}, then check again"
            )
        dirty = gitops.dirty_of(wt)  # the one walk of its files: the snapshot stages what it found
        parent = None
        if dirty.head is None:
            # Its branch was deleted under it: its files are compared as work on the commit it
            # started from (a snapshot with no parent shares no history: merge-tree refuses it).
            parent = (gitops.rev_parse(ctx.root, t.fork) if t.fork else None) or gitops.Sha(base_tip)
            note = (
                f"task '{t.name}': its branch '{t.branch}' is gone (its worktree's HEAD names no commit): "
                f"its worktree's files were compared as work started from {parent[:12]}"
            )
        if dirty.paths or parent:
            # With every untracked file listed, a folder named with '/' is a nested repository:
            # not this repository's files ('git add' would refuse one without a commit).
            nested = [p.rstrip("/") for p in dirty.paths if p.endswith("/")]
            commit, tree = gitops.snapshot(wt, exclude=nested, dirty=dirty, parent=parent)
        else:
            commit = dirty.head or gitops.Sha(base_tip)
            tree = gitops.tree_of(wt, commit)
    fork = gitops.merge_base(ctx.root, base_tip, commit) or base_tip
    own = t.fork if t.stacked_on and t.fork and t.fork != fork else None
    if own is None or not gitops.is_ancestor(ctx.root, own, commit):
        return side_of(ctx.root, t.name, commit, fork, task=t, tree=tree), note
    # Started on a landing task's work: what it changed itself is counted from where it started
    # (the work below is that task's, in its own pairs); the base is compared from the fork.
    side = side_of(ctx.root, t.name, commit, own, task=t, tree=tree)
    side.fork = fork
    return side, note


def side_of(root: Path, name: str, commit: str, fork: str, *, task: Task | None = None, tree: str = "") -> Side:
    """One side of a comparison: what ``commit`` changed since ``fork`` (public: the merge
    replay in scripts/ builds its sides with it)."""
    side = Side(name, task, commit, tree, fork)
    for status, path in gitops.diff_names(root, fork, commit):
        side.changed.add(path)
        if status == "A":
            side.added.add(path)
        side.dirs.update(_parents(path))
    return side


def overlap(a: Side, b: Side) -> set[str]:
    """Paths both sides changed; a file on one side and a folder on the other count."""
    common = a.changed & b.changed
    common |= a.changed & b.dirs  # a file on one side, a directory on the other
    common |= b.changed & a.dirs
    return common


def _migration_clash(a: Side, b: Side) -> set[str]:
    """Two new files in one migrations directory: they will clash on ordering."""

    def dirs(s: Side) -> set[str]:
        return {
            p.rsplit("/", 1)[0] for p in s.added if "/" in p and p.rsplit("/", 1)[0].split("/")[-1] in _MIGRATION_DIRS
        }

    return {d + "/" for d in dirs(a) & dirs(b)}


class _Cache:
    """Merge verdicts keyed by the two snapshot trees and their merge base."""

    def __init__(self, ctx: Ctx) -> None:
        self.file = ctx.store.ensure_dir() / "check-cache.json"
        try:
            self.data: dict[str, list[str] | None] = json.loads(atomic.read_regular(self.file))
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def save(self) -> None:
        if not self.dirty:
            return
        items = list(self.data.items())[-2000:]  # bounded
        atomic.replace(self.file, json.dumps(dict(items)).encode(), durable=False)


def merge_conflicts(root: Path, a: str, b: str) -> list[str] | None:
    """Paths that conflict when merging commits a and b (None: merges cleanly)."""
    return gitops.merge_tree(root, a, b).conflicts or None


def _conflicts_cached(ctx: Ctx, cache: _Cache, a: Side, b: Side) -> list[str] | None:
    key = hashlib.sha1(f"{a.tree} {b.tree} {a.fork} {b.fork}".encode()).hexdigest()
    if key in cache.data:
        return cache.data[key]
    verdict = merge_conflicts(ctx.root, a.commit, b.commit)
    cache.data[key] = verdict
    cache.dirty = True
    return verdict


def _likely(
    ctx: Ctx,
    base_ref: str,
    base_tip: str,
    sides: list[Side],
    recorded: dict[str, list[str]],
    found: list[Collision],
    wanted: Callable[..., bool],
) -> list[Collision]:
    """The 'likely' layer: pairs whose files usually change together in the base's history
    (one-sided, from each task's declared and changed files), where no overlap is found yet."""
    from . import cochange

    h = cochange.load(ctx.root, ctx.store.ensure_dir(), base_ref, HOT_GLOBS + tuple(ctx.cfg.check_hot), base_tip)
    if h is None:
        return []
    done = {frozenset(c.tasks) for c in found if c.kind in ("overlap", "conflict")}
    claimants = {
        s.name: cochange.Claimant(s.name, [*s.task.touch, *recorded.get(s.name, ())], sorted(s.changed))
        for s in sides
        if s.task is not None
    }  # each task's companions computed once, not once per pair
    out = []
    for i, a in enumerate(sides):
        for b in sides[i + 1 :]:
            if not wanted(a.name, b.name) or frozenset((a.name, b.name)) in done or a.task is None or b.task is None:
                continue
            hit = cochange.likely(h, claimants[a.name], claimants[b.name])
            if hit is not None:
                paths = sorted({e.file for e in hit.evidence})
                out.append(Collision([hit.a, hit.b], "likely", paths, evidence=[e.to_json() for e in hit.evidence]))
    return out


def check(ctx: Ctx, only: list[str] | None = None) -> Report:
    st = ctx.store.read()
    all_tasks = sorted((t for t in st.tasks.values() if t.state not in FINAL), key=lambda t: t.seq)
    if only:
        for n in only:
            st.task(n)  # an unknown name is an error, not an empty report
    base = ctx.detect_base()
    base_ref = ctx.base_tip_ref(base)
    base_tip = gitops.rev_parse(ctx.root, base_ref)
    if base_tip is None:
        raise UsageError(f"base branch '{base}' does not exist")
    live_sides, notes = sides(ctx, [t for t in all_tasks if t.state in LIVE], base_tip)
    hot_globs = HOT_GLOBS + tuple(ctx.cfg.check_hot)

    def hot_of(paths: set[str]) -> list[str]:
        return sorted(p for p in paths if any(glob_matches(g, p) or glob_matches(g, p.rstrip("/")) for g in hot_globs))

    def wanted(*names: str) -> bool:
        return not only or any(n in only for n in names)

    collisions: list[Collision] = []
    recorded = claims.declarations(ctx, st)  # paths the agent hook recorded count as declared
    under = {t.name: beneath(t, st.tasks.values()) for t in all_tasks}  # started on another's work: not a pair
    # layer 1: declared globs and resources, between every pair (queued tasks included)
    for i, a in enumerate(all_tasks):
        for b in all_tasks[i + 1 :]:
            if not wanted(a.name, b.name) or a.name in under[b.name] or b.name in under[a.name]:
                continue
            found = declared_clashes(a, [b], recorded)
            for kind in ("declared", "resource"):
                what = sorted({c.what for c in found if c.kind == kind})
                if what:
                    collisions.append(Collision([a.name, b.name], kind, what))
    cache = _Cache(ctx)

    def compare(a: Side, b: Side, names: list[str]) -> None:
        """Layers 2-4 for one pair: overlap, then a merge simulation only if paths intersect."""
        common = overlap(a, b)
        clash = _migration_clash(a, b)
        if not common and not clash:
            return
        conflict = _conflicts_cached(ctx, cache, a, b) if common else None
        paths = (set(conflict) if conflict else common) | clash
        kind = "conflict" if conflict else "overlap"
        hot = sorted(set(hot_of(common)) | clash)
        collisions.append(Collision(names, kind, sorted(paths), bool(hot), hot))

    for i, sa in enumerate(live_sides):
        for sb in live_sides[i + 1 :]:
            if wanted(sa.name, sb.name) and sa.name not in under[sb.name] and sb.name not in under[sa.name]:
                compare(sa, sb, [sa.name, sb.name])
    if ctx.cfg.check_cochange != "off":
        collisions += _likely(ctx, base_ref, base_tip, live_sides, recorded, collisions, wanted)
    # a task that changed files outside its --touch: admission is only as good as declarations
    for sd in live_sides:
        if sd.task is not None and sd.task.touch and wanted(sd.name):
            declared = [*sd.task.touch, *recorded.get(sd.name, ())]
            outside = sorted(p for p in sd.changed if not any(glob_matches(g, p) for g in declared))
            if outside:
                collisions.append(Collision([sd.name], "undeclared", outside))
    # each task against the base as it is now
    base_sides: dict[str, Side] = {}
    base_tree = ""
    for s in live_sides:
        if not wanted(s.name) or s.fork == base_tip:
            continue  # the base has not moved since this task forked
        bs = base_sides.get(s.fork)
        if bs is None:
            base_tree = base_tree or gitops.tree_of(ctx.root, base_tip)
            bs = side_of(ctx.root, base, base_tip, s.fork, tree=base_tree)
            base_sides[s.fork] = bs
        compare(bs, s, [s.name, base])
    cache.save()
    changed = {s.name: len(s.changed) for s in live_sides}
    tasks_json: list[dict[str, object]] = [
        {"name": t.name, "state": t.state, "branch": t.branch, "base": t.base, "changed": changed.get(t.name)}
        for t in all_tasks
        if wanted(t.name)
    ]
    return Report(tasks_json, collisions, base, notes)
