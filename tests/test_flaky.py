"""Flaky gates (issue 28): a red gate is re-run ([land] confirm_red) before its task is
blocked; a red that does not hold is recorded per gate command ('wtp queue --flaky').  And a
gate that fails on the base itself (issue 29) is a broken gate: the task is not at fault and
stays landable.  The tests count gate runs; speed lives in scripts/bench_queue.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import Repo, wait_for
from .test_queue import _first_parents_pass, _land_all_at_once, _runs, _tasks


def _flaky_gate(tmp: Path, task: str) -> str:
    """The project's test, red once for ``task`` (its candidate's first run)."""
    return (
        f'echo "$WTP_TASK" >> {tmp}/runs; '
        f'if [ "$WTP_TASK" = {task} ] && [ ! -e {tmp}/flaked ]; then touch {tmp}/flaked; exit 1; fi; ./check.sh'
    )


def test_a_gate_red_once_is_confirmed_and_the_good_task_lands(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 5)
    gate = _flaky_gate(tmp_path, "t3")
    results = _land_all_at_once(project, [f"t{i}" for i in range(1, 6)], "--gate", gate)
    assert [code for code, _, _ in results] == [0] * 5, results
    assert 5 <= _runs(tmp_path) <= 5 + 2  # the flaky red cost at most two extra runs
    assert sorted(_first_parents_pass(project)) == sorted([f"t{i} work" for i in range(1, 6)] + ["the test", "initial"])
    ledger = project.wtp("queue", "--flaky", "--json").json()["gates"]
    assert [(g["gate"], g["count"], [(e["task"], e["code"]) for e in g["events"]]) for g in ledger] == [
        (gate, 1, [("t3", 1)])
    ]
    # its re-run passed, or a candidate above it that contains it (t4's or t5's) passed first
    how = ledger[0]["events"][0]["how"]
    assert how in ("re-run", "vouched by 't4'", "vouched by 't5'")
    said = [line for line in results[2][1].splitlines() if "flaky" in line]
    assert said == [
        f"the gate exited 1 on the candidate of 't3', then passed ({how}): recorded as flaky ('wtp queue --flaky')"
    ]
    table = project.wtp("queue", "--flaky").lines
    assert table[0].split() == ["GATE", "FLAKY", "LAST", "TASKS"]
    assert [c.strip() for c in table[1].split("  ") if c.strip()] == [gate, "1", ledger[0]["last"], f"t3 ({how})"]


def test_a_candidate_above_that_passes_vouches_for_a_red_being_confirmed(project: Repo, tmp_path: Path) -> None:
    """With [land] vouch = true: t1's gate is red once and its re-run hangs; t2's candidate
    (t1 + t2) passes: it vouches for t1, and both land in one push without waiting for the re-run."""
    project.commit({".wtp.toml": "max_active = 5\n[land]\nvouch = true\n"}, "vouching")
    project.git("push", "-q", "origin", "main")
    _tasks(project, 2)
    gate = (
        f'echo "$WTP_TASK" >> {tmp_path}/runs; if [ "$WTP_TASK" = t1 ]; then '
        f"if [ -e {tmp_path}/flaked ]; then sleep 60; fi; touch {tmp_path}/flaked; exit 1; fi; ./check.sh"
    )
    results = _land_all_at_once(project, ["t1", "t2"], "--gate", gate)  # t1 below t2 in the stack
    assert [code for code, _, _ in results] == [0, 0], results
    assert "the gate exited 1 on the candidate of 't1', then passed (vouched by 't2')" in results[0][1]
    assert "landed in one push together with 't2'" in results[0][1]
    assert sorted((tmp_path / "runs").read_text().split()) == ["t1", "t1", "t2"]
    assert sorted(_first_parents_pass(project)) == sorted(["t1 work", "t2 work", "vouching", "the test", "initial"])


def test_with_confirm_red_zero_the_first_red_blocks(project: Repo, tmp_path: Path) -> None:
    project.commit({".wtp.toml": "max_active = 5\n[land]\nconfirm_red = 0\n"}, "no re-runs")
    project.git("push", "-q", "origin", "main")
    _tasks(project, 1)
    out = project.wtp("land", "t1", "--gate", _flaky_gate(tmp_path, "t1"))
    assert out.code == 1
    assert _runs(tmp_path) == 2  # the red (no re-run), and the base, whose tree no verdict knew: it passes
    assert project.wtp("queue", "--flaky").lines == ["no flaky gate recorded: reds are not run again"]
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "blocked"


def test_a_red_that_holds_blocks_after_one_re_run(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 1, broken={1})
    out = project.wtp("land", "t1", "--gate", f"echo run >> {tmp_path}/runs; ./check.sh")
    assert out.code == 1
    assert _runs(tmp_path) == 3  # the red, the re-run that confirmed it, and the base (no verdict knew its tree)
    assert "exited 1 on the candidate of 't1', and again on 1 re-run;" in out.err
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "blocked"
    assert project.wtp("queue", "--flaky", "--json").json() == {"gates": []}


def test_a_gate_that_fails_on_the_base_itself_is_a_broken_gate_not_the_tasks_fault(
    project: Repo, tmp_path: Path
) -> None:
    _tasks(project, 2)
    gate = f"echo run >> {tmp_path}/runs; test -e NEEDED"  # no tree has NEEDED: the gate itself is broken
    results = _land_all_at_once(project, ["t1", "t2"], "--gate", gate, "--json")
    assert [code for code, _, _ in results] == [1, 1], results
    log = project.path / ".git" / "wtp" / "logs" / "land-base-main.log"
    want = (
        f"gate '{gate}' fails on 'main' itself (log: {log}): fix the gate or the base; "
        "the task is not at fault and stays landable"
    )
    for name, (_, out, err) in zip(["t1", "t2"], results):
        assert json.loads(out) == {
            "task": name,
            "state": "gate-broken",
            "commit": None,
            "attempts": None,
            "paths": [],
            "error": want,
        }
        assert err.splitlines()[-1] == f"wtp: {want}"
    # t1's red and its re-run, t2's red (not re-run: its candidate stands on t1's), one run on the base
    assert _runs(tmp_path) == 4
    tasks = {t["name"]: (t["state"], t["note"]) for t in project.wtp("list", "--json").json()["tasks"]}
    assert tasks == {"t1": ("active", want), "t2": ("active", want)}
    assert not list((project.path / ".git" / "wtp" / "scratch").iterdir())  # the throw-away worktree is gone
    assert len(project.git("worktree", "list").splitlines()) == 3  # the main one and the two tasks'
    # a failure recorded for the base is no proof (one flaky run would stick): a second try asks the base again
    second = project.wtp("land", "t2", "--gate", gate)
    assert (second.code, second.err.splitlines()[-1]) == (1, f"wtp: {want}")
    assert _runs(tmp_path) == 4 + 3  # t2's red, its re-run, and the base
    project.commit({"NEEDED": "x\n"}, "the base fixed")
    project.git("push", "-q", "origin", "main")
    again = project.wtp("land", "t1", "--gate", gate)
    assert again.code == 0, again.err  # landable as it was: nothing to undo


def test_a_red_task_on_a_base_that_passes_is_blocked_as_before(project: Repo, tmp_path: Path) -> None:
    _tasks(project, 1, broken={1})
    out = project.wtp("land", "t1", "--gate", f"echo run >> {tmp_path}/runs; ./check.sh", "--json")
    assert out.code == 1
    assert json.loads(out.out)["state"] == "blocked"
    assert _runs(tmp_path) == 3  # the red, its re-run, and the base (whose tree no verdict knew yet)
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "blocked"


def test_a_commit_the_gate_makes_in_the_base_checks_worktree_is_kept(project: Repo, tmp_path: Path) -> None:
    """The base check's throw-away worktree goes through the guard, as check --test's does:
    a commit made there is archived, not dropped with the folder."""
    _tasks(project, 1)
    gate = 'case "$PWD" in */wtp/scratch/*) git commit -q --allow-empty -m made-by-gate;; esac; test -e NEEDED'
    out = project.wtp("land", "t1", "--gate", gate, "--json")
    assert out.code == 1 and json.loads(out.out)["state"] == "gate-broken", out.err
    archived = project.git("for-each-ref", "--format=%(refname) %(subject)", "refs/wtp/archive/")
    assert [line.split(" ", 1)[1] for line in archived.splitlines()] == ["made-by-gate"], archived
    assert not list((project.path / ".git" / "wtp" / "scratch").iterdir())


def test_a_red_whose_run_wrote_what_a_re_run_would_pass_on_is_not_run_again(project: Repo, tmp_path: Path) -> None:
    """Review 8: a snapshot test writes its missing expected output and fails; run again in the
    same worktree it passed on that file, so an always-red task landed as 'flaky' and the base
    was red for everyone.  A red whose run left untracked files is not run again: it holds."""
    p = Path(project.wtp("start", "t1").lines[-1])
    project.commit({"t1.test": "output 42\n"}, "t1: a test, its expected output not committed", cwd=p)
    gate = (
        f"echo run >> {tmp_path}/runs; "
        'for t in *.test; do [ -e "$t" ] || continue; e="${t%.test}.expected"; '
        'if [ ! -f "$e" ]; then cp "$t" "$e"; exit 1; fi; cmp -s "$t" "$e" || exit 1; done'
    )
    out = project.wtp("land", "t1", "--gate", gate)
    assert out.code == 1, out.err
    assert _runs(tmp_path) == 2  # the red, and the base (which passes: the task is at fault); no re-run
    log = project.path / ".git" / "wtp" / "logs" / "land-t1.log"
    assert out.err.strip().splitlines()[-1] == (
        f"wtp: gate '{gate}' exited 1 on the candidate of 't1' (not run again: its run left 1 file behind "
        f"(t1.expected), which a re-run would see; an output any run makes anew goes in [rm] disposable); 'main' is untouched (its output: {log}; the task is blocked: fix it and land again)"
    )
    assert project.wtp("queue", "--flaky", "--json").json()["gates"] == []


def test_one_failure_recorded_on_the_base_is_not_taken_as_a_broken_gate(project: Repo, tmp_path: Path) -> None:
    """Review 8: a red once recorded for the base's tree (a flaky run of 'check --test' on a
    task with no changes, say) made every later real red 'gate-broken', the task handed back
    landable rather than blocked, without running the gate on the base."""
    from worktree_par.land import verdicts
    from worktree_par.repo import open_ctx

    gate = f"echo run >> {tmp_path}/runs; ./check.sh"
    ctx = open_ctx(project.path)
    verdicts.record(ctx, gate, project.git("rev-parse", "main^{tree}"), ok=False, log=str(tmp_path / "old.log"))
    _tasks(project, 1, broken={1})
    out = project.wtp("land", "t1", "--gate", gate, "--json")
    assert (out.code, json.loads(out.out)["state"]) == (1, "blocked"), out.err
    assert _runs(tmp_path) == 3  # the red, its re-run, and the base, run again: it passes
    assert project.wtp("list", "--json").json()["tasks"][0]["state"] == "blocked"


def _ledger_with(event: str) -> str:
    return '{"version": 1, "gates": {"g": {"count": 1, "events": [' + event + "]}}}"


def test_a_damaged_ledger_is_read_as_what_it_still_holds(project: Repo) -> None:
    """Review 8: a time that is NaN, infinite or out of range ended 'wtp queue --flaky' with an
    internal error; control characters in it reached the terminal."""
    ledger = project.path / ".git" / "wtp" / "flaky.json"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    for at in ("1e20", "-1e20", "NaN", "Infinity"):
        ledger.write_text(_ledger_with('{"task": "t", "how": "re-run", "at": ' + at + "}"))
        out = project.wtp_proc("queue", "--flaky", "--json")
        want = {"gates": [{"gate": "g", "count": 1, "last": None, "events": []}]}
        assert (out.code, json.loads(out.out)) == (0, want)
    ledger.write_text(_ledger_with('{"task": "t\\u001b[31mRED", "how": "re-run\\u0007", "at": 1}'))
    out = project.wtp_proc("queue", "--flaky")
    assert out.code == 0 and "\x1b" not in out.out and "\x07" not in out.out
    assert "t\\x1b[31mRED (re-run\\x07)" in out.out


@pytest.mark.parametrize("where", ["out", "log", "__pycache__", "test-results"])
def test_a_red_whose_run_wrote_into_an_ignored_folder_is_not_run_again(
    project: Repo, tmp_path: Path, where: str
) -> None:
    """Review 10: a red run that wrote its expected output into an ignored 'out/' passed on its
    re-run and landed as flaky.  A cache any run refills (__pycache__) does not stop the re-run;
    any other ignored folder does, log/ or Playwright's test-results/ too (reviews 12 and 13: a
    test may read back what it wrote there), unless [rm] disposable lists it."""
    cache = where == "__pycache__"
    p = Path(project.wtp("start", "t1").lines[-1])
    project.commit({".gitignore": f"{where}/\n", "t1.txt": "t1\n"}, "t1 work", cwd=p)
    write = f"{{ mkdir -p {where}; touch {where}/expected; exit 1; }}"  # red on t1's tree until it wrote it
    gate = f"echo run >> {tmp_path}/runs; [ ! -e t1.txt ] || test -f {where}/expected || {write}"
    out = project.wtp("land", "t1", "--gate", gate)
    if cache:  # the re-run is made, and passes: flaky, landed (what a cache can do, a rebuilt one does too)
        assert out.code == 0, out.err
        assert _runs(tmp_path) == 2
        return
    assert out.code == 1, out.err
    assert f"(not run again: its run left 1 file behind ({where}/), which a re-run would see;" in out.err


def test_a_red_that_rewrote_a_file_inside_an_existing_ignored_folder_is_not_run_again(
    project: Repo, tmp_path: Path
) -> None:
    """Review 11: a folder's own times change only when an entry right in it is added or
    removed: a red that rewrote 'out/snap/expected' in an 'out/' that was already there
    passed on its re-run and landed as flaky."""
    p = Path(project.wtp("start", "t1").lines[-1])
    project.commit({".gitignore": "out/\n", "t1.txt": "t1\n"}, "t1 work", cwd=p)
    (p / "out" / "snap").mkdir(parents=True)
    (p / "out" / "snap" / "expected").write_text("an old snapshot\n")
    made = (p / "out" / "snap" / "expected").stat().st_ctime
    # from before the land (wtp allows a second for coarse file times): the clock, not a race
    wait_for(lambda: time.time() > made + 1.2, "the old snapshot to be more than a second old", 10)
    gate = (
        f"echo run >> {tmp_path}/runs; [ ! -e t1.txt ] || cmp -s t1.txt out/snap/expected || "
        "{ cp t1.txt out/snap/expected; exit 1; }"
    )
    out = project.wtp("land", "t1", "--gate", gate)
    assert out.code == 1, out.err
    assert "(not run again: its run left 1 file behind (out/), which a re-run would see;" in out.err


def test_a_pass_above_that_changes_what_the_red_task_changed_does_not_vouch_for_it(
    project: Repo, tmp_path: Path
) -> None:
    """Review 44: t1 breaks the test for good (a BUG line in shared.txt) and t2 fixes it (a FIX
    line in the same file); t2's candidate (t1 + t2) passed while t1's red was being
    confirmed and vouched for it: t1's red commit reached main, recorded as flaky.  A task
    above that changes a path the red one changes is no sign of a flake: the re-run decides."""
    project.commit({".wtp.toml": "max_active = 5\n[land]\nvouch = true\n"}, "vouching")
    project.commit({"shared.txt": "".join(f"line {i}\n" for i in range(10))}, "the shared file")
    project.git("push", "-q", "origin", "main")
    for name, first, last in (("t1", None, "BUG"), ("t2", "FIX", None)):
        p = Path(project.wtp("start", name).lines[-1])
        lines = (p / "shared.txt").read_text().splitlines()
        lines[0], lines[-1] = first or lines[0], last or lines[-1]
        project.commit({"shared.txt": "\n".join(lines) + "\n"}, f"{name} work", cwd=p)
    gate = (  # red while BUG is there unfixed; t1's re-run waits until well after t2's gate passed
        f'if [ "$WTP_TASK" = t1 ] && [ -e {tmp_path}/t1-ran ]; then '
        f"while [ ! -e {tmp_path}/t2-ran ]; do sleep 0.05; done; sleep 2; fi; "
        f'touch {tmp_path}/"$WTP_TASK"-ran; ! {{ grep -q BUG shared.txt && ! grep -q FIX shared.txt; }}'
    )
    results = _land_all_at_once(project, ["t1", "t2"], "--gate", gate)
    assert [code for code, _, _ in results] == [1, 0], results
    assert "exited 1 on the candidate of 't1', and again on 1 re-run" in results[0][2], results[0][2]
    project.git("fetch", "-q", "origin")
    assert "BUG" not in project.git("show", "origin/main:shared.txt")
    assert project.git("log", "--format=%s", "origin/main").splitlines()[0] == "t2 work"
    assert project.wtp("queue", "--flaky", "--json").json() == {"gates": []}


def test_by_default_no_pass_above_vouches_for_a_red_the_re_run_decides(project: Repo, tmp_path: Path) -> None:
    """Review 45: t1 breaks the test for good (BUG in t1.txt) and t2 makes it pass from another
    file (SHIM in t2.txt): a vouch by t2's pass, even one that looked at the paths, landed t1's
    red commit.  By default nothing vouches: t1's re-run confirms its red, and t2 lands alone."""
    _tasks(project, 2)
    for name, rel, line in (("t1", "t1.txt", "BUG"), ("t2", "t2.txt", "SHIM")):
        p = Path(project.wtp("path", name).out.strip())
        project.commit({rel: line + "\n"}, f"{name} work", cwd=p)
    gate = (
        f'if [ "$WTP_TASK" = t1 ] && [ -e {tmp_path}/t1-ran ]; then '
        f"while [ ! -e {tmp_path}/t2-ran ]; do sleep 0.05; done; sleep 2; fi; "
        f'touch {tmp_path}/"$WTP_TASK"-ran; ! grep -q BUG t1.txt || grep -q SHIM t2.txt 2>/dev/null'
    )
    results = _land_all_at_once(project, ["t1", "t2"], "--gate", gate)
    assert [code for code, _, _ in results] == [1, 0], results
    project.git("fetch", "-q", "origin")
    assert "BUG" not in project.git("show", "origin/main:t1.txt", check=False)
    assert project.wtp("queue", "--flaky", "--json").json() == {"gates": []}
