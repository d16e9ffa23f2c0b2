"""The network boundary (issue 24, C): a remote that accepts the connection and never
answers stops each git network call at its deadline ([remote] timeout) with one line and
exit 3; records read from the remote are validated before use; a clone's identity is bound
to the clone; ages and leases are measured on this clone's own clock."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Repo, git

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
        for pid in self.started():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def hang(tmp_path: Path) -> Iterator[Hang]:
    h = Hang(tmp_path)
    yield h
    h.end()  # what the deadline did not stop (before the fix), by pid


def _config(r: Repo, extra: str = "") -> None:
    r.write(".wtp.toml", f"{extra}[remote]\ntimeout = {TIMEOUT}\n")


def _one_line_timeout(out: object, hang: Hang, took: float, what: str) -> None:
    code, stdout, err = out.code, out.out, out.err  # type: ignore[attr-defined]
    assert (code, stdout) == (3, ""), (code, stdout, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"wtp: remote 'origin' did not answer within {TIMEOUT}s ({what})"), err
    assert "[remote] timeout" in err
    assert took < WITHIN
    assert hang.started() and not any(_alive(p) for p in hang.started())  # its process group was ended


def _timed(r: Repo, *args: str) -> tuple[object, float]:
    t0 = time.monotonic()
    out = r.wtp_proc(*args, timeout=60)
    return out, time.monotonic() - t0


def test_a_remote_gate_against_a_hung_remote_is_one_line_within_the_deadline(remote_repo: Repo, hang: Hang) -> None:
    _config(remote_repo)
    hang.on(remote_repo)
    out, took = _timed(remote_repo, "gate", "deploy", "--remote", "--", "true")
    _one_line_timeout(out, hang, took, "listing its refs")


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
    assert out.code == 1 and "Traceback" not in out.err  # type: ignore[attr-defined]
    assert f"shared claims not checked: remote 'origin' did not answer within {TIMEOUT}s" in out.out  # type: ignore[attr-defined]
    assert took < WITHIN and not any(_alive(p) for p in hang.started())


@pytest.mark.parametrize("which", ["uploadpack", "receivepack"])
def test_a_land_against_a_hung_remote_stops_and_frees_the_queue(remote_repo: Repo, hang: Hang, which: str) -> None:
    _config(remote_repo)
    p = Path(remote_repo.wtp_proc("start", "feed", "--touch", "src/**").out.strip())
    remote_repo.commit({"src/feed.txt": "x\n"}, cwd=p)
    hang.on(remote_repo, which)
    out, took = _timed(remote_repo, "land", "feed")
    assert out.code == 3 and "Traceback" not in out.err, out.err  # type: ignore[attr-defined]
    what = "fetching 'main'" if which == "uploadpack" else "pushing refs/heads/main"
    assert f"wtp: remote 'origin' did not answer within {TIMEOUT}s ({what})" in out.err  # type: ignore[attr-defined]
    assert took < WITHIN and not any(_alive(p) for p in hang.started())
    # the hung lander held nothing: with the link back, the next lander lands
    hang.off(remote_repo)
    again = remote_repo.wtp_proc("land", "feed", timeout=60)
    assert again.code == 0, again.err
    assert git(remote_repo.path, "ls-remote", "origin", "refs/heads/main").split()[0] == remote_repo.git(
        "rev-parse", "main"
    )


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
