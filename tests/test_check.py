"""wtp check (issue 4): layers, live work, and agreement with git's own merge."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Repo


def _start(r: Repo, name: str, *extra: str) -> Path:
    out = r.wtp("start", name, *extra)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _collisions(r: Repo, *args: str) -> list[tuple[tuple[str, str], str, tuple[str, ...], bool]]:
    out = r.wtp("check", "--json", "--fail-on", "never", *args)
    assert out.code == 0, out.err
    return sorted((tuple(c["tasks"]), c["kind"], tuple(c["paths"]), c["hot"]) for c in out.json()["collisions"])


def test_the_scenario_reports_exactly_the_true_collisions(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 12\n")
    repo.commit({"src/app.js": "".join(f"line {i}\n" for i in range(1, 21))}, msg="longer app")
    clean1, clean2 = _start(repo, "hunk-top"), _start(repo, "hunk-bottom")
    same1, same2 = _start(repo, "same-a"), _start(repo, "same-b")
    add1, add2 = _start(repo, "add-a"), _start(repo, "add-b")
    lock1, lock2 = _start(repo, "lock-a"), _start(repo, "lock-b")
    indep = _start(repo, "independent")
    mover = _start(repo, "mover")
    # clean same-file overlap: different hunks of one file, one side committed, one not
    repo.commit({"src/app.js": (clean1 / "src/app.js").read_text().replace("line 1\n", "line one\n")}, cwd=clean1)
    (clean2 / "src/app.js").write_text((clean2 / "src/app.js").read_text().replace("line 20\n", "line twenty\n"))
    # same-line conflict with one side uncommitted
    repo.commit({"src/util.js": "function slug(s) { return s; }\n"}, cwd=same1)
    (same2 / "src/util.js").write_text("function slug(s) { return s.trim(); }\n")
    # untracked add/add conflict
    (add1 / "content/posts/new.md").write_text("one\n")
    (add2 / "content/posts/new.md").write_text("two\n")
    # hot file overlap (a lockfile), merging cleanly
    repo.write("package-lock.json", '{\n  "a": 1,\n\n\n\n  "z": 1\n}\n')
    repo.commit({}, msg="lock")
    for p in (lock1, lock2):
        repo.git("merge", "-q", "main", cwd=p)
    (lock1 / "package-lock.json").write_text('{\n  "a": 2,\n\n\n\n  "z": 1\n}\n')
    (lock2 / "package-lock.json").write_text('{\n  "a": 1,\n\n\n\n  "z": 2\n}\n')
    # an independent task
    repo.commit({"docs/guide.md": "guide\n"}, cwd=indep)
    # a task whose file the base changes meanwhile
    (mover / "VERSION").write_text("1.1.0\n")
    repo.commit({"VERSION": "2.0.0\n"}, msg="release 2.0.0")
    found = _collisions(repo)
    assert found == sorted(
        [
            (("hunk-top", "hunk-bottom"), "overlap", ("src/app.js",), False),
            (("same-a", "same-b"), "conflict", ("src/util.js",), False),
            (("add-a", "add-b"), "conflict", ("content/posts/new.md",), False),
            (("lock-a", "lock-b"), "overlap", ("package-lock.json",), True),
            (("mover", "main"), "conflict", ("VERSION",), True),
        ]
    )
    # nothing about the independent task, and the user's files were not touched
    assert repo.git("status", "--porcelain", cwd=add1) == "?? content/posts/new.md"
    assert repo.git("status", "--porcelain", cwd=clean2) == "M src/app.js"
    assert _collisions(repo, "independent") == []
    human = repo.wtp("check")
    assert human.code == 1
    assert human.lines[0].split() == ["KIND", "TASKS", "PATHS"]
    assert "CONFLICT  add-a <> add-b" in human.out.replace("   ", "  ")


def test_fail_on_levels_and_limits(repo: Repo) -> None:
    a, b = _start(repo, "a", "--touch", "src/**"), _start(repo, "b", "--touch", "src/app.js", "--force")
    assert repo.wtp("check").code == 0  # declared only: below the default 'overlap'
    assert repo.wtp("check", "--fail-on", "declared").code == 1
    (a / "src/app.js").write_text("a\n")
    (b / "src/app.js").write_text("a\n")  # same change both sides: overlap, merges cleanly
    assert repo.wtp("check").code == 1
    assert repo.wtp("check", "--fail-on", "conflict").code == 0
    (b / "src/app.js").write_text("b\n")
    assert repo.wtp("check", "--fail-on", "conflict").code == 1
    assert repo.wtp("check", "--fail-on", "never").code == 0
    bad = repo.wtp("check", "--fail-on", "sometimes")
    assert bad.code == 2


def test_declared_and_resource_layers(repo: Repo) -> None:
    _start(repo, "a", "--touch", "content/posts/**", "--use", "db:dev")
    repo.wtp("start", "b", "--touch", "content/posts/index.md", "--use", "db:dev")  # queued
    assert _collisions(repo) == [
        (("a", "b"), "declared", ("content/posts/** ~ content/posts/index.md",), False),
        (("a", "b"), "resource", ("db:dev",), False),
    ]


def test_file_against_directory_and_migrations(repo: Repo) -> None:
    a, b = _start(repo, "a"), _start(repo, "b")
    (a / "assets").write_text("a file\n")
    (b / "assets").mkdir()
    (b / "assets" / "logo.svg").write_text("<svg/>\n")
    (a / "db" / "migrations").mkdir(parents=True)
    (a / "db" / "migrations" / "0002_add_user.py").write_text("a\n")
    (b / "db" / "migrations").mkdir(parents=True)
    (b / "db" / "migrations" / "0002_add_post.py").write_text("b\n")
    [(tasks, kind, paths, hot)] = _collisions(repo)
    assert tasks == ("a", "b") and kind == "conflict" and hot is True
    assert paths == ("assets", "db/migrations/")  # the file/dir conflict, and the migrations clash


def test_a_file_removed_then_made_a_folder_is_compared(repo: Repo) -> None:
    """'git rm' of a tracked file and a folder made in its place: the snapshot of the task's
    work handed the folder to 'git update-index', which refused it, and every 'wtp check'
    failed with git's error (exit 1)."""
    a, b = _start(repo, "a"), _start(repo, "b")
    repo.git("rm", "-q", "src/app.js", cwd=a)
    (a / "src/app.js").mkdir()
    (a / "src/app.js" / "x.js").write_text("x\n")
    (b / "src/app.js").write_text("edited\n")
    assert _collisions(repo) == [(("a", "b"), "conflict", ("src/app.js",), False)]
    assert repo.git("status", "--porcelain", cwd=a) == "D  src/app.js\n?? src/app.js/"


