"""Restore means files too (issue 24, B): what ``rm --force`` archives can be brought
back after the folder is gone, nested repositories included, and a worktree whose git
link broke is reported and repaired instead of crashing a command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import Repo, git, make_repo


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
        back = where / name
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


@pytest.mark.parametrize("outer", ["vendor/lib", "-lib"])
def test_the_hints_put_a_nested_repository_inside_another_back_where_it_was(repo: Repo, outer: str) -> None:
    """Run from one folder, the restore hints rebuild the layout: 'vendor/lib' and the
    repository inside it, 'vendor/lib/inner' (review 45: the inner one came back as './inner');
    a folder named with a leading dash is not taken for an option of git init (review 47)."""
    p = _start(repo, "a")
    made = {}
    for name in (outer, f"{outer}/inner"):
        (p / name).mkdir(parents=True)
        git(p / name, "init", "-q", "-b", "main")
        made[name] = repo.commit({"f.txt": f"{name}\n"}, f"{name} work", cwd=p / name)
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    hints = {
        line.split("'")[1]: line.split("(restore: '")[1].removesuffix("')")
        for line in out.lines
        if "(restore: 'git init" in line
    }
    assert sorted(hints) == [outer, f"{outer}/inner"]
    where = repo.path.parent / "back"
    where.mkdir()
    for name in sorted(hints):
        subprocess.run(hints[name], shell=True, cwd=where, check=True)
    for name, commit in made.items():
        assert git(where / name, "rev-parse", "HEAD") == commit, name
        assert (where / name / "f.txt").read_text() == f"{name}\n"


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


def _broken(repo: Repo, how: str) -> tuple[Path, dict[str, str]]:
    """Task 'a' with a commit on its branch, a staged and an untracked file, whose link to
    the repository is then broken: its .git file deleted, or its admin folder."""
    p = _start(repo, "a")
    held = {"commit": repo.commit({"a.txt": "committed\n"}, "a work", cwd=p)}
    repo.write("staged.txt", "staged\n", cwd=p)
    repo.git("add", "staged.txt", cwd=p)
    repo.write("untracked.txt", "untracked\n", cwd=p)
    admin = Path(repo.git("rev-parse", "--path-format=absolute", "--git-dir", cwd=p))
    if how == "git-file":
        (p / ".git").unlink()
        held["problem"] = "its .git file is missing"
    else:
        subprocess.run(["rm", "-rf", str(admin)], check=True)
        held["problem"] = f"its admin folder {admin} is gone"
    return p, held


@pytest.mark.parametrize("how", ["git-file", "admin-folder"])
def test_list_and_doctor_report_a_broken_worktree_and_doctor_fix_mends_it(repo: Repo, how: str) -> None:
    p, held = _broken(repo, how)
    info = repo.wtp("list", "--json").json()["tasks"][0]
    assert (info["name"], info["dirty"], info["problem"]) == (
        "a",
        None,
        f"broken: {held['problem']} (run 'wtp doctor --fix')",
    )
    out = repo.wtp("doctor", "--json")
    assert (out.code, out.json()) == (
        1,
        {
            "healthy": False,
            "findings": [{"problem": f"the worktree of task 'a' ({p}) is broken: {held['problem']}", "fixed": None}],
        },
    )
    out = repo.wtp("doctor", "--fix", "--json")
    assert out.code == 0, out.err
    fixed = out.json()["findings"][0]["fixed"]
    status = repo.git("status", "--porcelain", cwd=p).splitlines()
    if how == "git-file":  # the admin folder was kept: HEAD and index exactly as they were
        assert fixed.startswith(
            "the worktree of task 'a' was broken (its .git file is missing): wrote back its .git file"
        )
        assert status == ["A  staged.txt", "?? untracked.txt"]
    else:  # the index was lost with its folder: what was staged is untracked now, no file touched
        assert fixed == (
            f"the worktree of task 'a' was broken ({held['problem']}): "
            "made its admin folder again from branch 'wtp/a' (what was staged is now unstaged)"
        )
        assert status == ["?? staged.txt", "?? untracked.txt"]
    assert repo.git("rev-parse", "HEAD", cwd=p) == held["commit"]
    assert repo.git("symbolic-ref", "HEAD", cwd=p) == "refs/heads/wtp/a"
    assert repo.wtp("doctor", "--json").json() == {"healthy": True, "findings": []}
    assert repo.wtp("list", "--json").json()["tasks"][0]["dirty"] == 2


@pytest.mark.parametrize("how", ["git-file", "admin-folder"])
def test_rm_force_mends_a_broken_worktree_then_archives_what_it_holds(repo: Repo, how: str) -> None:
    p, held = _broken(repo, how)
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert out.lines[1].startswith(f"the worktree of task 'a' was broken ({held['problem']}): ")
    assert not p.exists()
    repo.git("merge-base", "--is-ancestor", held["commit"], "refs/wtp/archive/a")
    assert repo.git("show", "refs/wtp/archive/a:untracked.txt") == "untracked"
    assert repo.git("show", "refs/wtp/archive/a:staged.txt") == "staged"
    assert repo.wtp("doctor", "--json").json() == {"healthy": True, "findings": []}


def test_plain_rm_of_a_broken_worktree_refuses_in_one_line_naming_what_it_holds(repo: Repo) -> None:
    p, _ = _broken(repo, "git-file")
    out = repo.wtp("rm", "a")
    assert (out.code, out.err) == (
        1,
        "wtp: task 'a' has 1 commit not on 'main' or any other branch (branch 'wtp/a'); "
        "2 uncommitted files (staged.txt, untracked.txt): land it, or run 'wtp rm a --force' to archive and remove it\n",
    )
    assert (p / "staged.txt").is_file() and repo.git("status", "--porcelain", cwd=p).splitlines()[0] == "A  staged.txt"


def test_a_dangling_git_link_in_a_worktree_is_named_and_never_written_through(repo: Repo, tmp_path: Path) -> None:
    """A task worktree whose .git is a symbolic link to nothing (review 52): one line naming the
    link, nothing deleted, no file made where it points; once the link is deleted, doctor mends it."""
    p, held = _broken(repo, "git-file")
    target = tmp_path / "gone" / "gitdir"
    (p / ".git").symlink_to(target)
    for args in (["rm", "a"], ["rm", "a", "--force"]):
        out = repo.wtp(*args)
        assert (out.code, out.err) == (
            1,
            f"wtp: the worktree of task 'a' is broken (its .git is a symbolic link to {target}, which does not exist): "
            "nothing was deleted; restore what its .git links to, or delete that link and run 'wtp doctor --fix'\n",
        )
    assert (p / "staged.txt").is_file() and not target.parent.exists()
    (p / ".git").unlink()
    assert repo.wtp("doctor", "--fix").code == 0
    assert repo.git("rev-parse", "wtp/a") == held["commit"] and repo.wtp("rm", "a", "--force").code == 0


@pytest.mark.parametrize("how", ["link to an empty folder", "empty folder"])
def test_a_git_folder_that_is_not_the_worktrees_own_is_named_and_kept(repo: Repo, tmp_path: Path, how: str) -> None:
    """A task worktree whose .git is a folder (or a link to one) that is not its git dir: git
    would answer for a parent folder's repository.  Every command names it (review 53: 'list'
    and 'doctor' said healthy, 'rm' and 'land' failed on git's own error); nothing is deleted."""
    p, held = _broken(repo, "git-file")
    if how == "empty folder":
        (p / ".git").mkdir()
        problem = "its .git is a folder that is not its git dir (a repository of its own, or none)"
        do = "move that .git folder out of the worktree (it may hold work of its own)"
    else:
        (tmp_path / "empty").mkdir()
        (p / ".git").symlink_to(tmp_path / "empty")
        problem = f"its .git is a symbolic link to {tmp_path / 'empty'}, a folder that is not its git dir"
        do = "restore what its .git links to, or delete that link"
    fix = f"{do} and run 'wtp doctor --fix'"  # (doctor --fix alone would only say this again)
    assert repo.wtp("list", "--json").json()["tasks"][0]["problem"] == f"broken: {problem} ({fix})"
    assert f"is broken: {problem}" in repo.wtp("doctor").out
    _start(repo, "b")
    out = repo.wtp("check")
    assert (out.code, out.err) == (1, f"wtp: the worktree of task 'a' is broken ({problem}): {fix}, then check again\n")
    out = repo.wtp("land", "a", "--gate", "true")
    assert out.code == 1 and f"wtp: the worktree of task 'a' is broken ({problem}): {fix}, then land again" in out.err
    for args in (["rm", "a"], ["rm", "a", "--force"]):
        out = repo.wtp(*args)
        assert (out.code, out.err) == (
            1,
            f"wtp: the worktree of task 'a' is broken ({problem}): nothing was deleted; {do} and run 'wtp doctor --fix'\n",
        )
    assert (p / "staged.txt").is_file() and repo.git("rev-parse", "wtp/a") == held["commit"]
    (p / ".git").unlink() if how != "empty folder" else (p / ".git").rmdir()
    assert repo.wtp("doctor", "--fix").code == 0 and repo.wtp("rm", "a", "--force").code == 0


