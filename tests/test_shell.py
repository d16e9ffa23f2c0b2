"""The shell integration (issue 17), in a real bash: 'wtp cd TASK', 'wtp cd' back to the
main worktree, 'wtp start --cd', and a shell moved out of a worktree that 'wtp land'
removed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Repo, wait_for


def _wtp_on_path(tmp_path: Path) -> Path:
    """A folder with a 'wtp' that runs this checkout, to put first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "wtp").write_text(f'#!/bin/sh\nexec {sys.executable} -m worktree_par "$@"\n')
    (bindir / "wtp").chmod(0o755)
    return bindir


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_function_cd_start_and_land(repo: Repo, tmp_path: Path) -> None:
    bindir = _wtp_on_path(tmp_path)
    script = """
eval "$(wtp shell-init bash)"
wtp start --cd a > /dev/null; echo "started: $PWD"
wtp cd; echo "main: $PWD"
wtp cd a; echo "in a: $PWD"
git commit -q --allow-empty -m work
wtp land --gate true > /dev/null 2>&1; echo "landed $?: $PWD"
wtp cd nosuch 2> /dev/null; echo "unknown $?: $PWD"
cd /; wtp -C "$REPO" cd b 2> /dev/null; echo "-C to b $?: $PWD"
wtp -C "$REPO" start --cd c --json | grep -c '"name": "c"'; echo "json, no cd: $PWD"
wtp cd --help | grep -c '^Usage: wtp cd'; echo "help, no cd: $PWD"
"""
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "REPO": str(repo.path)}
    repo.wtp("start", "b")
    out = subprocess.run(["bash", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True)
    wt = repo.path.parent / "repo.worktrees" / "a"
    assert out.stdout.splitlines() == [
        f"started: {wt}",
        f"main: {repo.path}",
        f"in a: {wt}",
        f"landed 0: {repo.path}",  # the worktree it stood in was removed: moved to the main one
        f"unknown 2: {repo.path}",
        f"-C to b 0: {wt.parent / 'b'}",  # review 10: '-C DIR' before 'cd' said the function was missing
        "1",
        f"json, no cd: {wt.parent / 'b'}",  # review 10: the JSON was passed to cd
        "1",
        f"help, no cd: {wt.parent / 'b'}",  # review 36: the help text was passed to cd
    ], out.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="needs fish")
