"""One meaning for a resource (issue 29): 'wtp gate NAME' and 'wtp start --use NAME' are one
lock family.  A gate waits while a live task other than the caller declared NAME or a member
of its family; the task's own gate run passes through; a queued task holds nothing yet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import Repo, wait_for

HELD = "task 'a' holds deploy:prod (--use) until it lands or is removed"


def _gate(repo: Repo, tmp_path: Path, name: str, marker: Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """'wtp gate NAME -- touch MARKER' in a real process; its stderr goes to a file the test reads."""
    err = open(tmp_path / f"{marker.name}.err", "w")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen(
        [sys.executable, "-m", "worktree_par", "gate", name, "--", "touch", str(marker)],
        cwd=cwd or repo.path,
        stdout=subprocess.DEVNULL,
        stderr=err,
        text=True,
    )
    err.close()
    return proc


def _said(tmp_path: Path, marker: Path) -> str:
    return (tmp_path / f"{marker.name}.err").read_text()


def _waiting(repo: Repo, tmp_path: Path, gate: str, marker: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``proc`` says it waits for a task, with its ticket in line and not granted."""
    wait_for(lambda: HELD in _said(tmp_path, marker) or proc.poll() is not None, "the gate to wait for task 'a'")
    assert proc.poll() is None, _said(tmp_path, marker)
    tickets = repo.wtp("gate", gate, "--status", "--json").json()["tickets"]
    assert [(t["pid"], t["holds"]) for t in tickets] == [(proc.pid, False)]
    assert not marker.exists()


