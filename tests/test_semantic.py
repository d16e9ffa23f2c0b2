"""wtp check --test (issue 27): semantic collisions found by gating merges of live work.

The gate is a small Python script committed to the base: it imports every module of
``pkg`` (a module that calls a missing function fails it) and appends 'start'/'end' lines
with its pid, port, folder and the tasks merged to a log, so the tests count and order
gate runs from what the gate itself saw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .conftest import Repo, make_repo

GATE_PY = """\
import importlib, os, pathlib, sys, time
log, args = sys.argv[1], sys.argv[2:]
tag = os.environ.get("WTP_CHECK_TASKS") or ("land " + os.environ.get("WTP_TASK", ""))
def note(what):
    with open(log, "a") as f:
        f.write(f"{what}|{os.getpid()}|{os.environ.get('PORT', '')}|{os.getcwd()}|{tag}\\n")
note("start")
if "--sleep" in args:
    time.sleep(float(args[args.index("--sleep") + 1]))
if "--block" in args:  # a gate that takes as long as the test wants
    while os.path.exists(args[args.index("--block") + 1]):
        time.sleep(0.05)
if "--flaky" in args:
    flag = pathlib.Path(args[args.index("--flaky") + 1])
    if not flag.exists():
        flag.write_text("failed once")
        note("end")
        sys.exit("flaky: the first run fails")
sys.path.insert(0, os.getcwd())
try:
    for p in sorted(pathlib.Path("pkg").glob("*.py")):
        importlib.import_module("pkg." + p.stem)
finally:
    note("end")
"""

LIB = 'def greet(name):\n    return "hello " + name\n'
APP = "from pkg import lib\n\nlib.greet('app')\n"
RENAMED = 'def hello(name):\n    return "hello " + name\n'
APP_RENAMED = "from pkg import lib\n\nlib.hello('app')\n"
CALLER = "from pkg import lib\n\nlib.greet('welcome')\n"


class Gated:
    """A repository whose land gate is GATE_PY, logging to ``log``."""

    def __init__(self, tmp: Path, gate_args: str = "", max_active: int = 4, extra: str = "") -> None:
        self.repo = make_repo(tmp, fixture=None)
        self.log = tmp / "gate.log"
        self.repo.commit(
            {"gate.py": GATE_PY, "pkg/__init__.py": "", "pkg/lib.py": LIB, "pkg/app.py": APP, "docs/guide.md": "g\n"},
            msg="a package and its gate",
        )
        self.gate = f"{sys.executable} gate.py {self.log}{' ' + gate_args if gate_args else ''}"
        self.repo.write(".wtp.toml", f"max_active = {max_active}\n{extra}[land]\ngate = {json.dumps(self.gate)}\n")
        assert self.repo.wtp("trust").code == 0

    def start(self, name: str) -> Path:
        out = self.repo.wtp("start", name)
        assert out.code == 0, out.err
        return Path(out.lines[-1])

    def runs(self) -> list[list[str]]:
        """Each gate run's line: [start|end, pid, port, folder, tasks]."""
        if not self.log.exists():
            return []
        return [line.split("|") for line in self.log.read_text().splitlines()]

    def started(self) -> list[str]:
        return [r[4] for r in self.runs() if r[0] == "start"]

    def worktrees(self) -> list[str]:
        out = self.repo.git("worktree", "list", "--porcelain")
        return sorted(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree "))


def rename_and_caller(g: Gated) -> tuple[Path, Path]:
    """t1 renames lib.greet to lib.hello (its caller too, committed); t2 adds a new caller of
    lib.greet, uncommitted and untracked."""
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, msg="rename greet to hello", cwd=t1)
    (t2 / "pkg/welcome.py").write_text(CALLER)
    return t1, t2


