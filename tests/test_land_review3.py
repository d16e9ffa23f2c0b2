"""What the third review (the land queue end to end, as several agents use it) broke, each
kept as a test: a gate that did not test the candidate never publishes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Repo, queued_landers, wait_for


def _start(r: Repo, name: str, files: dict[str, str]) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    r.commit(files, f"{name} work", cwd=p)
    return p


def _main_files(r: Repo) -> list[str]:
    r.git("fetch", "-q", "origin")
    return r.git("ls-tree", "--name-only", "origin/main").split()


@pytest.mark.parametrize("how", ["edit", "switch"])
def test_a_worktree_changed_while_its_gate_ran_is_not_published(project: Repo, tmp_path: Path, how: str) -> None:
    """The gate runs in the task's worktree: an agent fixing the red file there (uncommitted)
    or switching the worktree away while it runs made the gate pass on what it did not
    publish, and recorded that pass for the candidate's tree."""
    p = _start(project, "t1", {"BROKEN": "red\n"})
    started, release = tmp_path / "started", tmp_path / "release"
    gate = f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done; ./check.sh"
    lander = project.spawn("land", "t1", "--gate", gate)
    wait_for(started.exists, "the gate to start")
    if how == "edit":
        project.git("rm", "-q", "BROKEN", cwd=p)  # the fix, not committed: the gate sees it
    else:
        project.git("switch", "-q", "--detach", "HEAD~1", cwd=p)  # the base, where the gate passes
    release.touch()
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 1, err
    assert "BROKEN" not in _main_files(project)  # main stays green
    wtp_line = err.splitlines()[-1]
    if how == "edit":
        assert wtp_line == (
            "wtp: 1 tracked file of 't1' changed while its gate ran (BROKEN), so the gate did not test the "
            "candidate: nothing was published, 'main' is untouched by it, and the changes are kept in "
            f"{p}; commit them (or undo them) and run 'wtp land t1' again"
        ), err
        assert not (p / "BROKEN").exists()  # the edit is still there
    else:
        assert wtp_line == (
            "wtp: the worktree of 't1' left branch 'wtp/t1' while its gate ran, so the gate did not test the "
            "candidate: nothing was published, 'main' is untouched by it; run 'wtp land t1' again"
        ), err
    verdicts = project.path / ".git" / "wtp" / "verdicts.json"
    recorded = json.loads(verdicts.read_text()) if verdicts.exists() else {}
    t1_tree = project.git("rev-parse", "wtp/t1^{tree}")
    assert t1_tree not in json.dumps(recorded)  # no pass recorded for what the gate did not test


def test_a_commit_made_on_the_candidate_of_a_killed_land_does_not_wedge_the_task(project: Repo, tmp_path: Path) -> None:
    """'wtp land' SIGKILLed while its gate runs leaves the branch on the candidate; a commit
    made there then made every recovery refuse before it changed the record: the task stayed
    'landing' for good, and 'wtp land' and 'wtp doctor --fix' said the same thing forever."""
    p = _start(project, "t1", {"t1.txt": "1\n"})
    other = project.commit({"other.txt": "o\n"}, "base moved")  # the candidate is a real rebase
    project.git("push", "-q", "origin", "main")
    started = tmp_path / "started"
    lander = project.spawn("land", "t1", "--gate", f"touch {started}; sleep 60")
    wait_for(started.exists, "the gate to start")
    lander.kill()
    lander.wait()
    candidate = project.git("rev-parse", "wtp/t1")
    assert project.git("rev-parse", "wtp/t1^") == other  # the branch holds the candidate
    # it edits a file only the base has: it cannot be moved onto the pre-land tip, and stays
    more = project.commit({"other.txt": "o, and more\n"}, "t1 more", cwd=p)
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    assert out.code == 1, out.err  # this land stops there: the branch may hold others' commits
    assert out.err.splitlines()[-1].startswith(
        f"wtp: the interrupted land of 't1' is given back as it is: its branch stays on the candidate of the "
        f"interrupted land ({candidate[:12]}), which also holds the rebased commits of any task stacked below it: "
        f"move yours onto its pre-land tip ('git -C {p} rebase --onto "
    ), out.err
    assert f"branch 'wtp/t1' gained 1 commit wtp did not make while landing ({more[:10]} t1 more)" in out.err
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "blocked"
    again = project.wtp_proc("land", "t1", "--gate", "./check.sh")  # no task below it here: it lands
    assert again.code == 0, again.err
    assert project.git("log", "--format=%s", "-3", "origin/main").splitlines() == ["t1 more", "t1 work", "base moved"]