def test_check_on_a_broken_worktree_says_so_in_one_line(repo: Repo) -> None:
    p, held = _broken(repo, "git-file")
    _start(repo, "b")
    out = repo.wtp("check")
    assert (out.code, out.err) == (
        1,
        f"wtp: the worktree of task 'a' is broken ({held['problem']}): run 'wtp doctor --fix', then check again\n",
    )
    assert repo.wtp("doctor", "--fix").code == 0
    assert repo.wtp("check").code == 0


def test_doctor_fix_writes_back_a_lost_git_file_of_a_worktree_wtp_does_not_own_instead_of_pruning_it(
    repo: Repo,
) -> None:
    mine = repo.path.parent / "mine"
    gone = repo.path.parent / "gone"
    repo.git("worktree", "add", "-q", "-b", "mine", str(mine))
    repo.git("worktree", "add", "-q", "-b", "gone", str(gone))
    repo.git("checkout", "-q", "--detach", cwd=mine)
    detached = repo.commit({"only-here.txt": "x\n"}, "held only by this worktree's HEAD", cwd=mine)
    (mine / ".git").unlink()
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    out = repo.wtp("doctor", "--json")
    assert out.json()["findings"][0]["problem"] == "git lists 1 worktree(s) whose folder is gone"
    assert repo.wtp("doctor", "--fix").code == 0
    assert repo.git("rev-parse", "HEAD", cwd=mine) == detached
    listed = repo.git("worktree", "list", "--porcelain").split("\n\n")
    assert [w.splitlines()[0] for w in listed] == [f"worktree {repo.path}", f"worktree {mine}"]


