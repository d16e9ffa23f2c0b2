"""'wtp land --detach' (issue 28): the request is a ticket in the queue when the call returns,
owned by a background process nobody waits for; killed, its land is rolled back and started
again by the next 'wtp land'.  How fast it returns lives in scripts/bench_queue.py."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from worktree_par.entry import parse_land
from worktree_par.procs import pid_alive, process_stopped
from worktree_par.state import Store

from .conftest import Repo, wait_for

if TYPE_CHECKING:
    from worktree_par.gates import Gate
from .test_queue import _first_parents_pass, _tasks


def _held(release: Path) -> str:
    """A gate held until the test creates ``release``, then the project's test."""
    return f"until [ -e {release} ]; do sleep 0.05; done; ./check.sh"


def _log_of(out: str) -> str:
    """The background lander's log that 'wtp land --detach' names."""
    return out.rsplit("(log: ", 1)[1].rstrip(")\n")


def test_the_fast_path_reads_land_options_as_typer_does() -> None:
    assert parse_land(["land", "t1", "--detach", "--gate", "make test", "--timeout", "5"]) == (
        None,
        "t1",
        {"detach": True, "gate": "make test", "timeout": 5.0},
    )
    assert parse_land(["-C", "/r", "land", "--no-push", "--keep", "--mode", "batch", "--json"]) == (
        "/r",
        None,
        {"no_push": True, "keep": True, "mode": "batch", "as_json": True},
    )
    assert parse_land(["land", "t1", "t2", "--detach", "t3"]) == (None, "t1", {"detach": True, "also": ("t2", "t3")})
    # anything else is typer's to answer (and explain)
    for args in (["land", "--gate"], ["land", "--gate=x"], ["land", "--timeout", "-1"], ["list"]):
        assert parse_land(args) is None, args


def test_a_detached_land_whose_process_is_killed_is_started_again(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 1)
    started = tmp_path / "started"
    gate = f"touch {started}; sleep 60"
    out = project.wtp_proc("land", "t1", "--detach", "--gate", gate)
    assert out.code == 0, out.err
    wait_for(started.exists, "the detached land's gate to start")
    entries = json.loads(project.wtp_proc("queue", "--json").out)["entries"]
    assert [(e["task"], e["place"]) for e in entries] == [("t1", 1)]
    os.kill(entries[0]["pid"], signal.SIGKILL)  # the detached process this test's command started
    wait_for(lambda: json.loads(project.wtp_proc("queue", "--json").out)["entries"] == [], "its ticket to go")
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "landing"  # mid-land, nothing lost
    again = project.wtp_proc("land", "t1", "--detach", "--gate", "./check.sh")
    assert again.code == 0, again.err
    assert "rolled back the interrupted land of 't1' to its pre-land tip" in again.err
    assert again.out.startswith("queued 't1' to land at place 1; ")
    wait_for(lambda: project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed", "t1 to land")
    assert _first_parents_pass(project) == ["t1 work", "the test", "initial"]


def test_a_detached_land_whose_push_fails_says_why_on_its_task(project: Repo, tmp_path: Path) -> None:
    """Review 32: a detached land whose push failed gave its task back active with no note:
    'wtp list', 'wtp queue' and 'wtp doctor' said nothing, and only the land's log knew."""
    _tasks(project, 1)
    refuse = tmp_path / "receive-pack"
    refuse.write_text("#!/bin/sh\nexit 1\n")  # the remote hangs up on every push
    refuse.chmod(0o755)
    project.git("config", "remote.origin.receivepack", str(refuse))
    out = project.wtp_proc("land", "t1", "--detach", "--gate", "./check.sh")
    assert out.code == 0, out.err

    def given_back() -> dict[str, object] | None:
        t: dict[str, object] = project.wtp("list", "--json").json()["tasks"][0]
        return t if t["state"] == "active" and t["note"] else None

    wait_for(given_back, "t1 given back with a note")
    note = str((given_back() or {})["note"])
    assert note.startswith("its detached land stopped (pushing refs/heads/main failed on remote 'origin'"), note
    assert note.endswith("'wtp land t1' lands it again"), note
    assert "lands it again" in project.wtp("list").out


def test_detached_lands_are_served_by_one_background_lander(project: Repo, tmp_path: Path) -> None:
    """Five agents landing with --detach start one background process, not five: the first
    call starts it, the others hand it their ticket.  It serves them one after another, then
    stops looking for more and exits; the next detached land starts a new one."""
    _tasks(project, 4)
    release = tmp_path / "release"
    gate = _held(release)
    outs = [project.wtp_proc("land", f"t{i}", "--detach", "--gate", gate) for i in (1, 2, 3)]
    assert [o.code for o in outs] == [0, 0, 0], [o.err for o in outs]
    logs = {_log_of(o.out) for o in outs}
    assert len(logs) == 1 and next(iter(logs)).endswith("land-detached-t1.log"), logs
    entries = json.loads(project.wtp_proc("queue", "--json").out)["entries"]
    assert [e["task"] for e in entries] == ["t1", "t2", "t3"]
    pids = {e["pid"] for e in entries}
    assert len(pids) == 1, entries  # one process holds every ticket
    release.touch()
    wait_for(
        lambda: [t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]][:3] == ["landed"] * 3,
        "the three detached lands to land",
    )
    (pid,) = pids
    wait_for(lambda: not pid_alive(pid), "the background lander to exit once it holds no ticket")
    assert _first_parents_pass(project) == ["t3 work", "t2 work", "t1 work", "the test", "initial"]
    log = Path(next(iter(logs))).read_text()
    assert re.findall(r"^landed '(t\d)' at [0-9a-f]{40}$", log, re.M) == ["t1", "t2", "t3"], log
    # every ticket it held was served before any clean-up: none waited at the head of the queue for one
    assert re.findall(r"^(landed|removed task) '(t\d)'", log, re.M) == [
        ("landed", "t1"),
        ("landed", "t2"),
        ("landed", "t3"),
        ("removed task", "t1"),
        ("removed task", "t2"),
        ("removed task", "t3"),
    ], log
    # Gone, it is not handed tickets any more: the next detached land starts its own.
    later = project.wtp_proc("land", "t4", "--detach", "--gate", gate)
    assert later.code == 0, later.err
    assert later.out.rstrip(")\n").endswith("land-detached-t4.log"), later.out
    wait_for(lambda: project.wtp("list", "--all", "--json").json()["tasks"][3]["state"] == "landed", "t4 to land")