def test_a_rename_and_a_new_caller_fail_together(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    t1, t2 = rename_and_caller(g)
    before = g.worktrees()
    status_before = g.repo.git("status", "--porcelain", cwd=t2)
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 1, out.err
    data = out.json()
    (sem,) = data["collisions"]
    assert (sem["tasks"], sem["kind"], sem["gate"]) == (["t1", "t2"], "semantic", g.gate)
    assert sem["output"][-1] == "AttributeError: module 'pkg.lib' has no attribute 'greet'"
    assert Path(sem["log"]).read_text().splitlines()[-1] == sem["output"][-1]
    subsets = {tuple(v["tasks"]): v["verdict"] for v in sem["verdicts"]}
    assert subsets == {("t1", "t2"): "fail", ("t1",): "pass", ("t2",): "pass"}
    test = data["test"]
    assert (test["verdict"], test["semantic"], test["fails_alone"], test["flaky"]) == ("fail", [["t1", "t2"]], [], None)
    # whole set, each alone, the whole set again before naming it: 4 runs, as the gate saw
    assert test["runs"] == 4 and len(g.started()) == 4
    assert sorted(g.started()) == ["t1", "t1 t2", "t1 t2", "t2"]
    # the runs happened in throw-away worktrees beside the tasks', all gone now
    folders = {r[3] for r in g.runs()}
    assert all(Path(f).parent == t1.parent and Path(f).name.startswith(".wtp-check-") for f in folders)
    assert g.worktrees() == before
    # the task's uncommitted work is as it was
    assert g.repo.git("status", "--porcelain", cwd=t2) == status_before == "?? pkg/welcome.py"
    assert (t2 / "pkg/welcome.py").read_text() == CALLER
    # the human report names the pair and the failing line
    out = g.repo.wtp("check", "--test")
    assert out.code == 1
    assert out.lines[:3] == [
        "KIND      TASKS     PATHS",
        "SEMANTIC  t1 <> t2  fail together (each passes alone)",
        f"SEMANTIC: t1 + t2 fail together (each passes alone); log: {sem['log']}",
    ]
    assert "  | AttributeError: module 'pkg.lib' has no attribute 'greet'" in out.lines
    assert out.lines[-1] == "gate runs: 2 (at most 1 at once, budget 4), verdicts reused: 2"
    # without the new call the merge passes
    (t2 / "pkg/welcome.py").write_text("from pkg import lib\n")
    out = g.repo.wtp("check", "--test", "--fail-on", "semantic")
    assert out.code == 0, out.out
    assert out.lines[-2:] == [
        f"semantic: the merge of t1 + t2 passes '{g.gate}'",
        "gate runs: 1 (at most 1 at once, budget 4)",
    ]


def test_three_tasks_only_the_pair_that_breaks_is_named(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    t1, t2, t3 = g.start("t1"), g.start("t2"), g.start("t3")
    g.repo.commit({"docs/guide.md": "a better guide\n"}, cwd=t1)
    g.repo.commit({"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED}, cwd=t2)
    g.repo.commit({"pkg/welcome.py": CALLER}, cwd=t3)
    out = g.repo.wtp("check", "--test", "--budget", "2", "--json")
    assert out.code == 1, out.err
    test = out.json()["test"]
    assert test["semantic"] == [["t2", "t3"]]
    assert [c["tasks"] for c in out.json()["collisions"] if c["kind"] == "semantic"] == [["t2", "t3"]]
    # the whole set, each task alone, then the one pair not independent by path (t1 only
    # touched docs/, so its pairs run only if no other pair explained the failure), and that
    # pair once more before it is named
    assert sorted(g.started()) == ["t1", "t1 t2 t3", "t2", "t2 t3", "t2 t3", "t3"]
    assert test["runs"] == 6 and test["budget"] == 2
    assert _most_at_once(g.runs()) <= test["at_once"] <= 2
    # ports: none a live task holds, none shared by runs at the same time
    live_ports = {t["port"] for t in g.repo.wtp("list", "--json").json()["tasks"]}
    assert not {int(r[2]) for r in g.runs()} & live_ports
    assert _no_shared_port_at_once(g.runs())
    # --all-pairs gates every pair (the singles' passes are reused now)
    out = g.repo.wtp("check", "--test", "--all-pairs", "--budget", "3", "--json")
    test = out.json()["test"]
    assert test["semantic"] == [["t2", "t3"]]
    ran = sorted(g.started()[6:])
    assert ran == ["t1 t2", "t1 t2 t3", "t1 t3", "t2 t3", "t2 t3"]
    assert (test["runs"], test["reused"]) == (5, 3)


def _most_at_once(runs: list[list[str]]) -> int:
    now = most = 0
    for r in runs:
        now += 1 if r[0] == "start" else -1
        most = max(most, now)
    return most


def _no_shared_port_at_once(runs: list[list[str]]) -> bool:
    live: dict[str, str] = {}
    for kind, pid, port, *_ in runs:
        if kind == "start":
            if port in live.values():
                return False
            live[pid] = port
        else:
            live.pop(pid, None)
    return True


def test_twenty_independent_tasks_one_run_no_semantic(tmp_path: Path) -> None:
    g = Gated(tmp_path, max_active=20)
    for i in range(20):
        wt = g.start(f"t{i:02}")
        pair = i // 2  # ten pairs, each pair in a package of its own; both sides of a pair meet in it
        files = {f"p{pair}/__init__.py": "", f"p{pair}/m{i}.py": f"def f{i}():\n    return {i}\n"}
        if i % 2:
            files[f"pkg/use{i}.py"] = f"from p{pair} import m{i - 1}, m{i}\n\nm{i - 1}.f{i - 1}() + m{i}.f{i}()\n"
        g.repo.commit(files, cwd=wt)
    out = g.repo.wtp("check", "--test", "--json", "--fail-on", "semantic")
    assert out.code == 0, out.out
    data = out.json()
    assert [c for c in data["collisions"] if c["kind"] == "semantic"] == []
    assert (data["test"]["verdict"], data["test"]["runs"], len(data["test"]["tasks"])) == ("pass", 1, 20)


def test_a_task_that_fails_alone_is_not_a_collision(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/broken.py": "from pkg import lib\n\nlib.nowhere()\n"}, cwd=t1)
    g.repo.commit({"docs/guide.md": "more\n"}, cwd=t2)
    before = g.worktrees()
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 1
    data = out.json()
    assert [c["kind"] for c in data["collisions"]] == []
    alone = data["test"]["fails_alone"]
    assert [a["task"] for a in alone] == ["t1"]
    assert alone[0]["output"][-1] == "AttributeError: module 'pkg.lib' has no attribute 'nowhere'"
    assert data["test"]["semantic"] == []
    out = g.repo.wtp("check", "--test")
    assert out.code == 1
    log = alone[0]["log"]
    assert f"t1 fails '{g.gate}' alone, merged with no other task (not a collision); log: {log}" in out.lines
    assert g.worktrees() == before


def test_a_textual_conflict_is_reported_and_not_gated(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/lib.py": LIB.replace("hello ", "hi ")}, cwd=t1)
    (t2 / "pkg/lib.py").write_text(LIB.replace("hello ", "good day "))
    before = g.worktrees()
    out = g.repo.wtp("check", "--test", "--json")
    assert out.code == 1
    data = out.json()
    assert [(c["tasks"], c["kind"], c["paths"]) for c in data["collisions"]] == [
        (["t1", "t2"], "conflict", ["pkg/lib.py"])
    ]
    assert data["test"]["skipped"] == [{"task": "t2", "why": "conflicts with t1 in pkg/lib.py"}]
    assert (data["test"]["runs"], data["test"]["verdict"]) == (0, "none")
    assert g.runs() == [] and g.worktrees() == before
    assert (t2 / "pkg/lib.py").read_text() == LIB.replace("hello ", "good day ")


def test_a_flaky_gate_is_not_a_collision(tmp_path: Path) -> None:
    g = Gated(tmp_path, gate_args=f"--flaky {tmp_path / 'flag'}")
    t1, t2 = g.start("t1"), g.start("t2")
    g.repo.commit({"pkg/one.py": "x = 1\n"}, cwd=t1)
    g.repo.commit({"pkg/two.py": "y = 2\n"}, cwd=t2)
    before = g.worktrees()
    out = g.repo.wtp("check", "--test", "--json", "--fail-on", "semantic")
    assert out.code == 0, out.out
    assert g.worktrees() == before
    test = out.json()["test"]
    assert (test["flaky"], test["semantic"], test["verdict"], test["runs"]) == (["t1", "t2"], [], "pass", 4)
    out = g.repo.wtp("check", "--test", "--fail-on", "semantic")
    assert out.code == 0


def test_verdicts_by_source(tmp_path: Path) -> None:
    """A failure is recorded but never proves anything, and never replaces a pass; an old
    record (a bare timestamp) still counts as land's pass."""
    from worktree_par.land import verdicts
    from worktree_par.repo import open_ctx

    r: Repo = make_repo(tmp_path, fixture=None)
    ctx = open_ctx(r.path)
    verdicts.record(ctx, "make", "a" * 40, ok=False, by=verdicts.CHECK, tasks=["t1", "t2"])
    assert not verdicts.passed(ctx, "make", "a" * 40)
    assert not verdicts.Proofs(ctx).passed("make", "a" * 40)
    assert verdicts.lookup(ctx, "make", "a" * 40) is not None
    verdicts.record(ctx, "make", "a" * 40, ok=True, by=verdicts.CHECK, tasks=["t1", "t2"])
    verdicts.record(ctx, "make", "a" * 40, ok=False, by=verdicts.CHECK)
    v = verdicts.lookup(ctx, "make", "a" * 40)
    assert v is not None and (v.ok, v.by, v.tasks) == (True, "check", ["t1", "t2"])
    assert verdicts.reused_from_check(v) == "verdict reused from check --test (the merge of t1 + t2 passed)"
    path = ctx.store.dir / "verdicts.json"
    data = json.loads(path.read_text())
    data[verdicts._key("old", "b" * 40)] = 1700000000.0
    data[verdicts._key("bad", "c" * 40)] = {"ok": "yes", "by": "land", "t": 1}
    path.write_text(json.dumps(data))
    assert verdicts.passed(ctx, "old", "b" * 40) and verdicts.Proofs(ctx).passed("old", "b" * 40)
    assert not verdicts.passed(ctx, "bad", "c" * 40)
    assert os.path.exists(path)


def test_many_tasks_are_bisected_and_every_bad_pair_is_named(tmp_path: Path) -> None:
    """Six tasks in one package (no pair independent by path: 15 pairs, more than the budget
    gates in a round): prefixes are bisected; both bad pairs are found, in fewer runs."""
    g = Gated(tmp_path, max_active=6)
    g.repo.commit({"pkg/wave.py": "def wave():\n    return 1\n"}, msg="another function")
    work = {
        "t0": {"pkg/m0.py": "x = 0\n"},
        "t1": {"pkg/lib.py": RENAMED, "pkg/app.py": APP_RENAMED},
        "t2": {"pkg/wave.py": "def waved():\n    return 1\n"},
        "t3": {"pkg/m3.py": "x = 3\n"},
        "t4": {"pkg/welcome.py": CALLER},
        "t5": {"pkg/hand.py": "from pkg import wave\n\nwave.wave()\n"},
    }
    for name, files in work.items():
        g.repo.commit(files, cwd=g.start(name))
    out = g.repo.wtp("check", "--test", "--budget", "2", "--json")
    assert out.code == 1, out.err
    test = out.json()["test"]
    assert sorted(test["semantic"]) == [["t1", "t4"], ["t2", "t5"]]
    # fewer than every subset up to pairs, each of the two reds named confirmed by a re-run
    assert test["runs"] == len(g.started()) < 1 + 6 + 15 + 2
    assert test["at_once"] <= 2


def test_usage_errors(tmp_path: Path) -> None:
    g = Gated(tmp_path)
    g.start("t1")
    for args, said in [
        (("--budget", "0"), "wtp: --budget must be at least 1, not 0"),
        (("--timeout", "0"), "wtp: --timeout must be a positive number of seconds, not 0"),
    ]:
        out = g.repo.wtp("check", "--test", *args)
        assert (out.code, out.err.strip()) == (2, said)
    out = g.repo.wtp("check", "--all-pairs")
    assert (out.code, out.err.strip()) == (
        2,
        "wtp: --budget, --all-pairs and --timeout belong to --test: add --test, or drop them",
    )
    g.repo.write(".wtp.toml", "max_active = 4\n")
    out = g.repo.wtp("check", "--test")
    assert (out.code, out.err.strip()) == (
        2,
        "wtp: there is no gate to run: set [land] gate (or [check] test) in .wtp.toml",
    )
    assert g.runs() == []


def test_the_repositorys_post_checkout_hook_does_not_run_for_a_throw_away_worktree(tmp_path: Path) -> None:
    """Review 36: every throw-away worktree 'check --test' made ran the repository's
    post-checkout hook, under wtp's worktree lock (a 'wtp start' beside it waited) and past
    --timeout.  Setup for a run is [setup] run's; a task's own worktree still runs the hook."""
    g = Gated(tmp_path)
    t1, t2 = g.start("t1"), g.start("t2")
    (t1 / "pkg" / "one.py").write_text("X = 1\n")
    (t2 / "pkg" / "two.py").write_text("Y = 2\n")
    ran = tmp_path / "hook.log"
    hook = g.repo.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$PWD" >> {ran}\n')
    hook.chmod(0o755)
    out = g.repo.wtp("check", "--test")
    assert out.code == 0, out.err
    assert g.started() and not ran.exists()
    g.start("t3")
    assert ran.read_text().splitlines() == [str(g.repo.path.parent / "repo.worktrees" / "t3")]
