"""'wtp land A B ...': several tasks in one command (issue 28: one process and one gate
window for N tasks, not N landers).  Real landers, real gates, a bare remote."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from worktree_par.gates import Gate
from worktree_par.land.request import QUEUE
from worktree_par.state import Store

from .conftest import Repo, queued_landers, wait_for
from .test_handoff import _gone, _states, _tasks


def _gate(tmp: Path) -> str:
    return f"echo $WTP_TASK >> {tmp}/runs; ./check.sh"


def _subjects(r: Repo) -> list[str]:
    r.git("fetch", "-q", "origin")
    return r.git("log", "--format=%s", "origin/main").splitlines()


def test_one_command_lands_several_tasks_in_one_stack_and_reports_each_in_order(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2", "t3", broken="t2")
    out = project.wtp_proc("land", "t1", "t2", "t3", "--gate", _gate(tmp_path))
    assert out.code == 1, out.err  # the worst of the three: t2 is blocked
    landed = [line for line in out.lines if line.startswith("landed '")]
    assert [line.split("'")[1] for line in landed] == ["t1", "t3"]
    assert "removed task 't1' (worktree and branch 'wtp/t1')" in out.lines
    assert any(line.startswith("wtp: gate") and "'t2'" in line for line in out.err.splitlines()), out.err
    assert "landing 't2', 't3' behind 't1' (speculative)" in out.err  # one conductor stacked all three
    assert "'t3' landed at" not in out.err  # said once, by the command's own report
    assert _states(project) == {"t1": "landed", "t2": "blocked", "t3": "landed"}
    assert _subjects(project)[:2] == ["t3 work", "t1 work"]
    assert project.git("log", "-1", "--format=%s", "wtp/t2") == "t2 work"  # kept, commits intact
    runs = (tmp_path / "runs").read_text().split()
    assert sorted(runs[:3]) == ["t1", "t2", "t3"]  # the three gates ran side by side, then t3's without t2
    assert Gate(Store(project.path / ".git"), QUEUE).tickets() == []


def test_a_refused_or_unknown_task_is_said_and_the_others_land_with_json_in_order(
    project: Repo, tmp_path: Path
) -> None:
    _tasks(project, "t1", "t2")
    (Path(project.wtp("path", "t2").lines[-1]) / "dirty.txt").write_text("not committed\n")
    out = project.wtp_proc("land", "t2", "nosuch", "t1", "t1", "--gate", _gate(tmp_path), "--json")
    assert out.code == 2, out.err  # the worst: an unknown task is bad input
    docs = json.loads(out.out)
    assert [(d["task"], d["state"]) for d in docs] == [("t2", "refused"), ("nosuch", "refused"), ("t1", "landed")]
    assert "uncommitted" in str(docs[0]["error"]) and docs[2]["commit"] == project.git("rev-parse", "origin/main")
    assert f"wtp: t2: {docs[0]['error']}" in out.err.splitlines() or f"wtp: {docs[0]['error']}" in out.err
    assert _states(project) == {"t1": "landed", "t2": "active"}


@pytest.mark.parametrize("as_json", [False, True])
def test_the_command_returns_once_its_tasks_landed_while_the_queue_goes_on_for_another(
    project: Repo, tmp_path: Path, as_json: bool
) -> None:
    _tasks(project, "t1", "t2", "t3")
    release, started = tmp_path / "release", tmp_path / "t3-started"
    gate = (
        f'if [ "$WTP_TASK" = t3 ]; then touch {started}; while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    )
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # both tickets of ours, then t3's, join while the queue is held
    try:
        ours = project.spawn("land", "t1", "t2", "--gate", gate, *(["--json"] if as_json else []))
        wait_for(lambda: len(queue.tickets()) >= 3, "the command's two tickets to join the queue")
        other = project.spawn("land", "t3", "--gate", gate)
        wait_for(lambda: len(queue.tickets()) >= 4, "t3 to join the queue")
    finally:
        queue.release()
    try:
        out, err = ours.communicate(timeout=60)
        assert ours.returncode == 0, err
        assert started.exists() and not release.exists() and other.poll() is None
        lines = out.splitlines()
        if as_json:  # stdout: the document alone (the line about the queue goes to stderr)
            assert [(d["task"], d["state"]) for d in json.loads(out)] == [("t1", "landed"), ("t2", "landed")]
            lines = err.splitlines()
        else:
            assert [line.split("'")[1] for line in lines if line.startswith("landed '")] == ["t1", "t2"], out
        assert lines[-1].startswith("the land queue goes on for 't3' in the background (pid "), out + err
        assert _states(project) == {"t1": "landed", "t2": "landed", "t3": "landing"}
    finally:
        release.write_text("go\n")
    out3, err3 = other.communicate(timeout=60)
    assert other.returncode == 0, err3
    assert _subjects(project)[:3] == ["t3 work", "t2 work", "t1 work"]


def test_ctrl_c_withdraws_every_task_of_the_command_and_says_so_for_each(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2", "t3")
    before = project.git("rev-parse", "origin/main")
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # another conductor holds the queue: the command's tasks wait in it
    try:
        lander = project.spawn("land", "t1", "t2", "t3", "--gate", _gate(tmp_path))
        wait_for(lambda: len(queue.tickets()) >= 4, "the command's three tickets to join the queue")
        holder = next(t["holder"]["pid"] for t in project.state()["tasks"] if t["name"] == "t1")
        lander.send_signal(signal.SIGINT)
        _, err = lander.communicate(timeout=60)
    finally:
        queue.release()
    assert lander.returncode == 130, err
    lines = err.splitlines()
    for name in ("t1", "t2", "t3"):
        assert any(line.startswith("interrupted: ") and f"task '{name}' is active again" in line for line in lines), err
    assert lines[-1] == "wtp: interrupted"
    wait_for(lambda: _gone(holder), "the land's process to end")
    assert _states(project) == {"t1": "active", "t2": "active", "t3": "active"}
    assert Gate(Store(project.path / ".git"), QUEUE).tickets() == []
    assert project.git("rev-parse", "origin/main") == before and not (tmp_path / "runs").exists()


def test_several_detached_at_once_each_queued_and_all_land(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    out = project.wtp_proc("land", "t1", "t2", "--detach", "--gate", _gate(tmp_path))
    assert out.code == 0, out.err
    assert [line.split("'")[1] for line in out.lines] == ["t1", "t2"] and all("queued" in x for x in out.lines)
    wait_for(lambda: set(_states(project).values()) == {"landed"}, "both detached lands to land")
    assert sorted(_subjects(project)[:2]) == ["t1 work", "t2 work"]


def test_follow_takes_one_task() -> None:
    from worktree_par.commands.land import land
    from worktree_par.errors import UsageError

    try:
        land(None, "t1", follow=True, also=("t2",))
    except UsageError as e:
        assert "--follow" in e.message
    else:
        raise AssertionError("--follow with several tasks was not refused")


def test_a_task_that_landed_is_cleaned_up_while_the_gate_of_another_still_runs(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    release = tmp_path / "release"
    gate = f'if [ "$WTP_TASK" = t2 ]; then while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    lander = project.spawn("land", "t1", "t2", "--gate", gate)
    try:
        t1 = project.path.parent / "repo.worktrees" / "t1"
        wait_for(lambda: not t1.exists(), "t1's worktree to be removed while t2's gate waits")
        assert lander.poll() is None and _states(project) == {"t1": "landed", "t2": "landing"}
    finally:
        release.write_text("go\n")
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert out.splitlines()[:3] == [
        f"landed 't1' at {project.git('rev-parse', 'origin/main~1')}",
        "removed task 't1' (worktree and branch 'wtp/t1')",
        f"landed 't2' at {project.git('rev-parse', 'origin/main')}",
    ], out


def test_run_from_a_worktree_it_removes_it_says_where_to_go(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    inside = Path(project.wtp("path", "t1").lines[-1])
    out = project.wtp_proc("land", "t1", "t2", "--gate", _gate(tmp_path), cwd=inside)
    assert out.code == 0, out.err
    assert "removed task 't1' (worktree and branch 'wtp/t1')" in out.lines, out.out  # the child is not inside it
    assert out.err.splitlines()[-1] == f"the worktree you are in was removed: cd {project.path}", out.err


def test_ctrl_c_while_a_task_joins_gives_it_back_at_once(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    out = project.wtp_proc("land", "t1", "t2", "--gate", _gate(tmp_path), env={"WTP_TEST_INT_AT": "land:marked"})
    assert out.code == 130, out.err
    assert out.err.splitlines() == [
        "interrupted: 'main' untouched by this land, task 't1' is active again",
        "wtp: interrupted",
    ], out.err
    assert _states(project) == {"t1": "active", "t2": "active"}
    assert Gate(Store(project.path / ".git"), QUEUE).tickets() == []


def test_ctrl_c_while_git_builds_a_candidate_waits_for_git_before_giving_back(project: Repo, tmp_path: Path) -> None:
    """The conductor records a candidate and starts its gate while git replays the next one
    (issue 28).  A Ctrl-C then waits for that git to end before the tasks are given back: no
    rebase goes on in a worktree after the command said the task was active again."""
    _tasks(project, "t1", "t2", "t3")
    tips = {n: project.git("rev-parse", f"wtp/{n}") for n in ("t1", "t2", "t3")}
    replayed = tmp_path / "replayed"
    hook = project.path / ".git" / "hooks" / "pre-rebase"  # t3's replay is the one under way at the Ctrl-C
    hook.write_text(f'#!/bin/sh\ncase "$PWD" in */t3) sleep 1; touch {replayed};; esac\n')
    hook.chmod(0o755)
    out = project.wtp_proc(
        "land", "t1", "t2", "t3", "--gate", _gate(tmp_path), env={"WTP_TEST_INT_AT": "land:beside-build"}
    )
    assert out.code == 130, out.err
    assert replayed.exists(), "the command ended while git was still replaying t3"
    assert _states(project) == {"t1": "active", "t2": "active", "t3": "active"}
    for name, tip in tips.items():
        wt = Path(project.wtp("path", name).lines[-1])
        assert project.git("rev-parse", f"wtp/{name}") == tip, name
        assert project.git("-C", str(wt), "status", "--porcelain") == "", name
        assert not (project.path / ".git" / "worktrees" / name / "rebase-merge").exists(), name


def test_recovery_waits_for_a_rebase_the_killed_land_left_running(project: Repo, tmp_path: Path) -> None:
    """A land killed while git rebases a task leaves that git running (the kill does not reach
    it).  The next command's recovery waits for it to end before it restores the task: it
    rolled the task back while git still ran, and git then left the branch on copies of the
    tasks below it, which a later land of that task published as its own (review 50)."""
    _tasks(project, "t1", "t2", "t3")
    tip = project.git("rev-parse", "wtp/t3")
    replayed = tmp_path / "replayed"
    hook = project.path / ".git" / "hooks" / "pre-rebase"  # t3's replay runs on when the land is killed
    hook.write_text(f'#!/bin/sh\ncase "$PWD" in */t3) sleep 2; touch {replayed};; esac\n')
    hook.chmod(0o755)
    killed = project.wtp_proc(
        "land", "t1", "t2", "t3", "--gate", _gate(tmp_path), env={"WTP_TEST_KILL_AT": "land:beside-build"}
    )
    assert killed.code != 0, killed.err
    fixed = project.wtp_proc("doctor", "--fix")
    assert replayed.exists(), "the land's recovery ran while the killed land's git still rebased t3"
    assert "rolled back the interrupted land of 't3' to its pre-land tip" in fixed.out, fixed.out
    assert project.git("rev-parse", "wtp/t3") == tip
    assert _states(project) == {"t1": "active", "t2": "active", "t3": "active"}


def test_recovery_gives_up_on_a_rebase_left_running_at_the_commands_timeout(project: Repo, tmp_path: Path) -> None:
    """Recovery waits for the git a killed land left running, but no longer than the command
    asks: 'wtp land --timeout 1' gives up after a second (exit 3, one line naming git's pid,
    nothing changed), and once that git has ended the task is rolled back as usual."""
    _tasks(project, "t1", "t2", "t3")
    tip = project.git("rev-parse", "wtp/t3")
    release, replayed = tmp_path / "release", tmp_path / "replayed"
    hook = project.path / ".git" / "hooks" / "pre-rebase"  # t3's replay runs on when the land is killed
    hook.write_text(
        f'#!/bin/sh\ncase "$PWD" in */t3) while [ ! -f {release} ]; do sleep 0.05; done; touch {replayed};; esac\n'
    )
    hook.chmod(0o755)
    killed = project.wtp_proc(
        "land", "t1", "t2", "t3", "--gate", _gate(tmp_path), env={"WTP_TEST_KILL_AT": "land:beside-build"}
    )
    assert killed.code != 0, killed.err
    try:
        out = project.wtp_proc("land", "t3", "--gate", _gate(tmp_path), "--timeout", "1")
        assert out.code == 3, out.err
        assert re.fullmatch(
            r"waiting for a 'git rebase' \(pid (\d+)\) that a land that died left running in \S+/t3\n"
            r"wtp: a 'git rebase' \(pid \1\) still runs in the worktree of 't3', left by a land that died: "
            r"wait for it to end, then run 'wtp doctor --fix'\n",
            out.err,
        ), out.err
        assert project.git("rev-parse", "wtp/t3") == tip and not replayed.exists()
    finally:
        release.touch()  # the git the killed land left ends
    fixed = project.wtp_proc("doctor", "--fix")
    assert replayed.exists() and "rolled back the interrupted land of 't3' to its pre-land tip" in fixed.out, fixed.out
    assert project.git("rev-parse", "wtp/t3") == tip
    assert _states(project)["t3"] == "active"


def test_a_lander_whose_task_a_dead_conductor_left_gives_up_on_its_git_at_its_timeout(
    project: Repo, tmp_path: Path
) -> None:
    """The same wait when the task's own lander finds it so on taking the queue (review 53: its
    --timeout was cleared by then, and it waited 30 s): exit 3 at its --timeout, nothing changed."""
    _tasks(project, "t1", "t2", "t3")
    tip = project.git("rev-parse", "wtp/t3")
    release, replayed = tmp_path / "release", tmp_path / "replayed"
    hook = project.path / ".git" / "hooks" / "pre-rebase"
    hook.write_text(
        f'#!/bin/sh\ncase "$PWD" in */t3) while [ ! -f {release} ]; do sleep 0.05; done; touch {replayed};; esac\n'
    )
    hook.chmod(0o755)
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()
    try:
        conductor = project.spawn(
            "land", "t1", "t2", "--gate", _gate(tmp_path), env={"WTP_TEST_KILL_AT": "land:beside-build"}
        )
        wait_for(lambda: len(queue.tickets()) >= 3, "t1 and t2 to join the land queue")
        lander = project.spawn("land", "t3", "--gate", _gate(tmp_path), "--timeout", "2")
        wait_for(lambda: len(queue.tickets()) >= 4, "t3 to join the land queue")
    finally:
        queue.release()
    try:
        assert conductor.wait(timeout=60) != 0  # killed with t3 taken, git replaying it
        _, err = lander.communicate(timeout=20)
        assert lander.returncode == 3, err
        assert err.splitlines()[-1].startswith("wtp: a 'git rebase' (pid "), err
        assert project.git("rev-parse", "wtp/t3") == tip and not replayed.exists()
    finally:
        release.touch()
    fixed = project.wtp_proc("doctor", "--fix")
    assert replayed.exists() and project.git("rev-parse", "wtp/t3") == tip, fixed.out
    assert _states(project)["t3"] == "active"


def test_a_waiting_task_whose_worktree_link_broke_is_left_out_and_the_others_land(project: Repo) -> None:
    """Review 54: t2's .git file deleted while t2 waited behind t1: the conductor's give-back read
    t2's worktree, git failed, and t1's own land ended on a crash log.  t2 is blocked, untouched,
    with one line; t1 lands; once doctor has mended the link, t2 lands."""
    _tasks(project, "t1", "t2")
    t2 = Path(project.wtp("path", "t2").lines[-1])
    tip = project.git("rev-parse", "wtp/t2")
    l1, l2 = queued_landers(project, ["t1", "t2"], "--gate", "./check.sh", during=lambda _: (t2 / ".git").unlink())
    _, err1 = l1.communicate(timeout=60)
    _, err2 = l2.communicate(timeout=60)
    assert l1.returncode == 0, err1
    assert l2.returncode == 1 and err2.splitlines()[-1] == (
        "wtp: the worktree of task 't2' broke while its land waited (its .git file is missing): nothing of it was "
        "landed or touched; run 'wtp doctor --fix', then 'wtp land t2' again"
    ), err2
    assert _states(project)["t1"] == "landed" and project.git("rev-parse", "wtp/t2") == tip
    assert project.wtp_proc("doctor", "--fix").code == 0
    assert project.wtp_proc("land", "t2", "--gate", "./check.sh").code == 0


def test_a_task_whose_worktree_link_breaks_while_its_gate_runs_is_blocked_and_the_others_land(project: Repo) -> None:
    """Review 55: the link checked before the build can still break while the gate runs (here the
    gate deletes .git); the gate's check of the worktree then failed on git, and the conductor
    crashed.  The task is blocked with one line, its branch kept; the others land."""
    _tasks(project, "t1", "t2", "t3")
    gate = 'if [ "$WTP_TASK" = t2 ]; then rm .git; fi; ./check.sh'
    out = project.wtp_proc("land", "t1", "t2", "t3", "--gate", gate)
    assert out.code == 1, out.err
    assert (
        "wtp: the worktree of task 't2' broke while its gate ran (its .git file is missing): nothing of it was "
        "landed, and its branch stays on its candidate; run 'wtp doctor --fix', then 'wtp land t2' again; its "
        "pre-land tip is kept under refs/wtp/archive-pre-land/t2/" in out.err
    ), out.err
    assert _states(project) == {"t1": "landed", "t2": "blocked", "t3": "landed"}
    assert "wtp-crash" not in out.err
    assert project.wtp_proc("doctor", "--fix").code == 0
    assert project.wtp_proc("land", "t2", "--gate", "./check.sh").code == 0


def test_an_interrupted_follower_that_cannot_be_recovered_is_left_to_its_own_lander(
    project: Repo, tmp_path: Path
) -> None:
    """Review 54: a conductor taking a task a dead conductor left, whose worktree's .git had become
    a link to nothing, ended its own land on the refusal.  The task is left out with one line, the
    others land, and the task's own lander says the refusal."""
    _tasks(project, "t1", "t2", "t3")
    t2 = Path(project.wtp("path", "t2").lines[-1])
    hold = tmp_path / "hold"
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()
    try:
        at_gate = {"WTP_TEST_HOLD_AT": "land:before-gate", "WTP_TEST_HOLD_FILE": str(hold)}
        dead = project.spawn("land", "t1", "--gate", "./check.sh", env=at_gate, new_session=True)
        wait_for(lambda: len(queue.tickets()) >= 2, "t1 to join the land queue")
        landers = []
        for n, name in enumerate(["t3", "t2"], 3):  # t3 first: its lander leads next, and takes t2 as it was left
            landers.append(project.spawn("land", name, "--gate", "./check.sh"))
            wait_for(lambda n=n: len(queue.tickets()) >= n, f"{name} to join the land queue")  # type: ignore[misc]
    finally:
        queue.release()
    # t1's lander conducts, the others behind it, and is held at its first gate, the queue still its
    # own: t2's link breaks then, and it dies there as a crash would (the others wait for the queue
    # meanwhile, as landers do: stopping them instead could catch one holding the state's lock).
    wait_for(lambda: Path(f"{hold}.reached").exists(), "t1's conductor to reach its first gate")
    (t2 / ".git").unlink()
    (t2 / ".git").symlink_to(tmp_path / "gone")
    os.killpg(dead.pid, signal.SIGKILL)
    assert dead.wait(timeout=60) != 0
    (_, err3), (_, err2) = (p.communicate(timeout=60) for p in landers)
    assert landers[0].returncode == 0, err3
    # Taken as the dead conductor left it, its recovery refused (the case of the review); or, when that
    # conductor had not taken it yet, built and found broken: either way left out in one line.
    assert (
        "'t2' is left out of this land: the worktree of task 't2' is broken (its .git is a symbolic link" in err3
        or "the worktree of task 't2' broke while its land waited (its .git is a symbolic link" in err3
    ), err3
    assert landers[1].returncode == 1 and "its .git is a symbolic link to " in err2.splitlines()[-1], err2
    assert _states(project)["t3"] == "landed"


