"""Restore means files too (issue 24, B): what ``rm --force`` archives can be brought
back after the folder is gone, nested repositories included, and a worktree whose git
link broke is reported and repaired instead of crashing a command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import Repo, git


def _start(r: Repo, name: str) -> Path:
    out = r.wtp("start", name)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _nested(r: Repo, where: Path) -> dict[str, str]:
    """A repository at ``where`` with two branches, a tag, a staged, a changed and an
    untracked file; returns the commits it holds."""
    where.mkdir(parents=True)
    git(where, "init", "-q", "-b", "main")
    first = r.commit({"lib.txt": "v1\n"}, "lib v1", cwd=where)
    git(where, "tag", "-a", "v1", "-m", "release 1")
    git(where, "switch", "-q", "-c", "feature")
    feature = r.commit({"lib.txt": "feature\n"}, "lib feature", cwd=where)
    git(where, "switch", "-q", "main")
    main = r.commit({"more.txt": "more\n"}, "lib more", cwd=where)
    r.write("lib.txt", "edited, not committed\n", cwd=where)
    r.write("staged.txt", "staged\n", cwd=where)
    git(where, "add", "staged.txt")
    r.write("untracked.txt", "untracked\n", cwd=where)
    return {"first": first, "feature": feature, "main": main}


def test_rm_force_keeps_nested_repositories_as_objects_and_says_how_to_restore_them(repo: Repo) -> None:
    p = _start(repo, "a")
    plain = _nested(repo, p / "vendor" / "lib")
    in_ignored = _nested(repo, p / "dist" / "dep")  # dist/ is ignored by the fixture
    (p / "fresh").mkdir()
    git(p / "fresh", "init", "-q", "-b", "main")  # no commit yet: 'git add' would refuse it
    repo.write("notes.txt", "first draft\n", cwd=p / "fresh")
    repo.write(".git/info/exclude", "fresh/\n")  # ignored by a pattern that matches only folders

    out = repo.wtp("rm", "a")
    assert out.code == 1
    assert out.err == (
        "wtp: task 'a' has the nested repository 'dist/dep' (3 refs, 3 uncommitted files); "
        "the nested repository 'fresh' (0 refs, 1 uncommitted file); "
        "the nested repository 'vendor/lib' (3 refs, 3 uncommitted files): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n"
    )
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert not p.exists()
    hints = {}
    for line in out.lines[2:]:
        head, _, hint = line.partition(" (restore: '")
        name = head.split("'")[1]
        hints[name] = (head.rsplit(" ", 1)[-1], hint.removesuffix("')"))
    assert sorted(hints) == ["dist/dep", "fresh", "vendor/lib"]
    for name, (at, _) in hints.items():
        assert at.startswith("refs/wtp/archive-sub/a/") and at.endswith("/"), name
        assert out.lines[2 + sorted(hints).index(name)] == (
            f"kept the nested repository '{name}' as objects under {at} (restore: '{hints[name][1]}')"
        )
    # Their files are in the archive's tree as files, not as a pointer.
    assert repo.git("show", "refs/wtp/archive/a:vendor/lib/lib.txt") == "edited, not committed"
    assert repo.git("show", "refs/wtp/archive/a:dist/dep/untracked.txt") == "untracked"
    assert repo.git("show", "refs/wtp/archive/a:fresh/notes.txt") == "first draft"
    assert repo.git("ls-tree", "refs/wtp/archive/a", "vendor/lib").startswith("040000 tree ")

    # The printed commands bring each one back, commits, branches, tag and files.
    for name, kept in (("vendor/lib", plain), ("dist/dep", in_ignored)):
        where = repo.path.parent / name.replace("/", "-")
        where.mkdir()
        subprocess.run(hints[name][1], shell=True, cwd=where, check=True)
        back = where / Path(name).name
        assert git(back, "rev-parse", "main", "feature", "v1^{commit}").split() == [
            kept["main"],
            kept["feature"],
            kept["first"],
        ]
        assert git(back, "symbolic-ref", "HEAD") == "refs/heads/main"
        assert (back / "lib.txt").read_text() == "edited, not committed\n"
        assert (back / "untracked.txt").read_text() == "untracked\n"
        assert (back / "staged.txt").read_text() == "staged\n"
    where = repo.path.parent / "fresh-back"
    where.mkdir()
    subprocess.run(hints["fresh"][1], shell=True, cwd=where, check=True)
    assert (where / "fresh" / "notes.txt").read_text() == "first draft\n"


def test_a_second_archive_of_the_task_keeps_the_first_ones_nested_repository(repo: Repo) -> None:
    kept = []
    for i in range(2):
        p = _start(repo, "a")
        (p / "scratch").mkdir()
        git(p / "scratch", "init", "-q", "-b", "main")
        kept.append(repo.commit({"n.txt": f"{i}\n"}, f"scratch {i}", cwd=p / "scratch"))
        assert repo.wtp("rm", "a", "--force").code == 0
    held = repo.git("for-each-ref", "--format=%(objectname)", "refs/wtp/archive-sub/a/").split()
    assert all(c in held for c in kept)


def test_check_looks_past_a_nested_repository_without_a_commit(repo: Repo) -> None:
    a = _start(repo, "a")
    _start(repo, "b")
    git(a, "init", "-q", "scratch")  # no commit: 'git add' refuses it
    repo.write("notes.txt", "x\n", cwd=a / "scratch")
    repo.write("src/app.js", "changed in a\n", cwd=a)
    out = repo.wtp("check", "--json")
    assert out.code == 0, out.err
    assert out.json()["collisions"] == []
