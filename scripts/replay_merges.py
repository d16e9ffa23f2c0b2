#!/usr/bin/env python3
"""Replay the two-parent merges of a real repository and score wtp check against git.

    python3 scripts/replay_merges.py PATH/TO/REPO [--limit 300] [--json out.json]

For each merge M with parents P1 and P2, wtp's checker predicts, from the two
parents alone:
  overlap  -- both sides changed a path since their merge base (wtp's layer 2);
  conflict -- git merge-tree --write-tree reports a conflict (wtp's layer 3).
The truth is git's own merge of the same parents, done for real in a scratch
worktree (``git merge --no-commit``): a conflict when it stops with unmerged
paths, an overlap when it had to merge a path changed on both sides
("Auto-merging" lines, and the unmerged paths).  Prints precision and recall of each layer,
per merge and per path.  Nothing of the repository is changed: it works in a
temporary shared clone.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from worktree_par import overlap  # noqa: E402

ENV_ARGS = ["-c", "user.name=replay", "-c", "user.email=replay@example.com", "-c", "merge.renames=true"]
_SIDE = re.compile(r"~[^/]+$")


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["git", *ENV_ARGS, *args], cwd=cwd, capture_output=True, text=True, errors="replace")
    if check and res.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {res.stderr}")
    return res


def truth(wt: Path, p1: str, p2: str) -> tuple[set[str], set[str]]:
    """(paths git merged from both sides, unmerged paths) for a real merge of p1 and p2."""
    git(wt, "checkout", "-q", "-f", "--detach", p1)
    git(wt, "clean", "-qfdx")
    res = git(wt, "merge", "--no-commit", "--no-ff", p2, check=False)
    # CONFLICT lines are prose ("... left in tree."): the unmerged paths below name them exactly.
    merged = {line[len("Auto-merging ") :] for line in res.stdout.splitlines() if line.startswith("Auto-merging ")}
    unmerged = {_SIDE.sub("", p) for p in git(wt, "diff", "--name-only", "--diff-filter=U").stdout.split("\n") if p}
    git(wt, "merge", "--abort", check=False)
    git(wt, "reset", "-q", "--hard")
    return merged | unmerged, unmerged


def predict(root: Path, p1: str, p2: str) -> tuple[set[str], set[str] | None]:
    mb = git(root, "merge-base", p1, p2, check=False).stdout.strip()
    if not mb:
        return set(), None
    a = overlap.side_of(root, "p1", p1, mb)
    b = overlap.side_of(root, "p2", p2, mb)
    common = overlap.overlap(a, b)
    conflicts = overlap.merge_conflicts(root, p1, p2) if common else None
    return common, set(conflicts) if conflicts is not None else None


def pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wtp-replay-"))
    t0 = time.time()
    try:
        clone = tmp / "clone"
        git(tmp, "clone", "-q", "--shared", "--no-checkout", str(args.repo.resolve()), str(clone))
        lines = git(
            clone, "rev-list", "--merges", "--parents", f"--max-count={args.limit * 2}", "--all"
        ).stdout.splitlines()
        merges = [line.split() for line in lines if len(line.split()) == 3][: args.limit]
        c = {"ov": [0, 0, 0], "cf": [0, 0, 0], "ov_paths": [0, 0, 0], "cf_paths": [0, 0, 0]}
        disagreements = []
        for m, p1, p2 in merges:
            true_ov, true_cf = truth(clone, p1, p2)
            pred_ov, pred_cf = predict(clone, p1, p2)
            for key, pred, true in (("ov", bool(pred_ov), bool(true_ov)), ("cf", pred_cf is not None, bool(true_cf))):
                c[key][0 if pred and true else 1 if pred else 2 if true else 0] += pred or true
            for key, pred_s, true_s in (("ov_paths", pred_ov, true_ov), ("cf_paths", pred_cf or set(), true_cf)):
                c[key][0] += len(pred_s & true_s)
                c[key][1] += len(pred_s - true_s)
                c[key][2] += len(true_s - pred_s)
            if (pred_cf is not None) != bool(true_cf) or (pred_cf or set()) != true_cf:
                disagreements.append({"merge": m, "predicted": sorted(pred_cf or []), "git": sorted(true_cf)})
        report = {
            "repository": str(args.repo),
            "merges": len(merges),
            "seconds": round(time.time() - t0, 1),
            "conflicting_merges": c["cf"][0] + c["cf"][2],
            "overlapping_merges": c["ov"][0] + c["ov"][2],
        }
        for key, label in (
            ("cf", "conflict per merge"),
            ("cf_paths", "conflict per path"),
            ("ov", "overlap per merge"),
            ("ov_paths", "overlap per path"),
        ):
            p, r = pr(*c[key])
            report[label] = {
                "precision": round(p, 4),
                "recall": round(r, 4),
                "tp": c[key][0],
                "fp": c[key][1],
                "fn": c[key][2],
            }
        report["conflict_disagreements"] = disagreements[:20]
        print(json.dumps(report, indent=1))
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
