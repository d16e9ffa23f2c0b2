"""Scripts and agents (issue 17): stdout of 'wtp start' is the path or nothing, a queued
start has its own exit code, refusals under --json are JSON, run and gate agree on a
missing command, --force starts a queued task, --version, and doctor --fix's exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .conftest import Repo, make_repo, wait_for


def test_a_queued_start_prints_nothing_on_stdout_and_exits_4(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    assert repo.wtp_proc("start", "a").code == 0
    out = repo.wtp_proc("start", "b")
    assert (out.code, out.out) == (4, "")
    assert out.err == "task 'b' is queued (place 1): waits because no slot is free: 1 of 1 taken\n"
    wtp = f"{sys.executable} -m worktree_par"
    cd = subprocess.run(["sh", "-c", f'cd "$({wtp} start b)" && pwd'], cwd=repo.path, capture_output=True, text=True)
    assert cd.stdout == f"{repo.path}\n"  # stayed put: never cd'ed into a message
    chained = subprocess.run(
        ["sh", "-c", f"{wtp} start b && echo started"], cwd=repo.path, capture_output=True, text=True
    )
    assert (chained.returncode, chained.stdout) == (4, "")
    again = repo.wtp("start", "b", "--json")
    assert again.code == 4 and again.json()["state"] == "queued"


def test_force_starts_an_already_queued_task(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    assert repo.wtp("start", "b").code == 4
    out = repo.wtp("start", "b", "--force")
    assert out.code == 0 and out.out == f"{repo.path.parent / 'repo.worktrees' / 'b'}\n"
    assert out.err == "--force: started although no slot is free: 1 of 1 taken\n"
    assert [t["state"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["active", "active"]


def test_a_refusal_under_json_is_json_with_the_same_exit_code(repo: Repo) -> None:
    out = repo.wtp("start", "bad/name", "--json")
    assert out.code == 2
    data = out.json()
    assert data == {
        "task": "bad/name",
        "state": "refused",
        "error": out.err.removeprefix("wtp: ").rstrip("\n"),
        "paths": [],
        "exit": 2,
    }
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.write("dirty.txt", "x\n", cwd=p)
    repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.write("dirty2.txt", "x\n", cwd=p)
    landed = repo.wtp("land", "a", "--json")
    assert landed.code == 1 and landed.json()["state"] == "refused"
    assert landed.json()["error"].startswith("task 'a' has 1 uncommitted file (dirty2.txt)")


def test_run_and_gate_agree_on_a_missing_command_and_gate_says_so_before_waiting(repo: Repo, tmp_path: Path) -> None:
    repo.wtp("start", "a")
    ran = repo.wtp_proc("run", "a", "--", "no-such-command-xyz")
    started = tmp_path / "holding"
    holder = repo.spawn("gate", "deploy", "--", "sh", "-c", f"touch {started}; sleep 20")
    try:
        wait_for(started.exists, "the holder's command to start")
        t0 = time.monotonic()
        gated = repo.wtp_proc("gate", "deploy", "--", "no-such-command-xyz")
        assert time.monotonic() - t0 < 10  # it did not wait for the holder's 20 s
    finally:
        holder.kill()
        holder.wait()
    assert (ran.code, ran.err) == (gated.code, gated.err) == (127, "wtp: command not found: no-such-command-xyz\n")


def test_version_on_both_doors(repo: Repo) -> None:
    from worktree_par import __version__

    fast = repo.wtp_proc("--version")
    assert (fast.code, fast.out) == (0, f"wtp {__version__}\n")
    typer_way = repo.wtp("--version")
    assert (typer_way.code, typer_way.out) == (0, f"wtp {__version__}\n")


def test_inside_a_task_worktree_path_land_and_rm_take_that_task(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    sub = p / "src"
    assert repo.wtp_proc("path", cwd=sub).out == f"{p}\n"  # the fast path
    assert repo.wtp("path", cwd=sub).out == f"{p}\n"  # and typer's
    repo.commit({"a.txt": "a\n"}, cwd=p)
    landed = repo.wtp_proc("land", cwd=sub)
    assert landed.code == 0 and landed.out.startswith("landed 'a' at ")
    assert landed.err.splitlines()[-1] == f"the worktree you are in was removed: cd {repo.path}"
    q = Path(repo.wtp("start", "b").lines[-1])
    out = repo.wtp("rm", cwd=q)
    assert out.code == 0 and out.lines[0] == "removed task 'b' (worktree and branch 'wtp/b')"
    outside = repo.wtp("path")
    assert (outside.code, outside.err) == (
        2,
        "wtp: name a task, or run this inside a task's worktree: see 'wtp list'\n",
    )


def test_require_gate_refuses_a_land_without_one_and_init_detects_the_test_command(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.write(".wtp.toml", "[land]\nrequire_gate = true\n")
    out = repo.wtp("land", "a")
    assert (out.code, out.err) == (
        1,
        "wtp: no gate to test 'a' with, and [land] require_gate is true: pass --gate CMD or set [land] gate\n",
    )
    assert repo.wtp("land", "a", "--gate", "true").code == 0
    bare = make_repo(repo.path.parent, fixture=None, name="plain")
    bare.write("Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")
    assert bare.wtp("init").lines[1] == "land gate 'make test': the Makefile has a test target (checked); trusted"


def test_run_check_and_gate_take_the_task_you_stand_in(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a", "--touch", "src/**").lines[-1])
    q = Path(repo.wtp("start", "b").lines[-1])
    sub = p / "src"
    for out in (
        repo.wtp_proc("run", "--", "sh", "-c", 'echo "$WTP_TASK $PWD"', cwd=sub),
        repo.wtp_proc("run", "a", "--", "sh", "-c", 'echo "$WTP_TASK $PWD"'),
    ):
        assert (out.code, out.out) == (0, f"a {p}\n")
    outside = repo.wtp_proc("run", "--", "true")
    assert (outside.code, outside.err) == (
        2,
        "wtp: name a task, or run this inside a task's worktree: see 'wtp list'\n",
    )
    repo.commit({"shared.txt": "a\n"}, cwd=p)
    repo.commit({"shared.txt": "b\n"}, cwd=q)
    c = repo.wtp("start", "c")
    assert c.code == 0
    # Inside 'a': the report is about 'a' (its overlap with b, its undeclared write); --all: every pair.
    mine = repo.wtp("check", "--json", cwd=sub).json()
    assert {tuple(x["tasks"]) for x in mine["collisions"]} == {("a", "b"), ("a",)}
    every = repo.wtp("check", "--all", "--json", cwd=sub).json()
    assert ("a", "b") in {tuple(x["tasks"]) for x in every["collisions"]}
    assert repo.wtp("check", "a", "--all").code == 2
    # The gate's holder is the task whose worktree it runs in, and the command gets its env.
    out = repo.wtp_proc("gate", "deploy", "--", "sh", "-c", 'echo "$WTP_TASK"', cwd=sub)
    assert (out.code, out.out) == (0, "a\n")


def test_start_on_an_existing_task_adds_declarations_or_refuses_saying_why(repo: Repo) -> None:
    repo.wtp("start", "a", "--touch", "src/a/**")
    repo.wtp("start", "b", "--touch", "src/b/**")
    added = repo.wtp("start", "a", "--touch", "config/*.yml", "--use", "db")
    assert added.code == 0 and "task 'a' now also declares --touch config/*.yml, --use db" in added.err
    assert _task(repo, "a")["touch"] == ["config/*.yml", "src/a/**"] and _task(repo, "a")["use"] == ["db"]
    refused = repo.wtp("start", "b", "--touch", "config/app.yml")
    assert refused.code == 1
    assert refused.err == (
        "wtp: cannot add to the declarations of 'b': path config/app.yml ~ config/*.yml with task 'a': "
        "land or remove the other task first, or pass --force\n"
    )
    assert _task(repo, "b")["touch"] == ["src/b/**"]  # unchanged
    again = repo.wtp("start", "a", "--touch", "src/a/**")  # nothing new: just reported
    assert again.code == 0 and "declares" not in again.err
    # A queued task takes new declarations and its reason is re-decided.
    repo.write(".wtp.toml", "max_active = 2\n")
    assert repo.wtp("start", "q").code == 4
    queued = repo.wtp("start", "q", "--use", "db", "--json")
    assert queued.code == 4 and queued.json()["use"] == ["db"]
    assert _task(repo, "q")["note"] == "no slot is free: 2 of 2 taken; resource db with task 'a'"


def test_an_old_forced_collision_does_not_refuse_an_unrelated_addition_and_a_clash_is_named_once(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a", "--touch", "src/y.py").lines[-1])
    # the agent hook records an edit of the declared file too: declared and recorded, one clash
    hook = repo.wtp(
        "hook",
        "pre-edit",
        cwd=a,
        input=json.dumps({"tool_name": "Edit", "tool_input": {"file_path": str(a / "src/y.py")}}),
    )
    assert hook.code == 0
    queued = repo.wtp("start", "b", "--touch", "src/y.py")
    assert (queued.code, queued.err) == (4, "task 'b' is queued (place 1): waits because path src/y.py with task 'a'\n")
    repo.wtp("rm", "b")
    assert repo.wtp("start", "c", "--touch", "src/y.py", "--force").code == 0
    added = repo.wtp("start", "a", "--touch", "notes.txt")
    assert (added.code, added.err) == (0, "task 'a' now also declares --touch notes.txt\ntask 'a' is already active\n")
    clash = repo.wtp("start", "a", "--use", "db", "--touch", "src/**")  # a new glob over c's file still refuses
    assert clash.code == 1 and "path src/** ~ src/y.py with task 'c'" in clash.err


def _task(repo: Repo, name: str) -> dict:
    return next(t for t in repo.state()["tasks"] if t["name"] == name)


def test_help_lists_choices_and_plain_metavars_and_wtp_help_shows_a_command() -> None:
    from typer.testing import CliRunner

    from worktree_par.cli import app

    runner = CliRunner()
    land = runner.invoke(app, ["help", "land"], env={"COLUMNS": "100"})
    assert land.exit_code == 0
    for piece in ("--strategy rebase|squash|merge", "--mode speculative|batch|serial", "--gate CMD", "--timeout S"):
        assert piece in land.stdout, piece
    assert "Example: wtp land feed --gate 'make test'" in land.stdout
    assert "<str>" not in land.stdout and "<float" not in land.stdout
    check = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "100"})
    assert "--fail-on semantic|conflict|overlap|likely|declared|never" in check.stdout
    group = __import__("typer").main.get_command(app)
    for name, cmd in group.commands.items():  # one example per command (aliases share theirs)
        if name not in ("abandon", "status"):
            assert "\nExample: " in (cmd.help or ""), name
    unknown = runner.invoke(app, ["help", "nosuch"])
    assert unknown.exit_code == 2 and unknown.stderr.startswith("wtp: no command named 'nosuch': one of init, start")
    assert runner.invoke(app, ["help"]).stdout.startswith("Usage: wtp [OPTIONS] COMMAND [ARGS]...")


def test_a_command_group_alone_prints_its_help_and_exits_0() -> None:
    out = subprocess.run([sys.executable, "-m", "worktree_par", "hook"], capture_output=True, text=True)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith("Usage: wtp hook [OPTIONS] COMMAND [ARGS]...")
