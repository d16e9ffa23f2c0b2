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
sys.path.insert(0, str(ROOT / "scripts"))
import repos  # noqa: E402  (the repository builder tests, benchmarks and the demo share)

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "wtp demo"),
    "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "demo@example.com"),
    "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "wtp demo"),
    "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "demo@example.com"),
}


def sh(args: list[str], cwd: Path, show: bool = True, ok: tuple[int, ...] = (0,)) -> str:
    if show:
        shown = ["wtp" if a == sys.executable else a for a in args if a not in ("-m", "worktree_par")]
        print(f"\n$ {' '.join(shown)}", flush=True)
    res = subprocess.run(args, cwd=cwd, env=ENV, text=True, capture_output=True)
    if show:  # progress (stderr) came first as it ran
        print(res.stderr + res.stdout, end="", flush=True)
    if res.returncode not in ok:
        sys.exit(f"demo step failed: {' '.join(args)} exited {res.returncode}")
    return res.stdout


def main() -> None:
    keep = "--keep" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="wtp-demo-"))
    wtp = [sys.executable, "-m", "worktree_par"]
    try:
        repo = repos.build(tmp / "webapp", tree=ROOT / "fixtures" / "webapp", origin=tmp / "origin.git", env=ENV)
        print(f"demo repository: {repo}")

        sh(wtp + ["init"], repo)
        paths = {}
        for task, touch in [("posts", "content/posts/**"), ("api", "src/**"), ("docs", "README.md")]:
            paths[task] = Path(sh(wtp + ["start", task, "--touch", touch], repo).strip().splitlines()[-1])
        # a fourth task is queued: three slots are taken, and it collides with 'posts'
        sh(wtp + ["start", "more-posts", "--touch", "content/posts/index.md"], repo, ok=(4,))  # queued: exit 4

        def commit(task: str, rel: str, text: str, msg: str) -> None:
            f = paths[task] / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            sh(["git", "add", "-A"], paths[task], show=False)
            sh(["git", "commit", "-q", "-m", msg], paths[task], show=False)

        commit("posts", "content/posts/post-4.md", "---\ntitle: Post 4\n---\n\nNew post.\n", "Add post 4")
        commit(
            "api",
            "src/app.js",
            (paths["api"] / "src/app.js").read_text().replace('"hello "', '"hi "'),
            "Friendlier greeting",
        )
        # 'docs' edits the same line of app.js without committing: check sees uncommitted work too
        (paths["docs"] / "src/app.js").write_text(
            (paths["docs"] / "src/app.js").read_text().replace('"hello "', '"hey "')
        )
        sh(wtp + ["list"], repo)
        sh(wtp + ["check"], repo, ok=(0, 1))
        sh(wtp + ["run", "api", "--", "sh", "-c", "echo task $WTP_TASK on port $PORT in $PWD"], repo)
        # land through the push queue, gated by the project's test; main only moves to tested commits
        gate = "node test.js" if shutil.which("node") else "test -f src/app.js"
        sh(wtp + ["land", "api", "--gate", gate], repo)
        sh(wtp + ["land", "posts"], repo)  # frees the slot: 'more-posts' starts by itself
        sh(wtp + ["rm", "docs"], repo, ok=(1,))  # refused: uncommitted work would be lost
        sh(wtp + ["rm", "docs", "--force"], repo)  # archived under refs/wtp/archive/docs, then removed
        sh(wtp + ["list", "--all"], repo)
        sh(["git", "log", "--oneline", "origin/main"], repo)
        print("\ndemo finished: tasks ran side by side in their own worktrees, collisions were caught before")
        print("they cost anything, and main moved one tested commit at a time")
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
