"""The task lifecycle (issue 2): start, list, path, run, rm, init, from any worktree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo, make_repo, wait_for


def test_three_tasks_get_branches_and_worktrees_outside_the_main_worktree(repo: Repo) -> None:
    paths = []
    for name in "abc":
        out = repo.wtp("start", name)
        assert out.code == 0, out.err
        paths.append(Path(out.lines[-1]))
    root = repo.path.parent / "repo.worktrees"
    assert paths == [root / "a", root / "b", root / "c"]
    for name, p in zip("abc", paths):
        assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=p) == f"wtp/{name}"
        assert repo.path not in p.parents
    wt = repo.git("worktree", "list", "--porcelain")
    assert wt.count("branch refs/heads/wtp/") == 3
    # list --json from the main worktree and from each linked worktree shows all three
    for where in [repo.path, *paths]:
        data = repo.wtp("list", "--json", cwd=where).json()
        assert [(t["name"], t["state"], t["branch"], t["path"]) for t in data["tasks"]] == [
            (n, "active", f"wtp/{n}", str(p)) for n, p in zip("abc", paths)
        ]
    ports = [t["port"] for t in data["tasks"]]
    assert ports == [4100, 4101, 4102]


def test_list_counts_ahead_behind_dirty_and_changed(repo: Repo) -> None:
    p = Path(repo.wtp("start", "feed").lines[-1])
    repo.commit({"src/app.js": "changed\n"}, cwd=p)
    repo.write("src/new.js", "x\n", cwd=p)  # untracked
    repo.write("README.md", "edited\n", cwd=p)  # unstaged
    repo.commit({"CHANGELOG.md": "moved on\n"})  # base moves ahead
    t = repo.wtp("list", "--json").json()["tasks"][0]
    assert (t["ahead"], t["behind"], t["dirty"], t["changed"]) == (1, 1, 2, 3)
    table = repo.wtp("list")
    assert table.lines[0].split() == ["TASK", "STATE", "+/-", "DIRTY", "CHANGED", "PORT", "LAST", "COMMIT"]
    assert table.lines[1].split()[:7] == ["feed", "active", "+1/-1", "2", "3", "4100", "change"]
    assert table.lines[-1] == "worktrees: ../repo.worktrees/<task>"  # said once, not in every row


def test_status_is_an_alias_of_list(repo: Repo) -> None:
    repo.wtp("start", "a")
    assert repo.wtp("status", "--json").json() == repo.wtp("list", "--json").json()


def test_path_and_run_use_the_task_environment(repo: Repo) -> None:
    p = repo.wtp("start", "feed").lines[-1]
    assert repo.wtp("path", "feed").out == p + "\n"
    out = repo.wtp_proc(
        "run", "feed", "--", "sh", "-c", 'echo "$WTP_TASK|$WTP_WORKTREE|$WTP_BRANCH|$WTP_BASE|$PORT|$PWD"; exit 7'
    )
    assert out.code == 7
    assert out.out.strip() == f"feed|{p}|wtp/feed|main|4100|{p}"


def test_run_reports_a_missing_command(repo: Repo) -> None:
    repo.wtp("start", "feed")
    out = repo.wtp_proc("run", "feed", "--", "no-such-command-xyz")
    assert (out.code, out.err) == (127, "wtp: command not found: no-such-command-xyz\n")


def test_start_is_idempotent_and_reports_the_existing_task(repo: Repo) -> None:
    first = repo.wtp("start", "a")
    again = repo.wtp("start", "a")
    assert again.code == 0
    assert again.lines == first.lines
    assert "already active" in again.err
    assert len(repo.state()["tasks"]) == 1


def test_start_adopts_an_existing_branch(repo: Repo) -> None:
    repo.git("branch", "wtp/old")
    repo.commit({"x.txt": "x\n"})
    repo.git("branch", "-f", "wtp/old", "HEAD~1")
    out = repo.wtp("start", "old")
    assert out.code == 0
    assert "using the existing branch 'wtp/old'" in out.err
    assert repo.git("rev-parse", "HEAD", cwd=Path(out.lines[-1])) == repo.git("rev-parse", "HEAD~1")


def test_start_from_a_commit_ish(repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.commit({"x.txt": "x\n"})
    repo.git("tag", "v1", first)
    p = Path(repo.wtp("start", "old", "--base", "v1").lines[-1])
    assert repo.git("rev-parse", "HEAD", cwd=p) == first
    assert repo.wtp("list", "--json").json()["tasks"][0]["base"] == "main"
    bad = repo.wtp("start", "nope", "--base", "no-such-ref")
    assert (bad.code, bad.err) == (
        2,
        "wtp: --base 'no-such-ref' names no branch or commit: pass a branch, tag or commit id\n",
    )


def test_base_is_the_remote_head_branch(tmp_path: Path) -> None:
    r = make_repo(tmp_path, remote=True)
    r.git("checkout", "-q", "-b", "trunk")
    r.git("push", "-q", "origin", "trunk")
    r.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    r.commit({"local-only.txt": "not pushed\n"})  # the task must fork from what the remote has
    p = Path(r.wtp("start", "t").lines[-1])
    task = r.wtp("list", "--json").json()["tasks"][0]
    assert task["base"] == "trunk"
    assert r.git("rev-parse", "HEAD", cwd=p) == r.git("rev-parse", "origin/trunk")
    # the task branch must not track the base: a plain 'git push' must never push to it
    assert r.git("config", "--get", "branch.wtp/t.merge", check=False) == ""


def test_base_falls_back_to_master(tmp_path: Path) -> None:
    r = make_repo(tmp_path)
    r.git("branch", "-m", "main", "master")
    r.wtp("start", "t")
    assert r.wtp("list", "--json").json()["tasks"][0]["base"] == "master"


def test_no_base_branch_is_a_clear_error(tmp_path: Path) -> None:
    r = make_repo(tmp_path)
    r.git("branch", "-m", "main", "trunk")
    out = r.wtp("start", "t")
    assert out.code == 2
    assert out.err.startswith("wtp: cannot tell the base branch")
    assert not r.state_file.exists()


# --- rm -------------------------------------------------------------------------------


def test_rm_removes_a_task_without_work(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    out = repo.wtp("rm", "a")
    assert (out.code, out.lines) == (0, ["removed task 'a' (worktree and branch 'wtp/a')"])
    assert not p.exists()
    assert "wtp/a" not in repo.branches()
    assert repo.wtp("list", "--json").json() == {"tasks": []}
    assert [t["state"] for t in repo.wtp("list", "--json", "--all").json()["tasks"]] == ["abandoned"]


def test_rm_refuses_unlanded_commits_and_force_archives_them(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    tip = repo.commit({"src/app.js": "new\n"}, cwd=p)
    out = repo.wtp("rm", "a")
    assert out.code == 1
    assert (
        out.err
        == "wtp: task 'a' has 1 commit not on 'main' or any other branch (branch 'wtp/a'): land it, or run 'wtp rm a --force' to archive and remove it\n"
    )
    assert p.exists() and "wtp/a" in repo.branches()
    forced = repo.wtp("rm", "a", "--force")
    assert forced.code == 0
    assert forced.lines[1] == (
        "archived 1 commit not on 'main' or any other branch (branch 'wtp/a') of task 'a' under refs/wtp/archive/a "
        "(restore: 'git branch a-restored refs/wtp/archive/a')"
    )
    assert repo.git("rev-parse", "refs/wtp/archive/a") == tip
    assert not p.exists()


def test_rm_refuses_a_dirty_tree_and_force_keeps_the_uncommitted_files(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.write("src/app.js", "edited\n", cwd=p)
    repo.write("notes.txt", "untracked\n", cwd=p)
    out = repo.wtp("rm", "a")
    assert out.code == 1
    assert (
        out.err
        == "wtp: task 'a' has 2 uncommitted files (notes.txt, src/app.js): land it, or run 'wtp rm a --force' to archive and remove it\n"
    )
    repo.wtp("rm", "a", "--force")
    assert repo.git("show", "refs/wtp/archive/a:notes.txt") == "untracked"
    assert repo.git("show", "refs/wtp/archive/a:src/app.js") == "edited"
    assert repo.git("rev-parse", "refs/wtp/archive/a^") == repo.git("rev-parse", "main")


def test_rm_keeps_an_older_archive_of_the_same_name(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    first = repo.commit({"one.txt": "1\n"}, cwd=p)
    repo.wtp("rm", "a", "--force")
    p = Path(repo.wtp("start", "a").lines[-1])
    second = repo.commit({"two.txt": "2\n"}, cwd=p)
    repo.wtp("rm", "a", "--force")
    assert repo.git("rev-parse", "refs/wtp/archive/a") == second
    kept = repo.git("for-each-ref", "--format=%(objectname)", "refs/wtp/archive-prev/a/")
    assert kept == first


def test_rm_allows_work_that_is_already_on_the_base(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"src/app.js": "new\n"}, cwd=p)
    repo.git("merge", "-q", "--ff-only", "wtp/a")
    assert repo.wtp("rm", "a").code == 0


def test_rm_refuses_while_a_process_runs_inside(repo: Repo) -> None:

    p = Path(repo.wtp("start", "a").lines[-1])
    proc = subprocess.Popen(["sleep", "30"], cwd=p)
    try:
        out = repo.wtp("rm", "a")
        assert out.code == 1
        assert (
            out.err
            == f"wtp: task 'a' has 1 process running inside (sleep[{proc.pid}]): stop them, or run 'wtp rm a --force'\n"
        )
        listed = repo.wtp("list", "--json").json()["tasks"][0]["processes"]
        assert listed == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert repo.wtp("rm", "a").code == 0


def test_rm_of_a_queued_task_just_drops_it(repo: Repo) -> None:
    for n in "abcd":
        repo.wtp("start", n)
    assert repo.wtp("rm", "d").lines == ["removed queued task 'd'"]
    assert "wtp/d" not in repo.branches()


def _rm_of_queued_q_held(repo: Repo, tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    """With max_active 1, 'a' active and 'q' queued: a 'wtp rm q' held once it has read q
    queued; (that rm, the file that lets it go on)."""
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    assert repo.wtp_proc("start", "q").code == 4
    hold = tmp / "hold"
    rm_q = repo.spawn("rm", "q", env={"WTP_TEST_HOLD_AT": "rm:before-queued", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(lambda: hold.with_suffix(".reached").exists(), "'wtp rm q' to read q queued")
    return rm_q, hold


def test_rm_of_a_queued_task_that_a_freed_slot_starts_meanwhile_refuses(repo: Repo, tmp_path: Path) -> None:
    """Review 35: 'wtp rm q' read q queued, 'wtp rm a' freed the slot and started q, then the
    first marked the started task abandoned: its worktree and branch were left to nobody."""
    rm_q, hold = _rm_of_queued_q_held(repo, tmp_path)
    assert repo.wtp("rm", "a").code == 0  # frees the slot: q starts
    hold.write_text("")
    _, err = rm_q.communicate(timeout=60)
    assert (rm_q.returncode, err) == (1, "wtp: task 'q' was started meanwhile (see 'wtp list'): run 'wtp rm q' again\n")
    q = next(t for t in repo.state()["tasks"] if t["name"] == "q")
    assert q["state"] == "active" and Path(q["path"]).is_dir() and "wtp/q" in repo.branches()
    assert repo.wtp("rm", "q").code == 0 and "wtp/q" not in repo.branches()


def test_rm_whose_worktree_record_a_prune_beside_it_dropped_still_removes_it(repo: Repo) -> None:
    """Review 35: 'wtp rm' renames the folder aside, then asks git to drop its record; a 'git
    worktree prune' in between (doctor --fix, another rm) saw the folder missing and dropped
    the record first, and the rm failed with a git error, leaving the worktree broken."""
    import fcntl
    import os

    p = Path(repo.wtp("start", "a").lines[-1])
    lock = repo.path / ".git" / "wtp" / "worktrees.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # git's record of it is dropped only under this lock
        rm = repo.spawn("rm", "a")
        wait_for(lambda: not p.exists(), "the folder renamed aside")
        repo.git("worktree", "prune")  # its folder is missing: the record goes
    finally:
        os.close(fd)
    out, err = rm.communicate(timeout=60)
    assert (rm.returncode, err) == (0, ""), err
    assert out == "removed task 'a' (worktree and branch 'wtp/a')\n"
    assert not [x for x in p.parent.iterdir() if x.name.startswith(".wtp-trash-")] and "wtp/a" not in repo.branches()


def test_start_of_a_task_whose_worktree_is_not_there_prints_no_path(repo: Repo) -> None:
    """Review 35: after an rm killed once the worktree was deleted, or a worktree deleted by
    hand, 'wtp start a' said "already active" and printed the missing path with exit 0, so
    'cd "$(wtp start a)"' failed where the README says it cannot go wrong."""
    repo.wtp("start", "a")
    killed = repo.wtp_proc("rm", "a", env={"WTP_TEST_KILL_AT": "rm:before-branch"})
    assert killed.code == -9
    out = repo.wtp_proc("start", "a")
    assert (out.code, out.out, out.err) == (
        1,
        "",
        "wtp: the removal of task 'a' was interrupted: run 'wtp rm a' to finish it\n",
    )
    assert repo.wtp("rm", "a").code == 0
    p = Path(repo.wtp("start", "b").lines[-1])
    shutil.rmtree(p)
    out = repo.wtp_proc("start", "b")
    assert (out.code, out.out) == (1, ""), out.err
    assert out.err == (
        f"wtp: the worktree of task 'b' ({p}) is not there: 'wtp doctor --fix' records where it was moved, "
        "or makes it again\n"
    )
    assert repo.wtp("doctor", "--fix").code == 0
    assert repo.wtp("start", "b").lines[-1] == str(p) and p.is_dir()


def test_a_file_at_the_worktree_path_is_in_the_way_and_kept(repo: Repo) -> None:
    """Review 35: a file where the worktree goes gave "Not a directory ...: free space or fix
    the permissions" (exit 2); it is in the way, as a folder holding anything is."""
    root = repo.path.parent / "repo.worktrees"
    root.mkdir()
    (root / "f").write_text("mine\n")
    out = repo.wtp_proc("start", "f")
    assert (out.code, out.err) == (
        1,
        f"wtp: {root / 'f'} already exists and is not a worktree of this repository: move it away, then run "
        "'wtp start f' again\n",
    )
    assert (root / "f").read_text() == "mine\n" and "wtp/f" not in repo.branches()