def test_a_commit_made_in_a_task_while_git_builds_the_one_below_is_kept_and_not_landed(project: Repo) -> None:
    """What a build reads of a task's branch is read as its turn comes, not while git still
    builds the candidate below (review 50: a reading taken then was stale by the time the
    task was built; the agent's commit was replayed into the candidate and lost with it)."""
    _tasks(project, "t1", "t2", "t3", "t4")
    t4 = Path(project.wtp("path", "t4").lines[-1])
    # An agent commits in t4 while git replays t3, whose replay a slow hook holds for a second.
    hook = project.path / ".git" / "hooks" / "pre-rebase"
    hook.write_text(
        f'#!/bin/sh\ncase "$PWD" in */t3) sleep 1; unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE; cd {t4} && '
        f'echo x > agent.txt && git add agent.txt && git commit -qm "agent X" && git rev-parse HEAD > ../agent-x;; esac\n'
    )
    hook.chmod(0o755)
    out = project.wtp_proc("land", "t1", "t2", "t3", "t4", "--gate", "./check.sh")
    agent = (t4.parent / "agent-x").read_text().strip()
    assert out.code == 1, out.err  # the worst of the four: t4 is blocked
    assert out.err.splitlines()[-1] == (
        f"wtp: t4: branch 'wtp/t4' gained 1 commit wtp did not make while landing ({agent[:10]} agent X): they are "
        "kept on the branch, untested; run 'wtp land t4' again to test and land them"
    ), out.err
    assert _states(project) == {"t1": "landed", "t2": "landed", "t3": "landed", "t4": "blocked"}
    assert project.git("rev-parse", "wtp/t4") == agent
    assert "agent X" not in project.git("log", "--format=%s", "origin/main")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_first_task_landed_stops_the_rest(project: Repo, tmp_path: Path, sig: int) -> None:
    """The conductor finishes the job of a task the base took when the signal came, but the
    command's other tasks are given back and the command exits 130 (review 16, D1)."""
    _tasks(project, "t1", "t2", "t3")
    release, started = tmp_path / "release", tmp_path / "t3-started"
    gate = (
        f'if [ "$WTP_TASK" != t1 ]; then touch {started}; while [ ! -f {release} ]; do sleep 0.05; done; fi; ./check.sh'
    )
    lander = project.spawn("land", "t1", "t2", "t3", "--gate", gate)
    try:
        wait_for(lambda: _states(project)["t1"] == "landed" and started.exists(), "t1 to land while the others gate")
        lander.send_signal(sig)
        _, err = lander.communicate(timeout=60)
    finally:
        release.write_text("go\n")
    assert lander.returncode == 130, err
    lines = err.splitlines()
    for name in ("t2", "t3"):
        assert any(line.startswith("interrupted: ") and f"task '{name}' is active again" in line for line in lines), err
    assert _states(project) == {"t1": "landed", "t2": "active", "t3": "active"}
    assert _subjects(project)[0] == "t1 work"


