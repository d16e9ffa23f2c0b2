"""The shell integration (issue 17), in a real bash: 'wtp cd TASK', 'wtp cd' back to the
main worktree, 'wtp start --cd', and a shell moved out of a worktree that 'wtp land'
removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Repo


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_function_cd_start_and_land(repo: Repo, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "wtp").write_text(f'#!/bin/sh\nexec {sys.executable} -m worktree_par "$@"\n')
    (bindir / "wtp").chmod(0o755)
    script = """
eval "$(wtp shell-init bash)"
wtp start --cd a > /dev/null; echo "started: $PWD"
wtp cd; echo "main: $PWD"
wtp cd a; echo "in a: $PWD"
git commit -q --allow-empty -m work
wtp land --gate true > /dev/null 2>&1; echo "landed $?: $PWD"
wtp cd nosuch 2> /dev/null; echo "unknown $?: $PWD"
"""
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True)
    wt = repo.path.parent / "repo.worktrees" / "a"
    assert out.stdout.splitlines() == [
        f"started: {wt}",
        f"main: {repo.path}",
        f"in a: {wt}",
        f"landed 0: {repo.path}",  # the worktree it stood in was removed: moved to the main one
        f"unknown 2: {repo.path}",
    ], out.stderr


def test_shell_init_knows_three_shells_and_refuses_others(repo: Repo) -> None:
    for shell in ("bash", "zsh", "fish"):
        out = repo.wtp("shell-init", shell)
        assert out.code == 0 and "wtp path --main" in out.out
    bad = repo.wtp("shell-init", "tcsh")
    assert (bad.code, bad.err) == (2, "wtp: shell must be one of bash, zsh, fish, not 'tcsh'\n")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_commands_options_and_live_task_names(repo: Repo, tmp_path: Path) -> None:
    repo.wtp("start", "feed")
    repo.wtp("start", "fix-login")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "wtp").write_text(f'#!/bin/sh\nexec {sys.executable} -m worktree_par "$@"\n')
    (bindir / "wtp").chmod(0o755)

    def complete(*words: str) -> list[str]:
        line = " ".join(["wtp", *words])
        script = f"""
eval "$(wtp completion bash)"
COMP_WORDS=({line}); COMP_CWORD={len(words)}
_wtp_complete; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
        out = subprocess.run(["bash", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return sorted(out.stdout.split())

    assert complete("la") == ["land"]
    assert complete("land", "f") == ["feed", "fix-login"]
    assert complete("land", "--d") == ["--detach"]
    assert complete("start", "--w") == ["--wait"]
    fast = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worktree_par", "__tasks"],
        cwd=repo.path,
        capture_output=True,
        text=True,
    )
    assert fast.stdout.split() == ["feed", "fix-login"]
    assert "typer" not in {line.split("|")[-1].strip() for line in fast.stderr.splitlines() if "|" in line}


def in_pty(
    repo: Repo,
    *args: str,
    cwd: Path | None = None,
    columns: int = 80,
    seen: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Run wtp in a real pseudo-terminal ``columns`` wide; its exit code and all it wrote.
    ``seen`` is shown all it wrote so far each time more comes (to act on what is on screen)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "worktree_par", *args],
        cwd=cwd or repo.path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if seen is not None:
            seen(out.decode(errors="replace"))
    code = proc.wait(timeout=30)
    os.close(master)
    return code, out.decode(errors="replace")


def test_list_fits_80_columns_in_a_terminal_and_never_cuts_a_task_name(repo: Repo) -> None:
    """'wtp list' in a real pseudo-terminal 80 columns wide."""
    names = ["search-results-paging", "fix-login", "q"]
    for n in names:
        p = Path(repo.wtp("start", n).lines[-1])
        repo.commit({f"{n}.txt": "x\n"}, "a rather long commit subject that would not fit in the row at all", cwd=p)
    repo.write(".wtp.toml", "max_active = 3\n")
    repo.wtp("start", "waiting-one")  # queued: its reason goes on a line of its own
    _, raw = in_pty(repo, "list")
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", raw).replace("\r", "")
    lines = [line for line in text.splitlines() if line]
    assert lines[0].split()[:3] == ["TASK", "STATE", "+/-"]
    assert all(len(line) <= 80 for line in lines if not line.startswith("  └")), lines
    for n in names + ["waiting-one"]:
        assert any(line.split()[0] == n for line in lines[1:]), (n, lines)
    assert any(line.startswith("  └ all 3 slots are taken") for line in lines), lines


GATE = "echo compiling; sleep 1.2; echo tests passed"


def test_land_on_a_terminal_shows_one_updating_line_with_time_state_and_latest_output(repo: Repo) -> None:
    import re

    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    code, raw = in_pty(repo, "land", "a", "--gate", GATE)
    assert code == 0, raw
    # rich redraws the line in place: carriage returns and erase-line codes, never a new line each time
    assert "\x1b[2K" in raw or "\r" in raw
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    frames = [f for f in re.split(r"[\r\n]", plain) if "landing 'a'" in f]
    assert any(re.search(r"landing 'a' \ds · gating \ds · compiling", f) for f in frames), frames
    assert all(len(f) <= 80 for f in frames)
    final = [ln for ln in plain.replace("\r", "\n").splitlines() if ln.strip()]
    assert any(ln.startswith("landed 'a' at ") for ln in final) and "landing 'a'" not in final[-1]


def test_follow_streams_the_gate_output_and_plain_output_has_no_redraws(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    out = repo.wtp_proc("land", "a", "--gate", GATE, "--follow")
    assert out.code == 0, out.err
    lines = out.err.splitlines()
    assert "compiling" in lines and "tests passed" in lines
    assert lines.index("compiling") < lines.index("tests passed")
    assert "\x1b" not in out.err and "\r" not in out.err
    q = Path(repo.wtp("start", "b").lines[-1])
    repo.commit({"b.txt": "b\n"}, cwd=q)
    quiet = repo.wtp_proc("land", "b", "--gate", GATE)  # without --follow, not on a terminal: no output lines
    assert quiet.code == 0 and "compiling" not in quiet.err.splitlines()
    assert any(ln.startswith("gate: ") and "log: " in ln for ln in quiet.err.splitlines())


def test_a_wait_for_a_slot_on_a_terminal_shows_the_reason_and_time(repo: Repo) -> None:
    import re
    import threading

    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    live_line = r"waiting for a slot for 'b' \ds · all 1 slots are taken"
    freeing: list[threading.Thread] = []

    def free_the_slot_once_b_shows_its_wait(shown: str) -> None:
        if not freeing and re.search(live_line, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)):
            freeing.append(threading.Thread(target=repo.wtp_proc, args=("rm", "a")))
            freeing[0].start()  # in a thread: the screen is still read while rm runs

    code, raw = in_pty(repo, "start", "b", "--wait", "--timeout", "20", seen=free_the_slot_once_b_shows_its_wait)
    for rm in freeing:
        rm.join(timeout=60)
    assert code == 0, raw
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert re.search(live_line, plain), plain
    assert [ln for ln in plain.replace("\r", "\n").splitlines() if ln.strip()][-1].endswith("/b")
