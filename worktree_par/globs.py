"""Path globs as --touch declares them: what they match, and whether two can match one path.

``**`` spans folders, ``*`` and ``?`` stay within one, ``[...]`` is a class; a glob that
matches a folder also covers everything below it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import UsageError

_WILD = re.compile(r"[*?\[]")

# Files that many tasks touch (``wtp check`` marks an overlap on them 'hot'; the co-change
# index leaves them out): lockfiles, changelogs and release notes, version files.
HOT_GLOBS = (
    # lockfiles
    "**/package-lock.json",
    "**/npm-shrinkwrap.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/poetry.lock",
    "**/uv.lock",
    "**/Pipfile.lock",
    "**/Cargo.lock",
    "**/go.sum",
    "**/go.mod",
    "**/Gemfile.lock",
    "**/composer.lock",
    "**/mix.lock",
    "**/pubspec.lock",
    "**/flake.lock",
    # changelogs and release notes
    "**/CHANGELOG*",
    "**/CHANGES*",
    "**/HISTORY*",
    "**/NEWS*",
    "**/RELEASE_NOTES*",
    # version files
    "**/VERSION",
    "**/version.txt",
    "**/version.py",
    "**/_version.py",
    "**/__version__.py",
    "**/.version",
)


def normalize_glob(g: str) -> str:
    """Clean a --touch glob; refuse ones that point outside the repository."""
    s = g.strip().replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    s = s.rstrip("/")
    if not s or s.startswith("/") or ".." in s.split("/") or any(ord(c) < 32 for c in s):
        raise UsageError(f"--touch {g!r} is not a path or glob inside the repository (like 'src/api/**')")
    return s


@lru_cache(maxsize=512)
def _glob_re(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            if glob.startswith("/", i):  # "a/**/b" also matches "a/b"
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 1)
            if j in (-1, i + 1) or glob[i + 1 : j] == "!":  # no set: '[' as written
                out.append(re.escape(c))
            else:
                # Inside a set only '!' (first) and '-' (a range) mean anything: every character
                # a regex set would read otherwise ('[', '^', '&', '~', '|', '\\') is escaped.
                neg, body = glob[i + 1] == "!", glob[i + 1 : j]
                body = "".join("\\" + ch if ch in "[]^&~|\\" else ch for ch in body[1 if neg else 0 :])
                out.append(f"[{'^' if neg else ''}{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z")  # a match also covers everything below it


def glob_matches(glob: str, path: str) -> bool:
    return _glob_re(glob).match(path) is not None


def _literal_dirs(glob: str) -> list[str]:
    parts = glob.split("/")
    lit = []
    for p in parts:
        if _WILD.search(p):
            break
        lit.append(p)
    return lit


def _is_prefix(a: list[str], b: list[str]) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a


def globs_intersect(a: str, b: str) -> bool:
    """Could some path be matched by both globs?  Directory prefixes count.

    Exact when one side is a literal path; conservative (literal-prefix overlap)
    when both contain wildcards.
    """
    wa, wb = bool(_WILD.search(a)), bool(_WILD.search(b))
    la, lb = _literal_dirs(a), _literal_dirs(b)
    if not wa and not wb:
        return _is_prefix(la, lb) or _is_prefix(lb, la)
    if wa and wb:
        return _is_prefix(la, lb) or _is_prefix(lb, la)
    lit, glob, lit_parts = (b, a, lb) if wa else (a, b, la)
    if _is_prefix(lit_parts, _literal_dirs(glob)):  # "content" vs "content/posts/**"
        return True
    parts = lit.split("/")
    return any(glob_matches(glob, "/".join(parts[:i])) for i in range(1, len(parts) + 1))
