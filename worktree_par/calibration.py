"""Does the co-change layer help in this repository?  Its merge history replayed the way
the study behind it was (issue 20): both sides of each two-parent merge treated as two
tasks that ran in parallel, each declaring only its first commit's main file; the layer
is turned on only where its extra holds are worth it here.  Used by 'wtp init', 'wtp
cochange --calibrate' and scripts/replay_cochange.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from . import gitops
from .cochange import History
from .globs import glob_matches

LIFT_MIN = 1.5
PRECISION_MIN = 0.65
BOOTSTRAP = 1000


class Pair(NamedTuple):
    """Both sides of one merge, as two tasks that ran in parallel."""

    merge: str
    decl_a: str  # each side's declaration: its first commit's main file
    decl_b: str
    overlap: bool  # truth: both sides changed a (non-hot) path
    declared: bool  # held by the declarations alone (the same file)
    onesided: bool  # held once each declaration is expanded with its companions


def replay(
    root: Path,
    tip: str,
    hot: Sequence[str],
    limit: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    shallow: Sequence[str] = (),
) -> list[Pair]:
    """Treat both sides of each of the newest ``limit`` two-parent merges reachable from
    ``tip`` as two tasks: each declares only its first commit's main file (the one with the
    most changed lines); the truth is whether both sides changed a (non-hot) path.
    Companions are mined from the commits before the fork point (in topological order)
    only.  Five git calls for the whole history, whatever its length: fork points and sides
    are walked in-process (``gitops.Graph``).  ``progress(done, total)`` is told as merges
    are replayed; ``shallow``: the commits a shallow clone's history stops at (never counted:
    git shows each as a root that changed every file)."""
    # "Older than the fork" in topological order: commit times tie (a rebase, a script) and
    # lie (clocks); the place in 'git log --topo-order' does neither.
    from concurrent.futures import ThreadPoolExecutor

    # The four reads of the history run side by side: each is one git process, and the
    # line counts (numstat) alone take as long as the rest together.
    with ThreadPoolExecutor(max_workers=4) as pool:
        graph_f = pool.submit(gitops.Graph.of, root, tip)
        changes_f = pool.submit(gitops.changes, root, tip, with_sha=True, topo=True)
        counted_f = pool.submit(gitops.numstat, root, tip)
        found_f = pool.submit(gitops.merges, root, tip, limit)
        graph, changes, counted, found = graph_f.result(), changes_f.result(), counted_f.result(), found_f.result()
    when = graph.at
    h = History(tip, hot, shallow)
    h.shas = []
    h.add(changes)
    h.times = [when.get(sha, 0) for sha in h.shas]
    cold = _Cold(hot)
    lines = {sha: [(f.path, f.lines) for f in files if not cold.hot(f.path)] for sha, files in counted.items()}
    todo = []  # (merge, fork base, fork time, [(side tip, its declaration)])
    for n, (m, p1, p2) in enumerate(found):
        if progress is not None and n % 50 == 0:
            progress(n, len(found))
        try:
            f = graph.fork(p1, p2)
        except KeyError:  # a parent outside the walked history (a shallow clone)
            continue
        base, walked = f.base, [f.left, f.right]
        if not f.sure:  # a criss-cross or a tie in commit time: git's own answer, as before
            base = gitops.merge_base(root, p1, p2)
            walked = list(gitops.sides(root, p1, p2))
        if base is None:
            continue
        decls = []
        for side in walked:
            commits = [c for c in side if c in lines]
            first = commits[0] if commits else None  # the side's oldest commit
            decls.append(max(lines[first], key=lambda fl: fl[1])[0] if first and lines[first] else None)
        if decls[0] and decls[1]:
            todo.append((m, base, when.get(base, 0), [(p1, decls[0]), (p2, decls[1])]))
    if progress is not None:
        progress(len(found), len(found))
    # The truth, as wtp's overlap layer sees it: what each side changed since the fork
    # point, both diffs of every merge in one 'git diff-tree --stdin'.
    changed = gitops.changed_names(root, [(base, side) for _, base, _, sides in todo for side, _ in sides])
    diffs = [{p for p in names if not cold.hot(p)} for names in changed]
    pairs: list[Pair] = []
    for n, (m, _, fork, sides) in enumerate(todo):
        (_, da), (_, db) = sides
        ca, cb = diffs[2 * n], diffs[2 * n + 1]
        exp_a = {e.file for e in h.companions(da, before=fork)}
        exp_b = {e.file for e in h.companions(db, before=fork)}
        declared = da == db
        pairs.append(Pair(m, da, db, bool(ca & cb), declared, declared or db in exp_a or da in exp_b))
    return pairs


class _Cold:
    """Whether a path is hot, each path matched against the globs once."""

    def __init__(self, hot: Sequence[str]) -> None:
        self.globs = hot
        self.seen: dict[str, bool] = {}

    def hot(self, path: str) -> bool:
        found = self.seen.get(path)
        if found is None:
            found = self.seen[path] = _hot(path, self.globs)
        return found


def _hot(path: str, hot: Sequence[str]) -> bool:
    return any(glob_matches(g, path) for g in hot)


class Figures(NamedTuple):
    pairs: int
    overlaps: int
    holds: int
    precision: float
    recall: float

    @classmethod
    def of(cls, pairs: Sequence[Pair], rule: str) -> Figures:
        held = [p for p in pairs if getattr(p, rule)]
        tp = sum(p.overlap for p in held)
        overlaps = sum(p.overlap for p in pairs)
        return cls(len(pairs), overlaps, len(held), tp / len(held) if held else 0.0, tp / overlaps if overlaps else 0.0)


def lift(pairs: Sequence[Pair]) -> float:
    """How much likelier an extra hold (held by the expansion, not the declarations) is a
    real overlap than a random pair."""
    extra = [p for p in pairs if p.onesided and not p.declared]
    base = sum(p.overlap for p in pairs) / len(pairs) if pairs else 0.0
    if not extra or not base:
        return 0.0
    return (sum(p.overlap for p in extra) / len(extra)) / base


def bootstrap(pairs: Sequence[Pair], stat: Callable[[Sequence[Pair]], float], seed: int = 1) -> tuple[float, float]:
    """A 95% percentile interval of ``stat`` over resamples of the pairs."""
    import random

    rng = random.Random(seed)
    values = sorted(stat(rng.choices(pairs, k=len(pairs))) for _ in range(BOOTSTRAP))
    return values[int(0.025 * BOOTSTRAP)], values[int(0.975 * BOOTSTRAP) - 1]


class Calibration(NamedTuple):
    on: bool
    why: str
    pairs: int
    lift: float
    lift_low: float
    lift_high: float
    precision: float
    recall: float
    recall_declared: float


def calibrate(
    root: Path,
    tip: str,
    hot: Sequence[str],
    limit: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    shallow: Sequence[str] = (),
) -> Calibration:
    """The replay's verdict: the layer is on only where its extra holds are worth it here."""
    pairs = replay(root, tip, hot, limit, progress, shallow)
    if len(pairs) < 20 or not any(p.overlap for p in pairs):
        return Calibration(
            False, f"too few merges to tell ({len(pairs)} usable pairs; 20 needed)", len(pairs), 0, 0, 0, 0, 0, 0
        )
    one, decl = Figures.of(pairs, "onesided"), Figures.of(pairs, "declared")
    li = lift(pairs)
    low, high = bootstrap(pairs, lift)
    on = li >= LIFT_MIN and low > 1 and one.precision >= PRECISION_MIN
    why = (
        f"lift {li:.2f} (95% {low:.2f}-{high:.2f}), precision {one.precision:.2f}, recall {one.recall:.2f} "
        f"(declarations alone {decl.recall:.2f}) on {len(pairs)} merges"
    )
    if not on:
        why += f": off (it needs lift >= {LIFT_MIN} with its lower bound above 1 and precision >= {PRECISION_MIN})"
    return Calibration(on, why, len(pairs), li, low, high, one.precision, one.recall, decl.recall)
