"""sha256 repositories (issue 24, B): a repository made with ``git init
--object-format=sha256`` names its objects with 64 hex digits.  wtp learns the length from
git in one place (``gitops.object_format``) and assumes 40 nowhere, so the whole lifecycle
runs the same in both formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worktree_par import gitops

from .conftest import FIXTURES, Repo, git, repos


def _repo(base: Path, fmt: str, remote: bool) -> Repo:
    env = {**os.environ, "GIT_DEFAULT_HASH": fmt}  # how 'git init' picks the format, origin included
    origin = base / "origin.git" if remote else None
    repos.build(base / "repo", tree=FIXTURES / "webapp", origin=origin, env=env)
    return Repo(base / "repo", origin)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("fmt", ["sha1", "sha256"])
def test_the_lifecycle_runs_alike_in_both_object_formats(tmp_path: Path, fmt: str, remote: bool) -> None:
    r = _repo(tmp_path, fmt, remote)
    hexlen = {"sha1": 40, "sha256": 64}[fmt]
    assert gitops.object_format(r.path) == gitops.ObjectFormat(fmt, hexlen)
    assert gitops.object_format(r.path).null_id == "0" * hexlen

    out = r.wtp("start", "a")
    assert out.code == 0, out.err
    a = Path(out.lines[-1])
    mine = r.commit({"src/feature.js": "export const f = 1;\n"}, "feature", cwd=a)
    assert len(mine) == hexlen
    out = r.wtp("land", "a", "--json")
    assert out.code == 0, out.err
    landed = out.json()
    base = r.git("rev-parse", "origin/main" if remote else "main")
    assert (landed["state"], landed["commit"], len(base)) == ("landed", base, hexlen)
    assert r.git("show", f"{base}:src/feature.js") == "export const f = 1;"
    assert not a.exists()

    out = r.wtp("start", "b")
    assert out.code == 0, out.err
    b = Path(out.lines[-1])
    work = r.commit({"b.txt": "committed\n"}, "b work", cwd=b)
    r.write("notes.txt", "uncommitted\n", cwd=b)
    out = r.wtp("rm", "b", "--force")
    assert out.code == 0, out.err
    assert out.lines[1] == (
        "archived 1 commit not on 'main' or any other branch (branch 'wtp/b'); 1 uncommitted file (notes.txt) "
        "of task 'b' under refs/wtp/archive/b (restore: 'git branch b-restored refs/wtp/archive/b')"
    )
    assert not b.exists()
    r.git("merge-base", "--is-ancestor", work, "refs/wtp/archive/b")
    assert r.git("show", "refs/wtp/archive/b:notes.txt") == "uncommitted"

    out = r.wtp("doctor", "--json")
    assert (out.code, out.json()) == (0, {"healthy": True, "findings": []})


def test_parsers_take_ids_of_either_length() -> None:
    sha1, sha256 = "a" * 40, "b" * 64
    assert gitops.is_object_id(sha1) and gitops.is_object_id(sha256)
    assert gitops.is_object_id(sha256, 64) and not gitops.is_object_id(sha1, 64)
    assert not gitops.is_object_id("c" * 41) and not gitops.is_object_id("z" * 40)
    assert gitops.commit_ids(f"pick {sha256} x\npick {sha1} y\n") == [sha256, sha1]
    parsed = gitops.parse_merge_tree(1, f"{sha256}\0a.txt\0b.txt~{sha256}\0")
    assert parsed == gitops.MergeTree(gitops.Sha(sha256), ["a.txt", "b.txt"])


def test_a_nested_repository_of_the_other_format_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    r = _repo(tmp_path, "sha256", remote=False)
    out = r.wtp("start", "a")
    p = Path(out.lines[-1])
    (p / "old").mkdir()
    git(p / "old", "init", "-q", "--object-format=sha1")
    r.commit({"x.txt": "x\n"}, cwd=p / "old")
    out = r.wtp("rm", "a", "--force")
    assert (out.code, out.err) == (
        1,
        "wtp: the nested repository 'old' uses sha1 object ids and this repository sha256: it cannot be "
        "archived here; move it out of the worktree, then run the command again\n",
    )
    assert (p / "old" / "x.txt").is_file() and r.wtp("list", "--json").json()["tasks"][0]["state"] == "active"
