"""The network boundary (issue 24, C): a remote that accepts the connection and never
answers stops each git network call at its deadline ([remote] timeout) with one line and
exit 3; records read from the remote are validated before use; a clone's identity is bound
to the clone; ages and leases are measured on this clone's own clock."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Out, Repo, end_pids, git, wait_for

TIMEOUT = 2  # [remote] timeout in these tests
WITHIN = 20  # seconds a command may take in all, on a loaded machine: far below a hang


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


class Hang:
    """Wrapper scripts set as the remote's upload-pack / receive-pack: each records its pid,
    then never answers (a remote that accepted the connection and hung)."""

    def __init__(self, tmp: Path) -> None:
        self.pids = tmp / "hung.pids"
        self.script = tmp / "hang.sh"
        self.script.write_text(f"#!/bin/sh\necho $$ >> {self.pids}\nexec sleep 3600\n")
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)

    def on(self, r: Repo, *which: str) -> None:
        for w in which or ("uploadpack", "receivepack"):
            r.git("config", f"remote.origin.{w}", str(self.script))

    def off(self, r: Repo) -> None:
        for w in ("uploadpack", "receivepack"):
            r.git("config", "--unset", f"remote.origin.{w}", check=False)

    def started(self) -> list[int]:
        return [int(p) for p in self.pids.read_text().split()] if self.pids.exists() else []

    def end(self) -> None:
        end_pids(self.pids)


@pytest.fixture
def hang(tmp_path: Path) -> Iterator[Hang]:
    h = Hang(tmp_path)
    yield h
    h.end()  # what the deadline did not stop (before the fix), by pid


def _config(r: Repo, extra: str = "") -> None:
    r.write(".wtp.toml", f"{extra}[remote]\ntimeout = {TIMEOUT}\n")


def _one_line_timeout(out: Out, hang: Hang, took: float, what: str) -> None:
    code, stdout, err = out.code, out.out, out.err
    assert (code, stdout) == (3, ""), (code, stdout, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"wtp: remote 'origin' did not answer within {TIMEOUT}s ({what})"), err
    assert "[remote] timeout" in err
    assert took < WITHIN
    assert hang.started() and not any(_alive(p) for p in hang.started())  # its process group was ended


def _timed(r: Repo, *args: str) -> tuple[Out, float]:
    t0 = time.monotonic()
    out = r.wtp_proc(*args, timeout=60)
    return out, time.monotonic() - t0


def test_a_remote_gate_against_a_hung_remote_is_one_line_within_the_deadline(remote_repo: Repo, hang: Hang) -> None:
    _config(remote_repo)
    hang.on(remote_repo)
    out, took = _timed(remote_repo, "gate", "deploy", "--remote", "--", "true")
    _one_line_timeout(out, hang, took, "listing its refs")


def test_gate_timeout_bounds_the_wait_for_a_hung_remote_too(remote_repo: Repo, hang: Hang) -> None:
    hang.on(remote_repo)  # [remote] timeout stays 30 s: --timeout 2 is what ends it
    out, took = _timed(remote_repo, "gate", "deploy", "--remote", "--timeout", "2", "--", "true")
    assert (out.code, out.out) == (3, "") and "Traceback" not in out.err
    assert out.err.startswith("wtp: timed out waiting for remote 'origin' to answer: remote 'origin' did not answer")
    assert took < WITHIN and not any(_alive(p) for p in hang.started())


def test_a_shared_start_and_list_remote_against_a_hung_remote(remote_repo: Repo, hang: Hang) -> None:
    _config(remote_repo, "share = true\n")
    hang.on(remote_repo)
    out, took = _timed(remote_repo, "start", "feed", "--touch", "src/**")
    _one_line_timeout(out, hang, took, "listing its refs")
    assert (
        "feed" not in remote_repo.branches()
        and not remote_repo.state_file.exists()
        or not any(t["name"] == "feed" for t in remote_repo.state()["tasks"])
    )
    out, took = _timed(remote_repo, "list", "--remote")
    _one_line_timeout(out, hang, took, "listing its refs")


def test_doctor_reports_a_hung_remote_in_one_finding_and_checks_the_rest(remote_repo: Repo, hang: Hang) -> None:
    _config(remote_repo, "share = true\n")
    hang.on(remote_repo)
    out, took = _timed(remote_repo, "doctor")
    assert out.code == 1 and "Traceback" not in out.err
    assert f"shared claims not checked: remote 'origin' did not answer within {TIMEOUT}s" in out.out
    assert took < WITHIN and not any(_alive(p) for p in hang.started())


def test_doctor_asks_a_hung_remote_once_with_a_task_queued(remote_repo: Repo, hang: Hang) -> None:
    """Review 34: with shared claims and a queued task, doctor asked the hung remote twice (the
    claims, then the other clones' tasks before saying what can start): two timeouts."""
    _config(remote_repo, "share = true\nmax_active = 1\n")
    assert remote_repo.wtp_proc("start", "a").code == 0
    assert remote_repo.wtp_proc("start", "q").code == 4
    hang.on(remote_repo)
    out, took = _timed(remote_repo, "doctor")
    assert out.code == 1 and "Traceback" not in out.err
    assert f"shared claims not checked: remote 'origin' did not answer within {TIMEOUT}s" in out.out
    assert "can start now" not in out.out  # nothing is said to start blind
    assert len(hang.started()) == 1, hang.started()  # one call to the hung remote, one timeout
    assert took < WITHIN


@pytest.mark.parametrize("which", ["uploadpack", "receivepack"])
def test_a_land_against_a_hung_remote_stops_and_frees_the_queue(remote_repo: Repo, hang: Hang, which: str) -> None:
    _config(remote_repo)
    p = Path(remote_repo.wtp_proc("start", "feed", "--touch", "src/**").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    hang.on(remote_repo, which)
    out, took = _timed(remote_repo, "land", "feed")
    assert out.code == 3 and "Traceback" not in out.err, out.err
    what = "fetching 'main'" if which == "uploadpack" else "pushing refs/heads/main"
    assert f"wtp: remote 'origin' did not answer within {TIMEOUT}s ({what})" in out.err
    assert took < WITHIN and not any(_alive(p) for p in hang.started())
    # the hung lander held nothing: with the link back, the next lander lands
    hang.off(remote_repo)
    again = remote_repo.wtp_proc("land", "feed", timeout=60)
    assert again.code == 0, again.err
    assert git(remote_repo.path, "ls-remote", "origin", "refs/heads/main").split()[0] == remote_repo.git(
        "rev-parse", "main"
    )


@pytest.mark.parametrize("which", ["url", "pushurl"])
def test_a_land_against_a_refused_remote_is_one_line_and_keeps_the_task(
    remote_repo: Repo, tmp_path: Path, which: str
) -> None:
    """A remote that refuses (a wrong URL, no access): git's reason in one line, exit 2, no
    crash log, the task active again, and the next land, with the URL mended, lands it."""
    p = Path(remote_repo.wtp_proc("start", "feed").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    remote_repo.git("config", f"remote.origin.{which}", str(tmp_path / "gone.git"))
    out = remote_repo.wtp_proc("land", "feed", timeout=60)
    what = "fetching 'main'" if which == "url" else "pushing refs/heads/main"
    assert out.code == 2 and "Traceback" not in out.err and "details in" not in out.err, out.err
    assert out.err.splitlines()[-1] == (
        f"wtp: {what} failed on remote 'origin': '{tmp_path / 'gone.git'}' does not appear to be a git "
        "repository; check the network, your access and the remote's URL ('git remote -v'), then try again"
    )
    as_json = remote_repo.wtp_proc("land", "feed", "--json", timeout=60)
    assert as_json.code == 2 and json.loads(as_json.out)["error"].startswith(f"{what} failed on remote 'origin'")
    assert [t["state"] for t in remote_repo.state()["tasks"]] == ["active"]
    remote_repo.git("config", f"remote.origin.{which}", str(remote_repo.remote))
    assert remote_repo.wtp_proc("land", "feed", timeout=60).code == 0


def test_a_push_the_server_refuses_access_to_is_one_line_with_its_words_and_exit_2(remote_repo: Repo) -> None:
    """As GitHub or GitLab over https answer a push without access: the server's 'remote:' line,
    then git's fatal line. No report for the ref: exit 2 (not a blocked land), both said."""
    p = Path(remote_repo.wtp_proc("start", "feed").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    refuse = (
        "echo 'remote: You are not allowed to push code to this project.' >&2; "
        "echo 'fatal: unable to access the repository: The requested URL returned error: 403' >&2; exit 128"
    )
    remote_repo.git("config", "remote.origin.receivepack", f'sh -c "{refuse}"')
    out = remote_repo.wtp_proc("land", "feed", "--gate", "true", timeout=60)
    assert out.code == 2 and "Traceback" not in out.err, out.err
    assert out.err.splitlines()[-1] == (
        "wtp: pushing refs/heads/main failed on remote 'origin': unable to access the repository: The requested "
        "URL returned error: 403 (the remote said: You are not allowed to push code to this project); check the "
        "network, your access and the remote's URL ('git remote -v'), then try again"
    )
    remote_repo.git(
        "config",
        "remote.origin.receivepack",
        "sh -c \"echo 'ssh: Could not resolve hostname git.invalid: Name or service not known' >&2; exit 255\"",
    )
    ssh = remote_repo.wtp_proc("land", "feed", "--gate", "true", timeout=60)
    assert ssh.code == 2 and "failed on remote 'origin': ssh: Could not resolve hostname git.invalid" in ssh.err
    assert [t["state"] for t in remote_repo.state()["tasks"]] == ["active"]


def test_a_base_branch_the_remote_lacks_is_named_with_what_to_do(remote_repo: Repo) -> None:
    p = Path(remote_repo.wtp_proc("start", "feed").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    assert remote_repo.remote is not None
    git(remote_repo.remote, "update-ref", "-d", "refs/heads/main")  # as a bare remote without it
    out = remote_repo.wtp_proc("land", "feed", "--gate", "true", timeout=60)
    assert out.code == 2 and out.err.splitlines()[-1] == (
        "wtp: remote 'origin' has no branch 'main': push it first ('git push origin main'), or land onto a branch it has"
    ), out.err


def test_a_command_deadline_shortens_every_network_call_and_stays_in_its_context(remote_repo: Repo, hang: Hang) -> None:
    """network_deadline is what a --timeout flag uses: it narrows [remote] timeout for the
    calls inside it only (the MCP server runs many commands in one process)."""
    import contextvars

    from worktree_par import gitops
    from worktree_par.errors import RemoteTimeout

    hang.on(remote_repo)
    t0 = time.monotonic()
    with gitops.network_deadline(1), pytest.raises(RemoteTimeout) as caught:
        assert gitops.network_budget() <= 1
        assert contextvars.Context().run(gitops.network_budget) == gitops.NETWORK_TIMEOUT  # another command's
        gitops.ls_remote(remote_repo.path, "origin", ["refs/wtp/*"])
    assert time.monotonic() - t0 < WITHIN
    assert "did not answer within 1s (listing its refs)" in caught.value.message
    assert gitops.network_budget() == gitops.NETWORK_TIMEOUT

    def command_with_timeout() -> float:  # what a front door's bound_waits(--timeout) does
        gitops.narrow_network(5)
        return gitops.network_budget()

    assert 0 < contextvars.copy_context().run(command_with_timeout) <= 5
    assert gitops.network_budget() == gitops.NETWORK_TIMEOUT  # the next command starts afresh


# A receive-pack that applies a push at once and answers late (mode "slow": the report goes
# out 5 s after the push was applied), or never (mode "hang"), switched by a flag file.
_SLOW_ACK = """#!{python}
import os, subprocess, sys, threading, time
flag, pids = {flag!r}, {pids!r}
mode = open(flag).read().strip() if os.path.exists(flag) else "fast"
with open(pids, "a") as f:
    f.write(f"{{os.getpid()}}\\n")
if mode == "hang":
    time.sleep(3600)
p = subprocess.Popen(["git", "receive-pack", *sys.argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
asked = threading.Event()
def up():
    while chunk := os.read(0, 65536):
        asked.set()
        p.stdin.write(chunk)
        p.stdin.flush()
    p.stdin.close()
threading.Thread(target=up, daemon=True).start()
late = mode == "slow"
while chunk := os.read(p.stdout.fileno(), 65536):
    if asked.is_set() and late:  # the update is applied: its report is what comes now
        time.sleep(5)
        late = False
    os.write(1, chunk)
sys.exit(p.wait())
"""


def test_a_lease_is_timed_from_the_renewal_sent_so_late_acks_then_a_dead_link_stop_the_holder_first(
    remote_repo: Repo, tmp_path: Path, hang: Hang
) -> None:
    """Acknowledgements 5 s late, then none: the holder's command is stopped before the
    waiter's starts.  Lease 18 s, margin 3 s: the command stops 15 s after the last renewal
    that was acknowledged was *sent*; the waiter starts no sooner than 18 s after it saw it."""
    import sys

    from .test_remote import clone

    flag = tmp_path / "link"
    wrapper = tmp_path / "slow-ack"
    wrapper.write_text(_SLOW_ACK.format(python=sys.executable, flag=str(flag), pids=str(hang.pids)))
    wrapper.chmod(0o755)
    other = clone(remote_repo, "other")
    for r in (remote_repo, other):
        r.write(".wtp.toml", "[gate]\nlease = 18\n")
    remote_repo.git("config", "remote.origin.receivepack", str(wrapper))
    flag.write_text("slow")
    beats, started = tmp_path / "beats", tmp_path / "waiter"
    holder = remote_repo.spawn(
        "gate", "deploy", "--remote", "--", "sh", "-c", f"while :; do date +%s.%N >> {beats}; sleep 0.05; done"
    )
    spawned = [holder]
    try:
        wait_for(lambda: beats.exists(), "the holder's command", timeout=60)
        waiter = other.spawn("gate", "deploy", "--remote", "--", "sh", "-c", f"date +%s.%N > {started}")
        spawned.append(waiter)

        def head_beat() -> int:
            tickets = other.wtp("gate", "deploy", "--status", "--remote", "--json").json()["tickets"]
            return int(tickets[0]["beat"]) if len(tickets) == 2 else -1

        wait_for(lambda: head_beat() >= 2, "two renewals acknowledged 5 s late", timeout=60)
        flag.write_text("hang")  # the link dies
        assert holder.wait(timeout=120) == 1
        assert waiter.wait(timeout=120) == 0
    finally:
        for p in spawned:  # by pid, whatever happened
            if p.poll() is None:
                p.kill()
                p.wait()
    err = holder.stderr.read() if holder.stderr else ""
    assert "lost remote gate 'deploy' while its command ran" in err
    last = float(beats.read_text().split()[-1])
    assert last < float(started.read_text()), "the waiter's command started while the holder's still ran"


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ("[remote]\ntimeout = 0\n", "'remote.timeout' must be between 1 and 3600 seconds, not 0"),
        ('[remote]\ntimeout = "2"\n', "'remote.timeout' must be a number, not '2'"),
        ("[remote]\nwait = 2\n", "unknown key 'remote.wait'"),
    ],
)
def test_the_remote_timeout_key_is_validated_like_the_others(repo: Repo, toml: str, error: str) -> None:
    repo.write(".wtp.toml", toml)
    out = repo.wtp("list")
    assert (
        out.code == 2
        and out.err
        == f"wtp: {repo.path / '.wtp.toml'}: {error}"
        + ("" if "unknown" not in error else ": see 'wtp init' for the keys wtp reads")
        + "\n"
    )


def test_the_remote_table_names_the_remote_and_its_timeout(remote_repo: Repo) -> None:
    from worktree_par import config

    remote_repo.write(".wtp.toml", '[remote]\nname = "origin"\ntimeout = 7\n')
    cfg = config.load(remote_repo.path)
    assert (cfg.remote, cfg.remote_timeout) == ("origin", 7)
    remote_repo.write(".wtp.toml", 'remote = "origin"\n')
    assert config.load(remote_repo.path).remote_timeout == 30