def test_fish_function_does_what_the_bash_one_does(repo: Repo, tmp_path: Path) -> None:
    """The fish function had none of review 10's fixes ('-C DIR' before 'cd', no cd with
    --json), nor 'start --cd' keeping the exit code: the same script as for bash, in fish."""
    bindir = _wtp_on_path(tmp_path)
    script = """
wtp shell-init fish | source
wtp start --cd a > /dev/null; echo "started: $PWD"
wtp cd; echo "main: $PWD"
wtp cd a; echo "in a: $PWD"
git commit -q --allow-empty -m work
wtp land --gate true > /dev/null 2>&1; echo "landed $status: $PWD"
wtp cd nosuch 2> /dev/null; echo "unknown $status: $PWD"
cd /; wtp -C "$REPO" cd b 2> /dev/null; echo "-C to b $status: $PWD"
wtp -C "$REPO" start --cd c --json | grep -c '"name": "c"'; echo "json, no cd: $PWD"
wtp -C "$REPO" start --cd q --touch src/app.py 2> /dev/null; echo "queued $status: $PWD"
wtp cd --help | grep -c '^Usage: wtp cd'; echo "help, no cd: $PWD"
"""
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "REPO": str(repo.path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no user's config.fish
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    repo.wtp("start", "b", "--touch", "src/app.py")
    out = subprocess.run(["fish", "--no-config", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True)
    wt = repo.path.parent / "repo.worktrees" / "a"
    assert out.stdout.splitlines() == [
        f"started: {wt}",
        f"main: {repo.path}",
        f"in a: {wt}",
        f"landed 0: {repo.path}",
        f"unknown 2: {repo.path}",
        f"-C to b 0: {wt.parent / 'b'}",
        "1",
        f"json, no cd: {wt.parent / 'b'}",
        f"queued 4: {wt.parent / 'b'}",  # queued: the exit code, and no cd to an empty path
        "1",
        f"help, no cd: {wt.parent / 'b'}",
    ], out.stderr


def test_shell_init_knows_three_shells_and_refuses_others(repo: Repo) -> None:
    for shell in ("bash", "zsh", "fish"):
        out = repo.wtp("shell-init", shell)
        assert out.code == 0 and "path --main" in out.out
    bad = repo.wtp("shell-init", "tcsh")
    assert (bad.code, bad.err) == (2, "wtp: shell must be one of bash, zsh, fish, not 'tcsh'\n")


def wtp_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a 'wtp' that runs this checkout's wtp."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "wtp").write_text(f'#!/bin/sh\nexec {sys.executable} -m worktree_par "$@"\n')
    (bindir / "wtp").chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}


def bash_complete(repo: Repo, env: dict[str, str], *words: str) -> list[str]:
    """What bash offers for the last of ``words`` after 'wtp', the script loaded as a user would."""
    line = " ".join(["wtp", *(w or "''" for w in words)])
    script = f"""
eval "$(wtp completion bash)"
COMP_WORDS=({line}); COMP_CWORD={len(words)}
_wtp_complete; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.split())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_commands_options_and_live_task_names(repo: Repo, tmp_path: Path) -> None:
    repo.wtp("start", "feed")
    repo.wtp("start", "fix-login")
    env = wtp_on_path(tmp_path)

    def complete(*words: str) -> list[str]:
        return bash_complete(repo, env, *words)

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


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_cd_every_command_and_option_choices_not_task_names(repo: Repo, tmp_path: Path) -> None:
    from typer.main import get_command

    from worktree_par.cli import app
    from worktree_par.config import MODES, STRATEGIES
    from worktree_par.overlap import FAIL_ON

    repo.wtp("start", "feed")
    env = wtp_on_path(tmp_path)

    def complete(*words: str) -> list[str]:
        return bash_complete(repo, env, *words)

    everything = sorted(getattr(get_command(app), "commands", {}))
    assert "cd" in everything and complete("") == sorted([*everything, "-C", "--help", "--version"])
    assert complete("c") == ["cd", "check", "cochange", "completion"]
    assert complete("cd", "") == ["feed"]
    assert complete("land", "--strategy", "") == sorted(STRATEGIES)
    assert complete("land", "feed", "--mode", "s") == ["serial", "speculative"]
    assert complete("land", "--mode", "") == sorted(MODES)
    assert complete("check", "--fail-on", "") == sorted(FAIL_ON)
    assert complete("hook", "") == ["install", "pre-commit", "pre-edit", "uninstall"]
    assert complete("hook", "install", "") == ["claude", "git"]
    assert complete("hook", "uninstall", "c") == ["claude"]
    for shell_cmd in ("completion", "shell-init"):
        assert complete(shell_cmd, "") == ["bash", "fish", "zsh"]
    assert complete("help", "la") == ["land"]
    # an option's own value that wtp cannot know (a command, a ref, a glob): nothing, not task names
    for opt in (("land", "--gate"), ("start", "--base"), ("start", "--touch"), ("start", "x", "--timeout")):
        assert complete(*opt, "") == [], opt
    # -C takes a folder, and the command after it is completed as usual
    assert complete("-C", str(repo.path), "land", "--strategy", "sq") == ["squash"]
    assert complete("run", "feed", "--", "") == []  # CMD: the shell's own business


def test_zsh_and_fish_scripts_carry_the_same_choices(repo: Repo) -> None:
    """zsh is not installed here, and fish may not be (CI installs it when it can), so their
    completions are checked as text: zsh loads the bash function through bashcompinit; fish gets one
    'complete' line per option, choices with -x -a, free values with -r."""
    zsh = repo.wtp("completion", "zsh").out
    bash = repo.wtp("completion", "bash").out
    assert zsh == "autoload -U +X bashcompinit && bashcompinit\n" + bash
    fish = repo.wtp("completion", "fish").out.splitlines()
    assert fish[0].startswith("complete -c wtp -f -n __fish_use_subcommand -a '") and " cd " in fish[0]
    for line in (
        "complete -c wtp -f -n '__fish_seen_subcommand_from land' -l strategy -x -a 'rebase squash merge'",
        "complete -c wtp -f -n '__fish_seen_subcommand_from land' -l mode -x -a 'speculative batch serial'",
        "complete -c wtp -f -n '__fish_seen_subcommand_from check' -l fail-on -x -a 'semantic conflict overlap likely declared never'",
        "complete -c wtp -f -n '__fish_seen_subcommand_from land' -l gate -r",
        "complete -c wtp -f -n '__fish_seen_subcommand_from cd' -a '(command wtp __tasks 2>/dev/null)'",
        "complete -c wtp -f -n '__fish_seen_subcommand_from hook; and __fish_seen_subcommand_from install' -a 'claude git'",
        "complete -c wtp -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'",
        "complete -c wtp -f -n __fish_use_subcommand -s C -x -a '(__fish_complete_directories)'",
    ):
        assert line in fish, line
    assert not any("strategy" in ln and "__tasks" in ln for ln in fish)


@pytest.mark.parametrize(
    "login_shell, line",
    [
        ("/bin/bash", 'add this line to ~/.bashrc and open a new shell: eval "$(wtp shell-init bash)"'),
        ("/usr/bin/zsh", 'add this line to ~/.zshrc and open a new shell: eval "$(wtp shell-init zsh)"'),
        (
            "/usr/bin/fish",
            "add this line to ~/.config/fish/config.fish and open a new shell: wtp shell-init fish | source",
        ),
    ],
)
def test_wtp_cd_without_the_shell_function_says_the_line_to_add(repo: Repo, login_shell: str, line: str) -> None:
    out = repo.wtp_proc("cd", "feed", env={**os.environ, "SHELL": login_shell})
    assert (out.code, out.out) == (2, "")
    assert out.err == (
        "wtp: 'wtp cd' needs wtp's shell function (a program cannot move its shell): "
        f'{line} (meanwhile: cd "$(wtp path feed)")\n'
    )


def test_wtp_cd_with_an_unknown_shell_lists_every_line(repo: Repo) -> None:
    out = repo.wtp_proc("cd", env={**os.environ, "SHELL": "/bin/tcsh"})
    assert (out.code, out.out) == (2, "")
    assert out.err == (
        "wtp: 'wtp cd' needs wtp's shell function (a program cannot move its shell): add the line for your "
        'shell to its rc file: bash: eval "$(wtp shell-init bash)"; zsh: eval "$(wtp shell-init zsh)"; '
        'fish: wtp shell-init fish | source (meanwhile: cd "$(wtp path --main)")\n'
    )


def test_an_unquoted_touch_glob_says_quote_the_glob(repo: Repo) -> None:
    for name in ("a.py", "b.py", "c.py"):
        repo.write(f"src/{name}", "x\n")
    # what the shell passes for: wtp start feed --touch src/*.py --wait
    out = repo.wtp_proc("start", "feed", "--touch", "src/a.py", "src/b.py", "src/c.py", "--wait")
    assert (out.code, out.out) == (2, "")
    assert out.err == (
        "wtp: Got unexpected extra argument(s) (src/b.py src/c.py) (see 'wtp start --help'); the shell "
        "expanded an unquoted --touch glob: quote the glob, e.g. --touch 'src/**'\n"
    )
    other = repo.wtp_proc("start", "feed", "--touch", "src/a.py", "nosuch")  # not paths: no guess
    assert other.err == "wtp: Got unexpected extra argument(s) (nosuch) (see 'wtp start --help')\n"


def in_pty(
    repo: Repo,
    *args: str,
    cwd: Path | None = None,
    columns: int = 80,
    seen: Callable[[str], None] | None = None,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> tuple[int, str]:
    """Run wtp in a real pseudo-terminal ``columns`` wide; its exit code and all it wrote.
    ``seen`` is shown all it wrote so far each time more comes (to act on what is on screen);
    ``started`` is given the process."""
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
    if started is not None:
        started(proc)
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
        p = Path(repo.wtp("start", n, "--touch", f"{n}.txt").lines[-1])
        repo.commit({f"{n}.txt": "x\n"}, "a rather long commit subject that would not fit in the row at all", cwd=p)
    repo.write(".wtp.toml", "max_active = 3\n")
    # queued: its (long) reason goes below its row, wrapped at words and indented
    repo.wtp("start", "waiting-one", *(a for n in names for a in ("--touch", f"{n}.txt")))
    _, raw = in_pty(repo, "list")
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", raw).replace("\r", "")
    lines = [line for line in text.splitlines() if line]
    assert lines[0].split()[:3] == ["TASK", "STATE", "+/-"]
    assert all(len(line) <= 80 for line in lines), lines
    for n in names + ["waiting-one"]:
        assert any(line.split()[0] == n for line in lines[1:]), (n, lines)
    first = next(k for k, line in enumerate(lines) if line.startswith("  └ no slot is free: 3 of 3 taken"))
    note = [lines[first]] + [line for line in lines[first + 1 :] if line.startswith("    ")]
    assert len(note) > 1 and all(line.startswith("    ") for line in note[1:]), lines
    words = " ".join(line.strip() for line in note)[2:].split()
    assert " ".join(words) == (
        "no slot is free: 3 of 3 taken; path search-results-paging.txt with task 'search-results-paging'; "
        "path fix-login.txt with task 'fix-login'; path q.txt with task 'q'"
    )


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


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def ctrl_c_when(repo: Repo, shows: str, *args: str) -> tuple[int, str]:
    """Run wtp in a pseudo-terminal and press Ctrl-C once the screen shows ``shows`` (a
    regular expression); its exit code and all it wrote, without colour codes."""
    import re

    procs: list[subprocess.Popen[bytes]] = []

    def interrupt(shown: str) -> None:
        if len(procs) == 1 and re.search(shows, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)):
            procs[0].send_signal(signal.SIGINT)  # the terminal signals its foreground process
            procs.append(procs[0])  # once

    code, raw = in_pty(repo, *args, seen=interrupt, started=procs.append)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)


def last_screen_line(plain: str) -> str:
    return [ln for ln in plain.replace("\r", "\n").splitlines() if ln.strip()][-1]


def test_the_live_line_shows_no_log_header_and_is_gone_after_ctrl_c(repo: Repo) -> None:
    import re

    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    code, plain = ctrl_c_when(repo, r"landing 'a' \ds · gating", "land", "a", "--gate", "sleep 30")
    assert code == 130, plain
    frames = [f for f in re.split(r"[\r\n]", plain) if "landing 'a'" in f]
    assert frames and not any("# candidate" in f or "$ sleep" in f for f in frames), frames  # wtp's header is no output
    last = last_screen_line(plain)
    assert "landing 'a'" not in last and not any(c in last for c in SPINNER), last


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
    live_line = r"waiting for a slot for 'b' \ds · no slot is free: 1 of 1 taken"
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


def test_ctrl_c_during_a_wait_for_a_slot_leaves_no_live_line(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    code, plain = ctrl_c_when(repo, r"waiting for a slot for 'b' \ds", "start", "b", "--wait")
    assert code == 130, plain
    last = last_screen_line(plain)
    assert "waiting for a slot" not in last and not any(c in last for c in SPINNER), last


def test_ctrl_c_during_a_wait_for_a_gate_leaves_no_live_line(repo: Repo) -> None:
    held = repo.path.parent / "held"
    holder = repo.spawn("gate", "deploy", "--", "sh", "-c", f"touch {held}; sleep 60", new_session=True)
    try:
        wait_for(held.exists, "the gate to be held")
        code, plain = ctrl_c_when(repo, r"waiting for gate 'deploy' \ds", "gate", "deploy", "--", "true")
        assert code == 130, plain
        last = last_screen_line(plain)
        assert "waiting for gate" not in last and not any(c in last for c in SPINNER), last
    finally:
        os.killpg(holder.pid, signal.SIGTERM)  # the holder and its sleep: this test's own processes
        holder.wait(timeout=30)
