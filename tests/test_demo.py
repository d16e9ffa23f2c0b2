"""The README's first command runs the demo: it must keep working, and show what it says it shows."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_and_walks_through_the_main_job() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    for seen in (
        "queued (place 1)",  # a fourth task waits
        "CONFLICT    api <> docs",  # check tells a conflict
        "undeclared  docs",
        "FAIL: add(1, 2) is -1, not 3",  # a failing gate shows its output
        "conflicts with 'main' in 1 path (src/app.js)",  # a land conflict names the path
        "under refs/wtp/archive/docs",  # rm --force archives
        "deploying ",  # a gate for a deploy
        "fixed: recreated the worktree of 'more-posts'",  # doctor
    ):
        assert seen in text, seen
    commands = [line[2:].split("    # ")[0] for line in text.splitlines() if line.startswith("$ ")]
    assert len(commands) > 20
    for c in commands:  # every shown command can be pasted: it parses as shell words
        shlex.split(c)


def test_the_demo_runs_without_nodejs(tmp_path: Path) -> None:
    """Review 11: on a machine without Node.js the demo's stand-in gate looked for 'a + b' while
    the demo's own fix writes 'b + a': the README's first command failed."""
    import os
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for folder in dict.fromkeys(os.environ["PATH"].split(os.pathsep)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name != "node" and not (bindir / name).exists():
                (bindir / name).symlink_to(Path(folder) / name)
    env = {**os.environ, "PATH": str(bindir)}
    assert shutil.which("node", path=env["PATH"]) is None
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "demo finished" in out.stdout
