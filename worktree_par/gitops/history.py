"""The base's history as the co-change layer reads it (cochange, calibration): which files
each commit changed, in what order commits came, which merges joined which sides, and what
each side changed since its fork point.  One git call per question, however long the
history; each answer parsed here (tests/test_gitparse_history.py) into typed records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .core import run
from .parse import Sha, is_object_id

# One 'git log' for the whole history: -z so any path survives, -M so a file's history goes
# on under its new name, --reverse so renames are met in the order they happened.
_LOG = ["log", "-z", "--reverse", "--no-merges", "-M", "--name-status"]
CHANGES_ARGS = [*_LOG, "--format=%x01%ct"]  # what changes() runs by default (scripts/bench_cochange.py times it)


class CommitChanges(NamedTuple):
    """One non-merge commit: the paths it changed (a renamed or copied file under its new
    name, in git's order), the renames among them (old, new), and its committer time."""

    sha: Sha | None  # only when asked for (with_sha)
    time: int  # seconds since the epoch; 0 when git printed none
    paths: list[str]
    renames: list[tuple[str, str]]


def changes(
    root: Path, tip: str, *, since: str | None = None, with_sha: bool = False, topo: bool = False
) -> list[CommitChanges]:
    """The non-merge commits reachable from ``tip`` (and not from ``since``), oldest first
    (in topological order when ``topo``), each with the files it changed."""
    order = ["--topo-order"] if topo else []
    fmt = "--format=%x01%H %ct" if with_sha else CHANGES_ARGS[-1]
    rev = f"{since}..{tip}" if since else tip
    return parse_changes(run([*_LOG, *order, fmt, rev, "--"], root).out, with_sha=with_sha)


def parse_changes(text: str, *, with_sha: bool = False) -> list[CommitChanges]:
    """``git log -z --name-status --format=%x01%ct`` (``%x01%H %ct`` when ``with_sha``):
    each commit is \\x01, its header, NUL, a newline, then NUL-separated status and path
    fields (a rename or copy has two paths, old then new)."""
    out: list[CommitChanges] = []
    for chunk in text.split("\x01"):
        if not chunk:
            continue
        head, _, body = chunk.partition("\0")
        fields = body.lstrip("\n").split("\0")
        paths: list[str] = []
        renames: list[tuple[str, str]] = []
        k = 0
        while k < len(fields):
            status = fields[k].strip("\n")
            if not status:
                k += 1
                continue
            if status[0] in "RC" and k + 2 < len(fields):
                old, new = fields[k + 1], fields[k + 2]
                if status[0] == "R":
                    renames.append((old, new))
                paths.append(new)
                k += 3
            else:
                if k + 1 < len(fields):
                    paths.append(fields[k + 1])
                k += 2
        words = head.split()  # "%ct", or "%H %ct"
        when = int(words[-1]) if words and words[-1].isdigit() else 0
        out.append(CommitChanges(Sha(words[0]) if with_sha and words else None, when, paths, renames))
    return out


def topo_order(root: Path, tip: str) -> list[Sha]:
    """Every commit reachable from ``tip``, oldest first in topological order (parents before
    children, whatever the clocks said)."""
    return Graph.of(root, tip).shas


class Graph:
    """The commits reachable from a tip with their parents, oldest first in topological
    order, from one 'git log'; merge bases and the sides of a merge are then answered here,
    in-process, the way 'git merge-base' walks (two calls per merge cost 8 s on Flask's
    history; the walk costs milliseconds)."""

    def __init__(self, rows: Sequence[GraphRow]) -> None:
        self.shas = [r.sha for r in rows]
        self.times = [r.time for r in rows]
        self.at = {sha: n for n, sha in enumerate(self.shas)}
        self.parents = [tuple(self.at[p] for p in r.parents if p in self.at) for r in rows]

    @classmethod
    def of(cls, root: Path, tip: str) -> Graph:
        out = run(["log", "--topo-order", "--reverse", "--format=%H %ct %P", tip, "--"], root).out
        return cls(parse_graph(out))

    def fork(self, a: Sha, b: Sha) -> Fork:
        """The merge bases of ``a`` and ``b`` and the commits only each reaches, walked as
        'git merge-base --all' paints them: newest first in topological order, each commit's
        paint final when it is reached, until every queued commit is an ancestor of a common
        one.  ``sure`` is False where git's own answer could differ: more than one merge base
        (a criss-cross: git picks one by its walk), or a side whose oldest commit ties with
        another in commit time (rev-list orders a tie by its walk); ask git there."""
        import heapq

        if a not in self.at or b not in self.at:
            raise KeyError(a if a not in self.at else b)
        STALE = 4  # reached from a common ancestor: not a merge base itself
        paint: dict[int, int] = {}
        heap: list[int] = []
        open_ = [0, 0]  # queued commits one side reaches alone; common ones not (yet) stale

        def kind(flag: int) -> int:
            return 0 if flag & 3 != 3 else 1 if not flag & STALE else 2

        def count(flag: int, by: int) -> None:
            k = kind(flag)
            if k < 2:
                open_[k] += by

        def push(n: int, flag: int) -> None:
            old = paint.get(n, 0)
            if old == 0:
                heapq.heappush(heap, -n)
            else:
                count(old, -1)
            paint[n] = old | flag
            count(paint[n], +1)

        push(self.at[a], 1)
        push(self.at[b], 2)
        bases: list[int] = []
        sides: tuple[list[int], list[int]] = ([], [])
        while heap and (open_[0] or open_[1]):
            n = -heapq.heappop(heap)  # children before parents: its paint is final
            flag = paint[n]
            count(flag, -1)
            k = kind(flag)
            if k == 0:
                sides[(flag & 3) - 1].append(n)
                up = flag & 3
            else:
                if k == 1:
                    bases.append(n)
                up = 3 | STALE
            for p in self.parents[n]:
                push(p, up)
        left, right = (sorted(side, key=lambda n: (self.times[n], n)) for side in sides)
        tie = any(len(side) > 1 and self.times[side[0]] == self.times[side[1]] for side in (left, right))
        return Fork(
            self.shas[bases[0]] if bases else None,
            [self.shas[n] for n in left],
            [self.shas[n] for n in right],
            sure=len(bases) <= 1 and not tie,
        )


class Fork(NamedTuple):
    base: Sha | None  # None: no common ancestor
    left: list[Sha]  # the commits only the first reaches, oldest first
    right: list[Sha]
    sure: bool  # False: git's own pick could differ (see Graph.fork)


def commit_count(root: Path, tip: str) -> int:
    """How many commits ``tip`` reaches (git counts them from the commit graph, quickly)."""
    return int(run(["rev-list", "--count", tip, "--"], root).out.strip() or 0)


class GraphRow(NamedTuple):
    sha: Sha
    time: int  # committer time, seconds since the epoch
    parents: tuple[Sha, ...]


def parse_graph(text: str) -> list[GraphRow]:
    """``git log --format='%H %ct %P'``: a commit, its committer time and its parents a line."""
    rows = []
    for row in text.splitlines():
        words = row.split()
        if len(words) >= 2:
            rows.append(GraphRow(Sha(words[0]), int(words[1]), tuple(Sha(p) for p in words[2:])))
    return rows


class FileLines(NamedTuple):
    path: str
    lines: int  # lines added plus lines deleted (0 for a binary file)


def numstat(root: Path, tip: str) -> dict[Sha, list[FileLines]]:
    """For each non-merge commit reachable from ``tip``: the files it changed (renames as a
    delete and an add) and how many lines of each."""
    return parse_numstat(
        run(["log", "--no-merges", "--no-renames", "--numstat", "--format=%x01%H", tip, "--"], root).out
    )


def parse_numstat(text: str) -> dict[Sha, list[FileLines]]:
    """``git log --numstat --format=%x01%H``: \\x01, the commit id, a blank line, then one
    ``added<TAB>deleted<TAB>path`` row per file (``-`` for a binary file's counts)."""
    out: dict[Sha, list[FileLines]] = {}
    for chunk in text.split("\x01"):
        sha, _, body = chunk.partition("\n")
        if not sha:
            continue
        files = []
        for row in body.splitlines():
            parts = row.split("\t")
            if len(parts) == 3:
                files.append(FileLines(parts[2], sum(int(x) for x in parts[:2] if x.isdigit())))
        out[Sha(sha)] = files
    return out


class Merge(NamedTuple):
    sha: Sha
    first: Sha  # the first parent: the side merged into
    second: Sha  # the side merged


def merges(root: Path, tip: str, limit: int) -> list[Merge]:
    """The newest ``limit`` two-parent merges reachable from ``tip``, newest first."""
    out = run(
        ["log", "--merges", "--min-parents=2", "--max-parents=2", "--format=%H %P", "-n", str(limit), tip, "--"], root
    ).out
    return parse_merges(out)


def parse_merges(text: str) -> list[Merge]:
    """``git log --format='%H %P'`` of two-parent merges: one ``merge first second`` a line."""
    rows = []
    for row in text.splitlines():
        m, p1, p2 = row.split()
        rows.append(Merge(Sha(m), Sha(p1), Sha(p2)))
    return rows


def sides(root: Path, p1: str, p2: str) -> tuple[list[Sha], list[Sha]]:
    """The commits only ``p1`` reaches and those only ``p2`` reaches, each oldest first."""
    return parse_sides(run(["rev-list", "--left-right", "--reverse", f"{p1}...{p2}", "--"], root).out)


def parse_sides(text: str) -> tuple[list[Sha], list[Sha]]:
    """``git rev-list --left-right``: one commit a line, marked ``<`` (left) or ``>`` (right)."""
    words = text.split()
    return [Sha(c[1:]) for c in words if c[0] == "<"], [Sha(c[1:]) for c in words if c[0] == ">"]


def changed_names(root: Path, pairs: Sequence[tuple[str, str]]) -> list[set[str]]:
    """For each (from, to) pair of commits: the paths that differ between them (no rename
    detection), every pair in one 'git diff-tree --stdin'."""
    ask = "".join(f"{a} {b}\n" for a, b in pairs)
    text = run(["diff-tree", "--stdin", "--always", "-r", "-z", "--name-only", "--no-renames"], root, input=ask).out
    return parse_changed_names(text, [a for a, _ in pairs])


def parse_changed_names(text: str, heads: Sequence[str]) -> list[set[str]]:
    """``git diff-tree --stdin --always -z --name-only`` fed ``from to`` lines: each diff is
    its ``from`` commit id (printed even when nothing differs, --always), then its paths;
    ``heads`` are the ``from`` ids in the order they were asked."""
    fields = [f.strip("\n") for f in text.split("\0")]
    diffs: list[set[str]] = []
    k = 0
    for n, head in enumerate(heads):
        while k < len(fields) and fields[k] != head:
            k += 1
        k += 1
        nxt = heads[n + 1] if n + 1 < len(heads) else None
        names: set[str] = set()
        while k < len(fields) and fields[k] != nxt:
            if fields[k]:
                names.add(fields[k])
            k += 1
        diffs.append(names)
    return diffs


def shallow_boundary(common_dir: Path) -> list[str]:
    """The commits a shallow clone's history stops at, sorted ([] for a whole history): git
    lists them in ``shallow`` in the common git dir (gitrepository-layout(5)), and 'fetch
    --unshallow' or '--deepen' rewrites or removes that file."""
    try:
        text = (common_dir / "shallow").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []  # none: the history is whole
    return sorted({w for w in text.split() if is_object_id(w)})
