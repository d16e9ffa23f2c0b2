"""Nothing is lost (issue 14): the guard collects everything a worktree holds before any
destructive step.  Each test is one finding of the adversarial review, reproduced with
real git: the step refuses naming what would be lost, or --force archives it and the
archive is checked here with git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import Repo, git, make_repo


def _start(r: Repo, name: str) -> Path:
    out = r.wtp("start", name)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _reachable(r: Repo, commit: str, ref: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, ref], cwd=r.path).returncode == 0


def test_1_force_rm_archives_a_branch_commit_while_head_is_detached_elsewhere(repo: Repo) -> None:
    p = _start(repo, "a")
    on_branch = repo.commit({"a.txt": "branch work\n"}, cwd=p)
    repo.git("checkout", "-q", "--detach", "HEAD~1", cwd=p)
    detached = repo.commit({"b.txt": "detached work\n"}, cwd=p)
    repo.write("c.txt", "uncommitted\n", cwd=p)
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    for c in (on_branch, detached):
        assert _reachable(repo, c, "refs/wtp/archive/a"), c
    assert repo.git("show", "refs/wtp/archive/a:c.txt") == "uncommitted"
    assert not p.exists()


def test_2_plain_rm_refuses_commits_held_only_by_a_detached_head_or_a_worktree_ref(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.git("checkout", "-q", "--detach", cwd=p)
    detached = repo.commit({"x.txt": "x\n"}, cwd=p)
    out = repo.wtp("rm", "a")
    assert out.code == 1
    assert out.err == (
        "wtp: task 'a' has 1 commit not on 'main' or any other branch (a detached HEAD): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n"
    )
    repo.git("checkout", "-q", "wtp/a", cwd=p)
    repo.git("update-ref", "refs/worktree/keep", detached, cwd=p)
    out = repo.wtp("rm", "a")
    assert out.code == 1 and "(refs/worktree/keep)" in out.err
    assert p.exists() and _reachable(repo, detached, detached)


def test_3_force_rm_during_a_stopped_rebase_archives_every_commit_it_holds(repo: Repo) -> None:
    p = _start(repo, "a")
    mine = [repo.commit({"src/app.js": f"task {i}\n"}, f"task {i}", cwd=p) for i in range(3)]
    repo.commit({"src/app.js": "base moved\n"})
    res = subprocess.run(["git", "rebase", "main"], cwd=p, capture_output=True)
    assert res.returncode != 0  # stopped on a conflict
    out = repo.wtp("rm", "a")
    assert out.code == 1 and "(branch 'wtp/a', the stopped rebase)" in out.err
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert all(_reachable(repo, c, "refs/wtp/archive/a") for c in mine)


def test_4_land_refuses_another_branch_checked_out_in_the_task_worktree(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"ok.txt": "ship\n"}, cwd=p)
    repo.git("checkout", "-q", "-b", "experiment", cwd=p)
    secret = repo.commit({"secret.txt": "do not ship\n"}, cwd=p)
    out = repo.wtp("land", "a")
    assert out.code == 1
    assert out.err.startswith("wtp: the worktree of task 'a' has branch 'experiment' checked out, not 'wtp/a'")
    assert not _reachable(repo, secret, "main") and "wtp/a" in repo.branches()


def _with_submodule(tmp: Path) -> Repo:
    lib = make_repo(tmp, fixture=None, name="lib")
    r = make_repo(tmp, fixture=None, name="repo")
    git(r.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "lib")
    git(r.path, "commit", "-q", "-m", "add lib")
    return r


def _init_submodule(p: Path) -> None:
    git(p, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")


def test_5_land_keeps_a_worktree_whose_submodule_holds_the_only_copy_of_a_commit(tmp_path: Path) -> None:
    r = _with_submodule(tmp_path)
    p = _start(r, "a")
    _init_submodule(p)
    git(p / "lib", "checkout", "-q", "-b", "feature")
    only_copy = r.commit({"lib.txt": "sub work\n"}, cwd=p / "lib")
    r.commit({"top.txt": "uses it\n"}, cwd=p)  # records the new submodule commit too
    out = r.wtp("land", "a")
    assert out.code == 0, out.err
    assert out.lines[1] == (
        f"kept the worktree {p}: it has 1 unpushed commit in submodule 'lib', kept nowhere else; "
        "save what you need from it and run 'wtp rm a', "
        "or run 'wtp rm a --force' to archive it under refs/wtp/archive/a and remove the worktree"
    )
    assert git(p / "lib", "cat-file", "-t", only_copy) == "commit"
    forced = r.wtp("rm", "a", "--force")
    assert forced.code == 0, forced.err
    kept = git(r.path, "for-each-ref", "--format=%(objectname)", "refs/wtp/archive-sub/a/")
    assert only_copy in kept.split() and git(r.path, "cat-file", "-t", only_copy) == "commit"


def test_6_force_rm_archives_uncommitted_changes_inside_a_submodule(tmp_path: Path) -> None:
    r = _with_submodule(tmp_path)
    p = _start(r, "a")
    _init_submodule(p)
    (p / "lib" / "README.md").write_text("edited in the submodule\n")
    out = r.wtp("rm", "a")
    assert out.code == 1 and "1 uncommitted file in submodule 'lib' (README.md)" in out.err
    assert r.wtp("rm", "a", "--force").code == 0
    snaps = git(r.path, "for-each-ref", "--format=%(objectname)", "refs/wtp/archive-sub/a/").split()
    assert any(git(r.path, "show", f"{s}:README.md", check=False) == "edited in the submodule" for s in snaps)


def test_7_land_after_a_force_pushed_base_does_not_bring_the_dropped_commit_back(remote_repo: Repo) -> None:
    r = remote_repo
    leak = r.commit({"secret.txt": "leaked key\n"}, "oops")
    r.git("push", "-q", "origin", "main")
    p = _start(r, "a")  # forked from the commit with the leak
    r.commit({"feature.txt": "work\n"}, cwd=p)
    r.git("reset", "-q", "--hard", "HEAD~1")
    r.git("push", "-q", "--force", "origin", "main")  # the leak is dropped from the base
    out = r.wtp("land", "a")
    assert out.code == 0, out.err
    r.git("fetch", "-q", "origin")
    assert not _reachable(r, leak, "origin/main")
    assert r.git("show", "origin/main:feature.txt") == "work"
    assert r.git("ls-tree", "--name-only", "origin/main", "secret.txt") == ""


def test_10_a_commit_made_during_the_gate_is_never_dropped(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    gate = "git commit -q --allow-empty -m 'made during the gate' && exit 1"
    out = repo.wtp("land", "a", "--gate", gate)
    assert out.code == 1
    late = repo.git("log", "-1", "--format=%H %s", "wtp/a").split(" ", 1)
    assert late[1] == "made during the gate"
    # the red is not the candidate's: the gate ran on the commit made meanwhile (said, and kept)
    assert "branch 'wtp/a' moved while the gate ran" in out.err and "the new commit is kept on the branch" in out.err
    out = repo.wtp("rm", "a")
    assert out.code == 1  # the commit is not on main, nothing else keeps it
    assert _reachable(repo, late[0], "wtp/a")


def test_10_a_commit_made_during_a_passing_gate_is_not_published_untested(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    main_before = repo.git("rev-parse", "main")
    out = repo.wtp("land", "a", "--gate", "git commit -q --allow-empty -m late")
    assert out.code == 1 and "branch 'wtp/a' moved while the gate ran" in out.err
    assert repo.git("rev-parse", "main") == main_before
    assert repo.git("log", "-1", "--format=%s", "wtp/a") == "late"
    assert repo.wtp("land", "a").code == 0  # landed, late commit included, once tested again
    assert repo.git("log", "-1", "--format=%s", "main") == "late"


def test_11_a_task_branch_equal_to_the_base_is_refused(repo: Repo) -> None:
    repo.write(".wtp.toml", 'branch_prefix = ""\n')
    out = repo.wtp("start", "main")
    assert out.code == 2
    assert out.err.startswith("wtp: task name 'main' gives the branch 'main', which is the base branch")
    assert repo.branches() == ["main"] and not repo.state_file.exists()


def test_14_22_a_landed_task_with_a_kept_worktree_is_first_class(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    assert repo.wtp("land", "a", "--keep").code == 0
    assert repo.wtp_proc("doctor").code == 0  # healthy: landed-and-kept is not a problem
    out = repo.wtp_proc("doctor", "--fix", "--adopt")
    assert out.code == 0 and repo.wtp("list", "--json").json()["tasks"][0]["state"] == "landed"
    assert repo.wtp("path", "a").out == f"{p}\n"
    assert repo.wtp("rm", "a").code == 0 and not p.exists()
    assert repo.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    out = repo.wtp("land", "a")
    assert (out.code, out.lines[0]) == (0, f"landed 'a' at {repo.git('rev-parse', 'main')}")


def test_19_forced_removals_of_one_name_within_a_second_keep_every_archive(repo: Repo) -> None:
    kept = []
    for i in range(4):
        p = _start(repo, "a")
        kept.append(repo.commit({f"f{i}.txt": f"{i}\n"}, cwd=p))
        assert repo.wtp("rm", "a", "--force").code == 0
    refs = repo.git("for-each-ref", "--format=%(objectname)", "refs/wtp/archive/", "refs/wtp/archive-prev/").split()
    assert sorted(refs) == sorted(kept)


def test_26_two_removals_of_one_task_at_once_are_one_removal_and_one_clear_answer(repo: Repo) -> None:
    for attempt in range(3):
        _start(repo, f"t{attempt}")
        procs = [repo.spawn("rm", f"t{attempt}") for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes in ([0, 0], [0, 1]), outs
        for (_out, err), proc in zip(outs, procs):
            assert "Traceback" not in err and "internal error" not in err
            if proc.returncode:
                assert len(err.splitlines()) == 1 and ("busy" in err or "changed meanwhile" in err), err
        assert f"wtp/t{attempt}" not in repo.branches()


def test_the_guard_is_the_only_code_that_deletes_worktrees_and_task_refs() -> None:
    """A structural check: no module but guard deletes a worktree, a ref or files, or moves
    a branch with reset (gitops only offers the verbs)."""
    import re

    pkg = Path(__file__).resolve().parent.parent / "worktree_par"
    verbs = re.compile(
        r"(?<!guard\.)\b(delete_tree|delete_worktree)\(|gitops\.(delete_ref|reset_keep)\(|rmtree\(|\"remove\""
    )
    offenders = [
        f"{f.name}: {m.group(0)}"
        for f in sorted(pkg.glob("*.py"))
        if f.name not in ("guard.py", "gitops.py")
        for m in verbs.finditer(f.read_text())
    ]
    assert offenders == []


def test_a_new_task_named_like_an_archived_one_says_where_that_work_is(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"mine.txt": "work\n"}, "a: work", cwd=p)
    assert repo.wtp("rm", "a", "--force").code == 0
    again = repo.wtp("start", "a")
    assert again.code == 0
    assert again.err.splitlines() == [
        "note: earlier work of a task 'a' is archived under refs/wtp/archive/a; this task starts afresh from its base "
        "(see it: 'git log -p refs/wtp/archive/a'; restore it: 'git branch a-restored refs/wtp/archive/a')"
    ]
    assert not (Path(again.lines[-1]) / "mine.txt").exists()
    assert repo.wtp("start", "b").err == ""  # no archive, no note
    # The archive is looked for without git (gitops.stored_ref): packed, it is still found.
    assert repo.wtp("rm", "a", "--force").code == 0
    repo.git("pack-refs", "--all")
    assert not (repo.path / ".git" / "refs" / "wtp" / "archive" / "a").exists()
    assert "note: earlier work of a task 'a' is archived under refs/wtp/archive/a" in repo.wtp("start", "a").err


def test_a_ref_read_without_git_is_what_git_reads(repo: Repo, tmp_path: Path) -> None:
    """gitops.stored_ref against git's own answer: loose, packed, packed and overridden by a
    loose one, absent, a symbolic ref, and a folder where the ref would be."""
    from worktree_par import gitops

    git_dir = repo.path / ".git"
    one, two = repo.git("rev-parse", "HEAD"), repo.commit({"x.txt": "x\n"}, "two")
    repo.git("update-ref", "refs/wtp/archive/p", one)
    repo.git("update-ref", "refs/wtp/archive/q", one)
    repo.git("pack-refs", "--all")
    repo.git("update-ref", "refs/wtp/archive/q", two)  # loose now, over the packed line
    repo.git("update-ref", "refs/wtp/archive/l", two)
    repo.git("symbolic-ref", "refs/wtp/archive/s", "refs/heads/main")
    repo.git("update-ref", "refs/wtp/archive/d/x", one)
    for name in ("p", "q", "l", "s", "d", "none", "d/x"):
        ref = f"refs/wtp/archive/{name}"
        assert gitops.stored_ref(repo.path, git_dir, ref) == gitops.ref_value(repo.path, ref), name
    assert gitops.stored_ref(repo.path, git_dir, "refs/wtp/archive/p") == one
    # Read without git where the files hold it: asked in a folder no git answers for, the
    # loose, packed and absent refs still come out as git said (a git call there gives None).
    elsewhere = tmp_path / "no-repository"
    elsewhere.mkdir()
    for name, want in (("p", one), ("q", two), ("l", two), ("none", None)):
        assert gitops.stored_ref(elsewhere, git_dir, f"refs/wtp/archive/{name}") == want, name


def test_rm_of_a_task_whose_branch_was_deleted_under_it_keeps_its_commits(repo: Repo) -> None:
    """A task's branch deleted by hand under its worktree: its commits were named by the
    worktree's reflog alone, and a plain 'wtp rm' deleted that with the worktree."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"wip.txt": "work\n"}, "wip", cwd=p)
    tip = repo.git("rev-parse", "HEAD", cwd=p)
    repo.git("update-ref", "-d", "refs/heads/wtp/a")
    out = repo.wtp_proc("rm", "a")
    assert out.code == 1 and "1 commit not on 'main' or any other branch (a detached HEAD)" in out.err, out.err
    out = repo.wtp_proc("rm", "a", "--force")
    assert out.code == 0, out.err
    assert tip in repo.git("rev-list", "refs/wtp/archive/a").split()


