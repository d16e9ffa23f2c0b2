#!/usr/bin/env python3
"""A short demo of wtp's main job on a throw-away repository.

Builds a small web project with a bare 'origin', then: starts three tasks (each
gets its own branch and worktree), queues a fourth, shows the list, does some
work in two tasks, and removes one.  Everything happens under a temp folder that
is deleted at the end (pass --keep to look at it afterwards).
"""

from __future__ import annotations

import os
import shlex
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


def sh(args: list[str], cwd: Path, show: bool = True, ok: tuple[int, ...] = (0,), note: str = "") -> str:
    if show:  # a line that can be pasted into a shell as it is
        shown = ["wtp" if a == sys.executable else a for a in args if a not in ("-m", "worktree_par")]
        print(f"\n$ {shlex.join(shown)}" + (f"    # {note}" if note else ""), flush=True)
    res = subprocess.run(args, cwd=cwd, env=ENV, text=True, capture_output=True)
    if show:  # progress (stderr) came first as it ran
        print(res.stderr + res.stdout, end="", flush=True)
        if res.returncode:
            print(f"(exit {res.returncode})")
    if res.returncode not in ok:
        sys.exit(f"demo step failed: {' '.join(args)} exited {res.returncode}")
    return res.stdout


def say(text: str) -> None:
    print(f"\n# {text}", flush=True)


def main() -> None:
    keep = "--keep" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="wtp-demo-"))
    wtp = [sys.executable, "-m", "worktree_par"]
    try:
        repo = repos.build(tmp / "webapp", tree=ROOT / "fixtures" / "webapp", origin=tmp / "origin.git", env=ENV)
        print(f"demo repository: {repo} (pass --keep to look around in it afterwards)")
        os.chdir(repo)

        sh(wtp + ["init"], repo, note="the project's test command becomes the land gate")
        paths = {}
        for task, touch in [("posts", "content/posts/**"), ("api", "src/app.js"), ("docs", "README.md")]:
            paths[task] = Path(sh(wtp + ["start", task, "--touch", touch], repo).strip().splitlines()[-1])
        sh(
            wtp + ["start", "more-posts", "--touch", "content/posts/index.md"],
            repo,
            ok=(4,),
            note="three slots are taken and it collides with 'posts': queued, exit 4",
        )

        def edit(task: str, rel: str, old: str | None, new: str, msg: str | None) -> None:
            """Edit a file in a task's worktree (shown as a command), and commit it when msg is given."""
            f = paths[task] / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            text = new if old is None else f.read_text().replace(old, new)
            f.write_text(text)
            if old is None:
                shown = f"echo {shlex.quote(new.rstrip())} > {rel}"
            else:
                shown = f"sed -i {shlex.quote(f's/{old}/{new}/')} {rel}"
            print(
                f"\n$ cd {shlex.quote(str(paths[task]))} && {shown}"
                + (f" && git add -A && git commit -qm {shlex.quote(msg)}" if msg else "")
            )
            if msg:
                sh(["git", "add", "-A"], paths[task], show=False)
                sh(["git", "commit", "-q", "-m", msg], paths[task], show=False)

        say("work in the three worktrees at once; 'docs' also edits app.js, outside what it declared")
        edit("posts", "content/posts/post-4.md", None, "# Post 4\n", "Add post 4")
        edit("api", "src/app.js", '"hello "', '"hi "', "Friendlier greeting")
        edit("docs", "README.md", "webapp", "webapp (demo)", "Name the demo")
        edit("docs", "src/app.js", '"hello "', '"hey "', None)
        sh(wtp + ["list"], repo)
        sh(wtp + ["check"], repo, ok=(0, 1), note="before anything lands: who collides, and is it a real conflict?")
        sh(
            wtp + ["run", "api", "--", "sh", "-c", "echo task $WTP_TASK on port $PORT in $PWD"],
            repo,
            note="each task has its own PORT, for its dev server",
        )

        say("land through the push queue: rebase on main, run the gate on the result, publish with compare-and-swap")
        # Without Node.js the same test, as far as grep can tell: the sum, in either order.
        gate = "node test.js" if shutil.which("node") else "grep -Eq 'return (a [+] b|b [+] a)' src/app.js"
        sh(wtp + ["land", "api", "--gate", gate], repo)
        sh(wtp + ["land", "posts", "--gate", gate], repo, note="frees a slot: 'more-posts' starts by itself")

        say("a task that breaks the test is blocked, and main does not move")
        paths["math"] = Path(sh(wtp + ["start", "math", "--touch", "src/app.js"], repo).strip().splitlines()[-1])
        edit("math", "src/app.js", "a + b", "a - b", "Rework add()")
        sh(wtp + ["land", "math", "--gate", gate], repo, ok=(1,), note="the gate fails: its last lines, then the log")
        edit("math", "src/app.js", "a - b", "b + a", "Fix add(): the sum again")
        sh(
            wtp + ["land", "math", "--gate", gate, "--strategy", "squash"],
            repo,
            note="fixed: lands as one tested commit (rebase would land the broken first commit too, untested)",
        )

        say("a land conflict: 'docs' commits its edit of the line 'api' changed; land names the paths")
        sh(["git", "commit", "-qam", "Greet differently"], paths["docs"], show=False)
        print(f"\n$ cd {shlex.quote(str(paths['docs']))} && git commit -qam 'Greet differently'")
        sh(wtp + ["land", "docs", "--gate", gate], repo, ok=(1,), note="blocked: resolve, or drop the task")
        sh(wtp + ["rm", "docs"], repo, ok=(1,), note="refused: its commits are not on main")
        sh(wtp + ["rm", "docs", "--force"], repo, note="archived under refs/wtp/archive/docs, then removed")

        say("shared state that is not a file: one deploy to prod at a time, in arrival order")
        sh(
            wtp + ["gate", "deploy:prod", "--", "sh", "-c", "echo deploying $(git rev-parse --short HEAD) to prod"],
            repo,
        )

        say("something went wrong behind wtp's back: a worktree folder deleted by hand")
        lost = Path(sh(wtp + ["path", "more-posts"], repo, show=False).strip())
        print(f"\n$ rm -rf {shlex.quote(str(lost))}")
        shutil.rmtree(lost)
        sh(wtp + ["doctor"], repo, ok=(0, 1))
        sh(wtp + ["doctor", "--fix"], repo)
        sh(wtp + ["list", "--all"], repo)
        sh(["git", "log", "--oneline", "origin/main"], repo)
        print("\ndemo finished: tasks ran side by side in their own worktrees, collisions were caught before")
        print("they cost anything, a broken task and a conflict were stopped, and main only ever moved to")
        print("tested commits")
    except SystemExit:
        keep = True  # a step failed: its logs are in there
        raise
    finally:
        os.chdir(ROOT)
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