def test_a_task_that_conflicts_only_with_a_red_task_below_it_lands(project: Repo) -> None:
    """t2 rewrites the line t1 rewrites; t1 is red.  Stacked on t1's candidate, t2 conflicted
    and was blocked as 'conflicting with main', which it never did: it lands on the base
    once t1 is out."""
    _start(project, "t1", {"shared.txt": "t1's line\n", "BROKEN": "red\n"})
    _start(project, "t2", {"shared.txt": "t2's line\n"})

    t1, t2 = queued_landers(project, ["t1", "t2"], "--gate", "./check.sh")
    out1, err1 = t1.communicate(timeout=60)
    out2, err2 = t2.communicate(timeout=60)
    assert (t1.returncode, t2.returncode) == (1, 0), (err1, err2)
    assert "'t2' conflicts with 't1', not landed yet: built again once they are settled" in err1.splitlines(), err1
    project.git("fetch", "-q", "origin")
    assert project.git("show", "origin/main:shared.txt") == "t2's line"
    assert "BROKEN" not in _main_files(project)


def test_a_refused_rm_of_a_task_being_landed_leaves_its_land_alone(project: Repo, tmp_path: Path) -> None:
    """'wtp rm t2' (not forced) withdrew t2 from its land, then refused to remove it (exit 1):
    a refusal that had changed something."""
    _start(project, "t1", {"t1.txt": "1\n"})
    _start(project, "t2", {"t2.txt": "2\n"})
    release = tmp_path / "release"
    gate = f"while [ ! -e {release} ]; do sleep 0.05; done; ./check.sh"
    t1, t2 = queued_landers(project, ["t1", "t2"], "--gate", gate)
    try:
        # Stacked: its branch moved onto t1's candidate (its note says it waits from the moment it joins).
        wait_for(lambda: project.git("rev-list", "--count", "main..wtp/t2") == "2", "t2 to be stacked on t1")
        out = project.wtp_proc("rm", "t2")
        assert out.code == 1, out.err
        assert out.err.startswith("wtp: task 't2' is being landed and has 2 commits not on 'main' or any other "), (
            out.err
        )
        assert out.err.rstrip().endswith(
            "let its land finish, or run 'wtp rm t2 --force' to withdraw it from the land, archive and remove it"
        ), out.err
    finally:
        release.touch()
    assert [p.wait(timeout=60) for p in (t1, t2)] == [0, 0], [p.communicate()[1] for p in (t1, t2)]
    assert {"t1.txt", "t2.txt"} <= set(_main_files(project))


def test_rm_force_of_a_task_whose_gate_runs_stops_the_gate_before_deleting_its_worktree(
    project: Repo, tmp_path: Path
) -> None:
    """The conductor gave the withdrawn task back with its gate still running (t2 stacked on
    it): 'wtp rm --force' then deleted the worktree under it and left the gate's processes
    running there."""
    _start(project, "t1", {"t1.txt": "1\n"})
    _start(project, "t2", {"t2.txt": "2\n"})
    started = tmp_path / "started"
    gate = f'touch {started}-$WTP_TASK; [ "$WTP_TASK" = t2 ] || sleep 60; ./check.sh'
    t1, t2 = queued_landers(project, ["t1", "t2"], "--gate", gate)
    wait_for(lambda: Path(f"{started}-t1").exists() and Path(f"{started}-t2").exists(), "both gates to start")
    out = project.wtp_proc("rm", "--force", "t1")
    assert out.code == 0, out.err
    assert not any("running in the removed directory" in line for line in out.out.splitlines()), out.out
    assert [p.wait(timeout=60) for p in (t1, t2)] == [1, 0]
    assert "t1.txt" not in _main_files(project) and "t2.txt" in _main_files(project)


