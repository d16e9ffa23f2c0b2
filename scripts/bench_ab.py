#!/usr/bin/env python3
"""Before and after, in one run: the everyday commands of wtp as of two commits, on one
repository of 2,000 files with three dirty tasks (and 'start', each sample a new task, in a
repository of its own), samples alternating between the two.

Both sides are copies of the package taken out of git (nothing is written into the
project) and started the same way (benchlib.wtp_from).  Two settings: bytecode compiled
(an installed wtp), and PYTHONDONTWRITEBYTECODE=1 with no bytecode shipped (an editable
install where Python writes none: each side does whatever its code does about it, with a
cache folder of its own for this run).  The answer is the ratio after/before per command;
above 1 is slower.

    python3 scripts/bench_ab.py [--before main] [--after HEAD] [--runs 9] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_check  # noqa: E402
import benchlib as b  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="main")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    base = b.tmpdir(need_gb=1.0)
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        repo = b.make_repo(base, args.files)
        wts = bench_check.dirty_tasks(repo, b.WTP)
        feed = wts[0]
        allowed, denied = b.hook_event(feed, "src/pkg0050/mod001.py"), b.hook_event(feed, "src/pkg0011/mod001.py")
        cache = repo / ".git" / "wtp" / "check-cache.json"
        # 'start' makes a task each time: in a repository of its own, so that the tasks it
        # makes do not weigh on the others' list and check.
        fresh = b.make_repo(base / "starts", args.files)
        (fresh / ".wtp.toml").write_text("max_active = 1000\n")
        made = itertools.count()
        for setting in ("compiled", "PYTHONDONTWRITEBYTECODE=1"):
            compiled = setting == "compiled"
            env = dict(b.ENV)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if not compiled:
                env.update(PYTHONDONTWRITEBYTECODE="1", XDG_CACHE_HOME=str(base / f"xdg-{len(results)}"))
            sides = {
                rev: b.wtp_from(b.export_package(rev, base / f"{setting[:8]}-{rev}", compile_it=compiled))
                for rev in (args.before, args.after)
            }
            cases: dict[str, tuple[list[str], Path, str | None]] = {
                "--version": (["--version"], repo, None),
                "--help": (["--help"], repo, None),
                "path feed": (["path", "feed"], repo, None),
                "list": (["list"], repo, None),
                "list --json": (["list", "--json"], repo, None),
                "check (3 dirty tasks, cold cache)": (["check", "--json", "--fail-on", "never"], repo, None),
                "hook pre-edit, allowed": (["hook", "pre-edit"], feed, allowed),
                "hook pre-edit, denied": (["hook", "pre-edit"], feed, denied),
                "start (a new task)": (["start", "{task}"], fresh, None),
            }
            times: dict[str, dict[str, list[float]]] = {c: {r: [] for r in sides} for c in cases}
            for rnd in range(args.runs + 1):  # round 0 warms (and writes any bytecode cache)
                for case, (argv, cwd, stdin) in cases.items():
                    order = list(sides) if rnd % 2 else list(reversed(sides))
                    for rev in order:
                        if argv[0] == "check":
                            cache.unlink(missing_ok=True)
                        run = [f"s{next(made)}" if a == "{task}" else a for a in argv]
                        t0 = time.perf_counter()
                        res = subprocess.run(
                            [*sides[rev], *run], cwd=cwd, input=stdin, env=env, capture_output=True, text=True
                        )
                        took = (time.perf_counter() - t0) * 1000
                        if res.returncode != 0:
                            raise SystemExit(f"{rev} {argv}: exit {res.returncode}: {res.stderr}")
                        if rnd:
                            times[case][rev].append(took)
            results[setting] = {c: {r: statistics.median(v) for r, v in by.items()} for c, by in times.items()}
    finally:
        b.cleanup(base)
    print(
        f"machine: {b.Results().machine}; {args.files} files, 3 dirty tasks; {args.runs} rounds, medians, alternating"
    )
    for setting, rows in results.items():
        print(f"\n{setting}\n\n| command | {args.before} ms | {args.after} ms | after / before |\n|---|---:|---:|---:|")
        for case, ms in rows.items():
            print(
                f"| {case} | {ms[args.before]:.0f} | {ms[args.after]:.0f} | {ms[args.after] / ms[args.before]:.2f}x |"
            )
    if args.json:
        args.json.write_text(json.dumps({"machine": b.Results().machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
