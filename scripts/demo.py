#!/usr/bin/env python3
"""A short demo of wtp's main job on a throw-away repository.

Builds a small web project with a bare 'origin', then: starts three tasks (each
gets its own branch and worktree), queues a fourth, shows the list, does some
work in two tasks, and removes one.  Everything happens under a temp folder that
is deleted at the end (pass --keep to look at it afterwards).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "wtp demo"),
    "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "demo@example.com"),
    "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "wtp demo"),
    "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "demo@example.com"),
}


def sh(args: list[str], cwd: Path, show: bool = True, ok: tuple[int, ...] = (0,)) -> str:
    if show:
        print(f"\n$ {' '.join(args)}", flush=True)
    res = subprocess.run(args, cwd=cwd, env=ENV, text=True, capture_output=True)
    if show:
        print(res.stdout, end="")
        if res.stderr:
            print(res.stderr, end="", file=sys.stderr)
    if res.returncode not in ok:
        sys.exit(f"demo step failed: {' '.join(args)} exited {res.returncode}")
    return res.stdout


def main() -> None:
    keep = "--keep" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="wtp-demo-"))
    wtp = [sys.executable, "-m", "worktree_par"]
    try:
        repo = tmp / "webapp"
        shutil.copytree(ROOT / "fixtures" / "webapp", repo)
        sh(["git", "init", "-q", "-b", "main"], repo, show=False)
        sh(["git", "add", "-A"], repo, show=False)
        sh(["git", "commit", "-q", "-m", "initial"], repo, show=False)
        sh(["git", "init", "-q", "--bare", "-b", "main", str(tmp / "origin.git")], tmp, show=False)
        sh(["git", "remote", "add", "origin", str(tmp / "origin.git")], repo, show=False)
        sh(["git", "push", "-q", "-u", "origin", "main"], repo, show=False)
        sh(["git", "remote", "set-head", "origin", "main"], repo, show=False)
        print(f"demo repository: {repo}")

        sh(wtp + ["init"], repo)
        paths = {}
        for task, touch in [("posts", "content/posts/**"), ("api", "src/**"), ("docs", "README.md")]:
            paths[task] = Path(sh(wtp + ["start", task, "--touch", touch], repo).strip().splitlines()[-1])
        sh(wtp + ["start", "more-posts", "--touch", "content/posts/new.md"], repo)

        (paths["posts"] / "content/posts/post-4.md").write_text("---\ntitle: Post 4\n---\n\nNew post.\n")
        sh(["git", "add", "-A"], paths["posts"], show=False)
        sh(["git", "commit", "-q", "-m", "Add post 4"], paths["posts"], show=False)
        (paths["api"] / "src/app.js").write_text((paths["api"] / "src/app.js").read_text() + "\n// wip\n")

        sh(wtp + ["list"], repo)
        sh(wtp + ["run", "docs", "--", "sh", "-c", "echo task $WTP_TASK on port $PORT in $PWD"], repo)
        sh(wtp + ["rm", "docs"], repo)
        sh(wtp + ["rm", "posts"], repo, ok=(1,))
        sh(wtp + ["list"], repo)
        print(
            "\ndemo finished: tasks ran side by side in their own worktrees; the queued task started when a slot freed"
        )
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