def test_a_second_land_of_a_task_already_waiting_to_land_is_refused(project: Repo) -> None:
    """A second 'wtp land t1' (another agent, a stricter gate) while the first waited joined
    the queue too: one lander then reported the other's gate as its own, and the stricter
    gate never ran."""
    _start(project, "t1", {"t1.txt": "1\n"})
    second: list[tuple[int, str]] = []

    def again(_landers: object) -> None:  # while the first waits in the held queue
        out = project.wtp_proc("land", "t1", "--gate", "exit 1")
        second.append((out.code, out.err))

    (first,) = queued_landers(project, ["t1"], "--gate", "./check.sh", during=again)
    code, err = second[0]
    assert code == 1, err
    assert err.startswith("wtp: task 't1' is already waiting to land with other options (task 't1', pid "), err
    assert err.rstrip().endswith("let that land finish, or interrupt it first"), err
    assert first.wait(timeout=60) == 0
    assert "t1.txt" in _main_files(project)


def test_a_land_whose_process_is_killed_after_publishing_says_how_to_finish_it(project: Repo) -> None:
    """The command's child (the land) killed right after the push: the command said to run
    'wtp land' again, naming no task, and not that this finishes the land it had published."""
    _start(project, "t1", {"t1.txt": "1\n"})
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh", env={"WTP_TEST_KILL_AT": "land:after-publish"})
    assert out.code == -9, out.err  # as the caller would have seen a killed land without the fork
    last = out.err.splitlines()[-1]
    assert last.startswith("wtp: the land's process (pid ") and last.endswith(
        " was killed (SIGKILL): run 'wtp land t1' again: it finishes the land if it had published, "
        "or rolls it back, and says which"
    ), out.err
    again = project.wtp_proc("land", "t1")
    assert again.code == 0, again.err
    assert again.out.splitlines()[0].startswith("landed 't1' at "), again.out
    assert "t1.txt" in _main_files(project)


def test_a_commit_made_on_a_stacked_candidate_of_a_killed_land_lands_without_the_task_below(
    project: Repo, tmp_path: Path
) -> None:
    """t2 stacked on t1, both landers SIGKILLed, a commit made on t2's branch (its candidate,
    which holds t1's rebased commit): landing t2 again published t1's work with it."""
    _start(project, "t1", {"t1.txt": "1\n"})
    p2 = _start(project, "t2", {"t2.txt": "2\n"})
    project.commit({"other.txt": "o\n"}, "base moved")
    project.git("push", "-q", "origin", "main")
    started = tmp_path / "started"
    gate = f"echo built > build.out; touch {started}-$WTP_TASK; sleep 60"  # build output, untracked
    t1, t2 = queued_landers(project, ["t1", "t2"], "--gate", gate)
    wait_for(lambda: Path(f"{started}-t1").exists() and Path(f"{started}-t2").exists(), "both gates to start")
    for lander in (t2, t1):
        lander.kill()
        lander.wait()
    assert project.git("log", "-1", "--format=%s", "wtp/t2^") == "t1 work"  # t2's candidate holds t1's commit
    (p2 / "more.txt").write_text("more\n")
    project.git("add", "more.txt", cwd=p2)  # build.out stays untracked, as a gate's output does
    project.git("commit", "-q", "-m", "t2 more", cwd=p2)
    more = project.git("rev-parse", "HEAD", cwd=p2)
    assert (p2 / "build.out").exists()
    out = project.wtp_proc("land", "t2", "--gate", "./check.sh")
    kept = f"refs/wtp/archive-moved/t2/{more[:12]}"
    assert out.err.splitlines()[0] == (
        f"rolled back the interrupted land of 't2': the 1 commit made on its candidate moved onto its pre-land tip "
        f"(as made: {kept})"
    ), out.err  # the gate's output in the way of nothing
    assert project.git("rev-parse", kept) == more  # the commit as it was made, kept
    assert out.code == 1 and out.err.splitlines()[-1] == (  # a land refuses an untracked file, as ever
        "wtp: task 't2' has 1 uncommitted file (build.out): commit or stash them, then run 'wtp land t2' again"
    ), out.err
    (p2 / "build.out").unlink()
    again = project.wtp_proc("land", "t2", "--gate", "./check.sh")
    assert again.code == 0, again.err
    assert project.git("log", "--format=%s", "-4", "origin/main").splitlines() == [
        "t2 more",
        "t2 work",
        "base moved",
        "the test",
    ], again.err
    assert "t1.txt" not in _main_files(project)


