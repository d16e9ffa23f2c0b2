"""The culprit search: the merge of every live task is gated once; when it fails, each
task alone (cached verdicts count), then pairs, then larger sets, until the smallest sets
that fail together are found.

Assumes what a merge queue assumes: a set that passes vouches for its subsets, and a set
containing a failing set fails.  So a pair inside a passing set is not run, a larger set
holding a failing pair is not run, and the search stops at the first size that explains
the failure.  Pairs whose changes lie in separate top-level folders (no root-level files)
are run last, only when no other pair explains it (``all_pairs``: every pair, always)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import combinations

from .. import gitops
from ..errors import Say, UsageError, quiet
from ..repo import Ctx
from ..state import LIVE
from . import trees
from .result import Result
from .runs import FAIL, PASS, TIMEOUT, Outcome, Runner

AUTO = "auto"


def gate_of(ctx: Ctx) -> str:
    """What 'check --test' runs: [check] test when it names a command, else the land gate;
    refused until the user trusted it (and the setup commands run before it), as land does."""
    from .. import trust

    test = ctx.cfg.check_test.strip()
    gate = ctx.cfg.land_gate if test in ("", AUTO) else ctx.cfg.check_test
    if not gate:
        raise UsageError("there is no gate to run: set [land] gate (or [check] test) in .wtp.toml")
    st = ctx.store.read()
    for key in ("land.gate" if test in ("", AUTO) else "check.test", "setup.run"):
        trust.require_trust(ctx, st, key)
    return gate


def independent(a: trees.Work, b: trees.Work) -> bool:
    """Changes in separate top-level folders, neither touching a root-level file."""

    def tops(w: trees.Work) -> set[str]:
        return {p.split("/", 1)[0] if "/" in p else "" for p in w.changed}

    ta, tb = tops(a), tops(b)
    return "" not in ta and "" not in tb and not ta & tb


def work_of(ctx: Ctx, names: list[str] | None) -> tuple[str, str, list[trees.Work]]:
    """(base, base tip, each live task's work as of now: committed, staged, unstaged and
    untracked, snapshotted as 'wtp check' does, without touching the task's worktree)."""
    from .. import overlap

    st = ctx.store.read()
    for n in names or ():
        st.task(n)  # an unknown name is an error
    base = ctx.detect_base()
    tip = gitops.rev_parse(ctx.root, ctx.base_tip_ref(base))
    if tip is None:
        raise UsageError(f"base branch '{base}' does not exist")
    live = sorted((t for t in st.tasks.values() if t.state in LIVE), key=lambda t: t.seq)
    if names:
        live = [t for t in live if t.name in names]
    # A task not seen whole is said by the report of 'wtp check' that comes with this one.
    sides = overlap.sides(ctx, live, tip)[0]
    return base, tip, [trees.Work(s.name, s.commit, s.tree, frozenset(s.changed)) for s in sides]


def inputs_key(gate: str, tip: str, work: list[trees.Work]) -> str:
    text = "\0".join([gate, tip, *(f"{w.name}={w.tree}" for w in work)])
    return hashlib.sha1(text.encode()).hexdigest()


def check_test(
    ctx: Ctx,
    names: list[str] | None,
    *,
    budget: int,
    timeout: float,
    all_pairs: bool = False,
    cancelled: Callable[[], bool] | None = None,
    say: Say = quiet,
    prepared: tuple[str, str, list[trees.Work]] | None = None,
) -> Result:
    gate = gate_of(ctx)
    trees.sweep(ctx)
    base, tip, work = prepared or work_of(ctx, names)
    merger = trees.Merger(ctx.root, tip, work)
    # The set gated together: every task that merges cleanly with the ones before it; a
    # textual conflict is reported by 'wtp check' as it always is, and not gated.
    members: list[str] = []
    skipped: dict[str, str] = {}
    for w in work:
        if isinstance(merger.merge([*members, w.name]), trees.Clash):
            skipped[w.name] = _why_not(merger, members, w.name)
        else:
            members.append(w.name)
    res = Result(gate, base, members, inputs_key(gate, tip, work))
    res.skipped, res.budget, res.timeout = skipped, budget, timeout
    by_name = {w.name: w for w in work}
    runner = Runner(ctx, gate, base, merger, budget=budget, timeout=timeout, cancelled=cancelled, say=say)
    if len(members) > 1:
        _search(runner, res, members, lambda a, b: independent(by_name[a], by_name[b]), all_pairs)
    res.runs, res.reused, res.peak, res.notes = runner.runs, runner.reused, runner.peak, runner.notes
    return res


def _why_not(merger: trees.Merger, members: list[str], name: str) -> str:
    alone = merger.merge([name])
    if isinstance(alone, trees.Clash):
        return f"conflicts with the base in {', '.join(alone.paths[:5])}"
    for m in members:
        pair = merger.merge([m, name])
        if isinstance(pair, trees.Clash):
            return f"conflicts with {m} in {', '.join(pair.paths[:5])}"
    last = merger.merge([*members, name])
    paths = last.paths if isinstance(last, trees.Clash) else []
    return f"conflicts with the merge of {' + '.join(members)} in {', '.join(paths[:5])}"


def _search(
    runner: Runner, res: Result, members: list[str], indep: Callable[[str, str], bool], all_pairs: bool
) -> None:
    seen = res.outcomes
    tries: dict[str, list[str]] = {}  # tree -> the verdicts of the runs made on it (cached ones not)

    def run(sets: list[tuple[str, ...]], fresh: bool = False) -> dict[tuple[str, ...], str]:
        got = runner.evaluate(sets, fresh=fresh)
        seen.update(got)
        res.timed_out += [k for k, o in got.items() if o.verdict == TIMEOUT]
        for tree, verdict in {o.tree: o.verdict for o in got.values() if not o.cached}.items():
            tries.setdefault(tree, []).append(verdict)
        return {k: o.verdict for k, o in got.items()}

    def confirmed(sets: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """The sets whose red holds when run once more (a red is never named on one run);
        a set that passes then is noted as flaky, one that times out gives no verdict."""

        def runs(k: tuple[str, ...]) -> list[str]:
            return tries.get(seen[k].tree, [])

        once = [k for k in sets if runs(k).count(FAIL) < 2 and PASS not in runs(k)]
        if once:
            run(once, fresh=True)
        res.flaky_sets += [k for k in sets if PASS in runs(k) and k not in res.flaky_sets]
        return [k for k in sets if runs(k).count(FAIL) >= 2 and PASS not in runs(k)]

    whole = tuple(members)
    if run([whole])[whole] != FAIL:
        return
    singles = run([(n,) for n in whole])
    res.alone = [k[0] for k in confirmed([(n,) for n in whole if singles[(n,)] == FAIL])]
    if res.alone:
        # A task failing alone may be the base's own red (a broken gate, a red base): the
        # base's tree is gated once (or its verdict taken from a task with no changes).
        base = runner.merger.merge(())
        assert isinstance(base, trees.Merged)  # the empty set is the base: nothing to conflict
        same = [(n,) for n in res.alone if seen[(n,)].tree == base.tree]
        if same:
            seen[()] = seen[same[0]]._replace(names=())
        else:
            run([()])  # a pass cached for the base's tree counts: every landed tree passed
        if seen[()].verdict == FAIL and confirmed([()]):
            res.base_red, res.alone = seen[()], []
    pool = tuple(n for n in whole if seen[(n,)].verdict == PASS)
    if len(pool) >= 2 and (pool == whole or run([pool])[pool] == FAIL):
        pairs = [c for c in combinations(pool, 2) if all_pairs or not indep(*c)]
        if all_pairs or len(pairs) <= runner.budget:
            failing = _by_size(run, seen, pool, indep, all_pairs)
        else:
            failing = _bisect(run, pool, runner.budget)
        if not failing and not any(set(k) < set(pool) for k in res.timed_out):
            # The whole pool is the smallest failing set (confirmed below).  Only a set inside
            # it that gave no verdict leaves that open: a task that timed out alone is not in
            # the pool, and hid the pair it left failing (exit 3, "no collisions").
            failing = [pool]
        res.semantic = confirmed([c for c in failing if seen[c].verdict == FAIL])
    if not (res.semantic or res.alone or res.base_red or res.timed_out) and seen[whole].verdict == FAIL:
        confirmed([whole])  # reported as failing with no smaller set to blame: a red seen once is confirmed


Run = Callable[..., dict[tuple[str, ...], str]]


def _by_size(
    run: Run,
    seen: dict[tuple[str, ...], Outcome],
    pool: tuple[str, ...],
    indep: Callable[[str, str], bool],
    all_pairs: bool,
) -> list[tuple[str, ...]]:
    """Pairs, then larger sets: every set of a size whose verdict is not implied yet, until
    a size explains the failure (a round of the budget's runs, when the pairs fit in one)."""
    failing: list[tuple[str, ...]] = []
    passing = [set(k) for k, o in seen.items() if o.verdict == PASS]
    for size in range(2, len(pool)):
        cands = [
            c
            for c in combinations(pool, size)
            if not any(set(f) <= set(c) for f in failing) and not any(set(c) <= p for p in passing)
        ]
        first, later = cands, []
        if size == 2 and not all_pairs:
            first = [c for c in cands if not indep(*c)]
            later = [c for c in cands if indep(*c)]
        for batch in (first, later):
            if not batch:
                continue
            got = run(batch)
            failing += [c for c in batch if got[c] == FAIL]
            passing += [set(c) for c in batch if got[c] == PASS]
            if failing and not all_pairs:
                break
        if failing:
            break
    return failing


def _bisect(run: Run, pool: tuple[str, ...], budget: int) -> list[tuple[str, ...]]:
    """Smallest failing sets by bisecting prefixes (the budget's probes a round): about
    2·log(n) rounds for a pair where every pair would be n²/2 runs.  After each set found,
    the pool without its last-found task is gated: if it still fails, there is another."""
    found: list[tuple[str, ...]] = []
    rest = pool
    while len(rest) >= 2:
        c = _one(run, rest, budget)
        if c is None:
            break
        found.append(c)
        rest = tuple(n for n in rest if n != c[-1])
        if len(rest) < 2 or run([rest])[rest] != FAIL:
            break
    return found


def _one(run: Run, pool: tuple[str, ...], budget: int) -> tuple[str, ...] | None:
    """One smallest failing set inside ``pool`` (which fails; each task alone passes)."""

    def ordered(names: list[str]) -> tuple[str, ...]:
        return tuple(n for n in pool if n in names)

    culprit: list[str] = []
    cands = list(pool)  # invariant: culprit + cands fails
    while cands:
        if len(culprit) >= 2:
            key = ordered(culprit)
            v = run([key])[key]
            if v == FAIL:
                return key
            if v != PASS:
                return None
        lo, hi = 0, len(cands)  # culprit + cands[:lo] passes, culprit + cands[:hi] fails
        while hi - lo > 1:
            step = (hi - lo) / (min(budget, hi - lo - 1) + 1)
            probes = sorted({lo + max(1, round(step * i)) for i in range(1, budget + 1)} & set(range(lo + 1, hi)))
            sets = {k: ordered(culprit + cands[:k]) for k in probes}
            got = run(list(sets.values()))
            if any(got[v] not in (PASS, FAIL) for v in sets.values()):
                return None  # a timeout: no verdict to bisect on
            hi = min((k for k in probes if got[sets[k]] == FAIL), default=hi)
            lo = max((k for k in probes if k < hi and got[sets[k]] == PASS), default=lo)
        culprit.append(cands[hi - 1])
        cands = cands[: hi - 1]
    return ordered(culprit)
