"""Code health (issue 15): one body per command behind both front doors, the defects the
review found, and the debugging aids (WTP_TRACE, the crash log of a git failure)."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Repo


def _bound(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    b = inspect.signature(fn).bind(*args, **kwargs)
    b.apply_defaults()
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in b.arguments.items()}


@pytest.mark.parametrize(
    "argv",
    [
        ["path", "a"],
        ["start", "a"],
        ["land", "a"],
        ["list"],
        ["list", "--json"],
        ["-C", "/some/where", "list"],  # defect 6: this form missed the fast path
        ["-C", "/some/where", "list", "--json"],
        ["-C", "/some/where", "start", "b"],
        ["path"],  # the task of the worktree it runs in
        ["land"],
        ["run", "a", "--", "make", "test"],
        ["check"],
        ["check", "--json"],
        ["-C", "/some/where", "check", "a", "b", "--fail-on", "conflict"],
        ["check", "--fail-on=never", "a", "--json"],
        ["check", "--all", "--json", "--fail-on", "declared"],
    ],
)
def test_both_front_doors_call_the_same_body_with_the_same_arguments(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from worktree_par import entry
    from worktree_par.cli import app
    from worktree_par.commands import check, land, lists, run, start

    calls: list[tuple[str, dict[str, Any]]] = []
    for module, name in (
        (run, "path"),
        (start, "start"),
        (land, "land"),
        (lists, "list_"),
        (run, "run"),
        (check, "check"),
    ):
        real = getattr(module, name)

        def record(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> int:
            calls.append((_name, _bound(_real, a, k)))
            return 0

        monkeypatch.setattr(module, name, record)
    call = entry.parse(argv)
    assert call is not None, "the fast path should answer this"
    assert entry.run_fast(call) == 0
    res = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(calls) == 2 and calls[0] == calls[1]


def test_the_fast_path_leaves_every_other_form_to_typer() -> None:
    from worktree_par import entry

    for argv in (
        ["start"],
        ["path", "a", "b"],
        ["start", "a", "--wait"],
        ["land", "--json", "a"],
        ["list", "--all"],
        ["rm", "a"],
        ["-C"],
        [],
        ["check", "--help"],
        ["check", "--fail-on"],  # its value missing: typer says so
        ["check", "--json=yes"],
        ["check", "--unknown-option", "a"],  # an option the fast path does not know: typer's
        ["check", "a", "--", "b"],
    ):
        assert entry.parse(argv) is None, argv


@pytest.mark.parametrize("columns", ["80", "100", "40"])
def test_1_bare_wtp_prints_help_on_stdout_and_exits_0_at_any_width(columns: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "worktree_par"], capture_output=True, text=True, env={**os.environ, "COLUMNS": columns}
    )
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith("Usage: wtp [OPTIONS] COMMAND [ARGS]...")


def test_2_adopt_records_the_fork_point(repo: Repo) -> None:
    root = repo.path.parent / "repo.worktrees"
    repo.git("worktree", "add", "-q", "-b", "wtp/stray", str(root / "stray"))
    repo.commit({"s.txt": "s\n"}, cwd=root / "stray")
    fork = repo.git("rev-parse", "main")
    repo.commit({"later.txt": "base moved\n"})
    assert repo.wtp_proc("doctor", "--fix", "--adopt").code == 0
    assert repo.state()["tasks"][0]["fork"] == fork


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
def test_3_land_and_check_name_a_file_directory_conflict_alike(repo: Repo, strategy: str) -> None:
    repo.commit({"thing": "a file\n"})
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.git("rm", "-q", "thing", cwd=p)
    repo.commit({"thing/inside.txt": "now a folder\n"}, cwd=p)
    repo.commit({"thing": "the file, edited on main\n"})
    checked = repo.wtp("check", "--json").json()["collisions"]
    assert [(c["kind"], c["paths"]) for c in checked] == [("conflict", ["thing"])]
    out = repo.wtp("land", "a", "--strategy", strategy, "--json")
    assert out.code == 1
    assert json.loads(out.out)["paths"] == ["thing"]


def test_wtp_trace_prints_each_git_call(repo: Repo) -> None:
    repo.wtp("start", "a")
    out = repo.wtp_proc("path", "a", env={"WTP_TRACE": "1"})
    assert out.code == 0
    traced = [line for line in out.err.splitlines() if line.startswith("wtp trace: git ")]
    assert traced and all(
        f"[in {repo.path}]" in line and " -> 0 (" in line and line.endswith(" ms)") for line in traced
    )


def test_a_git_failure_writes_its_argv_and_output_to_the_crash_log(repo: Repo, tmp_path: Path) -> None:
    """A local git call failing where nothing expects it (here 'git for-each-ref', made to fail by
    a wrapper in front of the real git): one line, exit 1, and the crash log holds the argv, the
    directory and git's output; the land rolled back and lost nothing."""
    r = repo
    p = Path(r.wtp("start", "a").lines[-1])
    r.commit({"a.txt": "a\n"}, cwd=p)
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    real = shutil.which("git")
    wrapper.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = for-each-ref ] && {{ echo "fatal: injected" >&2; exit 128; }}; done\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    out = r.wtp_proc("land", "a", "--gate", "true", env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"})
    assert out.code == 1 and len(out.err.strip().splitlines()) == 1, out.err
    assert (
        out.err.startswith("wtp: 'git for-each-ref ") and "failed (exit 128): fatal: injected; details in " in out.err
    )
    log = Path(out.err.rsplit("details in ", 1)[1].strip())
    text = log.read_text()
    assert f"cwd: {r.path}" in text and "argv: git for-each-ref" in text and "--- stderr\nfatal: injected" in text
    assert r.wtp("list", "--json").json()["tasks"][0]["state"] == "active"  # rolled back, nothing lost


def test_the_psutil_path_finds_processes_and_start_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc is missing (macOS, BSD), wtp asks psutil: forced here so that path runs."""
    from worktree_par import procs

    child = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        real_isdir = os.path.isdir
        monkeypatch.setattr(os.path, "isdir", lambda p: False if str(p) == "/proc/self" else real_isdir(p))
        assert procs.processes_in([tmp_path])[tmp_path] == [procs.Proc(child.pid, "sleep")]
        start = procs.process_start(child.pid)
        assert start > 0 and procs.process_start(child.pid) == start
    finally:
        child.kill()
        child.wait()


def test_what_a_command_sets_for_itself_ends_with_it(repo: Repo) -> None:
    """Issue 25: a process that runs many commands (the in-process CLI here; any embedding)
    never carries one command's --timeout, reporter or crash-log folder into the next
    (before: module globals set by one command and never reset)."""
    from worktree_par import exits, gitops, locks

    before = gitops.network_budget()
    out = repo.wtp("start", "a", "--wait", "--timeout", "5")
    assert out.code == 0, out.err
    assert locks._deadline.get() is None
    assert locks._notify.get() is not exits.err
    assert exits._state_dir.get() is None
    assert gitops.network_budget() == before


_PLANT_THEN_LAND = """
import os, sys, time
logs, now = sys.argv[1], int(time.time())
for second in range(now, now + 60):  # the crash log's names for this process in the next minute
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(second))
    os.mkfifo(os.path.join(logs, f"wtp-crash-{stamp}-{os.getpid()}.log"))