def test_a_server_record_not_as_wtp_writes_it_is_ignored(project: Repo) -> None:
    import hashlib

    _tasks(project, 1)
    gate_dir = project.path / ".git" / "wtp" / "gates" / hashlib.sha1(b"#land").hexdigest()[:16]
    gate_dir.mkdir(parents=True, exist_ok=True)
    planted = {"version": 1, "name": "#land", "seq": 0, "tickets": [], "server": {"holder": "pid 1", "log": 5}}
    (gate_dir / "tickets.json").write_text(json.dumps(planted))
    out = project.wtp_proc("land", "t1", "--detach", "--gate", "./check.sh")
    assert out.code == 0, out.err
    assert out.out.rstrip(")\n").endswith("land-detached-t1.log"), out.out  # its own lander, not 'pid 1'
    wait_for(lambda: project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed", "t1 to land")


def _queue_gate(project: Repo) -> Gate:
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    common = Path(project.git("rev-parse", "--path-format=absolute", "--git-common-dir"))
    return Gate(Store(common), QUEUE, title="the land queue")


def test_a_ticket_the_background_lander_cannot_read_is_given_back_and_the_rest_land(
    project: Repo, tmp_path: Path
) -> None:
    _tasks(project, 3)
    release = tmp_path / "release"
    gate = _held(release)
    # t2 in another mode: the conductor does not stack it, so its ticket is read only when served
    outs = [
        project.wtp_proc("land", f"t{i}", "--detach", "--gate", gate, *(["--mode", "serial"] if i == 2 else []))
        for i in (1, 2, 3)
    ]
    assert [o.code for o in outs] == [0, 0, 0], [o.err for o in outs]
    q = _queue_gate(project)
    with q.meta:  # t2's ticket damaged, as another version or a torn write might leave it
        data = json.loads(q.file.read_text())
        next(t for t in data["tickets"] if t["label"] == "t2")["data"] = "garbage"
        q.file.write_text(json.dumps(data))
    release.touch()
    states = lambda: {t["name"]: t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]}  # noqa: E731
    wait_for(lambda: states() == {"t1": "landed", "t2": "active", "t3": "landed"}, "t1 and t3 to land, t2 back")
    log = Path(_log_of(outs[0].out)).read_text()
    assert (
        "wtp: a detached land was handed a request it cannot read: 'main' untouched by this land, "
        "task 't2' is active again; run 'wtp land t2' again" in log.splitlines()
    ), log
    assert json.loads(project.wtp_proc("queue", "--json").out)["entries"] == []


