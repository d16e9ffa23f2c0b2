#!/usr/bin/env python3
"""'wtp init' on a real history: how soon it shows something, how long until the prompt is
back, against the plain git reads of the same history.

    python3 scripts/bench_init.py REPO [--runs 5] [--json docs/bench-init.json]

REPO is cloned to a temporary folder (a Flask clone was used for the README: 5,500
commits, 1,725 merges). Each run writes the config anew (``init --force``): the history is
replayed for the co-change layer and the detected gate is probed. The git baseline is the
four 'git log' calls the replay reads the history with, run one after another. Targets
(issue 29): the first line within 1 s, the prompt back within 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as b  # noqa: E402

GIT_READS = [
    ["log", "--topo-order", "--reverse", "--format=%H %ct %P", "HEAD", "--"],
    ["log", "-z", "--reverse", "--no-merges", "-M", "--name-status", "--topo-order", "--format=%x01%H %ct", "HEAD"],
    ["log", "--no-merges", "--no-renames", "--numstat", "--format=%x01%H", "HEAD", "--"],
    ["log", "--merges", "--min-parents=2", "--max-parents=2", "--format=%H %P", "-n", "2000", "HEAD", "--"],
]


def init_once(repo: Path) -> tuple[float, float, str]:
    """(seconds to the first line on stderr, seconds in all, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*b.WTP, "init", "--force", "--no-remote"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=b.ENV,
    )
    assert proc.stderr is not None and proc.stdout is not None
    proc.stderr.readline()
    first = time.perf_counter() - t0
    out = proc.stdout.read().decode()
    proc.stderr.read()
    code = proc.wait()
    total = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"wtp init exited {code}")
    return first, total, out


def git_reads(repo: Path) -> float:
    t0 = time.perf_counter()
    for args in GIT_READS:
        subprocess.run(["git", *args], cwd=repo, stdout=subprocess.DEVNULL, check=True, env=b.ENV)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wtp-bench-init-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(args.repo), str(repo)], check=True)
        commits = int(
            subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
        )
        merges = int(
            subprocess.run(
                ["git", "rev-list", "--count", "--merges", "HEAD"], cwd=repo, capture_output=True, text=True
            ).stdout
        )
        firsts, totals, gits = [], [], []
        out = ""
        for _ in range(args.runs):  # interleaved: the same machine load for both
            first, total, out = init_once(repo)
            firsts.append(first)
            totals.append(total)
            gits.append(git_reads(repo))
    first, total, git = (statistics.median(x) for x in (firsts, totals, gits))
    result = {
        "machine": b.Results().machine,
        "repo": str(args.repo),
        "commits": commits,
        "merges": merges,
        "runs": args.runs,
        "first_line_s": round(first, 3),
        "init_s": round(total, 3),
        "git_reads_s": round(git, 3),
        "ratio_to_git_reads": round(total / git, 2),
        "targets": {"first_line_s": 1.0, "init_s": 5.0},
        "met": first <= 1.0 and total <= 5.0,
        "output": out.splitlines(),
    }
    print(
        f"{commits} commits, {merges} merges: first line {first:.2f}s, init {total:.2f}s "
        f"(git reads of the same history {git:.2f}s, {total / git:.1f}x); targets 1 s / 5 s: "
        f"{'met' if result['met'] else 'NOT met'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
