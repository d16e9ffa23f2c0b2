#!/usr/bin/env python3
"""How many gate runs 'wtp check --test' spends finding one bad pair among N tasks, against
gating every subset a naive search would (the whole set, each task alone, every pair).

    python3 scripts/bench_semantic.py [--tasks 3,5,8,12] [--budget 3] [--out docs/bench-semantic.json]

Two layouts: 'shared' (every task changes the same package: no pair is independent by path,
the worst case) and 'spread' (each task in a folder of its own; only the bad pair shares one).
The gate imports every module (a fast gate): the figures are counts of runs, the cost that
scales with a real gate's minutes; the wall time is shown for scale."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repos  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

GATE = """\
import importlib, os, pathlib, sys
sys.path.insert(0, os.getcwd())
for d in sorted(p for p in pathlib.Path(".").iterdir() if (p / "__init__.py").exists()):
    for m in sorted(d.glob("*.py")):
        importlib.import_module(f"{d.name}.{m.stem}")
"""


def wtp(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worktree_par", *args], cwd=repo, env=env, capture_output=True, text=True
    )


def one(base: Path, n: int, layout: str, budget: int, env: dict[str, str]) -> dict[str, object]:
    repo = base / f"{layout}-{n}"
    repos.build(
        repo,
        files={"gate.py": GATE, "pkg/__init__.py": "", "pkg/lib.py": "def greet(n):\n    return n\n"},
        env=env,
    )
    (repo / ".wtp.toml").write_text(f"max_active = {n}\n[land]\ngate = {json.dumps(f'{sys.executable} gate.py')}\n")
    wtp(repo, "trust", env=env)
    names = [f"t{i:02}" for i in range(n)]
    bad = (names[n // 3], names[-1])  # somewhere in the middle, and the last one
    for name in names:
        out = wtp(repo, "start", name, env=env)
        wt = Path(out.stdout.splitlines()[-1])
        if name == bad[0]:
            files = {"pkg/lib.py": "def hello(n):\n    return n\n"}
        elif name == bad[1]:
            files = {"pkg/caller.py": "from pkg import lib\n\nlib.greet(1)\n"}
        elif layout == "shared":
            files = {f"pkg/m_{name}.py": "x = 1\n"}
        else:
            files = {f"d_{name}/__init__.py": "", f"d_{name}/m.py": "x = 1\n"}
        for rel, text in files.items():
            (wt / rel).parent.mkdir(parents=True, exist_ok=True)
            (wt / rel).write_text(text)
        repos.git(wt, "add", "-A", env=env)
        repos.git(wt, "commit", "-q", "-m", f"work of {name}", env=env)
    t0 = time.monotonic()
    out = wtp(repo, "check", "--test", "--json", "--budget", str(budget), env=env)
    secs = time.monotonic() - t0
    test = json.loads(out.stdout)["test"]
    naive = 1 + n + n * (n - 1) // 2
    return {
        "tasks": n,
        "layout": layout,
        "budget": budget,
        "found": test["semantic"] == [list(bad)],
        "runs": test["runs"],
        "naive_runs": naive,
        "ratio_to_naive": round(test["runs"] / naive, 3),
        "at_once": test["at_once"],
        "seconds": round(secs, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="3,5,8,12")
    ap.add_argument("--budget", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-semantic.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wtp-bench-semantic-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "WTP_"))},
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
        }
        rows = []
        for layout in ("shared", "spread"):
            for n in (int(x) for x in args.tasks.split(",")):
                row = one(Path(tmp), n, layout, args.budget, env)
                rows.append(row)
                print(
                    f"{layout:6} N={n:2}  runs {row['runs']:3} (naive {row['naive_runs']:3}, "
                    f"ratio {row['ratio_to_naive']:.2f})  found={row['found']}  {row['seconds']:.1f}s"
                )
    Path(args.out).write_text(json.dumps({"budget": args.budget, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
