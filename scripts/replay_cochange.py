#!/usr/bin/env python3
"""Replay a repository's merge history to score the co-change layer against declarations alone.

    python3 scripts/replay_cochange.py PATH/TO/REPO [--limit 2000] [--json out.json]

Both sides of each two-parent merge are treated as two tasks that ran in parallel, each
declaring only its first commit's main file (the one with the most changed lines). The
truth is whether both sides changed the same (non-hot) path since their fork point.

- declarations alone: hold the pair when both declared the same file;
- one-sided expansion: also hold it when one side's declaration usually changes with the
  other's (confidence >= 0.2, at least 2 shared commits, commits of at most 30 files,
  mined only from the history older than the fork point, hot files left out).

Prints each rule's hold share, precision and recall, and the lift of the extra holds (how
much likelier a pair held only by the expansion is a real overlap than a random pair),
each with a 95% bootstrap interval. This is the replay 'wtp cochange --calibrate' runs.
Nothing of the repository is changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from worktree_par import calibration, overlap  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--limit", type=int, default=2000, help="the newest N merges")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tip = subprocess.run(
        ["git", "rev-parse", args.rev], cwd=args.repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    t0 = time.perf_counter()
    pairs = calibration.replay(args.repo, tip, overlap.HOT_GLOBS, args.limit)
    took = time.perf_counter() - t0
    if not pairs:
        raise SystemExit("no usable two-parent merges")
    rows: dict[str, dict[str, Any]] = {}
    for rule, label in (("declared", "declarations alone"), ("onesided", "one-sided expansion")):
        f = calibration.Figures.of(pairs, rule)

        def prec(ps: Sequence[calibration.Pair], rule: str = rule) -> float:
            return calibration.Figures.of(ps, rule).precision

        def rec(ps: Sequence[calibration.Pair], rule: str = rule) -> float:
            return calibration.Figures.of(ps, rule).recall

        rows[label] = {
            "holds": f.holds,
            "hold_share": round(f.holds / f.pairs, 3),
            "precision": round(f.precision, 3),
            "precision_95": [round(x, 3) for x in calibration.bootstrap(pairs, prec)],
            "recall": round(f.recall, 3),
            "recall_95": [round(x, 3) for x in calibration.bootstrap(pairs, rec)],
        }
    lift = calibration.lift(pairs)
    low, high = calibration.bootstrap(pairs, calibration.lift)
    on = (
        lift >= calibration.LIFT_MIN
        and low > 1
        and rows["one-sided expansion"]["precision"] >= calibration.PRECISION_MIN
    )
    overlaps = sum(p.overlap for p in pairs)
    print(
        f"{args.repo}: {len(pairs)} merges as task pairs, {overlaps} of them really overlap "
        f"(base rate {overlaps / len(pairs):.2f}); replay took {took:.1f} s"
    )
    print("| rule | holds (share) | precision [95%] | recall [95%] |\n|---|---:|---:|---:|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['holds']} ({r['hold_share']:.2f}) | {r['precision']:.2f} "
            f"[{r['precision_95'][0]:.2f}-{r['precision_95'][1]:.2f}] | {r['recall']:.2f} "
            f"[{r['recall_95'][0]:.2f}-{r['recall_95'][1]:.2f}] |"
        )
    extra = sum(p.onesided and not p.declared for p in pairs)
    print(f"lift of the {extra} extra holds: {lift:.2f} [{low:.2f}-{high:.2f}]")
    print(
        f"verdict: {'on' if on else 'off'} (on needs lift >= {calibration.LIFT_MIN} with its lower bound above 1 "
        f"and precision >= {calibration.PRECISION_MIN}, as 'wtp cochange --calibrate' decides)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "repo": str(args.repo),
                    "rev": tip,
                    "pairs": len(pairs),
                    "overlaps": overlaps,
                    "rules": rows,
                    "extra_holds": extra,
                    "lift": round(lift, 3),
                    "lift_95": [round(low, 3), round(high, 3)],
                    "on": on,
                    "seconds": round(took, 2),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
