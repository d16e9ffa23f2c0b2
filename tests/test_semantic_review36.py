"""wtp check --test, the thirty-sixth review: a task whose worktree folder or branch is
gone, a gate that times out beside a pair already found, a gate that deletes its own
folder, and what is shown of a failing gate's output."""

from __future__ import annotations

import shutil
from pathlib import Path

from .test_semantic import Gated, rename_and_caller


def test_a_task_whose_worktree_folder_is_gone_is_gated_from_its_branch(tmp_path: Path) -> None:
    """It dropped out of the search: the merge of the others passed and nothing was said."""
    g = Gated(tmp_path)
    t1, _ = rename_and_caller(g)  # t1's rename is committed
    shutil.rmtree(t1)
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 1, out.err
    data = out.json()
    assert [(c["tasks"], c["kind"]) for c in data["collisions"]] == [(["t1", "t2"], "semantic")]
    assert data["notes"] == [
        f"task 't1': its worktree {t1} is missing: compared from its branch 'wtp/t1' (its commits; what was "
        "uncommitted there was not seen; 'wtp doctor --fix' makes the worktree again)"
    ]


def test_a_task_timing_out_alone_does_not_hide_the_pair_found_failing(tmp_path: Path) -> None:
    """t3 makes the gate slow (it times out alone); the merge of all three still fails fast
    on t1 + t2.  The search found the pool t1 + t2 failing, but any timeout made it keep
    quiet: 'no collisions', exit 3, "semantic": []."""
    g = Gated(tmp_path)
    rename_and_caller(g)
    t3 = g.start("t3")
    # imported after pkg/welcome.py, whose failure ends the merge's gate first
    g.repo.commit({"pkg/zz_slow.py": "import time\n\ntime.sleep(120)\n"}, msg="slow", cwd=t3)
    out = g.repo.wtp("check", "--test", "--timeout", "5", "--json")
    assert out.code == 1, out.err
    data = out.json()
    assert [(c["tasks"], c["kind"]) for c in data["collisions"]] == [(["t1", "t2"], "semantic")]
    test = data["test"]
    assert (test["verdict"], test["semantic"], test["timed_out"]) == ("fail", [["t1", "t2"]], [["t3"]])
