#!/usr/bin/env python3
"""The land queue benchmark (issues 16 and 28): N tasks (5, 10, 20) land at once onto a
200-file repository with a bare remote, one pair of them conflicting, gated by
'sleep G; ./check.sh', in three scenarios: all green, one red (task 3 breaks the test),
one flaky (the gate fails once for task 3, then passes).  wtp runs speculative with a fixed
depth of 5, with the adaptive default, the adaptive default through 'land --detach', and
the adaptive default with one 'wtp land t1 ... tN' for all; the
peer merge queue mergetrain (pinned to 3.7.1) runs batch and batch with its validation reuse
on the same scenarios in the same run.  Reports wall time, gate runs, landed tasks, the
ratio to the ideal ceil(N/depth)*G and to mergetrain batch+reuse, and how long the
'--detach' calls took to return.  Then ten landers arriving one at a time during the gates
(--trickle seconds apart), in wtp's batch and speculative modes: wall time and gate runs.

    python3 scripts/bench_queue.py [--gate-seconds 2] [--sizes 5,10,20] [--trickle 0.4] [--json out.json] [--no-peer]

mergetrain 3.7.1 is installed into this interpreter's environment from the package index
when another version or none is there (pip install mergetrain==3.7.1); --no-peer skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repos  # noqa: E402
from benchlib import ENV, WTP  # noqa: E402

CHECK = "#!/bin/sh\n# the project's test: fails while a BROKEN file is in the tree\ntest ! -e BROKEN\n"
MERGETRAIN = "3.7.1"  # the peer's version the README names
FIXED_DEPTH = 5
Row = dict[str, Any]  # one line of the results table, as written to --json
LIST_ERRORS: set[str] = set()  # 'wtp list' failures seen while waiting for detached lands


def scenario(base: Path, red: bool, with_wtp_config: str = "") -> Path:
    """The repository: 200 files, the test, and origin; tasks are made by the caller."""
    files = {f"src/m{i:03d}.py": f"VALUE = {i}\n" for i in range(200)}
    files.update({"check.sh": CHECK, "src/conflict.txt": "shared line\n", ".gitignore": ".mergetrain/\n"})
    if with_wtp_config:
        files[".wtp.toml"] = with_wtp_config
    repo = repos.build(base / "repo", files=files, origin=base / "origin.git", env=ENV)
    (repo / "check.sh").chmod(0o755)
    repos.git(repo, "commit", "-q", "-a", "--amend", "--no-edit", env=ENV)
    repos.git(repo, "push", "-q", "--force", "origin", "main", env=ENV)
    return repo


def task_files(i: int, red: bool) -> dict[str, str]:
    files = {f"src/task{i}.py": f"TASK = {i}\n"}
    if i in (2, 4):  # the conflicting pair: both rewrite the same line
        files["src/conflict.txt"] = f"shared line, as task {i} has it\n"
    if red and i == 3:
        files["BROKEN"] = "this task breaks the test\n"
    return files


def commit(wt: Path, files: dict[str, str], msg: str) -> None:
    for rel, text in files.items():
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).write_text(text)
    repos.git(wt, "add", "-A", env=ENV)
    repos.git(wt, "commit", "-q", "-m", msg, env=ENV)


def gate_cmd(runs: Path, seconds: float, flaky: bool) -> str:
    """The gate; ``flaky``: red once for task 3 (the first run that has its file), then green.
    Each run also notes when it started and ended (``{runs}.times``), for the breakdown."""
    once = f"if [ -e src/task3.py ] && [ ! -e {runs}.flaked ]; then touch {runs}.flaked; exit 1; fi; " if flaky else ""

    def stamp(what: str) -> str:
        return f'echo "{what} $(date +%s.%N)" >> {runs}.times'

    return f"echo run >> {runs}; {stamp('start')}; sleep {seconds:g}; {stamp('end')}; {once}./check.sh"


def breakdown(runs: Path, t0: float, last_launch: float, wall: float) -> dict[str, float] | None:
    """Where a wtp run's wall time went, from the gate's own time stamps (seconds since the
    first lander was started): the last lander's start, the last gate's start, the last
    gate's end, and the tail after it (publishing, cleaning up, the landers exiting)."""
    try:
        stamps = [line.split() for line in Path(f"{runs}.times").read_text().splitlines()]
        starts = [float(t) - t0 for what, t in stamps if what == "start"]
        ends = [float(t) - t0 for what, t in stamps if what == "end"]
    except (OSError, ValueError):
        return None
    if not starts or not ends:
        return None
    return {
        "last_lander_started_s": round(last_launch, 2),
        "last_gate_started_s": round(max(starts), 2),
        "last_gate_ended_s": round(max(ends), 2),
        "tail_s": round(wall - max(ends), 2),
    }


