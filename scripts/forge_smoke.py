#!/usr/bin/env python3
"""Land a throw-away change through a REAL forge with wtp's forge layer and plain git.

For maintainers, by hand, never in CI: it pushes a branch to, and merges a commit into,
the repository you name, so use a scratch repository you own.

    GITHUB_TOKEN=... python scripts/forge_smoke.py github acme/scratch
    GITLAB_TOKEN=... python scripts/forge_smoke.py gitlab acme/group/scratch --method squash
    GITEA_TOKEN=...  python scripts/forge_smoke.py gitea acme/scratch --api https://codeberg.org/api/v1 \\
        --remote git@codeberg.org:acme/scratch.git
    ... --merge queue      # the forge's merge queue / merge train / auto-merge instead of a direct merge

Steps (each printed): clone the base, commit one file on a new branch and push it (git
uses your own credentials for this), open the pull/merge request and check that a second
find_or_open finds the same one, post the ``wtp/gate`` status, merge it with the head-SHA
guard (or enqueue it and poll until merged), fetch and check the base holds the tested
tree, delete the head branch.  Exit 0 when all held; else one line and the contract's code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worktree_par.errors import WtpError  # noqa: E402
from worktree_par.forge import Forge, Merged, Moved, Queued, Refused, connect  # noqa: E402
from worktree_par.forge.base import default_api  # noqa: E402

WEB = {"github": "github.com", "gitlab": "gitlab.com"}


def git(cwd: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {res.stderr.strip().splitlines()[-1:]}")
    return res.stdout.strip()


def step(text: str) -> None:
    print(f"- {text}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["github", "gitlab", "gitea"])
    p.add_argument("repo", help="owner/name (GitLab: the project path)")
    p.add_argument("--api", default="", help="API base URL (default: the public forge's)")
    p.add_argument("--remote", default="", help="git URL to clone and push (default: https on the public host)")
    p.add_argument("--base", default="", help="base branch (default: the remote's HEAD)")
    p.add_argument("--method", default="rebase", choices=["rebase", "squash", "merge"])
    p.add_argument("--merge", default="direct", choices=["direct", "queue"])
    p.add_argument("--wait", type=float, default=600, help="seconds to wait for a queued merge")
    a = p.parse_args()
    remote = a.remote or f"https://{WEB.get(a.kind, '')}/{a.repo}.git"
    api = a.api or (default_api(a.kind, WEB[a.kind]) if a.kind in WEB else "")
    forge = connect(a.kind, repo=a.repo, api=api, say=lambda s: print(f"  ({s})", file=sys.stderr))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    head = f"wtp-smoke/{stamp}"
    with tempfile.TemporaryDirectory(prefix="wtp-forge-smoke-") as tmp:
        work = Path(tmp) / "clone"
        step(f"clone {remote}")
        git(Path(tmp), "clone", "-q", "--depth", "20", remote, str(work))
        base = a.base or git(work, "rev-parse", "--abbrev-ref", "origin/HEAD").split("/", 1)[1]
        parent = git(work, "rev-parse", f"origin/{base}")
        git(work, "checkout", "-q", "-b", head, parent)
        (work / "wtp-smoke").mkdir(exist_ok=True)
        (work / "wtp-smoke" / f"{stamp}.txt").write_text(f"wtp forge smoke test {stamp}\n")
        git(work, "add", "-A")
        git(
            work,
            "-c",
            "user.name=wtp smoke",
            "-c",
            "user.email=wtp-smoke@invalid",
            "commit",
            "-q",
            "-m",
            f"wtp forge smoke {stamp}",
        )
        cand = git(work, "rev-parse", "HEAD")
        step(f"push {cand[:12]} to {head}")
        git(work, "push", "-q", "origin", f"HEAD:refs/heads/{head}")

        req = forge.find_or_open(
            head, base, f"wtp forge smoke {stamp}", "A throw-away change from scripts/forge_smoke.py."
        )
        step(f"opened #{req.number}: {req.url}")
        again = forge.find_or_open(head, base, "second title", "")
        assert again.number == req.number, f"a second request was opened: #{again.number}"
        assert req.head_sha == cand, f"the request's head is {req.head_sha}, not {cand}"
        forge.post_status(cand, "success", "smoke: gate passed")
        step(f"status wtp/gate on {cand[:12]}: {forge.get(req.number).checks or 'not shown yet'}")

        if a.merge == "direct":
            result = forge.merge(req.number, cand, a.method, base_sha=parent)
        else:
            queued = forge.enqueue(req.number, cand, a.method)
            result = queued if not isinstance(queued, Queued) else wait_merged(forge, req.number, a.wait)
        if isinstance(result, Moved | Refused):
            print(f"not merged: {result.reason}", file=sys.stderr)
            forge.close_branch(head)
            return 1
        assert isinstance(result, Merged)
        step(f"merged #{req.number} as {result.sha[:12]}")

        git(work, "fetch", "-q", "origin", base)
        tip = git(work, "rev-parse", "FETCH_HEAD")
        assert tip == result.sha, f"the base is at {tip}, the forge said {result.sha}"
        got = git(work, "ls-tree", "-r", "--name-only", tip, "wtp-smoke")
        assert f"wtp-smoke/{stamp}.txt" in got.split(), "the base does not hold the tested file"
        assert git(work, "rev-parse", f"{tip}^{{tree}}") == git(work, "rev-parse", f"{cand}^{{tree}}"), "another tree"
        step(f"{base} at {tip[:12]} holds the tested tree")
        step(f"deleted {head}: {forge.close_branch(head)}; still there: {forge.branch_tip(head) is not None}")
    print("forge smoke test passed")
    return 0


def wait_merged(forge: Forge, number: int, wait: float) -> Merged | Refused:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        req = forge.get(number)
        if req.state == "merged":
            return Merged(req.merge_sha or "")
        if req.state == "closed" or (not req.queued and req.checks == "failure"):
            return Refused(f"#{number} is {req.state}, checks {req.checks_summary or req.checks}")
        step(f"#{number} queued, checks {req.checks or 'none yet'}; polling")
        time.sleep(10)
    return Refused(f"#{number} was not merged within {wait:g} s")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except WtpError as e:
        print(e, file=sys.stderr)
        sys.exit(e.exit_code)
