"""Admission control: the cap on active tasks and declared collisions.

Pure functions over the registry: no git, no I/O.  A task waits when the cap is
reached or when its declared paths (``--touch`` globs) or resources (``--use``)
collide with a task in flight or with one queued before it (FIFO: a newcomer
never overtakes an earlier task it collides with).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .errors import UsageError
from .state import LIVE, State, Task

_WILD = re.compile(r"[*?\[]")


class Collision(NamedTuple):
    other: str  # the other task's name
    kind: str  # "declared" (paths) or "resource"
    what: str  # the path pair or resource

    def describe(self) -> str:
        noun = "path" if self.kind == "declared" else "resource"
        return f"{noun} {self.what} with task '{self.other}'"


def normalize_glob(g: str) -> str:
    """Clean a --touch glob; refuse ones that point outside the repository."""
    s = g.strip().replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    s = s.rstrip("/")
    if not s or s.startswith("/") or ".." in s.split("/") or any(ord(c) < 32 for c in s):
        raise UsageError(f"--touch {g!r} is not a path or glob inside the repository (like 'src/api/**')")
    return s


def normalize_resource(r: str) -> str:
    s = r.strip()
    if not s or len(s) > 100 or any(ord(c) < 32 for c in s):
        raise UsageError(f"--use {r!r} is not a resource name: use a short name such as 'deploy:prod'")
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
            if j == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
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


def resources_collide(a: str, b: str) -> bool:
    """Same resource, or one names a whole family of the other ('deploy' covers 'deploy:prod')."""
    return a == b or a.startswith(b + ":") or b.startswith(a + ":")


def collisions(task: Task, others: list[Task]) -> list[Collision]:
    found: list[Collision] = []
    for o in others:
        if o.name == task.name:
            continue
        for g in task.touch:
            for h in o.touch:
                if globs_intersect(g, h):
                    found.append(Collision(o.name, "declared", g if g == h else f"{g} ~ {h}"))
        for r in task.use:
            for s in o.use:
                if resources_collide(r, s):
                    found.append(Collision(o.name, "resource", r if r == s else f"{r} ~ {s}"))
    return found


class Decision(NamedTuple):
    admit: bool
    full: bool  # the cap is reached
    collisions: list[Collision]

    def reason(self, max_active: int) -> str:
        why = []
        if self.full:
            why.append(f"all {max_active} slots are taken")
        why += [c.describe() for c in self.collisions]
        return "; ".join(why)


def decide(state: State, task: Task, max_active: int, earlier_queued: list[Task] | None = None) -> Decision:
    """May ``task`` become active now?"""
    live = [t for t in state.tasks.values() if t.state in LIVE and t.name != task.name]
    if earlier_queued is None:
        earlier_queued = [t for t in state.queued() if t.seq < task.seq and t.name != task.name]
    coll = collisions(task, live + earlier_queued)
    full = len(live) >= max_active
    return Decision(admit=not full and not coll, full=full, collisions=coll)


def free_port(state: State, port_base: int) -> int:
    used = {t.port for t in state.tasks.values() if t.state in LIVE and t.port is not None}
    port = port_base
    while port in used:
        port += 1
    return port