def test_two_lands_of_one_task_with_other_gates_racing_to_join_run_one_gate(project: Repo, tmp_path: Path) -> None:
    """Both landers saw the task active (neither ticket placed yet), so the early refusal did
    not fire: both joined, and one reported the other's gate as its own.  The ticket lock
    now decides: the second to join is refused, whichever it is."""
    _start(project, "t1", {"t1.txt": "1\n"})
    hold, b_started, go = tmp_path / "hold", tmp_path / "b-started", tmp_path / "go"
    a = project.spawn(
        "land", "t1", "--gate", f"touch {tmp_path}/a-ran; ./check.sh",
        env={"WTP_TEST_HOLD_AT": "land:prepared", "WTP_TEST_HOLD_FILE": str(hold)},
    )  # fmt: skip
    wait_for(Path(f"{hold}.reached").exists, "the first lander to be ready to join the queue")
    b = project.spawn(
        "land", "t1", "--gate", f"touch {b_started}; while [ ! -e {go} ]; do sleep 0.05; done; ./check.sh"
    )
    try:
        wait_for(b_started.exists, "the second lander's gate to start")
        hold.touch()
        _, a_err = a.communicate(timeout=60)
        assert a.returncode == 1, a_err
        assert a_err.splitlines()[-1].startswith("wtp: task 't1' is already waiting to land with other options"), a_err
    finally:
        go.touch()
    assert b.wait(timeout=60) == 0, b.communicate()[1]
    assert not (tmp_path / "a-ran").exists()  # one gate ran: the one of the land that reports it
    assert "t1.txt" in _main_files(project)


def test_a_red_gate_on_a_worktree_edited_meanwhile_is_not_the_candidates_red(project: Repo, tmp_path: Path) -> None:
    """A green candidate, a tracked file edited during the gate so that it fails: the red was
    confirmed on the edited worktree, blamed on the candidate, and halved the window."""
    p = _start(project, "t1", {"t1.txt": "1\n"})
    started, release = tmp_path / "started", tmp_path / "release"
    lander = project.spawn(
        "land", "t1", "--gate", f"touch {started}; until [ -e {release} ]; do sleep 0.05; done; ./check.sh"
    )
    wait_for(started.exists, "the gate to start")
    (p / "check.sh").write_text("#!/bin/sh\nexit 1\n")  # the edit makes the gate fail
    release.touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 1, err
    assert err.splitlines()[-1].startswith(
        "wtp: 1 tracked file of 't1' changed while its gate ran (check.sh), so the gate did not test the candidate"
    ), err
    assert "re-run" not in err  # no confirming run on the edited files
    assert project.wtp("queue", "--json").json()["depth"]["window"] == 5  # no red counted against the window