def test_a_nested_repositorys_ignored_files_are_archived_by_force_and_large_ones_named(repo: Repo) -> None:
    """A nested repository's archive held only what its 'git status' shows: its ignored files
    (a local config, a big download) were deleted by 'rm --force' unsaid."""
    p = Path(repo.wtp("start", "a").lines[-1])
    lib = p / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / ".gitignore").write_text("local.cfg\nbig.bin\n__pycache__/\n")
    (lib / "m.py").write_text("code\n")
    git(lib, "add", "-A")
    git(lib, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "lib")
    (lib / "local.cfg").write_text("secret\n")
    (lib / "big.bin").write_bytes(b"\0" * (3 << 20))
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "m.pyc").write_bytes(b"\0")
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert "deleted 1 large ignored file of it without archiving it: big.bin" in out.out, out.out
    assert repo.git("show", "refs/wtp/archive/a:lib/local.cfg") == "secret"
    assert "__pycache__" not in repo.git("ls-tree", "-r", "--name-only", "refs/wtp/archive/a")


def test_rm_force_archives_more_ignored_files_than_a_command_line_holds(repo: Repo) -> None:
    """Review 45: thousands of ignored files (2 MB of names) were handed to 'git add' on its
    command line: 'Argument list too long', and the task could not be removed at all."""
    repo.commit({".gitignore": "*.tmp\n"}, "ignore tmp")
    p = Path(repo.wtp("start", "a").lines[-1])
    name = "an-ignored-file-with-a-name-long-enough-to-fill-a-command-line-quickly-" + "x" * 100
    for i in range(12000):
        (p / f"{name}-{i:05d}.tmp").write_text(str(i))
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert "archived 12000 ignored files" in out.out, out.out[:300]
    assert repo.git("show", f"refs/wtp/archive/a:{name}-11999.tmp") == "11999"


