"""The one repository builder that the tests, the benchmarks, the throughput simulation and
the demo share: a git repository with one commit of the given files on 'main', and, when
asked, a bare 'origin' it is pushed to (its HEAD set, as a clone would have it)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {res.stderr.strip()}")
    return res.stdout.strip()


def build(
    path: Path,
    *,
    files: Mapping[str, str] | None = None,
    tree: Path | None = None,
    fill: Callable[[Path], None] | None = None,
    origin: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Create ``path`` as a repository whose first commit holds a copy of ``tree``, then
    ``files`` (relative path -> text), then whatever ``fill`` writes; with ``origin``, a bare
    repository there is its remote 'origin', pushed to and with its HEAD set."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main", env=env)
    if tree is not None:
        shutil.copytree(tree, path, dirs_exist_ok=True)
    for rel, text in (files or {}).items():
        f = path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    if fill is not None:
        fill(path)
    git(path, "add", "-A", env=env)
    git(path, "commit", "-q", "-m", "initial", env=env)
    if origin is not None:
        git(origin.parent, "init", "-q", "--bare", "-b", "main", str(origin), env=env)
        git(path, "remote", "add", "origin", str(origin), env=env)
        git(path, "push", "-q", "-u", "origin", "main", env=env)
        git(path, "remote", "set-head", "origin", "main", env=env)
    return path
