"""Hidden shared state from the repository's own history: files that changed together before
will change together again (association rules over commits, Zimmermann et al., "Mining
Version Histories to Guide Software Changes", ICSE 2004).

The index is the base's history as it matters here: each non-merge commit of at most
``MAX_FILES`` files, as the list of files it changed, hot files (changelogs, lockfiles,
version files: overlap.HOT_GLOBS and ``[check] hot``) left out, renames followed where git
reports them (a file's history goes on under its new name).  Mined once (one ``git log``),
cached under the state dir with the tip it was mined at, and brought up to date with only
the commits since when the base moves forward.  In a shallow clone the commits the history
stops at (git's ``shallow`` file) are left out: git shows each as a root whose diff is every
file, which is no co-change; and the cache keeps where the history stopped, so a history
deepened or unshallowed since is mined again, whole.

A file g is a likely companion of a file f when at least ``MIN_SHARED`` commits changed
both and at least ``MIN_CONFIDENCE`` of the commits that changed f changed g too.  The
layer is one-sided: a task whose expansion (its files and their companions) hits another
task's own declared or changed files, or the reverse.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeGuard

from . import atomic, gitops, records
from .globs import glob_matches

MAX_FILES = 30  # commits touching more files say little about coupling (mass renames, formatting)
MIN_SHARED = 2
MIN_CONFIDENCE = 0.2
VERSION = 3  # 3: the shallow boundary it was mined with
MAX_SOURCES = 200  # files of a glob declaration expanded at most


class Evidence:
    """``file`` usually changes with ``with_``: ``shared`` of the ``of`` commits that changed it."""

    __slots__ = ("file", "with_", "shared", "of")

    def __init__(self, file: str, with_: str, shared: int, of: int) -> None:
        self.file, self.with_, self.shared, self.of = file, with_, shared, of

    @property
    def confidence(self) -> float:
        return self.shared / self.of

    def describe(self) -> str:
        return f"{self.file} usually changes with {self.with_}: {self.shared} of {self.of} commits"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "with": self.with_,
            "shared": self.shared,
            "of": self.of,
            "confidence": round(self.confidence, 2),
        }


class History:
    """The mined commits: file names interned, each commit the ids of its files (and, when
    freshly mined, its time: the replay asks what was known before a fork; the cache keeps
    no times, to load fast on every start)."""

    def __init__(self, tip: str = "", hot: Sequence[str] = (), shallow: Sequence[str] = ()) -> None:
        self.tip = tip
        self.hot = tuple(hot)
        self.shallow = sorted(shallow)  # the commits a shallow clone's history stops at: never counted
        self.files: list[str] = []
        self.ids: dict[str, int] = {}
        self.commits: list[list[int]] = []
        self.times: list[int] = []  # a commit's time, or any key that orders the history
        self.shas: list[gitops.Sha] | None = None  # each commit's id, when asked for (the replay)
        self._by_file: dict[int, list[int]] | None = None

    # --- mining ------------------------------------------------------------------------

    def _id(self, path: str) -> int:
        i = self.ids.get(path)
        if i is None:
            i = self.ids[path] = len(self.files)
            self.files.append(path)
        return i

    def _hot(self, path: str) -> bool:
        return any(glob_matches(g, path) for g in self.hot)

    def add(self, commits: Iterable[gitops.CommitChanges]) -> None:
        """Take mined commits, oldest first (gitops.changes; with their ids in a shallow clone)."""
        boundary = set(self.shallow)
        for c in commits:
            if c.sha in boundary:
                continue  # its parents were not fetched: git lists every file it holds
            for old, new in c.renames:
                if old in self.ids and new not in self.ids:
                    i = self.ids.pop(old)  # the history goes on under the new name
                    self.ids[new], self.files[i] = i, new
            kept = [p for p in dict.fromkeys(c.paths) if not self._hot(p)]
            if 0 < len(c.paths) <= MAX_FILES and kept:
                self.commits.append([self._id(p) for p in kept])
                self.times.append(c.time)
                if self.shas is not None and c.sha is not None:
                    self.shas.append(c.sha)
        self._by_file = None

    # --- queries -----------------------------------------------------------------------

    def _index(self) -> dict[int, list[int]]:
        if self._by_file is None:
            by: dict[int, list[int]] = {}
            for n, ids in enumerate(self.commits):
                for i in ids:
                    by.setdefault(i, []).append(n)
            self._by_file = by
        return self._by_file

    def companions(self, path: str, before: int | None = None) -> list[Evidence]:
        """The files that usually change with ``path`` (strongest first)."""
        i = self.ids.get(path)
        if i is None:
            return []
        seen = [n for n in self._index().get(i, []) if before is None or self.times[n] < before]
        if len(seen) < MIN_SHARED:
            return []
        counts: Counter[int] = Counter()
        for n in seen:
            counts.update(j for j in self.commits[n] if j != i)
        out = [
            Evidence(self.files[j], path, c, len(seen))
            for j, c in counts.items()
            if c >= MIN_SHARED and c / len(seen) >= MIN_CONFIDENCE
        ]
        return sorted(out, key=lambda e: (-e.confidence, -e.shared, e.file))

    def matching(self, glob: str) -> list[str]:
        """Indexed files a --touch glob covers (at most MAX_SOURCES)."""
        if glob in self.ids:
            return [glob]
        return [p for p in self.ids if glob_matches(glob, p)][:MAX_SOURCES]

    def expand(self, globs: Iterable[str], files: Iterable[str] = ()) -> list[Evidence]:
        """Companions of a task's declared globs and changed files, outside them."""
        sources = list(dict.fromkeys([p for g in globs for p in self.matching(g)] + list(files)))[:MAX_SOURCES]
        own = set(sources)
        best: dict[str, Evidence] = {}
        for s in sources:
            for e in self.companions(s):
                if e.file not in own and (e.file not in best or e.confidence > best[e.file].confidence):
                    best[e.file] = e
        return sorted(best.values(), key=lambda e: (-e.confidence, -e.shared, e.file))

    # --- the cache -----------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "version": VERSION,
            "tip": self.tip,
            "hot": list(self.hot),
            "shallow": self.shallow,
            "files": self.files,
            "commits": self.commits,
        }

    @classmethod
    def from_json(cls, data: object) -> History | None:
        """The cached index, every field checked; None when it is of another version (then it
        is mined again); ValueError when it is not what we write.  The one pass that checks
        every file id also builds the index queries need."""
        if not isinstance(data, dict) or "version" not in data:
            raise ValueError("not a co-change index")
        if data["version"] != VERSION:
            return None
        tip, hot, shallow, files, commits = (data.get(k) for k in ("tip", "hot", "shallow", "files", "commits"))
        if not isinstance(tip, str) or not gitops.is_object_id(tip):
            raise ValueError("its tip is not a commit id")  # it reaches git's command line
        if not _strings(hot) or not _strings(files) or not isinstance(commits, list):
            raise ValueError("its hot, files or commits are not lists of the right kind")
        if not _strings(shallow) or not all(gitops.is_object_id(c) for c in shallow):
            raise ValueError("its shallow boundary is not a list of commit ids")
        h = cls(tip, hot, shallow)
        h.files = files
        h.ids = {f: i for i, f in enumerate(files)}
        n_files = len(files)
        by: dict[int, list[int]] = {}
        for n, ids in enumerate(commits):
            if not isinstance(ids, list):
                raise ValueError("a commit is not a list of file ids")
            for i in ids:
                if type(i) is not int or not 0 <= i < n_files:
                    raise ValueError("a commit names a file id it does not have")
                by.setdefault(i, []).append(n)
        h.commits, h._by_file = commits, by
        h.times = [0] * len(commits)  # not kept: only a fresh mining answers 'before'
        return h


