"""'wtp land --detach' (issue 28): the request is a ticket in the queue when the call returns,
owned by a background process nobody waits for; killed, its land is rolled back and started
again by the next 'wtp land'.  How fast it returns lives in scripts/bench_queue.py."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from worktree_par.entry import parse_land

from .conftest import Repo, wait_for
from .test_queue import _first_parents_pass, _tasks, project

__all__ = ["project"]


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
    # anything else is typer's to answer (and explain)
    for args in (["land", "t1", "t2"], ["land", "--gate"], ["land", "--gate=x"], ["land", "--timeout", "-1"], ["list"]):
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