def test_a_task_whose_worktree_folder_is_gone_is_compared_from_its_branch(repo: Repo) -> None:
    """A worktree folder deleted by hand left its task out of the report ('no collisions',
    exit 0) though its branch still held its commits."""
    a, b = _start(repo, "a"), _start(repo, "b")
    repo.commit({"src/util.js": "from a\n"}, cwd=a)
    repo.commit({"src/util.js": "from b\n"}, cwd=b)
    (a / "src/later.js").write_text("uncommitted, lost with the folder\n")
    shutil.rmtree(a)
    note = (
        f"task 'a': its worktree {a} is missing: compared from its branch 'wtp/a' (its commits; what was "
        "uncommitted there was not seen; 'wtp doctor --fix' makes the worktree again)"
    )
    out = repo.wtp("check", "--json")
    assert out.code == 1, out.err
    assert out.json()["notes"] == [note]
    assert _collisions(repo) == [(("a", "b"), "conflict", ("src/util.js",), False)]
    human = repo.wtp("check")
    assert (human.code, human.out, human.err) == (
        1,
        "KIND      TASKS   PATHS\nCONFLICT  a <> b  src/util.js\n",
        f"note: {note}\n",
    )
    # its branch gone too: nothing is left to compare, and the report says so
    repo.git("update-ref", "-d", "refs/heads/wtp/a")
    human = repo.wtp("check")
    gone = f"note: task 'a': its worktree {a} is missing and its branch 'wtp/a' is gone: not compared\n"
    # review 38: the headline said "no collisions among 2 tasks" of two it could not both compare
    headline = "no collisions among 2 tasks and 'main' (1 not seen whole: see the note above)\n"
    assert (human.code, human.out, human.err) == (0, headline, gone)


