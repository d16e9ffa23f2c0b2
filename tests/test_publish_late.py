"""A push the remote took but answered late (review 3, D3): whether the land published is
decided by asking the remote, so the task is landed and tidied as any land; only when the
remote cannot be asked either is the outcome unknown, said in one line, exit 3, and the
next land of the task asks again.  A land that finds its task landed meanwhile (by another
conductor, a recovery) tidies as a land does (review 3, Risk 4)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Repo, end_pids, git

TIMEOUT = 2  # [remote] timeout in these tests


class LateRemote:
    """The remote's receive-pack applies the push, then never answers (it records its pid
    and sleeps); once ``asking_hangs`` is set, its upload-pack hangs too: the remote cannot
    be asked what it holds.  Everything it leaves running is ended by pid."""

    def __init__(self, tmp: Path) -> None:
        self.pids = tmp / "late.pids"
        self.took = tmp / "took"  # appears once the push was applied
        self.no_answers = tmp / "no-answers"
        self.receive = tmp / "late-receive-pack"
        self.receive.write_text(
            f'#!/bin/sh\ngit receive-pack "$@"\necho $$ >> {self.pids}\ntouch {self.took}\nexec sleep 3600\n'
        )
        self.upload = tmp / "upload-pack"
        self.upload.write_text(
            f"#!/bin/sh\nif [ -e {self.no_answers} ]; then echo $$ >> {self.pids}; exec sleep 3600; fi\n"
            'exec git upload-pack "$@"\n'
        )
        for script in (self.receive, self.upload):
            script.chmod(0o755)

    def on(self, r: Repo, *, asking_hangs: bool = False) -> None:
        r.git("config", "remote.origin.receivepack", str(self.receive))
        r.git("config", "remote.origin.uploadpack", str(self.upload))
        if asking_hangs:
            self.no_answers.write_text("")

    def off(self, r: Repo) -> None:
        for w in ("receivepack", "uploadpack"):
            r.git("config", "--unset", f"remote.origin.{w}", check=False)
        self.no_answers.unlink(missing_ok=True)

    def end(self) -> None:
        end_pids(self.pids)

    def unaskable(self, r: Repo) -> None:
        """On for ``r``, and once the push is taken, asking the remote hangs too."""
        self.on(r)
        self.receive.write_text(self.receive.read_text().replace("touch", f"touch {self.no_answers}; touch"))


@pytest.fixture
def late(tmp_path: Path) -> Iterator[LateRemote]:
    remote = LateRemote(tmp_path)
    yield remote
    remote.end()


def _task(r: Repo, name: str) -> Path:
    out = r.wtp_proc("start", name, "--touch", f"{name}/**")
    assert out.code == 0, out.err
    p = Path(out.out.strip())
    r.commit({f"{name}/work.txt": f"{name}\n"}, f"{name}: work", cwd=p)
    return p


def _remote_main(r: Repo) -> str:
    assert r.remote is not None
    return git(r.remote, "rev-parse", "main")


def _task_json(r: Repo, name: str) -> dict:
    return next(t for t in r.wtp("list", "--all", "--json").json()["tasks"] if t["name"] == name)


def test_a_push_the_remote_took_but_answered_late_is_landed_and_tidied(remote_repo: Repo, late: LateRemote) -> None:
    r = remote_repo
    r.write(".wtp.toml", f"[remote]\ntimeout = {TIMEOUT}\n")
    p = _task(r, "feed")
    late.on(r)
    out = r.wtp_proc("land", "feed", "--json", timeout=120)
    assert late.took.exists()
    landed = _remote_main(r)
    assert git(r.remote or r.path, "log", "-1", "--format=%s", "main") == "feed: work"
    assert (out.code, out.json()) == (
        0,
        {"task": "feed", "state": "landed", "commit": landed, "attempts": 1, "paths": []},
    ), out.err
    assert "Traceback" not in out.err
    said = [line for line in out.err.splitlines() if not line.startswith("gate") and "untested" not in line]
    assert said == [
        f"remote 'origin' did not answer within {TIMEOUT}s (pushing refs/heads/main), "
        "but 'main' took it (asked 'origin' again): landed",
        "removed task 'feed' (worktree and branch 'wtp/feed')",
    ], out.err
    # tidied as any land: worktree and branch gone, backup forgotten, local main brought along
    assert not p.exists() and "wtp/feed" not in r.branches()
    assert r.git("for-each-ref", "refs/wtp/backup/") == ""
    assert r.git("rev-parse", "main") == r.git("rev-parse", "origin/main") == landed
    assert _task_json(r, "feed")["state"] == "landed"
    late.off(r)
    assert r.wtp_proc("doctor").code == 0


def test_when_the_remote_cannot_be_asked_either_the_land_is_unknown_and_the_next_land_asks_again(
    remote_repo: Repo, late: LateRemote
) -> None:
    r = remote_repo
    r.write(".wtp.toml", f"[remote]\ntimeout = {TIMEOUT}\n")
    p = _task(r, "feed")
    before = r.git("rev-parse", "wtp/feed")
    late.unaskable(r)
    out = r.wtp_proc("land", "feed", "--json", timeout=120)
    assert late.took.exists() and late.no_answers.exists()
    why = (
        f"remote 'origin' did not answer within {TIMEOUT}s (pushing refs/heads/main), and 'origin' could not be "
        f"asked whether it took the push (remote 'origin' did not answer within {TIMEOUT}s (fetching 'main')): "
        "whether 'feed' landed is not known"
    )
    error = (
        f"{why}: run 'wtp land feed' again once 'origin' answers (or 'wtp doctor --fix'): "
        "it asks 'origin' and finishes the land, or gives the task back"
    )
    assert (out.code, out.json()) == (
        3,
        {"task": "feed", "state": "unknown", "commit": None, "attempts": None, "paths": [], "error": error},
    ), out.err
    assert out.err.splitlines()[-1] == f"wtp: {error}"
    # never rolled back unasked: the task is left mid-publication, held by nobody
    t = next(t for t in r.state()["tasks"] if t["name"] == "feed")
    assert (t["state"], t["phase"], t["holder"], t["intent"]) == ("landing", "landing", None, "publishing")
    assert t["note"] == f"{why}; landing it again asks 'origin' and finishes the land, or gives it back"
    assert p.exists() and r.git("for-each-ref", "--format=%(objectname)", "refs/wtp/backup/feed") == before
    listed = r.wtp("list", "--json").json()["tasks"][0]
    assert listed["problem"] == (
        "interrupted while landing (run 'wtp land feed' to land it again, or 'wtp doctor --fix' to settle it)"
    )
    # the remote answers again: the next land asks it, and finishes the land that published
    late.off(r)
    again = r.wtp_proc("land", "feed", timeout=120)
    landed = _remote_main(r)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"landed 'feed' at {landed}",
        f"task 'feed' is landed at {landed[:12]}",
        "removed task 'feed' (worktree and branch 'wtp/feed')",
    ], again.out
    assert f"the interrupted land of 'feed' had published {landed[:12]}: marked landed" in again.err
    assert git(r.remote or r.path, "log", "--format=%s", "main").splitlines().count("feed: work") == 1
    assert not p.exists() and r.git("rev-parse", "main") == landed  # brought along, as any land does
    assert _task_json(r, "feed")["state"] == "landed"
    assert r.wtp_proc("doctor").code == 0


def test_a_land_that_finds_its_task_landed_by_a_recovery_tidies_and_brings_main_along(
    remote_repo: Repo, late: LateRemote
) -> None:
    """The reviewer's path: a land left unknown, settled by 'doctor --fix' (landed, worktree
    kept, local main stale); 'wtp land' then said "already landed" and did nothing more."""
    r = remote_repo
    r.write(".wtp.toml", f"[remote]\ntimeout = {TIMEOUT}\n")
    p = _task(r, "feed")
    stale = r.git("rev-parse", "main")
    late.unaskable(r)
    assert r.wtp_proc("land", "feed", timeout=120).code == 3
    late.off(r)
    assert r.wtp_proc("doctor", "--fix").code == 0
    landed = _remote_main(r)
    assert _task_json(r, "feed")["state"] == "landed" and p.exists() and r.git("rev-parse", "main") == stale
    out = r.wtp_proc("land", "feed", timeout=120)
    assert (out.code, out.out.splitlines()) == (
        0,
        [
            f"landed 'feed' at {landed}",
            f"task 'feed' is already landed at {landed[:12]}",
            "removed task 'feed' (worktree and branch 'wtp/feed')",
        ],
    ), out.err
    assert not p.exists() and "wtp/feed" not in r.branches() and r.git("rev-parse", "main") == landed
    again = r.wtp_proc("land", "feed")  # nothing left to tidy: said once more, nothing else
    assert (again.code, again.out.splitlines()) == (
        0,
        [f"landed 'feed' at {landed}", f"task 'feed' is already landed at {landed[:12]}"],
    ), again.err


def test_a_lander_whose_task_another_lander_landed_meanwhile_tidies_it(remote_repo: Repo) -> None:
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    from .conftest import wait_for

    r = remote_repo
    p = _task(r, "feed")
    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()  # both landers join the held queue: the first lands 'feed' (and keeps it)
    procs = []
    try:
        procs.append(r.spawn("land", "feed", "--keep", "--timeout", "60"))
        wait_for(lambda: len(queue.tickets()) == 2, "the first lander to join the held queue")
        procs.append(r.spawn("land", "feed", "--timeout", "60"))
        wait_for(lambda: len(queue.tickets()) == 3, "the second lander to join the held queue")
    finally:
        queue.release()
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs
    landed = _remote_main(r)
    # the first keeps it, unless the second has removed it (or is removing it) by then: each says which
    assert outs[0][0].splitlines() in (
        [f"landed 'feed' at {landed}", f"kept the worktree {p} (--keep); 'wtp rm feed' removes it"],
        [f"landed 'feed' at {landed}", "the worktree of task 'feed' is being removed by another wtp process"],
        [f"landed 'feed' at {landed}"],
    ), outs
    assert outs[1][0].splitlines() == [
        f"landed 'feed' at {landed}",
        f"task 'feed' was landed meanwhile, at {landed[:12]}",
        "removed task 'feed' (worktree and branch 'wtp/feed')",
    ], outs
    assert not p.exists() and "wtp/feed" not in r.branches()
    assert _task_json(r, "feed")["state"] == "landed"


def test_the_guard_still_keeps_a_landed_worktree_that_holds_work_kept_nowhere_else(remote_repo: Repo) -> None:
    r = remote_repo
    p = _task(r, "feed")
    assert r.wtp_proc("land", "feed", "--keep").code == 0
    (p / "notes.txt").write_text("mine\n")  # untracked: only here
    landed = _remote_main(r)
    out = r.wtp_proc("land", "feed")
    assert (out.code, out.out.splitlines()) == (
        0,
        [
            f"landed 'feed' at {landed}",
            f"task 'feed' is already landed at {landed[:12]}",
            f"kept the worktree {p}: it has 1 uncommitted file (notes.txt), kept nowhere else; save what you need "
            "from it and run 'wtp rm feed', or run 'wtp rm feed --force' to archive it under "
            "refs/wtp/archive/feed and remove the worktree",
        ],
    ), out.err
    assert (p / "notes.txt").read_text() == "mine\n" and "wtp/feed" in r.branches()


def test_ctrl_c_in_a_push_the_remote_took_while_it_cannot_be_asked_is_never_rolled_back(
    remote_repo: Repo, late: LateRemote
) -> None:
    """Ctrl-C while the push hangs after the remote took it, and the remote cannot be asked:
    the task stays mid-publication for the next land to ask (it was given back before, and
    landing it again would have published it twice)."""
    import subprocess
    import sys

    from .conftest import wait_for

    r = remote_repo
    r.write(".wtp.toml", f"[remote]\ntimeout = {TIMEOUT}\n")
    p = _task(r, "feed")
    late.unaskable(r)
    lander = subprocess.Popen(
        [sys.executable, "-m", "worktree_par", "land", "feed", "--strategy", "squash"],
        cwd=r.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches all of it
    )
    try:
        wait_for(late.took.exists, "the remote to take the push")
        os.killpg(lander.pid, signal.SIGINT)
        out, err = lander.communicate(timeout=120)
    finally:
        if lander.poll() is None:
            lander.kill()
            lander.wait()
    assert (lander.returncode, out) == (130, ""), err
    assert "Traceback" not in err
    assert err.splitlines()[-2:] == [
        "task 'feed' was being published when interrupted: see 'wtp list' for how it ended",
        "wtp: interrupted",
    ], err
    t = next(t for t in r.state()["tasks"] if t["name"] == "feed")
    assert (t["state"], t["phase"], t["holder"], t["intent"]) == ("landing", "landing", None, "publishing")
    late.off(r)
    again = r.wtp_proc("land", "feed", "--strategy", "squash", timeout=120)
    assert again.code == 0, again.err
    assert git(r.remote or r.path, "log", "--format=%s", "main").splitlines().count("feed: work") == 1  # once
    assert not p.exists() and _task_json(r, "feed")["state"] == "landed"


def test_a_task_whose_lander_is_gone_when_its_push_fails_is_active_again_with_why(
    remote_repo: Repo, tmp_path: Path
) -> None:
    """A land whose 'wtp land' is gone (its wait ran out while the conductor published it, or it
    was killed) and whose push then fails stayed marked landing with nobody to take it up
    again: it is active again, its note saying why and what lands it."""
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    from .conftest import queued_landers, wait_for

    r = remote_repo
    r.write(".wtp.toml", f"[remote]\ntimeout = {TIMEOUT * 15}\n")
    for name in ("a", "b"):
        _task(r, name)
    pushing, go, count = tmp_path / "pushing", tmp_path / "go", tmp_path / "count"
    wrapper = tmp_path / "receive-pack"  # the second push (b's) waits for the test, then fails unanswered
    wrapper.write_text(
        f"#!/bin/sh\nn=$(($(cat {count} 2>/dev/null || echo 0) + 1)); echo $n > {count}\n"
        f"if [ $n -ge 2 ]; then touch {pushing}; while [ ! -e {go} ]; do sleep 0.05; done; exit 1; fi\n"
        'exec git receive-pack "$@"\n'
    )
    wrapper.chmod(0o755)
    r.git("config", "remote.origin.receivepack", str(wrapper))
    hold = tmp_path / "hold"  # b's gate passes once a has landed: two pushes
    gate_b = f"while [ ! -e {hold} ]; do sleep 0.05; done"
    queue = Gate(Store(r.path / ".git"), QUEUE)
    landers = queued_landers(
        r,
        ["a", "b"],
        spawn=lambda n: r.spawn("land", n, "--gate", "true" if n == "a" else gate_b),
    )
    b_pids = [landers[1].pid] + [int(k["holder"]["pid"]) for k in queue.tickets() if k.get("label") == "b"]
    wait_for(lambda: _task_json(r, "a")["state"] == "landed", "a to land")
    hold.write_text("")
    wait_for(pushing.exists, "b's push")
    for pid in b_pids:  # b's 'wtp land' is gone while its candidate is pushed
        os.kill(pid, signal.SIGKILL)
    landers[1].wait(timeout=60)
    go.write_text("")
    wait_for(lambda: _task_json(r, "b")["state"] != "landing", "b to be given back")
    b = _task_json(r, "b")
    assert b["state"] == "active", b
    assert b["note"].startswith("its land stopped (pushing refs/heads/main failed on remote 'origin'"), b["note"]
    assert b["note"].endswith("after its 'wtp land' had gone: 'wtp land b' lands it again"), b["note"]
    assert "lands it again" in r.wtp("list").out
    assert landers[0].wait(timeout=120) == 0
    r.git("config", "--unset", "remote.origin.receivepack")
    again = r.wtp_proc("land", "b", "--gate", "true")
    assert again.code == 0, again.err
    assert git(r.remote or r.path, "log", "-2", "--format=%s", "main").split("\n") == ["b: work", "a: work"]