def test_a_stopped_background_lander_is_not_handed_tickets(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 2)
    release = tmp_path / "release"
    gate = _held(release)
    first = project.wtp_proc("land", "t1", "--detach", "--gate", gate)
    assert first.code == 0, first.err
    (lander,) = {e["pid"] for e in json.loads(project.wtp_proc("queue", "--json").out)["entries"]}
    # stopped holding the state lock or the queue's ticket lock, every command would rightly wait for it
    held = [Store(project.path / ".git").lock(), _queue_gate(project).meta]
    while True:  # stopped (Ctrl-Z, a debugger) between two writes: it could not serve a ticket now
        os.kill(lander, signal.SIGSTOP)
        wait_for(lambda: process_stopped(lander), "the lander to stop")
        free = [lock for lock in held if lock.try_acquire()]
        for lock in free:
            lock.release()
        if len(free) == len(held):
            break
        os.kill(lander, signal.SIGCONT)
    try:
        second = project.wtp_proc("land", "t2", "--detach", "--gate", "./check.sh")
        assert second.code == 0, second.err
        assert second.out.rstrip(")\n").endswith("land-detached-t2.log"), second.out  # a lander of its own
    finally:
        os.kill(lander, signal.SIGCONT)
    release.touch()
    wait_for(
        lambda: {t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]} == {"landed"},
        "both to land",
    )


def test_sigterm_to_the_background_lander_gives_back_every_land_it_holds(project: Repo, tmp_path: Path) -> None:
    """Stopped by SIGTERM (a supervisor, a shutdown), the background lander died without a
    word: its tasks stayed 'landing' with nobody landing them."""
    _tasks(project, 2)
    release = tmp_path / "release"
    gate = _held(release)
    # t2 in another mode: not stacked by t1's conductor, it waits for its turn in the process
    outs = [
        project.wtp_proc("land", f"t{i}", "--detach", "--gate", gate, *(["--mode", "serial"] if i == 2 else []))
        for i in (1, 2)
    ]
    assert [o.code for o in outs] == [0, 0], [o.err for o in outs]
    entries = json.loads(project.wtp_proc("queue", "--json").out)["entries"]
    (server,) = {e["pid"] for e in entries}
    wait_for(lambda: (project.path / ".git/wtp/logs/land-t1.log").exists(), "t1's gate to start")
    os.kill(server, signal.SIGTERM)  # the detached process this test's command started
    try:
        wait_for(lambda: not pid_alive(server), "the background lander to end")
    finally:
        release.touch()
    states = {t["name"]: t["state"] for t in project.wtp("list", "--json").json()["tasks"]}
    assert states == {"t1": "active", "t2": "active"}
    log = Path(_log_of(outs[0].out)).read_text().splitlines()
    assert log[-3:] == [
        "interrupted: 'main' untouched by this land, task 't1' is active again",
        "wtp: stopped before its turn: 'main' untouched by this land, task 't2' is active again; run 'wtp land t2' again",
        "wtp: interrupted",
    ], log
    assert json.loads(project.wtp_proc("queue", "--json").out)["entries"] == []