def landed(repo: Path, n: int) -> int:
    """How many of the tasks' commits the remote's main has (counted the same for both tools)."""
    repos.git(repo, "fetch", "-q", "origin", env=ENV)
    subjects = set(repos.git(repo, "log", "--format=%s", "origin/main", env=ENV).splitlines())
    return sum(f"t{i} work" in subjects for i in range(1, n + 1))


def main_is_green(repo: Path) -> bool:
    repos.git(repo, "fetch", "-q", "origin", env=ENV)
    for c in repos.git(repo, "rev-list", "--first-parent", "origin/main", env=ENV).split():
        if "BROKEN" in repos.git(repo, "ls-tree", "--name-only", c, env=ENV).split():
            return False
    return True


def run_wtp(
    tmp: Path,
    n: int,
    scen: str,
    depth: int,
    detach: bool,
    seconds: float,
    mode: str = "speculative",
    gap: float = 0.05,
    together: bool = False,
) -> Row:
    """wtp lands N tasks, the landers started ``gap`` seconds apart; ``together``: one
    'wtp land t1 ... tN' lands them all (a person landing what is ready, as mergetrain's
    enqueue-then-deploy does)."""
    red, flaky = scen == "red", scen == "flaky"
    base = tmp / f"wtp-{n}-{scen}-{depth}-{int(detach)}-{mode}-{gap:g}-{int(together)}"
    repo = scenario(base, red, f'max_active = {n}\n[land]\nmode = "{mode}"\ndepth = {depth}\n')
    for i in range(1, n + 1):
        out = subprocess.run([*WTP, "start", f"t{i}"], cwd=repo, env=ENV, capture_output=True, text=True, check=True)
        commit(Path(out.stdout.strip().splitlines()[-1]), task_files(i, red), f"t{i} work")
    runs = base / "runs"
    gate = gate_cmd(runs, seconds, flaky)
    returns: list[float] = []
    t0, t0_wall = time.perf_counter(), time.time()
    procs = []
    for i in range(1, n + 1):  # agents finishing at nearly the same moment (detached: each moves on at once)
        names = [f"t{k}" for k in range(1, n + 1)] if together else [f"t{i}"]
        args = [*WTP, "land", *names, "--gate", gate, *(["--detach"] if detach else [])]
        procs.append((time.perf_counter(), subprocess.Popen(args, cwd=repo, env=ENV, stdout=DEVNULL, stderr=DEVNULL)))
        if together:
            break
        time.sleep(gap)
    if detach:

        def returned(c0: float, p: subprocess.Popen[bytes]) -> None:
            p.wait()
            returns.append(time.perf_counter() - c0)

        waiters = [threading.Thread(target=returned, args=cp) for cp in procs]
        for w in waiters:
            w.start()
        for w in waiters:
            w.join()
        codes = wait_settled(repo, n)
    else:
        codes = [p.wait() for _, p in procs]
    wall = time.perf_counter() - t0
    quiet(repo)
    if together:  # one exit code for all: a task's is whether it landed (the conflicting one does not)
        k = landed(repo, n)
        codes = [0] * k + [1] * (n - k)
    window = json.loads(
        subprocess.run([*WTP, "queue", "--json"], cwd=repo, env=ENV, capture_output=True, text=True).stdout
    )["depth"]
    return {
        "tool": "wtp",
        "n": n,
        "scenario": scen,
        "mode": mode + (" --detach" if detach else "") + (", one command" if together else ""),
        "together": together,
        "depth": depth or n,
        "adaptive": depth == 0,
        "window_after": window["window"],
        "wall_s": round(wall, 2),
        "gate_runs": len(runs.read_text().splitlines()) if runs.exists() else 0,
        "landed": landed(repo, n),
        "exit_0": codes.count(0),
        "main_green": main_is_green(repo),
        "detach_return_s": [round(x, 3) for x in returns] or None,
        "breakdown": breakdown(runs, t0_wall, procs[-1][0] - t0, wall),
    }