def test_a_lander_that_read_the_task_before_another_land_took_it_changes_nothing(project: Repo, tmp_path: Path) -> None:
    """Review 5: a lander slow between reading the task and marking it waiting wrote over the
    record of a land a conductor had taken meanwhile (its candidate and intent gone), so the
    recovery of that land, killed after it published, said it rolled back a land 'main' holds."""
    _start(project, "t1", {"t1.txt": "1\n"})
    hold, b_started, go = tmp_path / "hold", tmp_path / "b-started", tmp_path / "go"
    a = project.spawn(
        "land", "t1", "--gate", "./check.sh", env={"WTP_TEST_HOLD_AT": "land:checked", "WTP_TEST_HOLD_FILE": str(hold)}
    )
    wait_for(Path(f"{hold}.reached").exists, "the first lander to have checked the worktree")
    b = project.spawn(
        "land", "t1", "--gate", f"touch {b_started}; while [ ! -e {go} ]; do sleep 0.05; done; ./check.sh",
        env={"WTP_TEST_KILL_AT": "land:after-publish"},
    )  # fmt: skip
    try:
        wait_for(b_started.exists, "the second lander's gate to start")
        before = project.state()["tasks"][0]
        hold.touch()
        _, a_err = a.communicate(timeout=60)
        assert (a.returncode, a_err) == (1, "wtp: task 't1' is busy (landing): wait for it\n")
        after = project.state()["tasks"][0]
        assert after == before  # the land under way keeps its record
    finally:
        go.touch()
    b.wait(timeout=60)
    assert "t1.txt" in _main_files(project)
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    assert out.code == 0, out.err
    assert out.err.startswith("the interrupted land of 't1' had published "), out.err
    assert out.lines[1] == f"task 't1' is landed at {out.lines[0].split()[-1][:12]}"


def test_a_task_whose_waiting_lander_is_gone_is_said_so_by_list_and_doctor(project: Repo, tmp_path: Path) -> None:
    """Review 5: a lander killed after marking its task waiting, before its ticket joined the
    queue, left the task 'waiting in the land queue' in 'wtp list' with the queue empty."""
    _start(project, "t1", {"t1.txt": "x\n"})

    def problem() -> str | None:
        (t,) = project.wtp("list", "--json").json()["tasks"]
        assert (t["state"], t["queue_place"]) == ("landing", None)
        return str(t["problem"]) if t["problem"] is not None else None

    hold = tmp_path / "hold"
    held = project.spawn(
        "land", "t1", "--gate", "./check.sh", env={"WTP_TEST_HOLD_AT": "land:prepared", "WTP_TEST_HOLD_FILE": str(hold)}
    )
    try:
        wait_for(Path(f"{hold}.reached").exists, "the lander to have marked the task waiting")
        assert problem() is None  # its lander is about to join: nothing wrong
        assert project.wtp_proc("doctor").code == 0
    finally:
        held.kill()  # the command, and with it the lander it forked
        held.wait()
    gone = "its 'wtp land' is gone (run 'wtp land t1' to land it again, or 'wtp doctor --fix' to settle it)"
    wait_for(lambda: problem() == gone, "the list to say the lander is gone")
    assert (
        project.wtp_proc("doctor").out.splitlines()[0] == "problem: task 't1' is marked landing but no lander holds it"
    )
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    assert out.code == 0, out.err


