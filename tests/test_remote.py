"""Beyond one machine (issue 19): gates held through the remote, FIFO across clones, with
leases, fencing tokens and a holder that finds out it lost the gate; shared claims that
admission in another clone sees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Repo, git, git_daemon, wait_for


def clone(r: Repo, name: str, url: str | None = None) -> Repo:
    assert r.remote is not None
    path = r.path.parent / name
    git(r.path.parent, "clone", "-q", url or str(r.remote), str(path))
    git(path, "config", "user.name", "other")
    git(path, "config", "user.email", "other@example.com")
    return Repo(path, r.remote)


def holding(out: Path) -> str:
    """A gated command that records its token, then waits for a 'go' file next to it."""
    return f'echo "$WTP_GATE_TOKEN" > {out}.token; while [ ! -f {out}.go ]; do sleep 0.05; done; echo done > {out}.done'


def test_a_remote_gate_is_fifo_across_clones_over_git_daemon(remote_repo: Repo, tmp_path: Path) -> None:
    with git_daemon(tmp_path) as url:
        git(remote_repo.path, "remote", "set-url", "origin", f"{url}/origin.git")
        other = clone(remote_repo, "other", f"{url}/origin.git")
        a, b = tmp_path / "a", tmp_path / "b"
        first = remote_repo.spawn("gate", "deploy:prod", "--remote", "--", "sh", "-c", holding(a))
        wait_for(lambda: (a.with_suffix(".token")).exists(), "the first holder")
        second = other.spawn("gate", "deploy:prod", "--remote", "--", "sh", "-c", holding(b))
        status = other.wtp("gate", "deploy:prod", "--status", "--remote", "--json")
        wait_for(
            lambda: len(other.wtp("gate", "deploy:prod", "--status", "--remote", "--json").json()["tickets"]) == 2,
            "the second clone to queue",
        )
        assert not b.with_suffix(".token").exists()  # it waits its turn, on another clone
        assert status.code == 0
        a.with_suffix(".go").write_text("")
        assert first.wait(timeout=30) == 0
        wait_for(lambda: b.with_suffix(".token").exists(), "the second holder")
        b.with_suffix(".go").write_text("")
        assert second.wait(timeout=30) == 0, second.stderr.read() if second.stderr else ""
        tokens = [int(p.with_suffix(".token").read_text()) for p in (a, b)]
        assert tokens[1] > tokens[0] >= 1  # fencing tokens only grow
        final = remote_repo.wtp("gate", "deploy:prod", "--status", "--remote", "--json").json()
        assert final["tickets"] == [] and final["token"] == tokens[1]
        for p in (first, second):
            p.communicate()


def test_a_stopped_holder_loses_the_gate_its_command_is_stopped_and_it_says_so(
    remote_repo: Repo, tmp_path: Path
) -> None:
    remote_repo.write(".wtp.toml", "[gate]\nlease = 3\n")
    other = clone(remote_repo, "other")
    other.write(".wtp.toml", "[gate]\nlease = 3\n")
    a, b = tmp_path / "a", tmp_path / "b"
    first = remote_repo.spawn("gate", "deploy:prod", "--remote", "--", "sh", "-c", f"echo $$ > {a}.pid; {holding(a)}")
    wait_for(lambda: a.with_suffix(".token").exists(), "the first holder")
    os.kill(first.pid, signal.SIGSTOP)  # a laptop lid closed, a partition: it cannot renew
    try:
        # the second's command looks whether the first's is still running when it gets the gate
        # (a process killed but not yet reaped by its stopped parent is a zombie: not running)
        state = f"$(sed 's/.*) //' /proc/$(cat {a}.pid)/stat 2>/dev/null | cut -c1)"
        looks = f'case "{state}" in ""|Z) ;; *) echo alive > {b}.alive;; esac; echo "$WTP_GATE_TOKEN" > {b}.token'
        second = other.spawn("gate", "deploy:prod", "--remote", "--", "sh", "-c", looks)
        assert second.wait(timeout=30) == 0, second.communicate()
        assert int(b.with_suffix(".token").read_text()) > int(a.with_suffix(".token").read_text())
        _, err = second.communicate()
        assert "did not renew for a whole lease: dropped" in err
        assert not b.with_suffix(".alive").exists()  # its guardian had stopped the command before
        a.with_suffix(".go").write_text("")  # too late: nothing is left to see it
        assert not a.with_suffix(".done").exists()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 1
    assert err.splitlines()[-1].startswith("wtp: lost remote gate 'deploy:prod' while its command ran: ")
    assert "is stale now" in err and "Traceback" not in err


def test_configured_gates_go_through_the_remote_and_local_ones_stay_local(remote_repo: Repo) -> None:
    remote_repo.write(".wtp.toml", '[gate]\nremote = ["deploy*"]\n')
    assert remote_repo.wtp_proc("gate", "deploy:prod", "--", "true").code == 0
    assert remote_repo.wtp_proc("gate", "db", "--", "true").code == 0
    refs = git(remote_repo.path, "ls-remote", "origin", "refs/wtp/*")
    assert "refs/wtp/gates/deploy%3Aprod" in refs and "gates/db" not in refs


def test_an_unreachable_remote_or_a_corrupt_gate_is_one_line(remote_repo: Repo, tmp_path: Path) -> None:
    git(remote_repo.path, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert out.code == 2 and out.err.count("\n") == 1
    assert out.err.startswith("wtp: cannot reach remote 'origin' for gate 'deploy'")
    waited = remote_repo.wtp_proc("gate", "deploy", "--remote", "--timeout", "1", "--", "true")
    assert waited.code == 3 and "trying again until the timeout" in waited.err
    assert waited.err.splitlines()[-1].startswith("wtp: timed out waiting for remote 'origin' to answer")
    git(remote_repo.path, "remote", "set-url", "origin", str(remote_repo.remote))
    junk = git(remote_repo.path, "rev-parse", "HEAD")
    git(remote_repo.path, "push", "-q", "origin", f"{junk}:refs/wtp/gates/deploy")
    bad = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert bad.code == 2 and bad.err.count("\n") == 1
    assert bad.err.startswith(
        "wtp: the remote gate 'deploy' (refs/wtp/gates/deploy on origin) is not a wtp gate record ("
    )
    assert bad.err.endswith("): reset it with 'git push origin :refs/wtp/gates/deploy' once nobody is using it\n")
    no_remote = Repo(remote_repo.path, None)
    git(no_remote.path, "remote", "remove", "origin")
    none = no_remote.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert none.code == 2 and "--remote needs a remote" in none.err


def test_the_command_dies_with_a_killed_remote_holder_and_the_gate_frees(remote_repo: Repo, tmp_path: Path) -> None:
    remote_repo.write(".wtp.toml", "[gate]\nlease = 3\n")
    a = tmp_path / "a"
    first = remote_repo.spawn("gate", "deploy", "--remote", "--", "sh", "-c", f"{holding(a)}; sleep 60")
    wait_for(lambda: a.with_suffix(".token").exists(), "the holder")
    first.kill()
    first.wait()
    t0 = time.monotonic()
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true", timeout=60)
    assert out.code == 0 and time.monotonic() - t0 < 30
    # no process of the killed holder's command is left
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(a) not in ps


def test_status_of_a_remote_gate_in_json(remote_repo: Repo) -> None:
    data = remote_repo.wtp("gate", "deploy", "--status", "--remote", "--json").json()
    assert data == {"gate": "deploy", "remote": "origin", "token": 0, "tickets": []}
    text = remote_repo.wtp("gate", "deploy", "--status", "--remote")
    assert text.out == "nobody holds or waits for remote gate 'deploy' on 'origin' (last token 0)\n"


def _share(*repos: Repo) -> None:
    for r in repos:
        r.write(".wtp.toml", "share = true\n")


def test_shared_claims_hold_back_a_colliding_task_in_another_clone(remote_repo: Repo) -> None:
    other = clone(remote_repo, "other")
    _share(remote_repo, other)
    assert remote_repo.wtp_proc("start", "feed", "--touch", "src/feed/**", "--use", "db").code == 0
    refs = git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*")
    assert refs.count("\n") == 0 and refs.endswith("/feed")
    held = other.wtp_proc("start", "mine", "--touch", "src/feed/list.js")
    assert (held.code, held.out) == (4, "")
    assert "path src/feed/list.js ~ src/feed/** with task 'feed (clone " in held.err and " old)'" in held.err
    resource = other.wtp_proc("start", "migrate", "--use", "db")
    assert resource.code == 4 and "resource db with task 'feed (clone" in resource.err
    free = other.wtp_proc("start", "docs", "--touch", "README.md")
    assert free.code == 0  # nothing in common: admitted
    seen = other.wtp("list", "--remote", "--json").json()
    assert [(t["task"], t["touch"], t["use"]) for t in seen["tasks"]] == [("feed", ["src/feed/**"], ["db"])]
    table = other.wtp("list", "--remote").out
    assert table.splitlines()[0].split() == ["TASK", "CLONE", "HOST", "AGE", "DECLARES"] and "feed" in table
    # the claim goes when the task goes, and the other clone's next admits what waited
    assert remote_repo.wtp_proc("rm", "feed").code == 0
    assert git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*").count("/feed") == 0
    started = other.wtp_proc("next")
    assert started.code == 0 and "mine" in started.out and "migrate" in started.out
    assert len(git(other.path, "ls-remote", "origin", "refs/wtp/claims/*").splitlines()) == 3  # docs, mine, migrate


def test_a_landed_task_withdraws_its_claim(remote_repo: Repo) -> None:
    _share(remote_repo)
    p = Path(remote_repo.wtp_proc("start", "feed", "--touch", "src/**").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    assert "/feed" in git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*")
    assert remote_repo.wtp_proc("land", "feed").code == 0
    assert git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*") == ""


def test_sharing_with_an_unreachable_remote_is_one_line(remote_repo: Repo, tmp_path: Path) -> None:
    _share(remote_repo)
    git(remote_repo.path, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    out = remote_repo.wtp_proc("start", "feed", "--touch", "src/**")
    assert out.code == 2 and out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith("wtp: cannot reach remote 'origin' to read the other clones' claims (share = true)")


def seen_long_ago(r: Repo, ref: str, oid: str, days: float) -> None:
    """Make this clone have first seen ``ref`` holding ``oid`` ``days`` ago (the file ages
    are judged from: README, shared claims), instead of waiting days."""
    path = r.path / ".git" / "wtp" / "remote-seen.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"version": 1, "seen": {}}
    data["seen"][f"origin {ref}"] = {"id": oid, "first": time.time() - days * 86400}
    path.write_text(json.dumps(data))


def test_doctor_withdraws_our_stale_claims_and_clears_old_ones_of_others_only_when_asked(remote_repo: Repo) -> None:
    other = clone(remote_repo, "other")
    _share(remote_repo, other)
    assert other.wtp_proc("start", "ghost", "--touch", "src/**").code == 0
    # the other clone vanishes without cleaning up, long ago: make its claim old
    ref = git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*").split("\t")[1]
    git(remote_repo.path, "fetch", "-q", "origin", f"{ref}:refs/tmp/claim")
    data = json.loads(git(remote_repo.path, "log", "-1", "--format=%B", "refs/tmp/claim"))
    data["since"] -= 30 * 86400
    (remote_repo.path / "claim.json").write_text(json.dumps(data))
    git(remote_repo.path, "hash-object", "-t", "tree", "-w", "/dev/null")  # the empty tree, for the commit
    commit = git(remote_repo.path, "commit-tree", "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "-F", "claim.json")
    (remote_repo.path / "claim.json").unlink()
    git(remote_repo.path, "push", "-q", "-f", "origin", f"{commit}:{ref}")
    assert "is 30d old" not in remote_repo.wtp("doctor").out  # its writer says so; this clone has not seen it that long
    seen_long_ago(remote_repo, ref, commit, days=30)
    report = remote_repo.wtp("doctor")
    assert report.code == 1
    assert "the shared claim of task 'ghost' (clone " in report.out and "is 30d old" in report.out
    assert "'wtp doctor --fix --stale-claims 7' clears it" in report.out
    assert remote_repo.wtp("doctor", "--fix").code == 1  # not cleared without being asked
    assert ref in git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*")
    cleared = remote_repo.wtp("doctor", "--fix", "--stale-claims", "7")
    assert cleared.code == 0 and f"cleared {ref} on 'origin'" in cleared.out
    # our own claim of a task we no longer run (its removal could not reach the remote)
    assert remote_repo.wtp_proc("start", "mine", "--touch", "docs/**").code == 0
    assert any(t["name"] == "mine" for t in remote_repo.state()["tasks"])
    git(remote_repo.path, "remote", "set-url", "origin", "/nonexistent/repo.git")
    assert remote_repo.wtp_proc("rm", "mine").code == 0  # the withdrawal could not reach the remote
    git(remote_repo.path, "remote", "set-url", "origin", str(remote_repo.remote))
    found = remote_repo.wtp("doctor", "--fix")
    assert found.code == 0 and "is of a task this clone no longer runs" in found.out
    assert git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*") == ""


def test_a_guardian_with_a_lease_stops_the_command_when_no_renewal_comes(tmp_path: Path) -> None:
    from worktree_par.guarded import Guarded

    fed = Guarded(["sh", "-c", "sleep 1.5; echo ok"], tmp_path, dict(os.environ), lease=1)
    for _ in range(3):  # renewed in time: runs to its end
        time.sleep(0.5)
        fed.feed()
    assert fed.wait(timeout=10) == 0 and not fed.lease_expired
    starved = Guarded(["sh", "-c", f"sleep 5; touch {tmp_path}/late"], tmp_path, dict(os.environ), lease=1)
    assert starved.wait(timeout=10) == 137 and starved.lease_expired
    assert not (tmp_path / "late").exists()


def test_an_edit_the_agent_hook_allowed_reaches_the_other_clones_claims(remote_repo: Repo) -> None:
    other = clone(remote_repo, "other")
    _share(remote_repo, other)
    p = Path(remote_repo.wtp_proc("start", "feed").out.strip())
    event = {"tool_name": "Edit", "cwd": str(p), "tool_input": {"file_path": str(p / "src/app.js")}}
    hook = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "pre-edit"],
        input=json.dumps(event),
        capture_output=True,
        text=True,
    )
    assert (hook.returncode, hook.stdout) == (0, "")  # allowed at once; the claim is refreshed in the background
    wait_for(
        lambda: any("src/app.js" in t["recorded"] for t in other.wtp("list", "--remote", "--json").json()["tasks"]),
        "the recorded edit to reach the remote",
    )
    held = other.wtp_proc("start", "mine", "--touch", "src/app.js")
    assert held.code == 4 and "with task 'feed (clone" in held.err


@pytest.mark.stress
def test_racing_clones_never_hold_a_remote_gate_at_once(remote_repo: Repo, tmp_path: Path) -> None:
    """Three clones (one of them twice) race for one remote gate, three times each: the
    commands never overlap, and every grant has a token of its own, in increasing order."""
    others = [clone(remote_repo, f"c{i}") for i in range(2)]
    inside, log = tmp_path / "inside", tmp_path / "log"
    # mkdir is atomic: a second holder inside the critical section would fail it and say so
    body = (
        f'mkdir {inside} 2>/dev/null || echo OVERLAP >> {log}; echo "$WTP_GATE_TOKEN" >> {log}; '
        f"sleep 0.2; rmdir {inside}"
    )
    procs = []
    for r in [remote_repo, remote_repo, *others]:
        for _ in range(3):
            procs.append(r.spawn("gate", "deploy", "--remote", "--timeout", "120", "--", "sh", "-c", body))
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    lines = log.read_text().split()
    assert "OVERLAP" not in lines
    tokens = [int(t) for t in lines]
    assert len(tokens) == 12 and sorted(tokens) == tokens and len(set(tokens)) == 12


def test_a_gate_record_that_moved_after_it_was_listed_is_read_as_fetched(
    remote_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ls-remote names one record, the fetch right after brings a newer one: the newer one is
    read (and is what the next compare-and-swap expects), not the listed id this clone never got."""
    from worktree_par import gitops
    from worktree_par.remote.gates import RemoteGate
    from worktree_par.repo import open_ctx

    other = clone(remote_repo, "other")
    ref = "refs/wtp/gates/deploy"
    assert remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true").code == 0
    listed = git(remote_repo.path, "ls-remote", "origin", ref).split()[0]
    assert remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true").code == 0
    newest = git(remote_repo.path, "ls-remote", "origin", ref).split()[0]
    assert newest != listed
    real = gitops.ls_remote
    monkeypatch.setattr(
        gitops, "ls_remote", lambda cwd, remote, patterns: {**(real(cwd, remote, patterns) or {}), ref: listed}
    )
    sha, record = RemoteGate(open_ctx(other.path), "deploy", "origin", 30, lambda _m: None).read()
    assert (sha, record["token"]) == (newest, 2)


def test_the_lease_renewals_git_commands_can_be_stopped_as_the_job_is(remote_repo: Repo, tmp_path: Path) -> None:
    """The thread that renews a remote gate's lease starts git commands, which inherit its
    signal mask: it blocks the interrupts alone (the main thread's to handle), not Ctrl-Z's
    stop and continue, so a renewal's push (and an ssh asking for a passphrase) stops with the
    job (review 48)."""
    remote_repo.write(".wtp.toml", "[gate]\nlease = 3\n")
    wrapper, log = tmp_path / "bin" / "git", tmp_path / "masks"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\necho "$(grep SigBlk /proc/$$/status | cut -f2) $1 $2" >> {log}\nexec {shutil.which("git")} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {"PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "sleep", "2.5", env=env)
    assert out.code == 0, out.err
    pushes = [int(line.split()[0], 16) for line in log.read_text().splitlines() if " push " in f" {line} "]
    assert len(pushes) >= 3, log.read_text()  # the take, a renewal every second, the release
    job = (signal.SIGTSTP, signal.SIGCONT, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)
    assert not [m for m in pushes if any(m & (1 << (s - 1)) for s in job)], log.read_text()