os.execv(sys.executable, [sys.executable, "-m", "worktree_par", "doctor"])
"""


def test_a_crash_log_is_not_written_through_what_is_planted_at_its_name(repo: Repo, tmp_path: Path) -> None:
    """A git failure nothing expects ('git worktree' made to fail) with FIFOs planted at the
    crash log's names in the temporary folder (its second, and the pid of the command, planted
    by the process that then becomes it): one line saying no log could be written there,
    instead of waiting on a FIFO for ever."""
    r = repo
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = worktree ] && {{ echo "fatal: injected" >&2; exit 128; }}; done\n'
        f'exec {shutil.which("git")} "$@"\n'
    )
    wrapper.chmod(0o755)
    planted = tmp_path / "tmp"
    planted.mkdir()
    env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}", "TMPDIR": str(planted)}
    out = subprocess.run(
        [sys.executable, "-c", _PLANT_THEN_LAND, str(planted)],
        cwd=r.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.endswith("not a regular file, so not a log)\n"), out.stderr


def test_fanout_keeps_the_order_starts_nothing_after_an_error_and_runs_off_the_main_thread() -> None:
    """list's and check's threads (fanout, not concurrent.futures: its import is ~4 ms of
    each command): results in the items' order; once a call raises no other starts, and the
    first error is raised (as a pool's map); a single call runs in a thread too, so a Ctrl-C
    never lands inside its git (review 56)."""
    import threading

    from worktree_par.fanout import map_threads

    started = threading.Barrier(3, timeout=10)  # three calls under way at once, or this fails

    def slow_square(x: int) -> int:
        if x < 3:
            started.wait()
        return x * x

    assert map_threads(slow_square, list(range(10)), workers=3) == [x * x for x in range(10)]
    ran: list[int] = []

    def fail_on_odd(x: int) -> int:
        ran.append(x)
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    with pytest.raises(ValueError, match="odd 1"):
        map_threads(fail_on_odd, [0, 1, 2, 3, 4], workers=1)
    assert ran == [0, 1]
    assert map_threads(fail_on_odd, [], workers=2) == [] and map_threads(fail_on_odd, [4]) == [4]
    assert map_threads(lambda _: threading.current_thread() is threading.main_thread(), [0]) == [False]
