"""What the second review of issue 28's conductor (its fast path and speculation over batches)
broke, each kept as a test: main never gets a tree no gate ran on, a task is 'landed' only
when the base has it, a fork git no longer has does not crash a land, a HEAD switched while
the land waited is not rebased, and a commit reworded while it waited is not dropped."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Repo, queued_landers, wait_for


def _start(r: Repo, name: str, files: dict[str, str]) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    r.commit(files, f"{name} work", cwd=p)
    return p


def _record(r: Repo, name: str) -> dict:
    return next(t for t in r.state()["tasks"] if t["name"] == name)


def _main_files(r: Repo) -> list[str]:
    r.git("fetch", "-q", "origin")
    return r.git("ls-tree", "--name-only", "origin/main").split()


@pytest.mark.parametrize("how", ["moved", "withdrawn"])
def test_a_batch_cut_below_its_top_publishes_nothing_ungated(project: Repo, tmp_path: Path, how: str) -> None:
    """t1 is red alone, t2 makes it green, t3 sits on both; the batch's top (t3) passes. t2
    is then cut out (its branch moves, or its lander withdraws it): t1, below it, had no gate
    run of its own and must not be published on the strength of t3's."""
    paths = {
        n: _start(project, n, f)
        for n, f in (("t1", {"BROKEN": "y\n"}), ("t2", {"FIX": "y\n"}), ("t3", {"t3.txt": "3\n"}))
    }
    started, go = tmp_path / "started", tmp_path / "go"
    gate = f"touch {started}; while [ ! -f {go} ]; do sleep 0.05; done; test ! -e BROKEN || test -e FIX"
    landers = queued_landers(project, ["t1", "t2", "t3"], "--mode", "batch", "--gate", gate)
    wait_for(started.exists, "the batch's top to be gated")
    if how == "moved":
        project.commit({"late.txt": "late\n"}, "a late commit in t2", cwd=paths["t2"])
    else:
        landers[1].send_signal(signal.SIGINT)
        wait_for(lambda: _record(project, "t2")["intent"] == "withdrawn", "t2 to be withdrawn")
    go.write_text("go\n")
    for p in landers:
        p.communicate(timeout=120)
    files = _main_files(project)
    assert "FIX" in files or "BROKEN" not in files, files  # no red tree on main
    assert landers[0].returncode != 0  # t1 alone is red: rebuilt without t2, gated, blocked


@pytest.mark.parametrize("mode", ["speculative", "batch"])
def test_a_task_the_candidate_below_contains_is_not_landed_until_the_base_has_it(
    project: Repo, tmp_path: Path, mode: str
) -> None:
    """t1 is built on t2's commit and is red; t2 joins while t1's gate runs. t2's commit is in
    t1's candidate, not on the base: t2 is not 'already on main'."""
    p2 = _start(project, "t2", {"x.txt": "x\n"})
    p1 = Path(project.wtp("start", "t1").lines[-1])
    project.git("merge", "-q", "--ff-only", "wtp/t2", cwd=p1)
    project.commit({"BROKEN": "y\n"}, "t1 work (red)", cwd=p1)
    started, go = tmp_path / "started", tmp_path / "go"
    gate = f'touch {started}-"$WTP_TASK"; while [ ! -f {go} ]; do sleep 0.05; done; ./check.sh'
    l1 = project.spawn("land", "t1", "--mode", mode, "--gate", gate)
    wait_for(Path(f"{started}-t1").exists, "t1's gate to start")
    l2 = project.spawn("land", "t2", "--mode", mode, "--gate", gate)
    wait_for(lambda: _record(project, "t2")["phase"] == "landing", "the conductor to take t2")
    go.write_text("go\n")
    _, err1 = l1.communicate(timeout=120)
    out2, err2 = l2.communicate(timeout=120)
    assert l1.returncode == 1, err1
    assert l2.returncode == 0, err2
    assert "already on" not in out2
    project.git("fetch", "-q", "origin")
    assert project.git("log", "-1", "--format=%s", "origin/main") == "t2 work"  # landed by a push, gated
    assert p2.exists() is False  # removed once landed for real


def test_a_recorded_fork_git_no_longer_has_does_not_crash_the_land(project: Repo) -> None:
    """The base is rewritten, the task rebased onto it, the old commits collected."""
    p = _start(project, "t1", {"a.txt": "a\n"})
    old = project.git("rev-parse", "main")
    project.git("commit", "-q", "--amend", "-m", "the test (rewritten)")
    project.git("push", "-q", "--force", "origin", "main")
    project.git("rebase", "-q", "--onto", "main", old, cwd=p)
    project.git("reflog", "expire", "--expire=now", "--all")
    project.git("gc", "-q", "--prune=now")
    assert project.git("cat-file", "-t", old, check=False) == ""
    out = project.wtp_proc("land", "t1", "--gate", "./check.sh")
    assert out.code == 0, out.err
    assert project.git("log", "--format=%s", "-2", "origin/main").splitlines() == ["t1 work", "the test (rewritten)"]


def _while_waiting(r: Repo, name: str, during: Callable[[], object], *extra: str) -> tuple[int, str, str]:
    (lander,) = queued_landers(r, [name], *extra, during=lambda _landers: during())
    out, err = lander.communicate(timeout=120)
    return lander.returncode, out, err


def test_a_head_switched_while_the_land_waited_is_not_rebased(project: Repo) -> None:
    p = _start(project, "t1", {"a.txt": "a\n"})
    project.commit({"moved.txt": "base moved\n"}, "base moved")
    project.git("push", "-q", "origin", "main")
    code, _, err = _while_waiting(
        project, "t1", lambda: project.git("switch", "-q", "-c", "experiment", cwd=p), "--gate", "./check.sh"
    )
    assert code == 1, err
    assert "switched to 'experiment' while its land waited (nothing was rebased)" in err
    assert project.git("log", "-1", "--format=%s", "experiment") == "t1 work"  # not moved onto the base
    assert project.git("rev-parse", "experiment^") == project.git("rev-parse", "main~1")


def test_a_commit_reworded_while_the_land_waited_is_kept(project: Repo) -> None:
    p = _start(project, "t1", {"a.txt": "a\n"})
    code, _, err = _while_waiting(
        project,
        "t1",
        lambda: project.git("commit", "-q", "--amend", "-m", "t1 work, reworded", cwd=p),
        "--gate",
        "./check.sh",
    )
    assert code == 1 and "wtp did not make while landing" in err, err  # kept on the branch, untested
    assert err.count("refs/wtp/archive-pre-land/t1/") == 1, err  # the pre-land tip's ref, named once
    assert project.git("log", "-1", "--format=%s", "wtp/t1") == "t1 work, reworded"