def _strings(v: object) -> TypeGuard[list[str]]:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def mine(
    root: Path, tip: str, since: str | None = None, hot: Sequence[str] = (), shallow: Sequence[str] = ()
) -> History:
    """The index of the commits reachable from ``tip`` (and not from ``since``), the shallow
    boundary ``shallow`` left out: one git call."""
    h = History(tip, hot, shallow)
    h.add(gitops.changes(root, tip, since=since, with_sha=bool(shallow)))
    return h


def load(root: Path, cache_dir: Path, base_ref: str, hot: Sequence[str], tip: str | None = None) -> History | None:
    """The index of the history of ``base_ref`` (at ``tip`` when the caller knows it), from
    the cache when it is up to date, else brought up to date (only the new commits mined
    when the base moved forward) and saved.  None when the base has no commits.
    ``cache_dir`` is the state dir, in the common git dir (state.Store)."""
    tip = tip or gitops.rev_parse(root, base_ref)
    if tip is None:
        return None
    shallow = gitops.shallow_boundary(cache_dir.parent)
    name = base_ref.replace("/", "_")
    path = cache_dir / f"cochange-{name}.json"
    cached: History | None = None
    try:
        text = atomic.read_regular(path).decode("utf-8", errors="replace")
    except OSError:
        text = None  # no cache yet (or not a file: a FIFO planted there is never waited on)
    if text is not None:
        try:
            cached = History.from_json(json.loads(text))
        except (ValueError, RecursionError):  # a planted or damaged cache: never trusted, never fatal
            records.set_aside(path, "the co-change cache", "it is mined again")
    # A history deepened or unshallowed since (or made shallow) is mined again, whole: the
    # commits behind the old boundary are not "since" the cached tip (review 36).
    if cached is not None and tuple(cached.hot) == tuple(hot) and cached.shallow == shallow:
        if cached.tip == tip:
            return cached
        if cached.tip and gitops.is_ancestor(root, cached.tip, tip):
            cached.add(gitops.changes(root, tip, since=cached.tip, with_sha=bool(shallow)))
            cached.tip = tip
            _save(path, cached)
            return cached
    fresh = mine(root, tip, hot=hot, shallow=shallow)
    _save(path, fresh)
    return fresh


