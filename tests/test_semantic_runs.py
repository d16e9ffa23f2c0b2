"""wtp check --test (issue 27): verdicts shared with land, timeouts, Ctrl-C, the background mode."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from .conftest import wait_for
from .test_semantic import APP_RENAMED, CALLER, RENAMED, Gated, _no_shared_port_at_once


def test_land_reuses_the_verdict_of_check_test(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    g.repo.commit({"pkg/two.py": "from pkg import lib\n\nlib.greet('two')\n"}, cwd=t2)
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 0 and out.json()["test"]["verdict"] == "pass"
    assert g.started() == ["t1 t2"]
    one = g.repo.wtp("land", "t1")
    assert one.code == 0, one.err
    two = g.repo.wtp("land", "t2")
    assert two.code == 0, two.err
    # t1's candidate (base + t1) was never tested: its gate runs; t2's candidate is base + t1
    # + t2, the tree check --test passed: no run
    assert g.started() == ["t1 t2", "land t1"]
    landed = g.repo.git("rev-parse", "main")
    assert two.lines == [
        f"landed 't2' at {landed}",
        "verdict reused from check --test (the merge of t1 + t2 passed)",
        "removed task 't2' (worktree and branch 'wtp/t2')",
    ]
    assert "verdict reused" not in one.out + one.err
    # what 'wtp queue' shows for a candidate with that tree
    from worktree_par.land import verdicts
    from worktree_par.repo import open_ctx

    ctx = open_ctx(g.repo.path)
    assert verdicts.queue_note(ctx, g.gate, landed) == "passed: verdict reused from check --test"
    assert verdicts.queue_note(ctx, g.gate, g.repo.git("rev-parse", "main~1")) == ""


def test_the_gate_must_be_trusted(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    g.start("t1")
    g.start("t2")
    g.repo.write(".wtp.toml", g.repo.path.joinpath(".wtp.toml").read_text() + '[check]\ntest = "true"\n')
    out = g.repo.wtp("check", "--test")
    assert (out.code, out.out) == (1, "")
    assert out.err == (
        f"wtp: check.test in {g.repo.path / '.wtp.toml'} runs commands you have not trusted yet (true): "
        "review them, then run 'wtp trust'\n"
    )
    assert g.runs() == []


def test_a_slow_gate_times_out_and_leaves_nothing(tmp_path: Path) -> None:
    g = Gated(tmp_path, gate_args="--sleep 120")
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    (t2 / "pkg/two.py").write_text("y = 2\n")
    before = g.worktrees()
    out = g.repo.wtp("check", "--test", "--timeout", "1", "--json")
    assert out.code == 3, out.out
    assert out.err.splitlines()[-1] == (
        "wtp: the gate timed out after 1s on the merge: no verdict; raise --timeout or [land] timeout"
    )
    test = out.json()["test"]
    assert (test["verdict"], test["timed_out"], test["semantic"], test["runs"]) == ("timeout", [["t1", "t2"]], [], 1)
    (run,) = g.runs()
    assert run[0] == "start"  # stopped before it could say 'end'
    wait_for(lambda: not _alive(int(run[1])), "the gate's process to be gone")
    assert g.worktrees() == before
    assert Path(test["verdicts"][0]["log"]).read_text().splitlines()[-1] == "# wtp: stopped after 1s (--timeout)"


def test_ctrl_c_stops_every_run_and_removes_its_worktree(tmp_path: Path) -> None:
    g = Gated(tmp_path, gate_args="--sleep 120")
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, cwd=t1)
    (t2 / "pkg/welcome.py").write_text(CALLER)
    before = g.worktrees()
    g.log.write_text("")
    interrupted_cleanly(g, t1, before, lambda pid: os.killpg(pid, signal.SIGINT))
    assert (t2 / "pkg/welcome.py").read_text() == CALLER


def interrupted_cleanly(g: Gated, t1: Path, before: list[str], stop: Callable[[int], None]) -> None:
    """'check --test' stopped (``stop`` given its pid) while its gate runs on the merge: one
    line and exit 130, the gate's process gone, no worktree left of it."""
    proc = g.repo.spawn("check", "--test", "--timeout", "600", new_session=True)
    wait_for(lambda: len(g.started()) == 1, "the gate on the merge to start")
    stop(proc.pid)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "wtp: interrupted"
    (run,) = g.runs()
    wait_for(lambda: not _alive(int(run[1])), "the gate's process to be gone")
    assert g.worktrees() == before
    assert not [p for p in t1.parent.iterdir() if p.name.startswith(".wtp-")]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _killed_check(g: Gated) -> tuple[list[str], Path, int]:
    """Two tasks, and a check --test killed with -9 while its gate runs: the worktrees
    before it, the throw-away worktree it left, and its pid."""
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    g.repo.commit({"pkg/two.py": "y = 2\n"}, cwd=t2)
    before = g.worktrees()
    proc = g.repo.spawn("check", "--test", "--timeout", "600", new_session=True)
    wait_for(lambda: len(g.started()) == 1, "the gate on the merge to start")
    proc.kill()
    proc.communicate(timeout=60)
    (run,) = g.runs()
    wait_for(lambda: not _alive(int(run[1])), "the guardian to stop the gate of the killed check")
    (left,) = [Path(w) for w in g.worktrees() if w not in before]
    return before, left, proc.pid


