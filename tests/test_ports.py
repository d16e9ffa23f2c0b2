"""A task's PORT, and the one a 'check --test' run gets, is one nothing on this machine
listens on (review 36): a port a server holds (a dev server of the main worktree, one an
earlier gate left running) made the task's or the run's own server fail, for a reason that
was not its own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Repo
from .test_semantic import Gated


@pytest.fixture
def held() -> Iterator[socket.socket]:
    """A server listening on a port of its own, as a dev server or a leftover would."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s
    s.close()


def test_a_task_is_given_a_port_nothing_listens_on(repo: Repo, held: socket.socket) -> None:
    busy = held.getsockname()[1]
    repo.write(".wtp.toml", f"port_base = {busy}\n")
    repo.wtp("start", "a")
    port = next(t["port"] for t in repo.wtp("list", "--json").json()["tasks"] if t["name"] == "a")
    assert port > busy


def test_a_check_run_is_given_a_port_nothing_listens_on(tmp_path: Path, held: socket.socket) -> None:
    busy = held.getsockname()[1]
    g = Gated(tmp_path, extra=f"port_base = {busy - 999}\n")  # check runs take theirs from the top: busy
    t1, t2 = g.start("t1"), g.start("t2")
    (t1 / "pkg" / "one.py").write_text("X = 1\n")
    (t2 / "pkg" / "two.py").write_text("Y = 2\n")
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 0, out.err
    ports = [int(r[2]) for r in g.runs() if r[0] == "start"]
    assert ports and busy not in ports, ports


def test_a_server_on_the_ipv6_loopback_holds_its_port_too(repo: Repo) -> None:
    """Review 38: only 127.0.0.1 was tried, and a dev server on [::1] (how Node and Vite bind
    'localhost') left its port to a task whose own server then failed."""
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with s:
        s.listen()
        busy = s.getsockname()[1]
        repo.write(".wtp.toml", f"port_base = {busy}\n")
        repo.wtp("start", "a")
        port = next(t["port"] for t in repo.wtp("list", "--json").json()["tasks"] if t["name"] == "a")
    assert port > busy