def _save(path: Path, h: History) -> None:
    try:
        atomic.replace(path, json.dumps(h.to_json(), separators=(",", ":")).encode(), durable=False)
    except OSError:
        pass  # a cache: losing it costs one mining


class Likely:
    """A likely collision: ``a``'s expansion hits ``b``'s own files (one-sided)."""

    def __init__(self, a: str, b: str, evidence: list[Evidence]) -> None:
        self.a, self.b, self.evidence = a, b, evidence  # companions of a's files that are b's files

    def describe(self) -> str:
        e = self.evidence[0]
        more = f" (and {len(self.evidence) - 1} more)" if len(self.evidence) > 1 else ""
        return f"task '{self.a}' likely collides with task '{self.b}': {e.describe()}{more}"


class Claimant:
    """One side of the one-sided rule: a task's declared globs and changed files, and (once
    asked for) their companions, computed once however many tasks it is compared with."""

    __slots__ = ("name", "globs", "files", "_expansion")

    def __init__(
        self, name: str, globs: Sequence[str], files: Sequence[str] = (), expansion: list[Evidence] | None = None
    ) -> None:
        self.name, self.globs, self.files = name, list(globs), list(files)
        self._expansion = expansion  # when the caller has it already

    def expansion(self, h: History) -> list[Evidence]:
        if self._expansion is None:
            self._expansion = h.expand(self.globs, self.files)
        return self._expansion

    def owns(self, path: str) -> bool:
        return path in self.files or any(glob_matches(g, path) for g in self.globs)


def likely(h: History, a: Claimant, b: Claimant) -> Likely | None:
    """Does a's expansion hit b's declared or changed files, or the reverse?"""
    hits = [e for e in a.expansion(h) if b.owns(e.file)]
    if hits:
        return Likely(a.name, b.name, hits)
    back = [e for e in b.expansion(h) if a.owns(e.file)]
    return Likely(b.name, a.name, back) if back else None
