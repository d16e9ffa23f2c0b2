"""wtp check --test, the thirty-sixth review: a task whose worktree folder or branch is
gone, a gate that times out beside a pair already found, a gate that deletes its own
folder, and what is shown of a failing gate's output."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .conftest import wait_for
from .test_semantic import Gated, rename_and_caller
from .test_semantic_review8 import _repo, _settled, _task


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


def test_a_current_background_result_counts_as_a_collision(tmp_path: Path) -> None:
    """With [check] test = "auto", 'wtp check' printed "no collisions" and exited 0 (even at
    --fail-on semantic) right above a current "t1 + t2 fail together"."""
    from worktree_par.repo import open_ctx
    from worktree_par.semantic import background

    g = Gated(tmp_path, extra='[check]\ntest = "auto"\n')
    g.start("t1")
    g.start("t2")
    key = background.committed(open_ctx(g.repo.path))[0]
    last = g.repo.path / ".git/wtp/check-test-last.json"
    found = {
        "when": time.time() - 7200,
        "gate": g.gate,
        "tasks": ["t1", "t2"],
        "verdict": "fail",
        "semantic": [["t1", "t2"], ["t1", "gone"]],  # a set naming no live task is not shown
        "verdicts": [{"tasks": ["t1", "t2"], "verdict": "fail", "tree": "ab" * 20, "log": "/elsewhere.log"}],
        "committed": key,
    }
    last.write_text(json.dumps(found))
    out = g.repo.wtp("check", "--fail-on", "semantic")
    assert (out.code, out.err) == (1, "")
    assert out.lines == [
        "KIND      TASKS     PATHS",
        "SEMANTIC  t1 <> t2  fail together (each passes alone)",
        "semantic: t1 + t2 fail together; t1 + gone fail together (2h ago)",
    ]
    data = g.repo.wtp("check", "--json").json()
    assert data["collisions"] == [
        {
            "tasks": ["t1", "t2"],
            "kind": "semantic",
            "paths": [],
            "hot": False,
            "hot_paths": [],
            "gate": g.gate,
            "tree": "ab" * 20,
            "log": "/elsewhere.log",
            "output": [],  # a log outside wtp's logs folder is not read
            "verdicts": found["verdicts"],
            "background": True,
            "when": found["when"],
        }
    ]
    assert g.repo.wtp("check", "t2", "--fail-on", "semantic").code == 1  # t2 is in the pair
    # a task failing alone: exit 1 as 'check --test' does, no row (it is not a collision)
    last.write_text(json.dumps({**found, "semantic": [], "fails_alone": [{"task": "t1"}]}))
    out = g.repo.wtp("check", "--fail-on", "semantic")
    assert (out.code, out.lines[0]) == (1, "no collisions among 2 tasks and 'main'")
    # stale (the tasks' commits changed since): shown, not counted
    last.write_text(json.dumps({**found, "committed": "older inputs"}))
    out = g.repo.wtp("check", "--fail-on", "semantic")
    assert (out.code, out.lines[0]) == (0, "no collisions among 2 tasks and 'main'")
    assert out.lines[-1] == "semantic: t1 + t2 fail together; t1 + gone fail together (2h ago; inputs changed since)"
    wait_for(lambda: _settled(g, key), "the background runner to end")


def test_a_gate_that_deletes_its_own_folder_is_a_run_of_that_merge(tmp_path: Path) -> None:
    """The check after the run asked git about the folder the gate had deleted: 'directory
    ... does not exist', exit 2, and no report."""
    gate = 'if [ -f t2.txt ]; then cd .. && rm -rf "$OLDPWD"; echo "t2 breaks it"; exit 1; fi\n'
    r = _repo(tmp_path, '[land]\ngate = "sh gate.sh"\n', {"gate.sh": gate})
    _task(r, "t1")
    _task(r, "t2")
    out = r.wtp("check", "--test", "--json")
    assert out.code == 1, out.err
    test = out.json()["test"]
    assert [(a["task"], a["output"]) for a in test["fails_alone"]] == [("t2", ["t2 breaks it"])]
    assert test["notes"] == [
        f"semantic: 'sh gate.sh' (or [setup] run) deleted the throw-away worktree of {m}, so its verdict is not "
        "kept for 'wtp land' (which runs the gate itself)"
        for m in ("the merge of t1 + t2", "the merge of t2")
    ]
    listed = r.git("worktree", "list", "--porcelain").splitlines()
    assert [ln.rsplit("/", 1)[-1] for ln in listed if ln.startswith("worktree ")] == ["repo", "t1", "t2"]


def test_a_task_whose_branch_is_gone_is_gated_from_its_worktree(tmp_path: Path) -> None:
    """'check --test' died on merge-tree's 'refusing to merge unrelated histories' (exit 1,
    no result for any task): the snapshot of a worktree whose HEAD names no commit had no
    parent."""
    g = Gated(tmp_path)
    rename_and_caller(g)
    g.repo.git("update-ref", "-d", "refs/heads/wtp/t1")
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 1, out.err
    data = out.json()
    assert [(c["tasks"], c["kind"]) for c in data["collisions"]] == [(["t1", "t2"], "semantic")]
    (note,) = data["notes"]
    assert note.startswith("task 't1': its branch 'wtp/t1' is gone (its worktree's HEAD names no commit)")


def test_a_big_log_is_read_from_its_end_only(tmp_path: Path) -> None:
    """The tail of a failing gate's log was found by reading the whole log and splitting it
    (memory ~13 times the log's size: 1.2 GB for a gate that printed 100 MB)."""
    import tracemalloc

    from worktree_par.semantic.runs import output_tail

    log = tmp_path / "big.log"
    with open(log, "w") as f:
        f.write("$ gate\n# tasks: t1\n# merge abc (tree def)\n")
        f.writelines(f"line {i}\n" for i in range(2_000_000))  # 25 MB
    tracemalloc.start()
    try:
        tail = output_tail(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tail == [f"line {i}" for i in range(1_999_988, 2_000_000)]
    assert peak < 1_000_000, peak
    small = tmp_path / "small.log"
    small.write_text("$ gate\n# tasks: t1\n# merge abc (tree def)\nonly\n\n  \nthis\n")
    assert output_tail(small) == ["only", "this"]  # the header and blank lines left out


def test_a_failing_gates_output_is_shown_with_its_control_characters_escaped(tmp_path: Path) -> None:
    """Its last lines reached the terminal raw: an ESC cleared the screen, a CR wrote over
    the line ('all good', then 'SEMANTIC: none' over it).  Tabs are kept."""
    gate = "if [ -f t2.txt ]; then printf '\\033[2J\\033[Hall good\\rSEMANTIC: none\\tok\\r\\n'; exit 1; fi\n"
    r = _repo(tmp_path, '[land]\ngate = "sh gate.sh"\n', {"gate.sh": gate})
    _task(r, "t1")
    _task(r, "t2")
    out = r.wtp("check", "--test")
    assert out.code == 1, out.err
    assert out.lines[2] == "  | \\x1b[2J\\x1b[Hall good\\rSEMANTIC: none\tok"
    (alone,) = r.wtp("check", "--test", "--json").json()["test"]["fails_alone"]
    assert alone["output"] == ["\x1b[2J\x1b[Hall good\rSEMANTIC: none\tok"]  # the JSON has it as it was