def test_an_ignored_folder_of_small_files_is_archived_file_by_file(repo: Repo) -> None:
    """Review 45: an ignored folder holding three files of 600 KB each (each under the 1 MiB
    limit) was weighed as one 1.8 MB file: 'rm --force' deleted it whole, unarchived, and
    said both 'archived' and 'deleted 1 large ignored file' of it."""
    repo.commit({".gitignore": "data/\n"}, "ignore data")
    p = Path(repo.wtp("start", "a").lines[-1])
    (p / "data").mkdir()
    for i in range(3):
        (p / "data" / f"d{i}.bin").write_bytes(bytes([i]) * 600_000)
    (p / "data" / "big.bin").write_bytes(b"\0" * (2 << 20))
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    archived = repo.git("ls-tree", "-r", "--name-only", "refs/wtp/archive/a").split()
    assert [f for f in archived if f.startswith("data/")] == ["data/d0.bin", "data/d1.bin", "data/d2.bin"]
    assert "deleted 1 large ignored file without archiving them: data/big.bin" in out.out, out.out


def test_refs_private_to_a_worktree_are_seen_after_git_packs_its_refs(repo: Repo) -> None:
    """The guard reads a worktree's own refs (refs/worktree/, refs/bisect/) without git when
    its git dir holds none; git never packs them, so a pack of every ref leaves them where
    that look finds them."""
    p = _start(repo, "a")
    repo.git("checkout", "-q", "--detach", cwd=p)
    marked = repo.commit({"m.txt": "marked\n"}, cwd=p)
    bisected = repo.commit({"b.txt": "bisected\n"}, cwd=p)
    repo.git("checkout", "-q", "wtp/a", cwd=p)
    repo.git("update-ref", "refs/worktree/keep", marked, cwd=p)
    repo.git("update-ref", "refs/bisect/bad", bisected, cwd=p)
    repo.git("pack-refs", "--all", cwd=p)
    repo.git("pack-refs", "--all")
    out = repo.wtp("rm", "a")
    assert out.code == 1 and "(refs/bisect/bad, refs/worktree/keep)" in out.err, out.err
    assert p.exists()
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert _reachable(repo, marked, "refs/wtp/archive/a") and _reachable(repo, bisected, "refs/wtp/archive/a")
