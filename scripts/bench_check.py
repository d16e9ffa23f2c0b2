#!/usr/bin/env python3
"""wtp check with three dirty tasks against the git calls a careful script makes by hand,
in one run, at 2,000 and 100,000 files.  Target: at most 1.5x the script at 100,000 files.

Each task has committed work, uncommitted edits (one of them staged), an untracked file,
and a file every task changed (so every pair gets a merge simulation).  The script: for
each task one status, the paths it names staged into a copy of the index, write-tree,
commit-tree, merge-base and diff; then merge-tree for each pair whose paths meet; one
task after another (benchlib.careful_check).  wtp's verdict cache is deleted before each
of its runs.  Samples alternate between the sides, so a busy machine weighs on both.

With --baseline REV, wtp as of that commit (copied out of git, byte-compiled, run the
same way) is measured in the same rounds: before and after a change, side by side.

    python3 scripts/bench_check.py [--files 2000,100000] [--runs 7] [--baseline main] [--json docs/bench-check.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as b  # noqa: E402

TARGET = 1.5  # x the careful script, at the largest size


def dirty_tasks(repo: Path, wtp: list[str]) -> list[Path]:
    """Three tasks, each with committed, staged, unstaged and untracked work."""
    (repo / ".wtp.toml").write_text("max_active = 8\n")
    paths = []
    for i, task in enumerate(("feed", "auth", "search")):
        wt = Path(b.sh([*wtp, "start", task], repo).strip().splitlines()[-1])
        paths.append(wt)
        src = wt / "src" / f"pkg{i + 10:04d}"
        for k in range(5):
            f = src / f"mod{k:03d}.py"
            f.write_text(f.read_text() + f"# {task}\n")
        (wt / "shared.txt").write_text(f"{task}\n")  # every task adds it: each pair meets
        b.sh(["git", "add", "-A"], wt)
        b.sh(["git", "commit", "-qm", f"{task} work"], wt)
        for k in range(5, 8):
            f = src / f"mod{k:03d}.py"
            f.write_text(f.read_text() + f"# {task} wip\n")
        b.sh(["git", "add", str(src / "mod005.py")], wt)  # one staged
        (wt / "src" / f"new_{task}.py").write_text("new = 1\n")  # untracked
    return paths


def measure(base_dir: Path, n: int, sides: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median ms of each side and of the script, on a fresh repository of ``n`` files."""
    repo = b.make_repo(base_dir, n)
    wts = dirty_tasks(repo, b.WTP)
    cache = repo / ".git" / "wtp" / "check-cache.json"

    def wtp_once(cmd: list[str]) -> None:
        cache.unlink(missing_ok=True)  # cold: every merge simulation runs
        res = subprocess.run(
            [*cmd, "check", "--json", "--fail-on", "never"], cwd=repo, env=b.ENV, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        kinds = [c["kind"] for c in json.loads(res.stdout)["collisions"]]
        assert kinds.count("overlap") + kinds.count("conflict") == 3, kinds

    funcs: dict[str, Callable[[], None]] = {name: functools.partial(wtp_once, cmd) for name, cmd in sides.items()}
    funcs["git by hand"] = functools.partial(b.careful_check, wts, "main", repo)
    times: dict[str, list[float]] = {k: [] for k in funcs}
    for f in funcs.values():
        f()  # warm: page cache, the worktrees' indexes refreshed, bytecode
    for _ in range(runs):
        for k, f in funcs.items():
            b.settle()
            t0 = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t0) * 1000)
    b.cleanup(repo.parent / f"{repo.name}.worktrees")
    b.cleanup(repo)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="2000,100000")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--baseline", help="also measure wtp as of this commit (e.g. main), in the same rounds")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    base_dir = b.tmpdir(need_gb=2.0)
    sides: dict[str, list[str]] = {"wtp": b.WTP}
    if args.baseline:
        sides[f"wtp {args.baseline}"] = b.wtp_from(b.export_package(args.baseline, base_dir / "baseline"))
    machine = b.Results().machine
    rows: list[tuple[int, dict[str, float]]] = []
    try:
        for n in (int(x) for x in args.files.split(",")):
            med = measure(base_dir, n, sides, args.runs)
            rows.append((n, med))
            print(f"{n:>7} files: " + ", ".join(f"{k} {v:.0f} ms" for k, v in med.items()), flush=True)
    finally:
        b.cleanup(base_dir)
    names = [*sides, "git by hand"]
    print(f"\nmachine: {machine}; 3 dirty tasks, {args.runs} rounds, medians")
    print("| files | " + " | ".join(f"{k} ms" for k in names) + " | " + " | ".join(f"{k} / git" for k in sides) + " |")
    print("|---:|" + "---:|" * (len(names) + len(sides)))
    for n, med in rows:
        ratios = " | ".join(f"{med[k] / med['git by hand']:.2f}x" for k in sides)
        print(f"| {n:,} | " + " | ".join(f"{med[k]:.0f}" for k in names) + f" | {ratios} |")
    if rows:
        n, med = rows[-1]
        ratio = med["wtp"] / med["git by hand"]
        print(
            f"target: wtp at most {TARGET}x the script at {n:,} files: {'met' if ratio <= TARGET else 'MISSED'} ({ratio:.2f}x)"
        )
    if args.json:
        data = {"machine": machine, "runs": args.runs, "rows": [{"files": n, "ms": med} for n, med in rows]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
