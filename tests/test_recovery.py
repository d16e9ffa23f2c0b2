"""Recovery that asks the truth, and liveness that holds in containers (issue 14): kills and
Ctrl-C after the remote took a push, interrupted follows of the base, containers (pid and
UTS namespaces made with unshare, which needs root: skipped without it), stopped holders,
broken queued tasks, a half-done checkout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Repo


def _start(r: Repo, name: str, *args: str) -> Path:
    out = r.wtp("start", name, *args)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _slow_post_receive(r: Repo, seconds: float) -> Path:
    """The remote takes the push, then its post-receive hook runs for a while."""
    assert r.remote is not None
    marker = r.remote.parent / "accepted"
    hook = r.remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nsleep {seconds}\n")
    hook.chmod(0o755)
    return marker


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _subjects(r: Repo, ref: str) -> list[str]:
    return r.git("log", "--format=%s", ref).splitlines()


def test_8_sigkill_after_the_remote_took_the_push_is_landed_once(remote_repo: Repo) -> None:
    r = remote_repo
    assert r.remote is not None
    p = _start(r, "a")
    r.commit({"a.txt": "a\n"}, "a work", cwd=p)
    marker = _slow_post_receive(r, 3)
    lander = r.spawn("land", "a", "--strategy", "squash")
    _wait_for(marker)
    lander.kill()  # SIGKILL, after the remote updated main and before wtp heard back
    lander.wait()
    (r.remote / "hooks" / "post-receive").unlink()
    out = r.wtp("land", "a", "--strategy", "squash")
    assert out.code == 0, out.err
    r.git("fetch", "-q", "origin")
    assert _subjects(r, "origin/main").count("a work") == 1  # published once, never twice
    assert r.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert r.git("for-each-ref", "refs/wtp/backup/") == ""


def test_9_ctrl_c_after_the_remote_took_the_push_ends_landed_and_cleaned_up(remote_repo: Repo) -> None:
    r = remote_repo
    p = _start(r, "a")
    r.commit({"a.txt": "a\n"}, "a work", cwd=p)
    marker = _slow_post_receive(r, 5)
    lander = subprocess.Popen(
        [sys.executable, "-m", "worktree_par", "land", "a"],
        cwd=r.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches all of it
    )
    _wait_for(marker)
    os.killpg(lander.pid, signal.SIGINT)
    out, err = lander.communicate(timeout=60)
    assert "Traceback" not in err
    assert lander.returncode == 0, err
    assert "interrupted after 'main' took the candidate: task 'a' is landed" in out
    assert r.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert not p.exists() and "wtp/a" not in r.branches()
    assert r.git("for-each-ref", "refs/wtp/backup/") == ""
    assert r.wtp_proc("doctor").code == 0


def test_15_a_kill_while_the_main_worktree_follows_a_local_land_is_found_and_fixed(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    out = repo.wtp_proc("land", "a", env={"WTP_TEST_KILL_AT": "land:base-detached"})
    assert out.code == -9
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "HEAD"  # left detached by the kill
    code = repo.wtp_proc("doctor")
    assert code.code == 1 and "was left detached" in code.out and "by an interrupted land onto 'main'" in code.out
    fixed = repo.wtp_proc("doctor", "--fix")
    assert "brought" in fixed.out and "along to 'main'" in fixed.out
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (repo.path / "a.txt").read_text() == "a\n" and repo.git("status", "--porcelain") == ""
    assert repo.wtp_proc("doctor").code == 0
    assert repo.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"


def test_15_what_doctor_cannot_fix_is_said_as_not_fixed(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    assert repo.wtp_proc("land", "a", env={"WTP_TEST_KILL_AT": "land:base-detached"}).code == -9
    (repo.path / "a.txt").write_text("mine\n")  # in the way of bringing the main worktree along
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 1
    assert (
        "  could not fix: uncommitted changes to a.txt; stash them and 'git switch main'" in fixed.out.splitlines()
    ), fixed.out
    assert (repo.path / "a.txt").read_text() == "mine\n"


def test_15_ctrl_c_while_the_main_worktree_follows_a_local_land_ends_landed_and_attached(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    out = repo.wtp_proc("land", "a", env={"WTP_TEST_INT_AT": "land:base-detached"})
    assert "Traceback" not in out.err
    assert out.code == 0 and "interrupted after 'main' took the candidate: task 'a' is landed" in out.out
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (repo.path / "a.txt").read_text() == "a\n" and repo.git("status", "--porcelain") == ""
    assert repo.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert repo.wtp_proc("doctor").code == 0


def _unshare(*args: str, uts: bool = False) -> list[str]:
    return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", *(["--uts"] if uts else []), *args]


def _can_unshare() -> bool:
    try:
        return subprocess.run(_unshare("true"), capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


needs_namespaces = pytest.mark.skipif(not _can_unshare(), reason="needs root for pid namespaces (unshare)")


@needs_namespaces
def test_16_doctor_in_another_pid_namespace_never_rolls_back_a_live_land(repo: Repo) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    go = repo.path.parent / "go"
    gate = f"touch {repo.path.parent}/gating; while [ ! -e {go} ]; do sleep 0.05; done"
    lander = repo.spawn("land", "a", "--gate", gate)
    try:
        _wait_for(repo.path.parent / "gating")
        doctor = subprocess.run(
            _unshare(sys.executable, "-m", "worktree_par", "doctor", "--fix"),
            cwd=repo.path,
            capture_output=True,
            text=True,
        )
        assert lander.poll() is None  # the land was live all the while doctor looked
    finally:
        go.touch()
    assert "rolled back" not in doctor.stdout and "Traceback" not in doctor.stderr
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert repo.git("show", "main:a.txt") == "a"


@needs_namespaces
def test_25_a_lander_killed_in_a_container_with_its_own_host_name_does_not_wedge_the_queue(repo: Repo) -> None:
    pa = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=pa)
    pb = _start(repo, "b")
    repo.commit({"b.txt": "b\n"}, cwd=pb)
    env = {**os.environ, "WTP_STALE_AFTER": "3"}
    inner = f"hostname container-x && exec {sys.executable} -m worktree_par land a --gate 'touch {repo.path.parent}/gating; sleep 60'"
    container = subprocess.Popen(_unshare("sh", "-c", inner, uts=True), cwd=repo.path, env=env)
    _wait_for(repo.path.parent / "gating")
    container.kill()  # the namespace's init dies, and everything in it with it
    container.wait()
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "worktree_par", "land", "b", "--timeout", "30"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 20  # the dead lander's ticket went stale, then was skipped
    again = subprocess.run(
        [sys.executable, "-m", "worktree_par", "land", "a"], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr  # the interrupted land is rolled back, then lands
    assert repo.git("show", "main:a.txt") == "a" and repo.git("show", "main:b.txt") == "b"


def test_17_a_wall_clock_step_does_not_make_a_live_holder_look_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    from worktree_par import locks, procs

    child = subprocess.Popen(["sleep", "30"])
    try:
        h = locks.Holder(
            child.pid,
            procs.process_start(child.pid),
            locks.boot_id(),
            locks.pid_namespace(),
            os.uname().nodename,
            "x",
            0.0,
        )
        assert locks.is_alive(h)
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)  # the clock steps an hour
        assert locks.is_alive(h)
        monkeypatch.setattr(time, "time", lambda: real() - 86400)
        assert locks.is_alive(h)
    finally:
        child.kill()
        child.wait()
    assert not locks.is_alive(h)


def test_18_23_a_queued_task_that_cannot_start_blocks_only_itself(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.git("branch", "feature")
    pa = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=pa)
    assert repo.wtp("start", "b", "--base", "feature").code == 4  # queued
    assert repo.wtp("start", "c").code == 4  # queued behind b
    repo.git("branch", "-D", "feature")  # b's --base is gone
    out = repo.wtp("land", "a")
    assert out.code == 0, out.err  # the land succeeded; a broken promotion does not change that
    tasks = {t["name"]: t for t in repo.wtp("list", "--json").json()["tasks"]}
    assert tasks["b"]["state"] == "queued" and tasks["b"]["note"].startswith("cannot start: --base 'feature' names no")
    assert tasks["c"]["state"] == "active"  # not held behind the broken one
    # said by whichever tried it first: the land's own promote, or the start it began in the
    # background as a's land began (its log), which is written before the registry says so
    log = repo.path / ".git" / "wtp" / "logs" / "start-behind.log"
    assert "queued task 'b' cannot start" in out.err + (log.read_text() if log.exists() else "")
    doc = repo.wtp_proc("doctor", "--fix")
    assert "Traceback" not in doc.err and doc.code in (0, 1)
    # a branch checked out elsewhere: the promotion fails in git, the task stays queued
    repo.wtp("rm", "b")
    assert repo.wtp("start", "d").code == 4  # queued: c holds the slot
    repo.git("worktree", "add", "-q", "-b", "wtp/d", str(repo.path.parent / "elsewhere"))
    out = repo.wtp("rm", "c")
    assert out.code == 0, out.err
    d = repo.wtp("list", "--json").json()["tasks"][0]
    assert (d["name"], d["state"]) == ("d", "queued") and d["note"].startswith("cannot start: ")


def test_20_a_checkout_killed_half_way_is_completed_not_accepted(repo: Repo) -> None:
    p = _start(repo, "a")
    files = sorted(f.relative_to(p) for f in p.rglob("*") if f.is_file() and ".git" not in f.parts)
    assert len(files) > 3
    # What 'wtp start' and its 'git worktree add' SIGKILLed mid-checkout leave: git's
    # "initializing" lock, files missing, and the task recorded mid-start by a dead process.
    admin = Path(repo.git("rev-parse", "--path-format=absolute", "--git-dir", cwd=p))
    (admin / "locked").write_text("initializing")
    for f in files[: len(files) // 2]:
        (p / f).unlink()
    state = repo.state()
    state["tasks"][0].update(
        phase="creating",
        holder={"pid": 999999, "start": 1, "host": os.uname().nodename, "cmd": "wtp start a", "since": 0.0},
    )
    repo.state_file.write_text(json.dumps(state))
    doctor = repo.wtp_proc("doctor")
    assert doctor.code == 1 and "the start of task 'a' was interrupted" in doctor.out
    out = repo.wtp("start", "a")
    assert out.code == 0, out.err
    assert "completed the checkout of 'a' that was interrupted" in out.err
    assert all((p / f).is_file() for f in files) and repo.git("status", "--porcelain", cwd=p) == ""
    assert "locked" not in repo.git("worktree", "list", "--porcelain")
    assert repo.wtp_proc("doctor").code == 0


def _hold_state_lock(repo: Repo, then: str) -> subprocess.Popen[str]:
    """A process of our own holding the state lock, then doing ``then`` (stopping itself, say)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, time; from pathlib import Path; from worktree_par.locks import Lock; "
            f"l = Lock(Path({str(repo.path / '.git' / 'wtp' / 'state.lock')!r})); l.acquire(); "
            f"print('held', flush=True); {then}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_24_a_stopped_process_holding_the_state_lock_is_named_and_nothing_hangs(repo: Repo) -> None:
    repo.wtp("start", "a")
    holder = _hold_state_lock(repo, "os.kill(os.getpid(), signal.SIGSTOP)")
    try:
        t0 = time.monotonic()
        out = repo.wtp_proc("start", "b", timeout=30)
        assert time.monotonic() - t0 < 15
        assert out.code == 3 and len(out.err.strip().splitlines()) >= 1
        last = out.err.strip().splitlines()[-1]
        assert last.startswith(f"wtp: the state lock is held by pid {holder.pid}")
        assert "stopped: resume it with 'fg' or end it" in last
    finally:
        holder.kill()
        holder.wait()
    assert repo.wtp("start", "b").code == 0