def test_an_rm_that_another_rm_beat_says_so_and_claims_nothing(repo: Repo, tmp_path: Path) -> None:
    """Review 35: of two 'wtp rm --force' of one task, the second, having read the task before
    the first removed it, also printed "removed task 'a' (worktree and branch 'wtp/a')"."""
    p = Path(repo.wtp("start", "a").lines[-1])
    (p / "new.txt").write_text("n\n")
    hold = tmp_path / "hold"
    second = repo.spawn("rm", "a", "--force", env={"WTP_TEST_HOLD_AT": "rm:read", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(lambda: hold.with_suffix(".reached").exists(), "the second rm to read the task")
    first = repo.wtp("rm", "a", "--force")
    assert first.code == 0 and first.lines[0] == "removed task 'a' (worktree and branch 'wtp/a')"
    hold.write_text("")
    out, err = second.communicate(timeout=60)
    assert (second.returncode, out, err) == (0, "task 'a' was removed meanwhile, by another command\n", "")
    assert repo.git("show", "refs/wtp/archive/a:new.txt") == "n"
    assert repo.git("for-each-ref", "refs/wtp/archive-prev/") == ""  # archived once


def test_an_rm_whose_task_landed_meanwhile_with_its_worktree_kept_goes_on(repo: Repo, tmp_path: Path) -> None:
    """Review 37: the rm held after reading the task said "removed meanwhile" (exit 0) when a
    land had landed it meanwhile and kept its worktree for the user's .env."""
    repo.commit({".gitignore": ".env\n"}, "ignore .env")
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, "a work", cwd=p)
    (p / ".env").write_text("SECRET=1\n")
    hold = tmp_path / "hold"
    rm = repo.spawn("rm", "a", env={"WTP_TEST_HOLD_AT": "rm:read", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(lambda: hold.with_suffix(".reached").exists(), "the rm to read the task")
    landed = repo.wtp("land", "a", "--gate", "true")
    assert landed.code == 0 and "kept the worktree" in landed.out, landed.out
    hold.write_text("")
    _, err = rm.communicate(timeout=60)
    assert rm.returncode == 1 and "1 ignored file that is not a build output (.env)" in err, err
    assert (p / ".env").is_file()


def test_the_second_of_two_rms_of_a_queued_task_says_it_was_removed(repo: Repo, tmp_path: Path) -> None:
    """Review 37: it said the task "was started meanwhile ... run 'wtp rm q' again" (exit 1)."""
    second, hold = _rm_of_queued_q_held(repo, tmp_path)
    assert repo.wtp("rm", "q").lines == ["removed queued task 'q'"]
    hold.write_text("")
    out, err = second.communicate(timeout=60)
    assert (second.returncode, out, err) == (0, "task 'q' was removed meanwhile, by another command\n", "")


def test_abandon_is_an_alias_of_rm(repo: Repo) -> None:
    repo.wtp("start", "a")
    assert repo.wtp("abandon", "a").code == 0


def test_a_name_can_be_reused_after_rm(repo: Repo) -> None:
    repo.wtp("start", "a")
    repo.wtp("rm", "a")
    out = repo.wtp("start", "a")
    assert out.code == 0 and Path(out.lines[-1]).is_dir()


# --- init -----------------------------------------------------------------------------


def test_init_writes_a_config_that_loads_back(remote_repo: Repo) -> None:
    out = remote_repo.wtp("init", "--max-active", "4")
    root = remote_repo.path
    assert out.lines == [
        f"wrote {root / '.wtp.toml'} (base 'main', remote 'origin', max_active 4)",
        # the fixture's package.json has a test script, and no node_modules
        "land gate 'npm test': npm is here, but there is no node_modules yet: install it (npm ci), and give task "
        'worktrees theirs with [setup] copy = ["node_modules"] or run = ["npm ci --prefer-offline"]; trusted',
        "co-change layer off: too few merges to tell (0 usable pairs; 20 needed)",  # one commit, no merges
        f"commit .wtp.toml so task worktrees, agents and teammates see it: git -C {root} add .wtp.toml && "
        f"git -C {root} commit -m 'wtp: configure'",
    ]
    from worktree_par.config import Config, load

    cfg = load(remote_repo.path)
    assert cfg == Config(
        base="main",
        remote="origin",
        max_active=4,
        land_gate="npm test",
        check_cochange="off",
        source=remote_repo.path / ".wtp.toml",
    )
    again = remote_repo.wtp("init")
    assert again.code == 1 and "already exists" in again.err
    assert remote_repo.wtp("init", "--no-remote", "--force").code == 0
    assert load(remote_repo.path).remote == ""


def test_config_in_pyproject(repo: Repo) -> None:
    repo.write("pyproject.toml", '[project]\nname = "x"\n\n[tool.wtp]\nmax_active = 1\nbranch_prefix = "task/"\n')
    repo.wtp("start", "a")
    queued = repo.wtp("start", "b")
    assert (queued.code, queued.out, queued.err) == (
        4,
        "",
        "task 'b' is queued (place 1): waits because no slot is free: 1 of 1 taken\n",
    )
    assert "task/a" in repo.branches()


def test_worktree_root_inside_the_repo_is_refused(repo: Repo) -> None:
    repo.write(".wtp.toml", 'worktree_root = ".worktrees"\n')
    out = repo.wtp("start", "a")
    assert out.code == 2
    assert "is inside the worktree" in out.err
    assert not repo.state_file.exists()


# --- concurrency ----------------------------------------------------------------------


def test_concurrent_starts_lose_no_entry_and_share_no_port(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 20\n")
    names = [f"t{i}" for i in range(10)]
    procs = [repo.spawn("start", n, "--json") for n in names]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0] * 10, [r[1] for r in results]
    tasks = repo.wtp("list", "--json").json()["tasks"]
    assert sorted(t["name"] for t in tasks) == sorted(names)
    assert all(t["state"] == "active" for t in tasks)
    ports = [t["port"] for t in tasks]
    assert sorted(ports) == list(range(4100, 4110))
    assert len(repo.git("worktree", "list").splitlines()) == 11
    # starts from linked worktrees share the same registry
    inner = Path(tasks[0]["path"])
    assert repo.wtp_proc("start", "from-inside", cwd=inner).code == 0
    assert len(json.loads(repo.wtp_proc("list", "--json").out)["tasks"]) == 11


@pytest.mark.parametrize("cmd", [["path", "ghost"], ["run", "ghost", "--", "true"], ["rm", "ghost"]])
def test_unknown_task_is_exit_2(repo: Repo, cmd: list[str]) -> None:
    repo.wtp("start", "a")
    out = repo.wtp(*cmd)
    assert (out.code, out.err) == (2, "wtp: no task named 'ghost' (tasks: a): see 'wtp list'\n")


def test_list_never_writes_a_task_worktrees_index(repo: Repo) -> None:
    """'wtp list' reads worktrees others are working in: a status that refreshed and wrote
    the index back took index.lock, and a rebase or commit there at that moment failed."""
    import os
    import time

    p = Path(repo.wtp("start", "a").lines[-1])
    tracked = next(f for f in p.rglob("*") if f.is_file() and ".git" not in f.parts)
    later = time.time() + 5
    os.utime(tracked, (later, later))  # same content, new stat data: a refreshing status writes the index
    index = Path(repo.git("rev-parse", "--git-path", "index", cwd=p))
    index = index if index.is_absolute() else p / index
    before = index.read_bytes()
    assert repo.wtp("list").code == 0
    assert index.read_bytes() == before


def test_rm_does_not_say_a_branch_removed_that_it_kept(repo: Repo, tmp_path: Path) -> None:
    """A commit made on the branch while 'wtp rm' removed the worktree keeps the branch: the
    first line no longer says it was removed."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, "a work", cwd=p)
    repo.git("branch", "keep-a", "wtp/a")  # the work is kept elsewhere: rm proceeds without --force
    hold = tmp_path / "hold"
    rm = repo.spawn("rm", "a", env={"WTP_TEST_HOLD_AT": "rm:before-branch", "WTP_TEST_HOLD_FILE": str(hold)})
    try:
        wait_for(lambda: Path(f"{hold}.reached").exists(), "rm to reach the branch's deletion")
        tree = repo.git("rev-parse", "wtp/a^{tree}")
        moved = repo.git("commit-tree", tree, "-p", "wtp/a", "-m", "made meanwhile")
        repo.git("update-ref", "refs/heads/wtp/a", moved)
    finally:
        hold.write_text("")  # let it go, whatever happened
    out, err = rm.communicate(timeout=60)
    assert rm.returncode == 0, err
    assert out.splitlines()[0] == "removed task 'a' (its worktree; its branch is kept, below)"
    assert "kept branch 'wtp/a': it moved while the worktree was removed" in out
    assert repo.git("rev-parse", "wtp/a") == moved


def test_list_prints_a_commit_subject_with_its_control_characters_escaped(repo: Repo) -> None:
    """Review 38: a subject holding an ESC sequence or a CR reached the terminal raw."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, "clear \x1b[2J screen\rover", cwd=p)
    out = repo.wtp("list")
    assert "clear \\x1b[2J screen\\rover" in out.out and "\x1b" not in out.out and "\r" not in out.out, out.out


def test_the_config_cache_is_never_written_through_a_linked_state_dir(repo: Repo, tmp_path: Path) -> None:
    """wtp keeps its state only in a real directory (a link there is refused): the config's
    cache is not written where such a link points either."""
    repo.write(".wtp.toml", "max_active = 2\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo.path / ".git" / "wtp").symlink_to(elsewhere)
    repo.wtp_proc("list")
    assert list(elsewhere.iterdir()) == []


def test_the_config_file_is_parsed_once_while_its_text_is_the_same(repo: Repo) -> None:
    """Commands keep the config file's parsed form in the state dir (tomllib's import and parse
    are ~4 ms of each command) and use it while the file's text is the same byte for byte: an
    edit is seen by the next command, and a cache that is not wtp's own is read past."""
    repo.write(".wtp.toml", "max_active = 2\n")
    repo.wtp("start", "a")  # (the state dir exists from here: the cache is kept there)
    repo.wtp("list")
    cache = repo.path / ".git" / "wtp" / "config-cache.json"
    kept = json.loads(cache.read_text())
    form = f"1 python {sys.version_info[0]}.{sys.version_info[1]}"  # (another Python's tomllib: parsed again)
    assert kept == {"key": [form, str(repo.path / ".wtp.toml"), "max_active = 2\n"], "data": {"max_active": 2}}
    kept["data"] = {"max_active": 1}  # used as it says while the text matches: one active task, b waits
    cache.write_text(json.dumps(kept))
    assert repo.wtp_proc("start", "b").code == 4
    kept["data"] = {"max_active": "lots"}  # what the file does not say is never said of it (review 57)
    cache.write_text(json.dumps(kept))
    assert repo.wtp_proc("list").code == 0 and json.loads(cache.read_text())["data"] == {"max_active": 2}
    repo.write(".wtp.toml", "max_active = 3\n")  # the same length: read again all the same
    assert repo.wtp_proc("start", "c").code == 0
    assert json.loads(cache.read_text())["data"] == {"max_active": 3}
    for planted in ("not json", '{"key": "x"}', "[1]"):
        cache.write_text(planted)
        assert repo.wtp("list", "--json").code == 0
    repo.write(".wtp.toml", "max_actve = 3\n")  # parsed, then refused: the error names the key each time
    for _ in range(2):
        out = repo.wtp_proc("list")
        assert out.code == 2 and "unknown key 'max_actve'" in out.err, out.err
    for text in (
        "x = " + "[" * 1000 + "]" * 1000 + "\n",
        f"max_active = {'9' * 5000}\n",
    ):  # review 57: exit 1, a crash log
        repo.write(".wtp.toml", text)
        out = repo.wtp_proc("list")
        assert (out.code, len(out.err.splitlines())) == (2, 1) and "not valid TOML" in out.err, out.err