def test_a_task_whose_branch_is_gone_is_compared_from_its_worktree(repo: Repo) -> None:
    """Its branch ref deleted by hand, the worktree's HEAD names no commit: the snapshot of
    its files had no parent, and merge-tree refused it ('unrelated histories', exit 1)."""
    a, b = _start(repo, "a"), _start(repo, "b")
    repo.commit({"src/util.js": "from a\n"}, cwd=a)
    repo.commit({"src/util.js": "from b\n"}, cwd=b)
    (fork,) = [t["fork"] for t in repo.state()["tasks"] if t["name"] == "a"]
    repo.git("update-ref", "-d", "refs/heads/wtp/a")
    out = repo.wtp("check", "--json")
    assert out.code == 1, out.err
    assert out.json()["notes"] == [
        f"task 'a': its branch 'wtp/a' is gone (its worktree's HEAD names no commit): its worktree's files were "
        f"compared as work started from {fork[:12]}"
    ]
    assert _collisions(repo) == [(("a", "b"), "conflict", ("src/util.js",), False)]


def test_a_path_is_printed_with_its_control_characters_escaped(repo: Repo) -> None:
    """A file name holding a line break printed raw forged a row of the table; an ESC in it
    drove the terminal.  The JSON keeps the name as it is."""
    name = "evil\nCONFLICT  x <> y  forged.txt\x1b[2K"
    repo.commit({name: "base\n"})
    a, b = _start(repo, "a"), _start(repo, "b")
    (a / name).write_text("one\n")
    (b / name).write_text("two\n")
    out = repo.wtp("check")
    assert (out.code, out.lines) == (
        1,
        ["KIND      TASKS   PATHS", "CONFLICT  a <> b  evil\\nCONFLICT  x <> y  forged.txt\\x1b[2K"],
    )
    assert _collisions(repo) == [(("a", "b"), "conflict", (name,), False)]


def test_merge_attributes_are_respected(repo: Repo) -> None:
    repo.commit({".gitattributes": "NOTES.md merge=union\n", "NOTES.md": "start\n"})
    a, b = _start(repo, "a"), _start(repo, "b")
    (a / "NOTES.md").write_text("start\nfrom a\n")
    (b / "NOTES.md").write_text("start\nfrom b\n")
    assert _collisions(repo) == [(("a", "b"), "overlap", ("NOTES.md",), False)]


# --- agreement with git's own merge ----------------------------------------------------

BINARY_A = bytes(range(256)) * 4
BINARY_B = bytes(reversed(range(256))) * 4


def _case_setup(r: Repo, case: str, a: Path, b: Path) -> None:
    def w(p: Path, rel: str, data: str | bytes) -> None:
        f = p / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data) if isinstance(data, bytes) else f.write_text(data)

    def gm(p: Path, *args: str) -> None:
        r.git(*args, cwd=p)

    if case == "content":
        w(a, "src/util.js", "A\n")
        w(b, "src/util.js", "B\n")
    elif case == "different-hunks":
        base = "".join(f"{i}\n" for i in range(30))
        r.commit({"long.txt": base})
        for p in (a, b):
            gm(p, "merge", "-q", "main")
        w(a, "long.txt", base.replace("0\n", "zero\n", 1))
        w(b, "long.txt", base.replace("29\n", "end\n"))
    elif case == "modify-delete":
        w(a, "src/util.js", "changed\n")
        (b / "src/util.js").unlink()
    elif case == "rename-delete":
        gm(a, "mv", "src/util.js", "src/helpers.js")
        (b / "src/util.js").unlink()
    elif case == "rename-rename":
        gm(a, "mv", "src/util.js", "src/one.js")
        gm(b, "mv", "src/util.js", "src/two.js")
    elif case == "add-add":
        w(a, "new.txt", "a\n")
        w(b, "new.txt", "b\n")
    elif case == "add-add-same":
        w(a, "new.txt", "same\n")
        w(b, "new.txt", "same\n")
    elif case == "file-directory":
        w(a, "thing", "file\n")
        w(b, "thing/inside.txt", "dir\n")
    elif case == "binary":
        (r.path / "logo.bin").write_bytes(b"\0" + BINARY_A[:10])
        r.commit({}, msg="binary")
        for p in (a, b):
            gm(p, "merge", "-q", "main")
        w(a, "logo.bin", BINARY_A)
        w(b, "logo.bin", BINARY_B)
    elif case == "independent":
        w(a, "a.txt", "a\n")
        w(b, "b.txt", "b\n")
    for p in (a, b):
        gm(p, "add", "-A")
        gm(p, "commit", "-q", "-m", f"{case} side")


