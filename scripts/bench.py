#!/usr/bin/env python3
"""wtp benchmark suite: every command against plain git doing the same work, in one run.

    python3 scripts/bench.py [--quick] [--dir DIR] [--out bench-results/bench.json]
    python3 scripts/bench.py --table docs/bench.json    # the README's markdown table

Builds repositories of 2,000 and 20,000 files, measures medians over repeated runs
and peak RSS, prints a table with the ratio to git and whether each target is met,
and writes it as JSON.  --quick skips the 20,000-file repository.  The repositories go
in /dev/shm when memory has room (see benchlib.tmpdir), or under --dir.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as b  # noqa: E402
import benchparts as bp  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the 2,000-file repository")
    ap.add_argument("--dir", type=Path, help="where to build the repositories (default: /dev/shm when memory has room)")
    ap.add_argument("--out", type=Path, default=b.ROOT / "bench-results" / "bench.json")
    ap.add_argument("--table", type=Path, help="print a saved result as the README's markdown table, and exit")
    args = ap.parse_args()
    if args.table:
        print(markdown(args.table))
        return
    # Byte-compile first: with PYTHONDONTWRITEBYTECODE set (as on some CI machines) every run
    # would otherwise recompile wtp from source, which is not what an installed wtp does.
    import compileall

    compileall.compile_dir(str(b.ROOT / "worktree_par"), quiet=1)
    res = b.Results()
    t0 = time.time()
    base = b.tmpdir(args.dir)
    res.workdir = "/dev/shm (tmpfs)" if base.parent == Path("/dev/shm") else str(base.parent)
    print(f"machine: {res.machine}; repositories in {res.workdir}")
    print(b.HEADER)
    try:
        for nfiles in (2000,) if args.quick else (2000, 20000):
            with b.phase(f"repository of {nfiles} files"):
                repo = b.make_repo(base / f"r{nfiles}", nfiles, remote=True)
            if nfiles == 2000:
                bp.part_help(res, repo)
            # start, warm start and land first, on a repository with no other worktrees: a
            # mass deletion just before would stall their checkouts on a disk with discard.
            with b.phase("start"):
                bp.part_start(res, repo, nfiles)
            with b.phase("warm start"):
                bp.part_warm(res, repo, nfiles)
            for concurrent in (False, True):
                with b.phase("land"):
                    bp.part_land(res, repo, nfiles, 4, concurrent)
            pool = bp.TaskPool(repo, nfiles)
            for ntasks in (3, 10, 30):
                with b.phase(f"{ntasks} task worktrees"):
                    pool.reset()
                    pool.grow(ntasks)
                bp.part_list_path(res, pool)
                for nchanged in (50, 500):
                    with b.phase(f"check {ntasks} x {nchanged}"):
                        bp.part_check(res, pool, nchanged)
            with b.phase("deleting the repository and its worktrees"):
                b.cleanup(repo.parent)
    finally:
        b.cleanup(base)
    res.write(args.out)
    met = [r for r in res.rows if r.met is not None]
    print(
        f"\n{sum(1 for r in met if r.met)}/{len(met)} targets met; {len(res.rows)} figures in {time.time() - t0:.0f}s; written to {args.out}"
    )


def markdown(path: Path) -> str:
    import json

    data = json.loads(path.read_text())
    rows = data["rows"]
    met = [r for r in rows if r["met"] is not None]
    out = [
        f"Machine: {data['machine']}; repositories in {data.get('workdir') or 'the system temp folder'}. "
        f"{sum(r['met'] for r in met)} of {len(met)} targets met.",
        "",
        "| case | wtp ms | git ms | ratio | peak RSS MB | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        git = f"{r['git_ms']:.0f}" if r["git_ms"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        case = r["case"] + (f" ({r['note']})" if r["note"] and not r["target"] else "")
        target = r["target"] + (f" ({r['note']})" if r["note"] and r["target"] else "")
        verdict = "" if r["met"] is None else (" met" if r["met"] else " **missed**")
        rss = f"{r['rss_mb']:.0f}" if r["rss_mb"] is not None else "-"
        out.append(f"| {case} | {r['wtp_ms']:.0f} | {git} | {ratio} | {rss} | {target}{verdict} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