def detach_latency(tmp: Path, n: int = 5, rounds: int = 3) -> list[list[float]]:
    """How long each of ``n`` '--detach' calls made one after another takes to return (an
    agent's wait before it moves on), the lands then finishing alone; ``rounds`` times, each
    on a repository of its own (the first round of a run also pays for cold caches)."""
    return [_detach_round(tmp / f"detach-latency-{k}", n) for k in range(rounds)]


def _detach_round(base: Path, n: int) -> list[float]:
    repo = scenario(base, False, f"max_active = {n}\n")
    for i in range(1, n + 1):
        out = subprocess.run([*WTP, "start", f"t{i}"], cwd=repo, env=ENV, capture_output=True, text=True, check=True)
        commit(Path(out.stdout.strip().splitlines()[-1]), {f"src/task{i}.py": f"TASK = {i}\n"}, f"t{i} work")
    took = []
    for i in range(1, n + 1):
        c0 = time.perf_counter()
        subprocess.run(
            [*WTP, "land", f"t{i}", "--detach", "--gate", "sleep 1; ./check.sh"],
            cwd=repo,
            env=ENV,
            capture_output=True,
            check=True,
        )
        took.append(round(time.perf_counter() - c0, 3))
    wait_settled(repo, n)
    return took


def quiet(repo: Path, limit: float = 120) -> None:
    """After a row is timed: wait until no process of it is left (a lander's child that goes
    on in the background, a detached lander's clean-up, a queued task started behind), so
    the next row starts on an idle machine.  They all work from the repository or a worktree."""
    from worktree_par.procs import processes_in

    where = [repo, repo.with_name(f"{repo.name}.worktrees")]
    deadline = time.perf_counter() + limit
    while any(processes_in([p for p in where if p.exists()]).values()):
        if time.perf_counter() > deadline:
            print(f"processes still run in {repo} {limit:g}s after its row: the next row may be slowed", flush=True)
            return
        time.sleep(0.05)


