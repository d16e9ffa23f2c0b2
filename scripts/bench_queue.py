#!/usr/bin/env python3
"""The land queue benchmark (issue 16): five tasks land at once onto a 200-file repository
with a bare remote, one pair of them conflicting, gated by 'sleep 2; ./check.sh'; and a
variant where one task breaks the test.  Runs wtp in each mode (serial, speculative at
depth 2, 3 and the default, batch) and the peer merge queue mergetrain (batch, and batch
with its validation reuse) on the same scenario in the same run, and reports wall time,
gate runs and landed tasks.

    python3 scripts/bench_queue.py [--gate-seconds 2] [--json out.json] [--no-peer]

mergetrain is installed into this interpreter's environment from the package index when
missing (pip install mergetrain); --no-peer skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repos  # noqa: E402
from benchlib import ENV, WTP  # noqa: E402

CHECK = "#!/bin/sh\n# the project's test: fails while a BROKEN file is in the tree\ntest ! -e BROKEN\n"
N = 5
Row = dict[str, Any]  # one line of the results table, as written to --json


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


def gate_cmd(runs: Path, seconds: float) -> str:
    return f"echo run >> {runs}; sleep {seconds:g}; ./check.sh"


def landed(repo: Path) -> int:
    """How many of the tasks' commits the remote's main has (counted the same for both tools)."""
    repos.git(repo, "fetch", "-q", "origin", env=ENV)
    subjects = set(repos.git(repo, "log", "--format=%s", "origin/main", env=ENV).splitlines())
    return sum(f"t{i} work" in subjects for i in range(1, N + 1))


def main_is_green(repo: Path) -> bool:
    repos.git(repo, "fetch", "-q", "origin", env=ENV)
    for c in repos.git(repo, "rev-list", "--first-parent", "origin/main", env=ENV).split():
        if "BROKEN" in repos.git(repo, "ls-tree", "--name-only", c, env=ENV).split():
            return False
    return True


def run_wtp(tmp: Path, mode: str, depth: int, red: bool, seconds: float) -> Row:
    base = tmp / f"wtp-{mode}-{depth}-{int(red)}"
    repo = scenario(base, red, f'max_active = {N}\n[land]\nmode = "{mode}"\ndepth = {depth}\n')
    for i in range(1, N + 1):
        out = subprocess.run([*WTP, "start", f"t{i}"], cwd=repo, env=ENV, capture_output=True, text=True, check=True)
        commit(Path(out.stdout.strip().splitlines()[-1]), task_files(i, red), f"t{i} work")
    runs = base / "runs"
    gate = gate_cmd(runs, seconds)
    t0 = time.perf_counter()
    procs = []
    for i in range(1, N + 1):  # five agents finishing at nearly the same moment
        procs.append(
            subprocess.Popen(
                [*WTP, "land", f"t{i}", "--gate", gate],
                cwd=repo,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(0.05)
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    return {
        "tool": "wtp",
        "mode": mode,
        "depth": depth or N,
        "red": red,
        "wall_s": round(wall, 2),
        "gate_runs": len(runs.read_text().splitlines()) if runs.exists() else 0,
        "landed": landed(repo),
        "exit_0": codes.count(0),
        "main_green": main_is_green(repo),
    }


def ensure_mergetrain() -> list[str] | None:
    exe = Path(sys.executable).parent / "mergetrain"
    if not exe.exists():
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "mergetrain"], capture_output=True, text=True
        )
        if res.returncode != 0 or not exe.exists():
            print(f"mergetrain could not be installed: {res.stderr.strip()[-300:]}", file=sys.stderr)
            return None
    return [str(exe)]


def run_mergetrain(tmp: Path, mt: list[str], reuse: bool, red: bool, seconds: float) -> Row:
    base = tmp / f"mergetrain-{int(reuse)}-{int(red)}"
    repo = scenario(base, red)
    runs = base / "runs"
    config = f'version: 2\nproject:\n  name: bench\ngates:\n  - name: test\n    run: "{gate_cmd(runs, seconds)}"\n'
    if reuse:
        config += "deploy:\n  reuse:\n    enabled: true\n"
    (repo / ".mergetrain.yaml").write_text(config)
    repos.git(repo, "add", ".mergetrain.yaml", env=ENV)
    repos.git(repo, "commit", "-q", "-m", "mergetrain config", env=ENV)
    repos.git(repo, "push", "-q", "origin", "main", env=ENV)
    for i in range(1, N + 1):
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
    for i in range(1, N + 1):
        call("enqueue", "--task", f"t{i}", "--branch", f"t{i}", "--json")
    for _cycle in range(8):  # its non-interactive landing: deploy twice, then the exact plan
        call("deploy", "--json")
        plan = call("deploy", "--json").get("deploy_plan_sha")
        if not plan:
            break
        call("deploy", "--expected-plan", str(plan), "--json")
    wall = time.perf_counter() - t0
    return {
        "tool": "mergetrain",
        "mode": "batch+reuse" if reuse else "batch",
        "depth": N,
        "red": red,
        "wall_s": round(wall, 2),
        "gate_runs": len(runs.read_text().splitlines()) if runs.exists() else 0,
        "landed": landed(repo),
        "main_green": main_is_green(repo),
    }


def table(rows: list[Row]) -> str:
    out = [
        "| scenario | tool | mode | depth | wall s | gate runs | landed | main green |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {'one red task' if r['red'] else 'all green'} | {r['tool']} | {r['mode']} | {r['depth']} | "
            f"{r['wall_s']} | {r['gate_runs']} | {r['landed']}/{N} | {'yes' if r['main_green'] else 'NO'} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate-seconds", type=float, default=2.0)
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--no-peer", action="store_true", help="skip mergetrain")
    ap.add_argument("--table", type=Path, help="print a saved result as the README's table, and exit")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())["rows"]))
        return
    mt = None if args.no_peer else ensure_mergetrain()
    tmp = Path(tempfile.mkdtemp(prefix="wtp-bench-queue-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    rows: list[Row] = []
    try:
        for red in (False, True):
            for mode, depth in (
                ("serial", 1),
                ("speculative", 2),
                ("speculative", 3),
                ("speculative", 0),
                ("batch", 0),
            ):
                rows.append(run_wtp(tmp, mode, depth, red, args.gate_seconds))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
            if mt:
                for reuse in (False, True):
                    rows.append(run_mergetrain(tmp, mt, reuse, red, args.gate_seconds))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows))
    for red in (False, True):
        sub = [r for r in rows if r["red"] == red]
        serial = next(r for r in sub if r["mode"] == "serial")
        spec = next(r for r in sub if r["mode"] == "speculative" and r["depth"] == N)
        peers = {r["mode"]: r for r in sub if r["tool"] == "mergetrain"}
        line = f"{'one red' if red else 'all green'}: speculative {spec['wall_s']}s = {float(spec['wall_s']) / float(serial['wall_s']):.2f}x serial"
        for m, p in peers.items():
            line += f", {float(spec['wall_s']) / float(p['wall_s']):.2f}x mergetrain {m}"
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"gate_seconds": args.gate_seconds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
