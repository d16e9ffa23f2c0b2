#!/usr/bin/env python3
"""wtp check on a large repository (20,000 files by default) with 10 and 30 tasks,
as a ratio to the bare git commands it needs, measured in the same run.

    python3 scripts/bench_check.py [--files 20000] [--changed 50,500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as b  # noqa: E402
import benchparts as bp  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--tasks", default="10,30")
    ap.add_argument("--changed", default="50,500")
    args = ap.parse_args()

    def checks(res: b.Results, base: Path) -> None:
        pool = bp.TaskPool(b.make_repo(base, args.files), args.files)
        for n in sorted(int(x) for x in args.tasks.split(",")):
            pool.reset()
            pool.grow(n)
            for c in sorted(int(x) for x in args.changed.split(",")):
                bp.part_check(res, pool, c)

    b.run_alone(checks)


if __name__ == "__main__":
    main()