def _git_merge_verdict(r: Repo, a: Path, b: Path, tmp: Path) -> set[str] | None:
    """What a real 'git merge' of the two branches says: None (clean) or the unmerged paths."""
    wt = tmp / "merge-check"
    r.git("worktree", "add", "-q", "--detach", str(wt), r.git("rev-parse", "HEAD", cwd=a))
    res = subprocess.run(
        ["git", "merge", "--no-edit", "-q", r.git("rev-parse", "HEAD", cwd=b)], cwd=wt, capture_output=True, text=True
    )
    # git names the file side of a file/directory conflict 'path~<side>'; compare plain paths
    unmerged = {p.split("~")[0] for p in r.git("diff", "--name-only", "--diff-filter=U", cwd=wt).split()}
    r.git("merge", "--abort", cwd=wt, check=False)
    r.git("worktree", "remove", "--force", str(wt))
    return None if res.returncode == 0 else unmerged


CASES = [
    "content",
    "different-hunks",
    "modify-delete",
    "rename-delete",
    "rename-rename",
    "add-add",
    "add-add-same",
    "file-directory",
    "binary",
    "independent",
]


@pytest.mark.parametrize("case", CASES)
def test_conflict_layer_agrees_with_git_merge(repo: Repo, tmp_path: Path, case: str) -> None:
    a, b = _start(repo, "a"), _start(repo, "b")
    _case_setup(repo, case, a, b)
    truth = _git_merge_verdict(repo, a, b, tmp_path)
    found = [
        c for c in repo.wtp("check", "--json", "--fail-on", "never").json()["collisions"] if c["tasks"] == ["a", "b"]
    ]
    kinds = {c["kind"] for c in found}
    if truth is None:
        assert "conflict" not in kinds
    else:
        assert kinds == {"conflict"}
        assert set(found[0]["paths"]) >= truth
    if case == "independent":
        assert found == []
    else:
        assert found, "an overlap went unreported"


def test_many_tasks_get_a_matrix_view(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 6\n")
    paths = [_start(repo, f"t{i}") for i in range(5)]
    (paths[0] / "src/app.js").write_text("zero\n")
    (paths[1] / "src/app.js").write_text("one\n")
    (paths[2] / "src/util.js").write_text((paths[2] / "src/util.js").read_text() + "// two\n")
    (paths[3] / "src/util.js").write_text("// three\n" + (paths[3] / "src/util.js").read_text())
    out = repo.wtp("check")
    assert out.code == 1
    matrix = out.lines[out.lines.index("") + 1 :]
    assert matrix[0].split() == ["t0", "t1", "t2", "t3", "t4", "main"]
    assert matrix[1].split() == ["t0", "-", "C", ".", ".", ".", "."]
    assert matrix[3].split() == ["t2", ".", ".", "-", "O", ".", "."]
    assert matrix[-1] == "C conflict, O overlap, l likely (history), d declared paths, r resource"


def test_undeclared_writes_and_hot_paths_are_reported(repo: Repo) -> None:
    pa = Path(repo.wtp("start", "a", "--touch", "src/**").lines[-1])
    pb = Path(repo.wtp("start", "b", "--touch", "content/**").lines[-1])
    repo.commit({"src/x.js": "x\n", "README.md": "a edits it\n", "CHANGELOG.md": "a\n"}, cwd=pa)
    repo.commit({"content/y.md": "y\n", "CHANGELOG.md": "b\n"}, cwd=pb)
    report = repo.wtp("check", "--json").json()["collisions"]
    undeclared = [c for c in report if c["kind"] == "undeclared"]
    assert undeclared == [
        {"tasks": ["a"], "kind": "undeclared", "paths": ["CHANGELOG.md", "README.md"], "hot": False, "hot_paths": []},
        {"tasks": ["b"], "kind": "undeclared", "paths": ["CHANGELOG.md"], "hot": False, "hot_paths": []},
    ]
    clash = next(c for c in report if c["tasks"] == ["a", "b"] and c["kind"] in ("overlap", "conflict"))
    assert (clash["hot"], clash["hot_paths"]) == (True, ["CHANGELOG.md"])
    rows = [line.split() for line in repo.wtp("check").lines]
    assert ["undeclared", "a", "(outside", "its", "--touch)", "CHANGELOG.md,", "README.md"] in rows
    assert any(row[-2:] == ["CHANGELOG.md", "(hot)"] for row in rows)