def test_a_killed_check_leaves_a_worktree_the_next_one_sweeps(tmp_path: Path) -> None:
    g = Gated(tmp_path, gate_args="--sleep 120")
    before, left, pid = _killed_check(g)
    assert left.name.startswith(f".wtp-check-{pid}.")
    out = g.repo.wtp("check", "--test", "--timeout", "1")
    assert out.code == 3
    assert g.worktrees() == before


def test_doctor_reports_a_killed_checks_worktree_and_keeps_a_commit_made_in_it(tmp_path: Path) -> None:
    g = Gated(tmp_path, gate_args="--sleep 120")
    before, left, _ = _killed_check(g)
    made = g.repo.commit({"made-by-gate.txt": "x\n"}, "made by the gate", cwd=left)  # the gate committed there
    found = g.repo.wtp("doctor")
    assert found.code == 1
    assert f"problem: {left} is the throw-away worktree of a 'wtp check --test' run that was killed" in found.out
    fixed = g.repo.wtp("doctor", "--fix")
    assert fixed.code == 0, fixed.out
    assert g.worktrees() == before
    archive = f"refs/wtp/archive/{left.name.lstrip('.')}"
    assert g.repo.git("rev-parse", archive) == made  # kept, not dropped with the worktree


def test_a_leftover_named_with_this_process_pid_but_another_start_is_swept(tmp_path: Path) -> None:
    """Containers started afresh reuse pids: a run killed in one must not block the next."""
    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    g.repo.commit({"pkg/two.py": "y = 2\n"}, cwd=t2)
    before = g.worktrees()
    stale = t1.parent / f".wtp-check-{os.getpid()}.1-1"  # this pid (the in-process wtp's), another start time
    g.repo.git("worktree", "add", "--detach", "--quiet", str(stale), "HEAD")
    out = g.repo.wtp("check", "--test")
    assert out.code == 0, out.err
    assert g.worktrees() == before


def test_the_mcp_check_tool_takes_test(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("mcp")
    import anyio

    from .test_agent_boundary import data, mcp_session

    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, cwd=t1)
    (t2 / "pkg/welcome.py").write_text(CALLER)

    async def talk() -> tuple[dict, dict]:
        async with mcp_session(g.repo) as s:
            return data(await s.call_tool("check", {})), data(await s.call_tool("check", {"test": True, "budget": 1}))

    plain, tested = anyio.run(talk)
    assert plain["collisions"] == [] and "test" not in plain
    assert [(c["tasks"], c["kind"]) for c in tested["collisions"]] == [(["t1", "t2"], "semantic")]
    assert (tested["test"]["budget"], tested["test"]["at_once"]) == (1, 1)


def test_a_commit_made_in_a_check_worktree_is_kept(tmp_path: Path) -> None:
    """Everything in a throw-away worktree is wtp's, except a commit someone made there: it
    is kept under refs/wtp/archive/ before the worktree goes."""
    import json

    g = Gated(tmp_path)
    gate = "git commit -q --allow-empty -m 'made during the gate'"
    g.repo.write(".wtp.toml", f"max_active = 4\n[land]\ngate = {json.dumps(gate)}\n")
    assert g.repo.wtp("trust").code == 0
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    g.repo.commit({"pkg/two.py": "y = 2\n"}, cwd=t2)
    before = g.worktrees()
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 0, out.err
    kept = g.repo.git("for-each-ref", "--format=%(refname) %(subject)", "refs/wtp/archive/").splitlines()
    assert len(kept) == 1 and kept[0].endswith(" made during the gate")
    assert kept[0].startswith("refs/wtp/archive/wtp-check-")
    assert g.worktrees() == before


def test_two_checks_at_once_share_nothing_but_verdicts(tmp_path: Path) -> None:
    import json

    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, cwd=t1)
    (t2 / "pkg/welcome.py").write_text(CALLER)
    before = g.worktrees()
    procs = [g.repo.spawn("check", "--test", "--json") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 1, err
        assert json.loads(out)["test"]["semantic"] == [["t1", "t2"]]
    assert g.worktrees() == before
    assert _no_shared_port_at_once(g.runs())
    assert len({r[3] for r in g.runs()}) == len(g.started())  # a worktree of its own for every run
