#!/usr/bin/env python3
"""wtp land: N independent tasks landed one after another and N at once, per landed task,
as a ratio to a hand-written 'fetch; rebase; push; cleanup' loop doing the same work.

    python3 scripts/bench_land.py [--files 2000] [--tasks 6]
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
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--tasks", type=int, default=6)
    args = ap.parse_args()

    def both_modes(res: b.Results, base: Path) -> None:
        repo = b.make_repo(base, args.files, remote=True)
        for concurrent in (False, True):
            bp.part_land(res, repo, args.files, args.tasks, concurrent)

    b.run_alone(both_modes)


if __name__ == "__main__":
    main()
