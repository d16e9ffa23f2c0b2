"""Disposable build outputs: the ignored files of a worktree that a build, an install or a
test run makes again, so the guard (guard.py) deletes them with the worktree without
archiving them and without asking (issue 29).  Everything else a worktree holds, ignored
or not, stays the guard's to prove kept.

Only *ignored* paths are ever judged here: a tracked file is in git, and an untracked file
that is not ignored (a 'dist/' nobody listed in .gitignore) is the user's, whatever its
name.  The list holds names that a tool writes by default and that no tool expects a person
to keep files in; a name some people also use for their own data (Go's 'bin/', IntelliJ's
'out/', a 'data/' or 'tmp/') is left out: a project adds it with ``[rm] disposable``.

Patterns follow .gitignore: a trailing '/' matches folders only; a pattern without any other
'/' matches a name at any depth (a monorepo's 'packages/web/dist/'); one with a '/' in it
is anchored at the worktree's root ('**' spans folders).
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

from .globs import glob_matches

# Caches any build or test run refills.  Besides being disposable, they are never searched for
# nested repositories (nested.find): node_modules alone can hold 100,000 files, and a git
# dependency cloned into one is fetched again by the package manager.
CACHES = (
    "__pycache__/",  # CPython bytecode
    "*.pyc",
    "*.pyo",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".hypothesis/",  # Hypothesis' example database: replayed examples, found again by the tests
    ".tox/",
    ".nox/",
    ".eggs/",  # setuptools' fetched build requirements
    "node_modules/",  # npm, yarn, pnpm: installed from the lockfile
    ".next/",
    ".nuxt/",
    ".svelte-kit/",
    ".turbo/",
    ".parcel-cache/",
    ".gradle/",  # Gradle's per-project cache
    ".cache/",
)
# Build, install, coverage and documentation outputs: made by one command from tracked files.
# A nested repository inside one is still found and kept (pip -e clones into '.venv/src/').
BUILD_OUTPUTS = (
    # Python: sdists and wheels, setuptools' build tree and metadata, virtual environments
    "dist/",
    "build/",
    "*.egg-info/",
    ".venv/",
    "venv/",
    # coverage reports: Python's coverage.py, JavaScript's istanbul/nyc, c8, jest
    ".coverage",
    ".coverage.*",
    "htmlcov/",
    "coverage/",
    ".nyc_output/",
    # Rust (cargo) and Java (Maven) write to target/; Gradle writes to build/
    "target/",
    # C and C++ with CMake: CLion's per-profile build folders, CMake's own
    "cmake-build-*/",
    "CMakeFiles/",
    # documentation builds: Sphinx, MkDocs
    "_build/",
    "site/",
)
DISPOSABLE = CACHES + BUILD_OUTPUTS
# The plain folder names among CACHES, as nested.find skips them while it walks.
CACHE_FOLDERS = frozenset(p.rstrip("/") for p in CACHES if p.endswith("/") and not any(c in p for c in "*?["))


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` (as 'git status' names it: a folder ends in '/') is, or lies inside,
    something one of ``patterns`` matches."""
    return bool(_matched_at(path, patterns))


def _matched_at(path: str, patterns: tuple[str, ...]) -> list[str]:
    """The prefixes of ``path`` (itself included, a folder ending in '/') that a pattern matches."""
    parts = path.rstrip("/").split("/")
    found = []
    for i, name in enumerate(parts, 1):
        is_dir = i < len(parts) or path.endswith("/")
        prefix = "/".join(parts[:i])
        for pat in patterns:
            if pat.endswith("/") and not is_dir:
                continue
            body = pat.strip("/")
            anchored = "/" in body or pat.startswith("/")
            if glob_matches(body, prefix) if anchored else fnmatchcase(name, body):
                found.append(prefix + "/" * is_dir)
                break
    return found


def split(
    ignored: list[str], extra: tuple[str, ...] = (), ignored_folders: Callable[[list[str]], set[str]] | None = None
) -> tuple[list[str], list[str]]:
    """The ignored paths a user may have made (kept by the guard), and the disposable ones
    (the built-in list and the project's ``[rm] disposable`` globs).

    'git status' names the topmost ignored path, so the folders above one are not ignored
    themselves; one of them named like an output ('apps/site/' holding a tracked app) makes
    nothing in it disposable: '.env' in it is the user's.  A folder above that is ignored too
    (a 'build/' in .gitignore holding a tracked file, so status names what is in it) counts:
    ``ignored_folders`` says which of the folders asked about the project ignores (git
    check-ignore); without it, none does."""
    patterns = DISPOSABLE + extra
    keep: list[str] = []
    drop: list[str] = []
    above: dict[str, list[str]] = {}  # a path matched only through a folder above it: those folders
    for p in ignored:
        at = _matched_at(p, patterns)
        if not at:
            keep.append(p)
        elif at[-1].rstrip("/") == p.rstrip("/"):
            drop.append(p)
        else:
            above[p] = at
    if above:
        asked = sorted({f for at in above.values() for f in at})
        ours = ignored_folders(asked) if ignored_folders is not None else set()
        for p, at in above.items():
            (drop if any(f in ours or f.rstrip("/") in ours for f in at) else keep).append(p)
    return keep, drop


def refilled(path: str) -> bool:
    """A cache any run refills (not searched for nested repositories)."""
    return matches(path, CACHES)


def bad_pattern(pattern: str) -> str:
    """Why ``pattern`` cannot be an ``[rm] disposable`` glob ("" when it can): it must stay
    inside the repository and name something, not match every ignored file."""
    body = pattern.strip().strip("/")
    parts = body.split("/")
    if not body or ".." in parts or pattern.startswith("!") or "\\" in pattern:
        return "must be a path or glob inside the repository, like 'out/' or 'generated/**'"
    if all(set(p) <= set("*?") for p in parts):
        return "matches every ignored file (a .env too): name the outputs, like 'out/'"
    return ""