def test_doctor_fix_leaves_a_task_whose_land_was_run_again_meanwhile(project: Repo, tmp_path: Path) -> None:
    """Review 6: doctor judged a task's lander gone, then fixed it later: a 'wtp land' run again
    in between had its task marked active under its running gate."""
    _start(project, "t1", {"t1.txt": "x\n"})
    killed = project.wtp_proc("land", "t1", "--gate", "./check.sh", env={"WTP_TEST_KILL_AT": "land:prepared"})
    assert killed.code != 0
    hold = tmp_path / "hold"
    doctor = project.spawn("doctor", "--fix", env={"WTP_TEST_HOLD_AT": "doctor:found", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(Path(f"{hold}.reached").exists, "doctor to have found the gone lander")
    started, release = tmp_path / "started", tmp_path / "release"
    lander = project.spawn("land", "t1", "--gate", f"touch {started}; until [ -e {release} ]; do sleep 0.05; done")
    try:
        wait_for(started.exists, "the land run again to gate")
        hold.touch()
        out, _ = doctor.communicate(timeout=60)
        assert out.splitlines()[:2] == [
            "problem: task 't1' is marked landing but no lander holds it",
            "  could not fix: task 't1' changed meanwhile (a land of it runs again)",
        ], out
        (t1,) = project.wtp("list", "--json").json()["tasks"]
        assert t1["state"] == "landing"
    finally:
        release.touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "t1.txt" in _main_files(project)


def test_a_pre_land_tip_that_cannot_be_kept_stops_the_land_before_anything_changes(project: Repo) -> None:
    """Review 6: a stale lock on the backup ref made its update fail unseen; the task was
    marked waiting with no pre-land tip kept, and the land then failed with an untrue line."""
    _start(project, "t1", {"t1.txt": "x\n"})
    lock = project.path / ".git" / "refs" / "wtp" / "backup" / "t1.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()  # left by a git that crashed
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    assert (out.code, out.err) == (
        1,
        "wtp: could not keep the pre-land tip of 't1' under refs/wtp/backup/t1: git could not write that ref "
        "(another git writing it, or a 'refs/wtp/backup/t1.lock' left by one that crashed); nothing was changed: "
        "run 'wtp land t1' again, or remove that .lock file under .git once no git runs\n",
    )
    (t1,) = project.wtp("list", "--json").json()["tasks"]
    assert (t1["state"], t1["note"], t1["problem"]) == ("active", None, None)
    lock.unlink()
    assert project.wtp_proc("land", "t1", "--gate", "./check.sh").code == 0


def test_a_lander_interrupted_leaves_the_task_to_another_land_of_it_that_waits(project: Repo, tmp_path: Path) -> None:
    """Review 6: of two 'wtp land t1' with the same options waiting, the one interrupted took
    the task back, and the other, which nobody stopped, failed: 'taken out of the land queue'."""
    for name in ("t0", "t1"):
        _start(project, name, {f"{name}.txt": "x\n"})
    started, release = tmp_path / "started", tmp_path / "release"
    first = project.spawn("land", "t0", "--gate", f"touch {started}; until [ -e {release} ]; do sleep 0.05; done")
    try:
        wait_for(started.exists, "t0's gate to start")

        def t1_tickets() -> int:
            return sum(e["task"] == "t1" for e in project.wtp("queue", "--json").json()["entries"])

        a = project.spawn("land", "t1", "--gate", "./check.sh", "--mode", "serial")
        wait_for(lambda: t1_tickets() == 1, "the first land of t1 to wait")
        b = project.spawn("land", "t1", "--gate", "./check.sh", "--mode", "serial")
        wait_for(lambda: t1_tickets() == 2, "the second land of t1 to wait")
        a.terminate()  # SIGTERM: a land takes it as Ctrl-C
        _, a_err = a.communicate(timeout=60)
        assert a.returncode == 130, a_err
        assert (
            "interrupted: task 't1' stays in the land queue: another 'wtp land' of it waits there" in a_err.splitlines()
        ), a_err
    finally:
        release.touch()
    assert first.wait(timeout=60) == 0
    _, b_err = b.communicate(timeout=60)
    assert b.returncode == 0, b_err
    assert "t1.txt" in _main_files(project)


def test_a_lander_interrupted_leaves_the_task_to_another_that_marked_it_and_is_about_to_join(
    project: Repo, tmp_path: Path
) -> None:
    """Review 7: the other land of the task had marked it waiting but its ticket had not joined
    yet: the interrupted lander took the task back, and the other then failed."""
    for name in ("t0", "t1"):
        _start(project, name, {f"{name}.txt": "x\n"})
    started, release = tmp_path / "started", tmp_path / "release"
    first = project.spawn("land", "t0", "--gate", f"touch {started}; until [ -e {release} ]; do sleep 0.05; done")
    hold = tmp_path / "hold"
    try:
        wait_for(started.exists, "t0's gate to start")
        x = project.spawn("land", "t1", "--gate", "./check.sh", "--mode", "serial")
        wait_for(lambda: [e["task"] for e in project.wtp("queue", "--json").json()["entries"]] == ["t0", "t1"], "x")
        a = project.spawn(
            "land", "t1", "--gate", "./check.sh", "--mode", "serial",
            env={"WTP_TEST_HOLD_AT": "land:prepared", "WTP_TEST_HOLD_FILE": str(hold)},
        )  # fmt: skip
        wait_for(Path(f"{hold}.reached").exists, "the second lander to have marked t1, its ticket not joined")
        x.terminate()
        _, x_err = x.communicate(timeout=60)
        assert x.returncode == 130, x_err
        assert "interrupted: task 't1' stays in the land queue: another 'wtp land' of it waits there" in x_err, x_err
        hold.touch()
    finally:
        hold.touch()
        release.touch()
    assert first.wait(timeout=60) == 0
    _, a_err = a.communicate(timeout=60)
    assert a.returncode == 0, a_err
    assert "t1.txt" in _main_files(project)


def test_two_landers_that_cannot_keep_the_tip_leave_the_task_active(project: Repo, tmp_path: Path) -> None:
    """Review 7: A marked the task, B marked it over A, git could keep the tip for neither: A
    left B's mark, and B put back A's, whose lander was gone: 'landing' with nobody landing it."""
    _start(project, "t1", {"t1.txt": "x\n"})
    lock = project.path / ".git" / "refs" / "wtp" / "backup" / "t1.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    holds = {n: tmp_path / f"hold-{n}" for n in ("a", "b")}
    landers = {}
    for n, hold in holds.items():
        env = {"WTP_TEST_HOLD_AT": "land:marked", "WTP_TEST_HOLD_FILE": str(hold)}
        landers[n] = project.spawn("land", "t1", "--gate", "./check.sh", env=env)
        wait_for(Path(f"{hold}.reached").exists, f"lander {n} to have marked the task")
    for n in ("a", "b"):
        holds[n].touch()
        _, err = landers[n].communicate(timeout=60)
        assert landers[n].returncode == 1 and "could not keep the pre-land tip" in err, err
    (t1,) = project.wtp("list", "--json").json()["tasks"]
    assert (t1["state"], t1["note"], t1["problem"]) == ("active", None, None)


@pytest.mark.parametrize("strategy", ["rebase", "squash"])
def test_a_lander_held_while_another_lands_its_task_leaves_no_backup_ref(
    project: Repo, tmp_path: Path, strategy: str
) -> None:
    """Review 7: lander A marked the task and was held before keeping its tip; lander X landed
    the task and removed it; A then kept the tip again under refs/wtp/backup/t1, for good (and,
    review 8, still after a squash, whose landed commit holds none of the tip's)."""
    p = _start(project, "t1", {"t1.txt": "x\n"})
    project.commit({"t1.txt": "x\ny\n"}, "t1 second", cwd=p)
    holds = {n: tmp_path / f"hold-{n}" for n in ("x", "a")}
    x = project.spawn(
        "land", "t1", "--gate", "./check.sh", "--strategy", strategy,
        env={"WTP_TEST_HOLD_AT": "land:prepared", "WTP_TEST_HOLD_FILE": str(holds["x"])},
    )  # fmt: skip
    wait_for(Path(f"{holds['x']}.reached").exists, "lander X to have marked and kept its tip")
    a = project.spawn(
        "land", "t1", "--gate", "./check.sh", "--strategy", strategy,
        env={"WTP_TEST_HOLD_AT": "land:marked", "WTP_TEST_HOLD_FILE": str(holds["a"])},
    )  # fmt: skip
    try:
        wait_for(Path(f"{holds['a']}.reached").exists, "lander A to have marked the task")
        holds["x"].touch()
        _, x_err = x.communicate(timeout=60)
        assert x.returncode == 0, x_err
    finally:
        for h in holds.values():
            h.touch()
    _, a_err = a.communicate(timeout=60)
    assert a.returncode == 0, a_err
    assert "t1.txt" in _main_files(project)
    assert project.git("for-each-ref", "refs/wtp/backup/") == ""