def test_a_second_archive_of_the_task_keeps_the_first_ones_submodule_commits(tmp_path: Path) -> None:
    lib = make_repo(tmp_path, fixture=None, name="lib")
    r = make_repo(tmp_path, fixture=None, name="repo")
    git(r.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "lib")
    git(r.path, "commit", "-q", "-m", "add lib")
    kept = []
    for i in range(2):
        p = _start(r, "a")
        git(p, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
        git(p / "lib", "switch", "-q", "-c", f"work{i}")
        kept.append(r.commit({"lib.txt": f"only copy {i}\n"}, cwd=p / "lib"))
        assert r.wtp("rm", "a", "--force").code == 0
    held = r.git("for-each-ref", "--format=%(objectname)", "refs/wtp/archive-sub/a/").split()
    assert all(c in held for c in kept)


def test_a_worktree_of_another_repository_inside_the_task_is_kept_by_its_head_and_files(
    repo: Repo, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    repo.commit({"o.txt": "o\n"}, cwd=other)
    git(other, "branch", "side")
    p = _start(repo, "a")
    git(other, "worktree", "add", "-q", str(p / "linked"), "side")
    repo.write("o.txt", "edited in the linked worktree\n", cwd=p / "linked")
    out = repo.wtp("rm", "a")
    assert out.err == (
        "wtp: task 'a' has the nested repository 'linked' (0 refs, 1 uncommitted file): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n"
    )
    assert repo.wtp("rm", "a", "--force").code == 0
    assert repo.git("show", "refs/wtp/archive/a:linked/o.txt") == "edited in the linked worktree"
    assert repo.git("for-each-ref", "--format=%(refname)", "refs/wtp/archive-sub/a/").split()[0].endswith("/wtp/HEAD")


def test_land_of_a_broken_worktree_says_so_in_one_line(repo: Repo) -> None:
    """Before: 'has a detached HEAD () checked out'."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    (p / ".git").unlink()
    out = repo.wtp("land", "a")
    assert out.code == 1
    assert out.err == (
        "wtp: the worktree of task 'a' is broken (its .git file is missing): run 'wtp doctor --fix', then land again\n"
    )


def test_a_fifo_at_a_worktrees_git_is_named_never_waited_on_nor_written_through(remote_repo: Repo) -> None:
    """Review 57: a FIFO at a task's .git made list, doctor, check, land and rm wait for ever
    (reading it blocks until a writer comes; git itself says at once that it is no repository).
    Every command names it in one line and changes nothing; once it is deleted, doctor mends."""
    r = remote_repo
    a = Path(r.wtp_proc("start", "a").out.strip())
    r.commit({"a.txt": "a\n"}, cwd=a)
    k = Path(r.wtp_proc("start", "k").out.strip())
    r.commit({"k.txt": "k\n"}, cwd=k)
    assert r.wtp_proc("land", "k", "--gate", "true", "--keep").code == 0  # landed, its worktree kept
    for p in (a, k):
        (p / ".git").unlink()
        os.mkfifo(p / ".git")
    problem = "its .git is neither a file nor a folder (a FIFO, a socket or a device)"
    fix = "delete what stands at its .git (it holds nothing) and run 'wtp doctor --fix'"
    listed = {t["name"]: t["problem"] for t in r.wtp_proc("list", "--all", "--json", timeout=30).json()["tasks"]}
    assert listed == {
        "a": f"broken: {problem} ({fix})",
        "k": f"landed; its worktree was kept, and is broken: {problem} ({fix})",
    }
    out = r.wtp_proc("doctor", timeout=30)
    assert f"the worktree of task 'a' ({a}) is broken: {problem}: {fix}" in out.out, out.out
    assert f"the worktree landed task 'k' kept ({k}) is broken: {problem}: {fix}" in out.out, out.out
    assert "run 'wtp doctor --fix' to repair" not in out.out  # (--fix would only say this again)
    out = r.wtp_proc("doctor", "--fix", timeout=30)
    assert out.code == 1 and (a / ".git").is_fifo() and (k / ".git").is_fifo(), out.out
    for args in (["check"], ["land", "a", "--gate", "true"], ["rm", "a"], ["rm", "k"]):
        out = r.wtp_proc(*args, timeout=30)
        assert out.code == 1 and problem in out.err and "Traceback" not in out.err, (args, out.err)
    for p in (a, k):
        (p / ".git").unlink()
    assert r.wtp_proc("doctor", "--fix", timeout=30).code == 0
    assert r.wtp_proc("rm", "k", timeout=30).code == 0 and r.wtp_proc("land", "a", "--gate", "true").code == 0
