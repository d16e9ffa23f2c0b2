#!/usr/bin/env python3
"""A warm start (wtp start copying node_modules copy-on-write where it can) against
'git worktree add' plus a fresh install from a warm package cache (a tar extract).

    python3 scripts/bench_warm.py [--files 2000]
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
    args = ap.parse_args()
    b.run_alone(lambda res, base: bp.part_warm(res, b.make_repo(base, args.files), args.files))


if __name__ == "__main__":
    main()
