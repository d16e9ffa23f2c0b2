#!/usr/bin/env python3
"""The co-change index's costs: building it for a 5,000-commit history, and what it adds to
'wtp start' once it is warm (cached), against the same start with the layer off.

    python3 scripts/bench_cochange.py [--commits 5000] [--runs 15]

The history is synthetic (git fast-import): 300 files in 30 folders, each commit changing
1-6 files, some pairs coupled. Targets: the index built in under 0.5 s; a start with a warm
index at most 10 ms slower than with the layer off.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib as b  # noqa: E402

from worktree_par import cochange, overlap  # noqa: E402
from worktree_par.gitops.history import CHANGES_ARGS  # noqa: E402


def history(repo: Path, commits: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    files = [f"src/m{i // 10:02d}/f{i % 10}.py" for i in range(300)]
    stream = []
    for n in range(commits):
        k = rng.randint(1, 6)
        picked = set(rng.sample(files, k))
        if rng.random() < 0.3:  # coupled pairs: f0 with f1 of the same folder
            d = rng.randrange(30)
            picked |= {f"src/m{d:02d}/f0.py", f"src/m{d:02d}/f1.py"}
        stream.append(f"commit refs/heads/main\nmark :{n + 1}\ncommitter b <b@x> {1700000000 + n} +0000\ndata 2\nc\n")
        if n:
            stream.append(f"from :{n}\n")
        for f in sorted(picked):
            body = f"{n}\n"
            stream.append(f"M 100644 inline {f}\ndata {len(body)}\n{body}")
        stream.append("\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream).encode(), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)


def run(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=b.ENV)
    took = (time.perf_counter() - t0) * 1000
    if res.returncode not in (0, 4):
        raise SystemExit(f"{' '.join(args)} exited {res.returncode}: {res.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    base = b.tmpdir(need_gb=0.5)
    try:
        repo = base / "repo"
        history(repo, args.commits)
        tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        builds = []
        for _ in range(5):
            t0 = time.perf_counter()
            h = cochange.mine(repo, tip, hot=overlap.HOT_GLOBS)
            builds.append((time.perf_counter() - t0) * 1000)
        build = statistics.median(builds)
        git_log = statistics.median(
            run(["git", *CHANGES_ARGS, tip], repo) for _ in range(5)
        )  # the one git call inside it
        off: list[float] = []
        warm: list[float] = []
        run([*b.WTP, "cochange"], repo)  # builds and caches the index
        for i in range(args.runs):
            for mode, into in (("off", off), ("warn", warm)):
                (repo / ".wtp.toml").write_text(f'[check]\ncochange = "{mode}"\n')
                name = f"{mode}{i}"
                into.append(run([*b.WTP, "start", name, "--touch", "src/m03/f0.py"], repo))
                run([*b.WTP, "rm", name], repo)
        off_ms, warm_ms = statistics.median(off), statistics.median(warm)
    finally:
        b.cleanup(base)
    print(f"machine: {b.Results().machine}; {args.commits} commits ({len(h.commits)} indexed), medians")
    print("| case | ms |\n|---|---:|")
    print(f"| build the index (one git log, parsed) | {build:.0f} |")
    print(f"| of which the git log itself | {git_log:.0f} |")
    print(f"| wtp start --touch, layer off | {off_ms:.1f} |")
    print(f"| wtp start --touch, layer on, warm index | {warm_ms:.1f} |")
    print(
        f"targets: build under 500 ms: {'met' if build < 500 else 'MISSED'}; "
        f"warm start at most 10 ms more: {'met' if warm_ms - off_ms <= 10 else 'MISSED'} ({warm_ms - off_ms:+.1f} ms)"
    )


if __name__ == "__main__":
    main()
