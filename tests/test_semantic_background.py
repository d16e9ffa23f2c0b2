"""[check] test = "auto" (issue 27): the merge of the tasks' commits gated in the background,
one run at a time at the lowest priority, restarted when a task commits; 'wtp list' and
'wtp check' show the last result and its age."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import wait_for
from .test_semantic import APP_RENAMED, CALLER, RENAMED, Gated
from .test_semantic_runs import _alive


def _last(g: Gated) -> dict:
    p = g.repo.path / ".git/wtp/check-test-last.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _runner_gone(g: Gated) -> bool:
    p = g.repo.path / ".git/wtp/check-test-bg.lock"
    try:
        pid = json.loads(p.read_text() or "null")["pid"]
    except (OSError, TypeError, KeyError, ValueError):
        return True
    return not _alive(int(pid))


def test_background_mode_shows_semantic_in_list_and_restarts_when_a_task_commits(tmp_path: Path) -> None:
    block = tmp_path / "block"
    g = Gated(tmp_path, gate_args=f"--block {block}", extra='[check]\ntest = "auto"\n')
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, cwd=t1)
    g.repo.commit({"pkg/welcome.py": "x = 1\n"}, cwd=t2)
    block.write_text("")
    try:
        first = g.repo.wtp("list", "--json").json()["semantic"]
        assert first["running"] is True
        wait_for(lambda: len(g.started()) == 1, "the background gate to start")
        (run,) = g.runs()
        with open(f"/proc/{run[1]}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[16]) == 19  # nice 19: the lowest priority
        # t2 commits a new caller of lib.greet: the run under way is stopped and started again
        g.repo.commit({"pkg/welcome.py": CALLER}, cwd=t2)
        wait_for(lambda: not _alive(int(run[1])), "the background gate on the old commits to be stopped")
        wait_for(lambda: len(g.started()) == 2, "the background run on the new commits")
    finally:
        block.unlink()
    wait_for(lambda: _last(g).get("verdict") == "fail", "the background result")
    wait_for(lambda: _runner_gone(g), "the background runner to end")
    assert _last(g)["semantic"] == [["t1", "t2"]]
    assert g.runs()[0][0] == "start" and g.runs()[1][0] == "start"  # the first one never ended
    out = g.repo.wtp("list")
    assert re.fullmatch(r"semantic: t1 \+ t2 fail together \(\d+s ago\)", out.lines[-1]), out.out
    listed = g.repo.wtp("list", "--json").json()["semantic"]
    assert (listed["semantic"], listed["verdict"]) == ([["t1", "t2"]], "fail")
    out = g.repo.wtp("check", "--all")
    assert re.fullmatch(r"semantic: t1 \+ t2 fail together \(\d+s ago\)", out.lines[-1]), out.out
    assert g.repo.wtp("check", "--all", "--json").json()["semantic_last"]["semantic"] == [["t1", "t2"]]
    # nothing changed: no new run
    runs = len(g.started())
    g.repo.wtp("list")
    assert _runner_gone(g) and len(g.started()) == runs