def wait_settled(repo: Path, n: int, limit: float = 600) -> list[int]:
    """Detached lands: wait until no task is landing; 0 per landed task, 1 per other."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        out = subprocess.run([*WTP, "list", "--all", "--json"], cwd=repo, env=ENV, capture_output=True, text=True)
        if out.returncode != 0:  # said once per distinct message, at the end of the run
            LIST_ERRORS.add(f"exit {out.returncode}: {out.stderr.strip()[-300:]}")
            time.sleep(0.05)
            continue
        states = [t["state"] for t in json.loads(out.stdout)["tasks"]]
        if len(states) == n and "landing" not in states:
            return [0 if s == "landed" else 1 for s in states]
        time.sleep(0.05)
    raise SystemExit(f"detached lands did not settle within {limit:g}s in {repo}")


def with_bytecode() -> None:
    """Both tools timed as installed, with their bytecode: where PYTHONDONTWRITEBYTECODE is set
    (sandboxes, CI), mergetrain would compile every module at each call while wtp keeps its
    own bytecode (bytecode.py), a difference of the machine, not of the tools.  It is unset
    for the tools and the installed packages compiled once, first."""
    if ENV.pop("PYTHONDONTWRITEBYTECODE", None) is None:
        return
    import sysconfig

    import worktree_par

    where = [sysconfig.get_paths()["purelib"], str(Path(worktree_par.__file__).parent)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *where], env=ENV, stdout=DEVNULL, check=False)
    print("PYTHONDONTWRITEBYTECODE was set: unset for the tools timed, their bytecode compiled first", flush=True)


def ensure_mergetrain() -> list[str] | None:
    exe = Path(sys.executable).parent / "mergetrain"
    have = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('mergetrain'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not exe.exists() or have != MERGETRAIN:
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", f"mergetrain=={MERGETRAIN}"], capture_output=True, text=True
        )
        if res.returncode != 0 or not exe.exists():
            print(f"mergetrain could not be installed: {res.stderr.strip()[-300:]}", file=sys.stderr)
            return None
    return [str(exe)]


def run_mergetrain(tmp: Path, mt: list[str], n: int, scen: str, reuse: bool, seconds: float) -> Row:
    red, flaky = scen == "red", scen == "flaky"
    base = tmp / f"mergetrain-{n}-{scen}-{int(reuse)}"
    repo = scenario(base, red)
    runs = base / "runs"
    config = (
        # json.dumps: a YAML double-quoted scalar with the gate's own quotes escaped
        f"version: 2\nproject:\n  name: bench\ngates:\n  - name: test\n    run: {json.dumps(gate_cmd(runs, seconds, flaky))}\n"
    )
    if reuse:
        config += "deploy:\n  reuse:\n    enabled: true\n"
    (repo / ".mergetrain.yaml").write_text(config)
    repos.git(repo, "add", ".mergetrain.yaml", env=ENV)
    repos.git(repo, "commit", "-q", "-m", "mergetrain config", env=ENV)
    repos.git(repo, "push", "-q", "origin", "main", env=ENV)
    for i in range(1, n + 1):
        wt = base / f"w{i}"
        repos.git(repo, "worktree", "add", "-q", "-b", f"t{i}", str(wt), env=ENV)
        commit(wt, task_files(i, red), f"t{i} work")

    def call(*args: str) -> dict[str, object]:
        out = subprocess.run([*mt, *args], cwd=repo, env=ENV, capture_output=True, text=True)
        try:
            data = json.loads(out.stdout)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}

    t0 = time.perf_counter()
    for i in range(1, n + 1):
        call("enqueue", "--task", f"t{i}", "--branch", f"t{i}", "--json")
    for _cycle in range(4 * n):  # its non-interactive landing: deploy twice, then the exact plan
        call("deploy", "--json")
        plan = call("deploy", "--json").get("deploy_plan_sha")
        if not plan:
            break
        call("deploy", "--expected-plan", str(plan), "--json")
    wall = time.perf_counter() - t0
    return {
        "tool": "mergetrain",
        "n": n,
        "scenario": scen,
        "mode": "batch+reuse" if reuse else "batch",
        "depth": n,
        "adaptive": False,
        "wall_s": round(wall, 2),
        "gate_runs": len(runs.read_text().splitlines()) if runs.exists() else 0,
        "landed": landed(repo, n),
        "main_green": main_is_green(repo),
    }


TRICKLE_N = 10  # tasks landed by landers that arrive one at a time during the gates


def trickle_line(r: Row, gap: float) -> str:
    return (
        f"{r['n']} landers {gap:g} s apart, wtp {r['mode']}: {r['wall_s']} s, {r['gate_runs']} gate runs, "
        f"{r['landed']}/{r['n']} landed, main green: {'yes' if r['main_green'] else 'NO'}"
    )


def ideal(r: Row, seconds: float) -> float:
    """ceil(N/depth)*G: every gate run side by side, depth at a time, nothing else."""
    return -(-int(r["n"]) // int(r["depth"])) * seconds


def arrived(r: Row, seconds: float) -> str:
    """Wall time against the ideal counted from the last lander's start (landers started
    apart cannot finish before the last one's gate has run): '-' where no lander came late."""
    late = (r.get("breakdown") or {}).get("last_lander_started_s") or 0.0
    return f"{float(r['wall_s']) / (late + ideal(r, seconds)):.2f}" if late >= 0.01 else "-"