def test_24_a_command_timeout_bounds_its_wait_on_a_busy_internal_lock(repo: Repo) -> None:
    repo.wtp("start", "a")  # the state dir exists
    holder = _hold_state_lock(repo, "time.sleep(30)")
    try:
        out = repo.wtp_proc("start", "b", "--wait", "--timeout", "1", timeout=30)
        assert out.code == 3, out.err
        assert out.err.strip().splitlines()[-1].startswith("wtp: timed out after 1s waiting for the state lock")
        assert f"held by pid {holder.pid}" in out.err
    finally:
        holder.kill()
        holder.wait()


def test_ctrl_c_during_the_gate_says_what_it_left(repo: Repo, tmp_path: Path) -> None:
    p = _start(repo, "a")
    repo.commit({"a.txt": "a\n"}, cwd=p)
    started = tmp_path / "gating"
    lander = subprocess.Popen(
        [sys.executable, "-m", "worktree_par", "land", "a", "--gate", f"touch {started}; sleep 30"],
        cwd=repo.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(started)
    status = repo.path / ".git" / "wtp" / "queue-status.json"
    deadline = time.monotonic() + 30
    while '"gating"' not in (status.read_text() if status.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.02)  # the conductor has its gate in hand: Ctrl-C now is Ctrl-C during the gate
    os.killpg(lander.pid, signal.SIGINT)
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 130, err
    assert err.splitlines()[-2:] == [
        "interrupted: 'main' untouched by this land, task 'a' is active again",
        "wtp: interrupted",
    ]
    assert repo.git("rev-parse", "wtp/a") == repo.git("rev-parse", "HEAD", cwd=p)