def test_the_timeout_bounds_the_command_not_each_task_in_turn(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # the queue stays held: neither task gets its turn
    try:
        out = project.wtp_proc("land", "t1", "t2", "--gate", _gate(tmp_path), "--timeout", "1")
    finally:
        queue.release()
    assert out.code == 3, out.err
    lines = [line for line in out.err.splitlines() if line.startswith("wtp: ")]
    # (t1 waits what was left once both joined: 1s, or 0.9s when joining them took a tenth under load)
    assert re.match(r"wtp: t1: timed out after (1|0\.9)s waiting for the land queue", lines[0]), out.err
    assert lines[1].startswith("wtp: t2: timed out after 0s waiting for the land queue"), out.err
    assert lines[1].endswith("(what was left of the command's --timeout 1s after the tasks before it)"), out.err
    assert _states(project) == {"t1": "active", "t2": "active"}
    assert Gate(Store(project.path / ".git"), QUEUE).tickets() == []


def test_a_killed_landing_child_still_gives_the_json_list_and_names_every_task(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    hold = tmp_path / "hold"
    lander = project.spawn(
        "land",
        "t1",
        "t2",
        "--gate",
        _gate(tmp_path),
        "--json",
        env={"WTP_TEST_HOLD_AT": "land:before-gate", "WTP_TEST_HOLD_FILE": str(hold)},
    )
    wait_for(Path(f"{hold}.reached").exists, "the land to reach its gate")
    child = next(t["holder"]["pid"] for t in project.state()["tasks"] if t["name"] == "t1")
    assert child != lander.pid
    os.kill(child, signal.SIGKILL)
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == -signal.SIGKILL, err
    assert [(d["task"], d["state"]) for d in json.loads(out)] == [("t1", "interrupted"), ("t2", "interrupted")]
    assert "run 'wtp land t1 t2' again" in err, err


def test_a_wait_that_times_out_while_its_task_is_being_published_says_it_may_land(
    project: Repo, tmp_path: Path
) -> None:
    """Another lander's conductor had committed to publishing t2 when t2's own wait ran out:
    the lander says so (exit 3, it may land) rather than only 'timed out' (reviews 17 and 18)."""
    _tasks(project, "t1", "t2")
    hold = tmp_path / "hold"
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # both join before a's conductor starts: one batch, one push for both
    try:
        a = project.spawn(
            "land",
            "t1",
            "--mode",
            "batch",
            "--gate",
            "./check.sh",
            env={"WTP_TEST_HOLD_AT": "land:before-publish", "WTP_TEST_HOLD_FILE": str(hold)},
        )
        wait_for(lambda: len(queue.tickets()) >= 2, "t1 to join the queue")
        b = project.spawn("land", "t2", "--mode", "batch", "--gate", "./check.sh", "--timeout", "15")
        wait_for(lambda: len(queue.tickets()) >= 3, "t2 to join the queue")
    finally:
        queue.release()
    try:
        wait_for(Path(f"{hold}.reached").exists, "a's conductor to commit to publishing t1 and t2")
        _, err = b.communicate(timeout=60)  # its wait runs out while the push is held
    finally:
        hold.touch()
    assert b.returncode == 3, err
    assert err.splitlines()[-1].endswith(
        "; by then another lander's conductor was publishing task 't2', so it may land: 'wtp list' says how it ended"
    ), err
    assert a.wait(timeout=60) == 0
    assert _states(project) == {"t1": "landed", "t2": "landed"}


def test_ctrl_c_during_a_push_of_both_reports_both_landed(project: Repo, tmp_path: Path) -> None:
    """One push published t1 and t2 when the signal came: --json says both landed, with their
    commit, and the command exits 130 (review 17)."""
    _tasks(project, "t1", "t2")
    out = project.wtp_proc(
        "land",
        "t1",
        "t2",
        "--mode",
        "batch",
        "--gate",
        _gate(tmp_path),
        "--json",
        env={"WTP_TEST_INT_AT": "land:after-publish"},
    )
    assert out.code == 130, out.err
    top = project.git("rev-parse", "origin/main")
    docs = json.loads(out.out)
    assert [(d["task"], d["state"]) for d in docs] == [("t1", "landed"), ("t2", "landed")], out.out
    assert docs[1]["commit"] == top
    assert f"interrupted after task 't2' landed at {top[:12]}: its worktree is kept ('wtp rm t2' removes it)" in out.err
    assert _states(project) == {"t1": "landed", "t2": "landed"}


def test_a_timeout_shorter_than_the_gate_does_not_cut_the_push(project: Repo) -> None:
    """--timeout bounds the wait for the queue, not the push after the gate (review 17: the
    push was given 0 s and failed with a false network error)."""
    _tasks(project, "t1")
    out = project.wtp_proc("land", "t1", "--gate", "sleep 2; ./check.sh", "--timeout", "1")
    assert out.code == 0, out.err
    assert out.lines[0] == f"landed 't1' at {project.git('rev-parse', 'origin/main')}"


def _still_waiting(lander: subprocess.Popen[str]) -> None:
    """Past the second of grace a lock wait gets once the command's deadline passed, the land
    still waits for the lock the test holds: it did not time out."""
    try:
        lander.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    assert lander.poll() is None, lander.communicate()[1]


def test_the_clean_up_after_a_land_is_not_bounded_by_the_timeout(project: Repo) -> None:
    """--timeout bounds the wait for the queue: a land whose gate outlasts it, and whose
    clean-up then waits for the base-follow lock, reports the task landed (review 18: it said
    'timed out waiting for the base-follow lock', exit 3, with the task on the base)."""
    from worktree_par.locks import Lock

    _tasks(project, "t1")
    follow = Lock(project.path / ".git" / "wtp" / "follow.lock")
    follow.acquire()
    try:
        lander = project.spawn("land", "t1", "--gate", "sleep 2; ./check.sh", "--timeout", "1")
        wait_for(lambda: _states(project)["t1"] == "landed", "t1 to land")
        _still_waiting(lander)
    finally:
        follow.release()
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert out.splitlines()[0] == f"landed 't1' at {project.git('rev-parse', 'origin/main')}", out


def test_the_clean_up_in_the_parent_after_a_hand_over_is_not_bounded_by_the_timeout(
    project: Repo, tmp_path: Path
) -> None:
    """One task's land hands over to the parent, which cleans up: the command's --timeout does
    not bound that either (review 19)."""
    from worktree_par.locks import Lock

    _tasks(project, "t1", "t3")
    release = tmp_path / "release"
    follow = Lock(project.path / ".git" / "wtp" / "follow.lock")
    follow.acquire()
    try:
        lander = project.spawn(
            "land", "t1", "--gate", f"touch {tmp_path}/t1-started; sleep 2; ./check.sh", "--timeout", "1"
        )
        wait_for((tmp_path / "t1-started").exists, "t1's gate to start")
        other = project.spawn("land", "t3", "--gate", f"while [ ! -e {release} ]; do sleep 0.05; done; ./check.sh")
        wait_for(lambda: _states(project)["t1"] == "landed", "t1 to land, t3 stacked on it")
        _still_waiting(lander)
    finally:
        follow.release()
        release.touch()
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert out.splitlines()[0].startswith("landed 't1' at "), out
    assert "the land queue goes on for 't3' in the background" in out
    assert other.wait(timeout=60) == 0


def test_a_clean_up_stopped_by_a_stopped_lock_holder_still_reports_the_task_landed(project: Repo) -> None:
    """The base-follow lock is held by a process stopped with Ctrl-Z: the clean-up gives up on
    it, and the task, on the base, is reported landed with what its clean-up left (review 19)."""
    _tasks(project, "t1")
    lock = project.path / ".git" / "wtp" / "follow.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from worktree_par.locks import Lock; import signal; Lock(__import__('pathlib').Path({str(lock)!r})).acquire(); "
            "print('held', flush=True); signal.pause()",  # holds the lock until the test kills it
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        os.kill(holder.pid, signal.SIGSTOP)
        out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()
    assert out.code == 0, out.err
    top = project.git("rev-parse", "origin/main")
    assert out.lines[0] == f"landed 't1' at {top}", out.out
    said = [line for line in out.lines if line.startswith("its clean-up did not finish (the base-follow lock is held")]
    assert len(said) == 1, out.out
    assert said[0].endswith(  # what was left is said: the worktree, and the local base not brought along
        f": its worktree is kept ('wtp rm t1' removes it); local 'main' is behind origin/main "
        f"('git pull --ff-only' in {project.path})"
    ), said
    assert _states(project) == {"t1": "landed"}


def test_ctrl_c_while_the_gates_run_leaves_no_ticket_behind(project: Repo, tmp_path: Path) -> None:
    """Review 32: Ctrl-C of 'wtp land c d' while their gates ran gave both back but left d's
    ticket (ours, queued for d) in the queue: 'wtp doctor' then found a dead process's ticket."""
    _tasks(project, "c", "d")
    started, hold = tmp_path / "started", tmp_path / "hold"
    gate = f"echo $WTP_TASK >> {started}; while [ ! -e {hold} ]; do sleep 0.05; done"
    lander = project.spawn("land", "c", "d", "--gate", gate)
    try:
        wait_for(lambda: started.exists() and len(started.read_text().split()) >= 2, "both gates running")
        lander.send_signal(signal.SIGINT)
        _, err = lander.communicate(timeout=60)
    finally:
        hold.write_text("")
    assert lander.returncode == 130, err
    wait_for(lambda: set(_states(project).values()) == {"active"}, "both given back")
    doctor = project.wtp_proc("doctor")
    assert doctor.code == 0, doctor.out + doctor.err


def test_a_plain_land_of_several_leaves_no_ticket_behind(project: Repo, tmp_path: Path) -> None:
    _tasks(project, "t1", "t2")
    out = project.wtp_proc("land", "t1", "t2", "--gate", _gate(tmp_path))
    assert out.code == 0, out.err
    doctor = project.wtp_proc("doctor")
    assert doctor.code == 0, doctor.out + doctor.err  # no ticket of a dead process (review 20)


def test_ctrl_c_while_the_parent_cleans_up_stops_the_command_and_says_what_is_kept(
    project: Repo, tmp_path: Path
) -> None:
    """The command's parent waits for the base-follow lock in a landed task's clean-up: one
    Ctrl-C ends it, exit 130, each landed task said landed with its worktree kept (review 20)."""
    _tasks(project, "t1", "t2")
    code, out, _ = _ctrl_c_in_clean_up(project, tmp_path, "t1", "t2")
    assert code == 130, out
    assert "interrupted after task 't1' landed at " in out, out
    assert _states(project) == {"t1": "landed", "t2": "landed"}


def test_tasks_landed_together_without_a_push_say_so(project: Repo, tmp_path: Path) -> None:
    """With --no-push the local base takes the batch in one update: no push is said."""
    _tasks(project, "t1", "t2")
    out = project.wtp_proc("land", "t1", "t2", "--gate", _gate(tmp_path), "--no-push", "--mode", "batch")
    assert out.code == 0, out.err
    assert "landed in one update of 'main' together with 't2'" in out.lines
    assert "landed in one update of 'main' together with 't1'" in out.lines
    assert project.git("log", "-2", "--format=%s", "main").splitlines() == ["t2 work", "t1 work"]


def test_ctrl_c_in_a_single_lands_clean_up_prints_its_landed_json_document(project: Repo, tmp_path: Path) -> None:
    """One task, --json: Ctrl-C while its clean-up waits for the base-follow lock; the task is
    landed, so its document says so (not the generic 'interrupted' one), exit 130."""
    _tasks(project, "t1")
    code, out, err = _ctrl_c_in_clean_up(project, tmp_path, "t1", "--json")
    assert code == 130, err
    doc = json.loads(out)
    top = project.git("rev-parse", "origin/main")
    assert doc == {"task": "t1", "state": "landed", "commit": top, "attempts": 1, "paths": []}
    assert "interrupted after task 't1' landed at " in err


def _ctrl_c_in_clean_up(r: Repo, tmp: Path, *args: str) -> tuple[int, str, str]:
    """'wtp land *args' gated by the project's test, interrupted (SIGINT) while a landed task's
    clean-up waits for the base-follow lock the test holds: its exit code, stdout and stderr."""
    from worktree_par.locks import Lock

    follow = Lock(r.path / ".git" / "wtp" / "follow.lock")
    follow.acquire()
    err_file = tmp / "err"
    try:
        lander = logged_land(r, [*args, "--gate", "./check.sh"], err_file)
        wait_for(
            lambda: "waiting for the base-follow lock" in err_file.read_text(), "the clean-up to wait for the lock"
        )
        lander.send_signal(signal.SIGINT)
        lander.wait(timeout=30)  # while the lock is still held
        out = err_file.with_suffix(".out").read_text()
    finally:
        follow.release()
    return lander.returncode, out, err_file.read_text()


def logged_land(
    r: Repo,
    args: list[str],
    err_file: Path,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.Popen[str]:
    """'wtp land *args' in the background, its stderr written to ``err_file`` and its stdout
    to ``err_file`` with the suffix .out (both read while it runs)."""
    with open(err_file, "w") as e, open(err_file.with_suffix(".out"), "w") as o:
        return subprocess.Popen(
            [sys.executable, "-m", "worktree_par", "land", *args],
            cwd=r.path,
            stdout=o,
            stderr=e,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