def test_sigterm_to_the_background_lander_after_its_own_task_landed_still_stops_it(
    project: Repo, tmp_path: Path
) -> None:
    """Its own task landed, the background lander took the SIGTERM as a Ctrl-C after the push
    (the task is landed: finish the job) and went on to land every other task it held."""
    _tasks(project, 3)
    release = tmp_path / "release"
    slow = f'[ "$WTP_TASK" = t1 ] || until [ -e {release} ]; do sleep 0.05; done; ./check.sh'
    outs = [project.wtp_proc("land", f"t{i}", "--detach", "--gate", slow) for i in (1, 2, 3)]
    assert [o.code for o in outs] == [0, 0, 0], [o.err for o in outs]
    (server,) = {e["pid"] for e in json.loads(project.wtp_proc("queue", "--json").out)["entries"]}
    states = lambda: {t["name"]: t["state"] for t in project.wtp("list", "--all", "--json").json()["tasks"]}  # noqa: E731
    wait_for(lambda: states()["t1"] == "landed", "t1 to land")
    os.kill(server, signal.SIGTERM)  # the detached process this test's command started
    try:
        wait_for(lambda: not pid_alive(server), "the background lander to end")
    finally:
        release.touch()
    assert states() == {"t1": "landed", "t2": "active", "t3": "active"}
    log = Path(_log_of(outs[0].out)).read_text().splitlines()
    for n in ("t2", "t3"):  # given back by the land under way, or before its turn, as the signal found them
        said = [line for line in log if f"'main' untouched by this land, task '{n}' is active again" in line]
        assert len(said) == 1 and said[0].startswith(("interrupted: ", "wtp: stopped before its turn: ")), log
    assert log[-1] == "wtp: interrupted", log
    assert _first_parents_pass(project) == ["t1 work", "the test", "initial"]


def test_detach_json_has_the_lands_shape_and_a_refusal_is_json_too(project: Repo) -> None:
    """Review 8: 'land --detach --json' left out the land's keys, and a refusal printed no JSON."""
    p = Path(project.wtp("start", "t1").lines[-1])
    (p / "dirty.txt").write_text("x\n")
    refused = project.wtp_proc("land", "t1", "--detach", "--json", "--gate", "true")
    assert (refused.code, json.loads(refused.out)["state"]) == (1, "refused"), refused.err
    (p / "dirty.txt").unlink()
    project.commit({"t1.txt": "1\n"}, "t1 work", cwd=p)
    out = project.wtp_proc("land", "t1", "--detach", "--json", "--gate", "true")
    doc = json.loads(out.out)
    assert out.code == 0 and doc == {
        "task": "t1",
        "state": "landing",
        "commit": None,
        "attempts": None,
        "paths": [],
        "place": doc["place"],
        "log": doc["log"],
    }
    wait_for(lambda: project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed", "t1 to land")


@pytest.mark.parametrize(
    ("at", "said"),
    [
        ("rm:before-worktree", "task 't1' is landed; its worktree is kept ('wtp rm t1' removes it)"),
        (
            "rm:before-branch",
            "task 't1' is landed; its clean-up was cut short, its branch 'wtp/t1' is kept ('wtp rm t1' finishes it)",
        ),
    ],
)
def test_sigterm_to_the_background_lander_during_a_clean_up_says_what_it_left(
    project: Repo, tmp_path: Path, at: str, said: str
) -> None:
    """Review 14: stopped while it removed a landed task's worktree, the background lander's log
    ended with 'wtp: interrupted' alone: the clean-up had left the list of what was left undone
    before it ran, so the line every other clean-up gets was never said for it.  Review 15: once
    the worktree was removed, that line said it was kept."""
    _tasks(project, 1)
    release, hold = tmp_path / "release", tmp_path / "hold"
    env = {"WTP_TEST_HOLD_AT": at, "WTP_TEST_HOLD_FILE": str(hold)}
    out = project.wtp_proc("land", "t1", "--detach", "--gate", _held(release), env=env)
    assert out.code == 0, out.err
    (server,) = {e["pid"] for e in json.loads(project.wtp_proc("queue", "--json").out)["entries"]}
    release.touch()
    try:
        wait_for(Path(f"{hold}.reached").exists, "t1 landed, its worktree about to be removed")
        os.kill(server, signal.SIGTERM)  # the detached process this test's command started
        wait_for(lambda: not pid_alive(server), "the background lander to end")
    finally:
        hold.touch()
    log = Path(_log_of(out.out)).read_text().splitlines()
    assert log[-2:] == [said, "wtp: interrupted"], log
    assert project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert project.wtp("rm", "t1").code == 0  # what the line advises finishes the job
    assert "wtp/t1" not in project.branches()