def table(rows: list[Row], seconds: float) -> str:
    out = [
        "| N | scenario | tool | mode | depth | wall s | x ideal | x ideal from the last arrival | x mergetrain b+r | gate runs | landed | main green |",
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        peer = next(
            (
                p
                for p in rows
                if p["tool"] == "mergetrain"
                and p["mode"] == "batch+reuse"
                and p["n"] == r["n"]
                and p["scenario"] == r["scenario"]
            ),
            None,
        )
        vs = f"{float(r['wall_s']) / float(peer['wall_s']):.2f}" if peer and r["tool"] == "wtp" else "-"
        depth = f"{r['depth']} (adaptive)" if r.get("adaptive") else str(r["depth"])
        out.append(
            f"| {r['n']} | {r['scenario']} | {r['tool']} | {r['mode']} | {depth} | {r['wall_s']} | "
            f"{float(r['wall_s']) / ideal(r, seconds):.2f} | {arrived(r, seconds)} | {vs} | {r['gate_runs']} | "
            f"{r['landed']}/{r['n']} | "
            f"{'yes' if r['main_green'] else 'NO'} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate-seconds", type=float, default=2.0)
    ap.add_argument("--sizes", default="5,10,20", help="numbers of tasks, comma-separated")
    ap.add_argument("--scenarios", default="green,red,flaky")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--no-peer", action="store_true", help="skip mergetrain")
    ap.add_argument("--table", type=Path, help="print a saved result as the README's table, and exit")
    ap.add_argument(
        "--trickle",
        type=float,
        default=0.4,
        help=f"also land {TRICKLE_N} tasks whose landers start this many seconds apart, in batch and speculative mode (0: skip)",
    )
    args = ap.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved["rows"], saved["gate_seconds"]))
        return
    mt = None if args.no_peer else ensure_mergetrain()
    with_bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="wtp-bench-queue-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    rows: list[Row] = []
    trickle: list[Row] = []
    g = args.gate_seconds
    t_all = time.perf_counter()
    latency: list[list[float]] = []
    try:
        latency = detach_latency(tmp)
        sums = sorted(round(sum(r), 3) for r in latency)
        print(
            f"five '--detach' calls one after another, {len(latency)} rounds: {latency} s; together "
            f"{', '.join(f'{x:.2f}' for x in sums)} s, median {sums[len(sums) // 2]:.2f} s",
            flush=True,
        )
        for n in (int(x) for x in args.sizes.split(",")):
            for scen in args.scenarios.split(","):
                if mt:
                    for reuse in (False, True):
                        rows.append(run_mergetrain(tmp, mt, n, scen, reuse, g))
                        print(table(rows[-1:], g).splitlines()[-1], flush=True)
                        if not rows[-1]["gate_runs"]:  # a comparison with a peer that did nothing is no comparison
                            raise SystemExit("mergetrain ran no gate: its configuration or install is broken")
                for depth, detach, together in (
                    (FIXED_DEPTH, False, False),
                    (0, False, False),
                    (0, True, False),
                    (0, False, True),
                ):
                    rows.append(run_wtp(tmp, n, scen, depth, detach, g, together=together))
                    print(table(rows, g).splitlines()[-1], flush=True)
                if args.json:  # as it goes: a run stopped half-way keeps what it measured
                    args.json.write_text(json.dumps({"gate_seconds": g, "rows": rows}, indent=1))
        if args.trickle:
            for mode in ("batch", "speculative"):
                trickle.append(run_wtp(tmp, TRICKLE_N, "green", 0, False, g, mode, args.trickle))
                print(trickle_line(trickle[-1], args.trickle), flush=True)
            if args.json:
                args.json.write_text(json.dumps({"gate_seconds": g, "rows": rows, "trickle": trickle}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows, g))
    for r in trickle:
        print(trickle_line(r, args.trickle))
    detached = [r for r in rows if r.get("detach_return_s")]
    for r in detached:
        plain = next(
            p
            for p in rows
            if p["tool"] == "wtp"
            and p["adaptive"]
            and p["n"] == r["n"]
            and p["scenario"] == r["scenario"]
            and not p.get("detach_return_s")
            and not p.get("together")
        )
        calls = r["detach_return_s"]
        print(
            f"N={r['n']} {r['scenario']}: {len(calls)} --detach calls made at once returned in "
            f"{max(calls) * 1000:.0f} ms at most; detached lands {float(r['wall_s']) / float(plain['wall_s']):.2f}x "
            f"plain concurrent ones"
        )
    for r in rows:
        b = r.get("breakdown")
        if r["tool"] == "wtp" and r["adaptive"] and b:
            print(
                f"N={r['n']} {r['scenario']} {r['mode']}: last lander started at {b['last_lander_started_s']} s, "
                f"its gate at {b['last_gate_started_s']} s, the last gate ended at {b['last_gate_ended_s']} s, "
                f"all done {b['tail_s']} s later (wall {r['wall_s']} s)"
            )
    for e in sorted(LIST_ERRORS):
        print(f"'wtp list --all --json' failed while detached lands ran: {e}")
    print(
        f"whole run: {time.perf_counter() - t_all:.0f} s; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "gate_seconds": g,
                    "machine_load_end": os.getloadavg()[0],
                    "cores": os.cpu_count(),
                    "detach_calls_in_a_row_s": latency,
                    "rows": rows,
                    "trickle_gap_s": args.trickle,
                    "trickle": trickle,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
