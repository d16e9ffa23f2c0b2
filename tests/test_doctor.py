"""wtp doctor and crash safety (issue 6): kill wtp at every step boundary, then show the
next command completes or rolls back, with no commit lost and nothing left blocking."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from worktree_par import procs

from .conftest import Repo, make_repo, wait_for


def _doctor(r: Repo, *args: str) -> tuple[int, str]:
    out = r.wtp_proc("doctor", *args)
    assert "Traceback" not in out.err
    return out.code, out.out


def test_a_healthy_repo_is_left_alone(repo: Repo) -> None:
    repo.wtp_proc("start", "a")  # its creating process has exited: the task is not dead
    before = repo.state_file.read_text()
    assert _doctor(repo) == (0, "healthy: nothing to fix\n")
    assert _doctor(repo, "--fix") == (0, "healthy: nothing to fix\n")
    assert repo.state_file.read_text() == before
    assert Path(json.loads(repo.wtp_proc("list", "--json").out)["tasks"][0]["path"]).is_dir()


def test_a_deleted_worktree_folder_is_recreated_from_its_branch(repo: Repo) -> None:
    p = Path(repo.wtp_proc("start", "a").out.strip())
    repo.commit({"a.txt": "a\n"}, cwd=p)
    tip = repo.git("rev-parse", "wtp/a")
    shutil.rmtree(p)
    code, out = _doctor(repo)
    assert code == 1 and f"the worktree of task 'a' ({p}) is gone; its branch is kept" in out
    code, out = _doctor(repo, "--fix")
    assert code == 0 and "recreated the worktree of 'a'" in out  # everything it found is fixed
    assert repo.git("rev-parse", "HEAD", cwd=p) == tip
    assert _doctor(repo)[0] == 0


def test_unknown_worktrees_are_reported_and_adopted_only_when_asked(repo: Repo) -> None:
    root = repo.path.parent / "repo.worktrees"
    repo.git("worktree", "add", "-q", "-b", "wtp/stray", str(root / "stray"))
    code, out = _doctor(repo, "--fix")
    assert code == 1 and "is not in the registry: 'wtp doctor --fix --adopt' adopts it" in out
    assert not repo.state_file.exists() or "stray" not in repo.state_file.read_text()
    code, out = _doctor(repo, "--fix", "--adopt")
    assert "adopted" in out
    assert [t["name"] for t in json.loads(repo.wtp_proc("list", "--json").out)["tasks"]] == ["stray"]


def test_the_leftover_of_an_interrupted_worktree_deletion_is_cleaned_up(repo: Repo) -> None:
    p = Path(repo.wtp_proc("start", "a").out.strip())
    assert repo.wtp_proc("rm", "a").code == 0
    assert not p.exists() and list(p.parent.iterdir()) == []  # removal leaves no trash behind
    # A removal killed after git dropped the worktree's record, while deleting its files:
    trash = p.parent / ".wtp-trash-b-999999999"
    (trash / "src").mkdir(parents=True)
    (trash / "src" / "x.py").write_text("x\n")
    (trash / "elsewhere").symlink_to(repo.path / "src")  # deleting the link keeps what it points at
    code, out = _doctor(repo)
    assert code == 1 and f"{trash} is the leftover of an interrupted worktree removal" in out
    code, out = _doctor(repo, "--fix")
    assert f"deleted {trash}" in out and not trash.exists()
    assert (repo.path / "src").is_dir() and any((repo.path / "src").iterdir())
    assert _doctor(repo)[0] == 0


def test_the_leftover_of_a_removal_whose_process_is_a_zombie_is_cleaned_up(repo: Repo) -> None:
    """A removal killed while deleting files (a land's helper or child killed with its parent)
    whose process the kernel still lists, a zombie not yet reaped or one dying: it will never
    finish, so its leftover is a leftover (it was taken for a removal still under way, and the
    random-fault test's doctor found it a moment later)."""
    p = Path(repo.wtp_proc("start", "a").out.strip())
    zombie = subprocess.Popen(["true"])
    wait_for(lambda: procs.dying(zombie.pid), "the process to end, not reaped")
    try:
        trash = p.parent / f".wtp-trash-b-{zombie.pid}"
        (trash / "src").mkdir(parents=True)
        code, out = _doctor(repo)
        assert code == 1 and f"{trash} is the leftover of an interrupted worktree removal" in out, out
    finally:
        zombie.wait()


def test_dead_gate_tickets_are_dropped(repo: Repo) -> None:
    from worktree_par.gates import Gate
    from worktree_par.state import Store

    g = Gate(Store(repo.path / ".git"), "deploy")
    g.dir.joinpath("tickets.json").write_text(
        json.dumps(
            {
                "version": 1,
                "name": "deploy",
                "seq": 1,
                "tickets": [
                    {
                        "seq": 1,
                        "holder": {
                            "pid": 999999,
                            "start": 1.0,
                            "host": __import__("socket").gethostname(),
                            "cmd": "wtp gate deploy",
                            "since": 1.0,
                        },
                        "label": "",
                        "granted": 1.0,
                    }
                ],
            }
        )
    )
    code, out = _doctor(repo, "--fix")
    assert code == 0 and "gate 'deploy' has 1 ticket of dead processes" in out
    assert _doctor(repo) == (0, "healthy: nothing to fix\n")
    assert repo.wtp_proc("gate", "deploy", "--timeout", "2", "--", "true").code == 0


# --- kill at every step --------------------------------------------------------------


def _killed(r: Repo, step: str, *args: str) -> None:
    out = r.wtp_proc(*args, env={"WTP_TEST_KILL_AT": step})
    assert out.code == -9, (out.code, out.err)


def _no_lock_left(r: Repo) -> None:
    assert _doctor(r)[0] == 0
    for d in (r.path / ".git" / "wtp" / "gates").glob("*"):
        assert json.loads((d / "tickets.json").read_text())["tickets"] == []


@pytest.mark.parametrize("step", ["start:before-worktree", "start:before-setup"])
def test_killed_start_is_completed_by_the_next_start(repo: Repo, step: str) -> None:
    _killed(repo, step, "start", "a")
    out = repo.wtp_proc("start", "a")
    assert out.code == 0, out.err
    p = Path(out.out.strip().splitlines()[-1])
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=p) == "wtp/a"
    _no_lock_left(repo)


def test_killed_start_is_completed_by_doctor(repo: Repo) -> None:
    _killed(repo, "start:before-worktree", "start", "a")
    code, out = _doctor(repo, "--fix")
    assert "completed the start of 'a'" in out
    assert _doctor(repo)[0] == 0


@pytest.mark.parametrize("step", ["rm:before-archive", "rm:before-worktree", "rm:before-branch"])
def test_killed_rm_is_completed_and_loses_nothing(repo: Repo, step: str) -> None:
    p = Path(repo.wtp_proc("start", "a").out.strip())
    tip = repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.write("wip.txt", "uncommitted\n", cwd=p)
    _killed(repo, step, "rm", "a", "--force")
    out = repo.wtp_proc("rm", "a", "--force")
    assert out.code == 0, out.err
    assert not p.exists() and "wtp/a" not in repo.branches()
    archived = repo.git("rev-parse", "refs/wtp/archive/a")
    assert repo.git("show", f"{archived}:wip.txt") == "uncommitted"
    assert subprocess.run(["git", "merge-base", "--is-ancestor", tip, archived], cwd=repo.path).returncode == 0
    _no_lock_left(repo)


LAND_STEPS = ["land:queued", "land:before-candidate", "land:before-gate", "land:before-publish", "land:after-publish"]


@pytest.mark.parametrize("step", LAND_STEPS)
def test_killed_land_is_completed_or_rolled_back(remote_repo: Repo, step: str) -> None:
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    r.commit({"a.txt": "a\n"}, msg="a: work", cwd=p)
    r.commit({"other.txt": "o\n"}, msg="base moved")
    r.git("push", "-q", "origin", "main")
    _killed(r, step, "land", "a", "--gate", "true")
    out = r.wtp_proc("land", "a", "--gate", "true")
    assert out.code == 0, out.err
    log = r.git("log", "--format=%s", "origin/main").splitlines()
    assert log == ["a: work", "base moved", "initial"]  # landed exactly once
    assert not p.exists()
    assert r.git("for-each-ref", "refs/wtp/backup/") == ""
    _no_lock_left(r)


@pytest.mark.parametrize("link", ["missing", "dangling"])
def test_a_killed_land_whose_worktree_link_broke_is_mended_then_rolled_back(
    remote_repo: Repo, tmp_path: Path, link: str
) -> None:
    """Recovery mends the worktree's link before git reads it (review 53: doctor never got to the
    link, and failed on git's own error; 'wtp land' too, with a crash log).  A link that is the
    user's to mend is named in one line, nothing changed, until it is deleted."""
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    tip = r.commit({"a.txt": "a\n"}, cwd=p)
    r.commit({"other.txt": "o\n"}, msg="base moved")
    r.git("push", "-q", "origin", "main")
    _killed(r, "land:before-gate", "land", "a", "--gate", "true")
    (p / ".git").unlink()
    if link == "dangling":
        (p / ".git").symlink_to(tmp_path / "gone")
    code, out = _doctor(r)  # plain doctor names both (it named the interrupted land alone)
    shape = "a symbolic link to " if link == "dangling" else "file is missing"
    assert "the land of task 'a' was interrupted, and its worktree is broken (its .git " in out and shape in out, out
    if link == "dangling":  # the user's link: what to do is said, and --fix does not try (review 57)
        assert "restore what its .git links to, or delete that link and run 'wtp doctor --fix'" in out, out
        code, out = _doctor(r, "--fix")
        assert code == 1 and "not fixed automatically" in out, out
        assert r.git("rev-parse", "wtp/a") != tip  # the branch is still on the candidate: nothing changed
        (p / ".git").unlink()
    code, out = _doctor(r, "--fix")
    assert code == 0, out
    assert (
        "the worktree of task 'a' was broken (its .git file is missing): wrote back its .git file" in out
        and "rolled back the interrupted land of 'a' to its pre-land tip" in out
    ), out
    assert r.git("rev-parse", "wtp/a") == tip and r.git("status", "--porcelain", cwd=p) == ""
    assert r.wtp_proc("land", "a", "--gate", "true").code == 0


def test_a_killed_land_that_had_published_is_landed_whatever_its_worktree_link(remote_repo: Repo) -> None:
    """Review 54: the link's refusal came before the question whether the land had published:
    a task the base holds stayed 'landing'.  It is marked landed; its removal names the folder."""
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    r.commit({"a.txt": "a\n"}, cwd=p)
    _killed(r, "land:after-publish", "land", "a", "--gate", "true")
    (p / ".git").unlink()
    (p / ".git").mkdir()
    out = r.wtp_proc("land", "a", "--gate", "true")  # its lander again: it finishes the land, and cleans up
    assert out.code == 0 and "marked landed" in out.err, out.out + out.err
    assert (
        f"kept the worktree {p}: the worktree of task 'a' is broken (its .git is a folder that is not its git dir"
        in out.out + out.err  # (review 55: "it has , kept nowhere else")
    ), out.out + out.err
    assert r.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert "a.txt" in r.git("ls-tree", "--name-only", "origin/main") and p.is_dir()
    # The kept worktree's broken link is named by list and doctor too, not only by 'wtp rm'.
    listed = r.wtp("list", "--all", "--json").json()["tasks"][0]
    assert "its worktree was kept, and is broken: its .git is a folder that is not its git dir" in listed["problem"]
    code, said = _doctor(r)
    assert code != 0 and f"the worktree landed task 'a' kept ({p}) is broken: its .git is a folder" in said, said
    assert "move that .git folder out of the worktree (it may hold work of its own)" in said, said
    code, said = _doctor(r, "--fix")  # the user's folder: named, never written through
    assert code == 1 and "not fixed automatically" in said and (p / ".git").is_dir(), said
    shutil.rmtree(p / ".git")
    code, said = _doctor(r, "--fix")
    assert "wrote back its .git file" in said, said
    assert r.wtp_proc("rm", "a").code == 0 and not p.exists()


@pytest.mark.parametrize("strategy", ["squash", "merge"])
def test_a_land_killed_once_the_branch_is_on_a_squash_or_merge_candidate_is_rolled_back(
    remote_repo: Repo, strategy: str
) -> None:
    """A squash or merge candidate is no copy of the task's commits: recovery knows it as
    wtp's own only because it was recorded before the branch moved to it."""
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    r.commit({"a.txt": "a\n"}, cwd=p)
    tip = r.commit({"a2.txt": "a\n"}, cwd=p)
    _killed(r, "land:after-candidate", "land", "a", "--strategy", strategy, "--gate", "true")
    assert r.git("rev-parse", "wtp/a") != tip  # the branch is on the candidate
    code, out = _doctor(r, "--fix")
    assert code == 0 and "rolled back the interrupted land of 'a'" in out, out
    assert r.git("rev-parse", "wtp/a") == tip
    back = r.wtp("list", "--json").json()["tasks"][0]  # review 44: it said "waiting in the land queue", empty
    assert (back["state"], back["note"]) == ("active", None), back
    assert r.wtp_proc("land", "a", "--strategy", strategy, "--gate", "true").code == 0


def test_a_conductor_takes_over_a_dead_conductors_entry_without_showing_it_idle(
    remote_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry is rolled back and taken again in one state write: never 'active' in
    between, where its own waiting lander would see it settled and give up."""
    from worktree_par.land import queue
    from worktree_par.land.request import LandRequest
    from worktree_par.repo import open_ctx
    from worktree_par.state import Store, Task

    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    tip = r.commit({"a.txt": "a\n"}, cwd=p)
    _killed(r, "land:before-gate", "land", "a", "--gate", "true")
    ctx = open_ctx(r.path)
    t = ctx.store.read().tasks["a"]
    assert t.phase == "landing" and t.state == "landing"  # left by the dead conductor
    written: list[dict[str, Any]] = []
    real = Store.update

    def update(self: Store, task: Task, **fields: Any) -> Task | None:
        if getattr(task, "name", "") == "a":
            written.append(fields)
        return real(self, task, **fields)

    monkeypatch.setattr(Store, "update", update)
    req = LandRequest("a", t.seq, strategy="rebase", gate="true", push=True, mode="speculative")
    entry = queue._take(ctx, req, 7, lambda _m: None)
    assert entry is not None and entry.tip == tip
    assert all(w.get("state") != "active" for w in written), written
    now = ctx.store.read().tasks["a"]
    assert (now.state, now.phase, now.ticket) == ("landing", "landing", 7)
    assert r.git("rev-parse", "wtp/a") == tip  # rolled back to the pre-land tip


def test_killed_land_is_recovered_by_doctor(remote_repo: Repo) -> None:
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    tip = r.commit({"a.txt": "a\n"}, cwd=p)
    r.commit({"other.txt": "o\n"}, msg="base moved")
    r.git("push", "-q", "origin", "main")
    _killed(r, "land:before-publish", "land", "a")
    code, out = _doctor(r, "--fix")
    assert code == 0 and "rolled back the interrupted land of 'a'" in out
    assert r.git("rev-parse", "wtp/a") == tip  # back to the pre-land tip
    assert r.git("rev-parse", "refs/wtp/backup/a") == tip
    assert _doctor(r)[0] == 0
    assert r.wtp_proc("land", "a").code == 0


def test_doctor_never_deletes_unlanded_work(repo: Repo) -> None:
    p = Path(repo.wtp_proc("start", "a").out.strip())
    tip = repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.write("wip.txt", "x\n", cwd=p)
    # hand-edit: the registry claims a removal was interrupted by a dead process
    data = json.loads(repo.state_file.read_text())
    data["tasks"][0].update(
        phase="removing",
        holder={"pid": 999999, "start": 1.0, "host": __import__("socket").gethostname(), "cmd": "x", "since": 1.0},
    )
    repo.state_file.write_text(json.dumps(data))
    _doctor(repo, "--fix")
    # the branch holds unlanded commits and has no archive: it must survive
    assert repo.git("rev-parse", "wtp/a") == tip


def test_a_file_where_the_state_folder_belongs_is_one_clear_line(repo: Repo) -> None:
    (repo.path / ".git" / "wtp").write_text("a file where the state folder belongs\n")
    out = repo.wtp_proc("start", "a")
    assert (out.code, out.out) == (2, "")
    assert out.err == f"wtp: cannot create the state folder {repo.path / '.git' / 'wtp'} (File exists)\n"


def test_an_unexpected_error_is_one_line_with_a_log(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "from worktree_par import exits\ntry:\n    raise RuntimeError('boom')\nexcept RuntimeError as e:\n    exits.exit_for(e)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)}
    )
    assert out.returncode == 1
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith(
        "wtp: internal error (RuntimeError: boom); details in "
    )
    log = Path(out.stderr.rsplit("details in ", 1)[1].strip())
    assert log.parent == tmp_path and "Traceback" in log.read_text() and "RuntimeError: boom" in log.read_text()


def test_a_rebase_stopped_in_a_worktree_is_shown_by_list_and_doctor_gives_one_advice(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"x.txt": "from a\n"}, "a: x", cwd=p)
    repo.commit({"x.txt": "from main\n"}, "main: x")
    stopped = subprocess.run(["git", "rebase", "main"], cwd=p, capture_output=True, text=True)
    assert stopped.returncode != 0  # the conflict stops it
    listed = json.loads(repo.wtp_proc("list", "--json").out)["tasks"][0]
    assert listed["operation"] == "rebase"
    assert listed["problem"] == (
        f"a rebase is in progress in its worktree: end it with 'git -C {p} rebase --continue' or 'git -C {p} rebase --abort'"
    )
    assert repo.wtp("list").lines[1].split()[:3] == ["a", "active", "(rebasing)"]
    code, out = _doctor(repo)
    # one piece of advice: finish or abort the rebase (not also "switch wtp/a", which a rebase's detached HEAD
    # would have suggested and which would leave the rebase stranded)
    assert (code, out) == (
        1,
        f"problem: task 'a' has a rebase in progress in {p}: end it with 'git -C {p} rebase --continue' or "
        f"'git -C {p} rebase --abort'\n",
    )


def test_a_bisect_in_a_worktree_is_named_with_its_own_advice_not_a_switch(repo: Repo) -> None:
    """A bisect detaches HEAD until it ends: doctor advised 'git switch', which leaves the
    bisect stranded, and list and land said nothing of it.  Its advice is 'git bisect reset'."""
    p = Path(repo.wtp("start", "a").lines[-1])
    for i in range(4):
        repo.commit({"x.txt": f"{i}\n"}, f"a: {i}", cwd=p)
    subprocess.run(["git", "bisect", "start", "HEAD", "HEAD~3"], cwd=p, check=True, capture_output=True)
    reset = f"'git -C {p} bisect reset'"
    listed = json.loads(repo.wtp_proc("list", "--json").out)["tasks"][0]
    assert (listed["operation"], listed["problem"]) == (
        "bisect",
        f"a bisect is in progress in its worktree: end it with {reset}",
    )
    assert repo.wtp("list").lines[1].split()[:3] == ["a", "active", "(bisecting)"]
    assert _doctor(repo) == (1, f"problem: task 'a' has a bisect in progress in {p}: end it with {reset}\n")
    land = repo.wtp("land", "a", "--gate", "true")
    assert (
        land.code == 1 and f"task 'a' has a bisect in progress in {p}: end it with {reset}, then land again" in land.err
    )
    refused = repo.wtp("rm", "a")  # a land is refused mid-bisect: ending it comes first
    assert refused.code == 1 and f"end the bisect ({reset}) and land it, or run 'wtp rm a --force'" in refused.err
    subprocess.run(["git", "bisect", "reset"], cwd=p, check=True, capture_output=True)
    assert _doctor(repo)[0] == 0


def test_a_commit_only_a_bisect_mark_holds_is_kept_and_archived(repo: Repo) -> None:
    """Review 43: a commit made on a bisect's detached HEAD, then marked good (the bisect moves
    HEAD away), is held only by refs/bisect/*, which go with the worktree: 'rm --force' did not
    archive it."""
    p = Path(repo.wtp("start", "a").lines[-1])
    for i in range(6):
        repo.commit({"x.txt": f"{i}\n"}, f"a: {i}", cwd=p)
    subprocess.run(["git", "bisect", "start", "HEAD", "HEAD~6"], cwd=p, check=True, capture_output=True)
    fix = repo.commit({"fix.txt": "fix\n"}, "my fix while bisecting", cwd=p)
    subprocess.run(["git", "bisect", "good"], cwd=p, check=True, capture_output=True)
    assert repo.git("rev-parse", "HEAD", cwd=p) != fix
    refused = repo.wtp("rm", "a")
    assert refused.code == 1 and "refs/bisect/good-" in refused.err, refused.err
    assert repo.wtp("rm", "a", "--force").code == 0
    repo.git("merge-base", "--is-ancestor", fix, "refs/wtp/archive/a")  # (raises when it is not)


def test_a_folder_made_at_a_moved_worktrees_old_path_is_not_mended_into_it(repo: Repo) -> None:
    """Review 35: after a worktree was moved away by hand and someone made a folder of their
    own at its old path, doctor --fix wrote a .git file into that folder: its files then
    showed as deleted tracked files, and a later 'rm --force' would have taken the notes."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"wip.txt": "work\n"}, "wip", cwd=p)
    shutil.move(str(p), str(repo.path.parent / "moved-a"))
    p.mkdir()
    (p / "notes.txt").write_text("unrelated notes\n")
    out = repo.wtp_proc("doctor", "--fix")
    assert out.code == 1 and "holds none of the files of its branch: it is not that worktree" in out.out, out.out
    assert sorted(os.listdir(p)) == ["notes.txt"]  # no .git written into it
    assert repo.git("status", "--short", cwd=repo.path.parent / "moved-a") == ""


def test_a_branch_deleted_under_its_worktree_is_found_and_made_again(repo: Repo) -> None:
    """Review 36: with a task's branch deleted by hand under its worktree, doctor said
    "healthy", and the task's commits were kept only by the worktree's own reflog."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"wip.txt": "work\n"}, "wip", cwd=p)
    tip = repo.git("rev-parse", "HEAD", cwd=p)
    repo.git("update-ref", "-d", "refs/heads/wtp/a")
    out = repo.wtp_proc("doctor")
    assert (
        out.code == 1
        and (
            f"the branch 'wtp/a' of task 'a' is gone under its worktree; its worktree's HEAD last had {tip[:12]}, "
            "where --fix puts the branch back"
        )
        in out.out
    ), out.out
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 0, fixed.out
    assert repo.git("rev-parse", "wtp/a") == tip and repo.git("status", "--short", cwd=p) == ""
    assert repo.wtp_proc("doctor").out == "healthy: nothing to fix\n"


def test_a_worktree_whose_files_have_non_ascii_names_is_mended(repo: Repo) -> None:
    """Review 38: the check that a folder holds files of its branch read git's quoted names
    ('"caf\\303\\251.txt"'), so a worktree whose top-level names were all non-ASCII was
    refused as "not that worktree"."""
    r = make_repo(repo.path.parent, fixture=None, name="accents")
    r.commit({"café.txt": "c\n"}, "non-ASCII names only")
    p = Path(r.wtp("start", "a").lines[-1])
    (p / "README.md").unlink()
    r.git("add", "-A", cwd=p)
    r.git("commit", "-q", "-m", "only the café", cwd=p)
    (p / ".git").unlink()
    out = r.wtp_proc("doctor", "--fix")
    assert out.code == 0 and "wrote back its .git file" in out.out, out.out


def test_the_advice_for_a_detached_head_with_commits_of_its_own_keeps_them(repo: Repo) -> None:
    """Review 38: doctor said "git switch wtp/a" for a worktree on a detached HEAD with a commit
    of its own; followed, that commit was left to the reflog, and a later plain rm took it."""
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.git("switch", "-q", "--detach", cwd=p)
    repo.commit({"d.txt": "d\n"}, "on a detached HEAD", cwd=p)
    out = repo.wtp_proc("doctor")
    head = repo.git("rev-parse", "--short=7", "HEAD", cwd=p)
    keep = f"'git -C {p} branch a-detached-{head}' (keeps its commits), then 'git -C {p} switch wtp/a'"
    assert keep in out.out, out.out
    repo.git("switch", "-q", "wtp/a", cwd=p)
    repo.commit({"e.txt": "e\n"}, "on the branch", cwd=p)
    repo.git("switch", "-q", "--detach", "HEAD~1", cwd=p)  # detached at a commit the branch has: a plain switch
    out = repo.wtp_proc("doctor")
    assert f"checked out instead of wtp/a: 'git -C {p} switch wtp/a'" in out.out, out.out


def test_a_failed_setup_tried_again_mid_bisect_keeps_the_task(repo: Repo) -> None:
    """Review 43: 'wtp start a' (as a failed setup advises) on a worktree mid-bisect, or with a
    detached HEAD, dropped the task from the registry ("remove it first"), its worktree and
    commits left for wtp to forget, and doctor said healthy."""
    repo.write(".wtp.toml", '[setup]\nrun = ["test -e ok"]\n')
    assert repo.wtp("trust").code == 0
    first = repo.wtp("start", "a")
    assert "setup of task 'a' failed" in first.err, first.err
    p = Path(first.lines[-1])
    for i in range(4):
        repo.commit({"x.txt": f"{i}\n"}, f"a: {i}", cwd=p)
    subprocess.run(["git", "bisect", "start", "HEAD", "HEAD~3"], cwd=p, check=True, capture_output=True)
    (p / "ok").touch()
    again = repo.wtp("start", "a")
    assert again.code == 1, again.err
    assert f"end the bisect there ('git -C {p} bisect reset')" in again.err, again.err
    (task,) = repo.wtp("list", "--json").json()["tasks"]
    assert (task["name"], task["state"], task["path"]) == ("a", "active", str(p))
    assert _doctor(repo)[0] == 1  # the bisect is said, not "healthy"
    subprocess.run(["git", "bisect", "reset"], cwd=p, check=True, capture_output=True)
    assert repo.wtp("start", "a").code == 0
    assert repo.wtp("list", "--json").json()["tasks"][0]["setup"] == "done"


def test_an_interrupted_start_tried_again_on_a_switched_worktree_stays_interrupted(repo: Repo) -> None:
    """Review 45: a start killed before its setup, tried again while its worktree had another
    branch checked out, was refused and marked done: switched back, 'wtp start a' said it was
    already active and its setup never ran."""
    repo.write(".wtp.toml", '[setup]\nrun = ["touch set-up"]\n')
    assert repo.wtp("trust").code == 0
    assert repo.wtp_proc("start", "a", env={"WTP_TEST_KILL_AT": "start:before-setup"}).code == -9
    p = Path(repo.state()["tasks"][0]["path"])
    repo.git("switch", "-q", "-c", "other", cwd=p)
    refused = repo.wtp("start", "a")
    assert refused.code == 1 and f"is a worktree of 'other', not of 'wtp/a': 'git -C {p} switch wtp/a'" in refused.err
    repo.git("switch", "-q", "wtp/a", cwd=p)
    again = repo.wtp("start", "a")
    assert again.code == 0 and "resuming the interrupted start of task 'a'" in again.err, again.err
    assert (p / "set-up").exists()