def test_gate_waits_for_a_task_using_the_resource_and_runs_once_it_is_removed(repo: Repo, tmp_path: Path) -> None:
    assert repo.wtp("start", "a", "--use", "deploy:prod").code == 0
    marker = tmp_path / "deployed"
    proc = _gate(repo, tmp_path, "deploy:prod", marker)
    try:
        _waiting(repo, tmp_path, "deploy:prod", marker, proc)
        status = repo.wtp("gate", "deploy:prod", "--status")
        assert status.lines[0] == HELD
        assert repo.wtp("gate", "deploy", "--status", "--json").json()["tasks"] == [
            {"task": "a", "resource": "deploy:prod"}
        ]
        assert repo.wtp("rm", "a").code == 0
        assert proc.wait(timeout=60) == 0
        assert marker.exists()
        assert _said(tmp_path, marker).splitlines() == [f"waiting for deploy:prod (place 1): {HELD}"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gate_runs_once_the_task_lands(repo: Repo, tmp_path: Path) -> None:
    path = Path(repo.wtp("start", "a", "--use", "deploy:prod").lines[-1])
    repo.commit({"NOTES.md": "a\n"}, "a: notes", cwd=path)
    marker = tmp_path / "deployed"
    proc = _gate(repo, tmp_path, "deploy:prod", marker)
    try:
        _waiting(repo, tmp_path, "deploy:prod", marker, proc)
        assert repo.wtp("land", "a").code == 0
        assert proc.wait(timeout=60) == 0
        assert marker.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_tasks_own_gate_passes_through_even_behind_a_waiter(repo: Repo, tmp_path: Path) -> None:
    path = Path(repo.wtp("start", "a", "--use", "deploy:prod").lines[-1])
    waiter = tmp_path / "main-deploy"
    proc = _gate(repo, tmp_path, "deploy:prod", waiter)
    try:
        _waiting(repo, tmp_path, "deploy:prod", waiter, proc)
        # The main worktree's run waits for 'a'; 'a' deploying from its worktree must not wait for it.
        mine = repo.wtp_proc("gate", "deploy:prod", "--timeout", "30", "--", "sh", "-c", 'echo "$WTP_TASK"', cwd=path)
        assert (mine.code, mine.out, mine.err) == (0, "a\n", "")
        # ... from a subfolder of it, and with the task's environment from elsewhere
        sub = path / "src"
        sub.mkdir(exist_ok=True)
        assert repo.wtp_proc("gate", "deploy:prod", "--timeout", "30", "--", "true", cwd=sub).code == 0
        env = {"WTP_TASK": "a", "WTP_WORKTREE": str(path)}
        assert repo.wtp_proc("gate", "deploy", "--timeout", "30", "--", "true", env=env).code == 0
        assert proc.poll() is None and not waiter.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_timed_out_wait_names_the_task_in_one_line(repo: Repo) -> None:
    assert repo.wtp("start", "a", "--use", "deploy:prod").code == 0
    out = repo.wtp_proc("gate", "deploy:prod", "--timeout", "0.5", "--", "true")
    assert out.code == 3
    assert out.err.splitlines()[-1] == f"wtp: timed out after 0.5s waiting for deploy:prod: {HELD}"
    assert "Traceback" not in out.err


def test_a_family_counts_both_ways_and_another_task_is_not_the_caller(repo: Repo) -> None:
    assert repo.wtp("start", "a", "--use", "deploy").code == 0
    b = Path(repo.wtp("start", "b").lines[-1])
    held = "task 'a' holds deploy (--use) until it lands or is removed"
    out = repo.wtp_proc("gate", "deploy:prod", "--timeout", "0.3", "--", "true", cwd=b)
    assert (out.code, out.err.splitlines()[-1]) == (3, f"wtp: timed out after 0.3s waiting for deploy:prod: {held}")
    # a stale or borrowed WTP_TASK that is not the task's worktree does not pass through
    env = {"WTP_TASK": "a", "WTP_WORKTREE": str(b)}
    assert repo.wtp_proc("gate", "deploy:staging", "--timeout", "0.3", "--", "true", env=env).code == 3
    # unrelated names and prefixes that are not a family run at once
    assert repo.wtp_proc("gate", "deployment", "--", "true").code == 0
    assert repo.wtp_proc("gate", "db", "--", "true").code == 0


def test_a_queued_task_holds_nothing_and_is_not_said_to(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp("start", "x").code == 0
    assert repo.wtp("start", "q", "--use", "deploy:prod").code == 4
    # q is queued: the gate runs at once
    out = repo.wtp_proc("gate", "deploy:prod", "--timeout", "5", "--", "true")
    assert (out.code, out.err) == (0, "")
    assert repo.wtp("gate", "deploy:prod", "--status").lines == ["nobody holds or waits for gate 'deploy:prod'"]
    r = repo.wtp("start", "r", "--use", "deploy")
    assert r.code == 4
    assert r.err.splitlines()[-1] == (
        "task 'r' is queued (place 2): waits because no slot is free: 1 of 1 taken; "
        "resource deploy ~ deploy:prod with task 'q', queued ahead of it"
    )
    # once q starts, it holds the resource
    assert repo.wtp("rm", "x").code == 0
    assert [t["state"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["active", "queued"]
    out = repo.wtp_proc("gate", "deploy:prod", "--timeout", "0.3", "--", "true")
    assert out.code == 3 and "task 'q' holds deploy:prod (--use)" in out.err
    assert os.path.isdir(repo.wtp("path", "q").out.strip())


def test_a_gate_holders_command_line_is_shown_with_its_quoting(repo: Repo, tmp_path: Path) -> None:
    held = tmp_path / "held"
    holder = repo.spawn("gate", "deploy", "--", "sh", "-c", f"touch {held}; sleep 60", new_session=True)
    try:
        wait_for(held.exists, "the gate to be held")
        out = repo.wtp_proc("gate", "deploy", "--timeout", "0.3", "--", "true")
        assert out.code == 3
        assert f"(wtp gate deploy -- sh -c 'touch {held}; sleep 60')" in out.err, out.err
    finally:
        os.killpg(holder.pid, signal.SIGTERM)
        holder.wait(timeout=30)


def test_a_remote_gate_waits_for_a_local_task_using_it_and_its_own_task_passes_through(
    remote_repo: Repo, tmp_path: Path
) -> None:
    remote_repo.write(".wtp.toml", '[gate]\nremote = ["deploy*"]\n')
    a = Path(remote_repo.wtp("start", "a", "--use", "deploy:prod").lines[-1])
    marker = tmp_path / "deployed"
    proc = _gate(remote_repo, tmp_path, "deploy:prod", marker)
    try:
        wait_for(lambda: HELD in _said(tmp_path, marker) or proc.poll() is not None, "the gate to wait for task 'a'")
        assert proc.poll() is None and not marker.exists(), _said(tmp_path, marker)
        # nobody holds the remote gate meanwhile: the waiter has not queued there yet
        status = remote_repo.wtp("gate", "deploy:prod", "--status", "--json").json()
        assert status["tickets"] == []
        # the task's own deploy runs at once, through the remote
        own = remote_repo.wtp_proc("gate", "deploy:prod", "--", "true", cwd=a)
        assert own.code == 0 and "holding remote gate 'deploy:prod'" in own.err, own.err
        assert remote_repo.wtp("rm", "a").code == 0
        assert proc.wait(timeout=60) == 0
        assert marker.exists()
        said = _said(tmp_path, marker).splitlines()
        assert said[0] == f"waiting for gate 'deploy:prod': {HELD}"
        assert said[1].startswith("holding remote gate 'deploy:prod' on 'origin'")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    timed = remote_repo.wtp_proc("start", "b", "--use", "deploy")
    assert timed.code == 0
    out = remote_repo.wtp_proc("gate", "deploy:prod", "--timeout", "0.3", "--", "true")
    assert (out.code, out.err.splitlines()[-1]) == (
        3,
        "wtp: timed out after 0.3s waiting for gate 'deploy:prod': task 'b' holds deploy (--use) until it lands or "
        "is removed",
    )
