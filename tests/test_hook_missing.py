"""The installed agent hook when wtp moves (issue 29): it runs the wtp that installed it by
absolute path, falls back to the one on PATH, and when neither is there denies the edit in
Claude Code's PreToolUse protocol (JSON on stdout, exit 0: a hook that exits 127 is a
non-blocking error, which lets every edit through unchecked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo

BARE_PATH = "/usr/bin:/bin"  # sh, printf and git, no wtp


def console_script(folder: Path) -> Path:
    """A 'wtp' executable as pip writes one: this Python, the package's entry point."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "wtp"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom worktree_par.entry import main\nsys.exit(main())\n")
    exe.chmod(0o755)
    return exe


def install(repo: Repo, tmp_path: Path, kind: str) -> Path:
    """'wtp hook install KIND' run by a wtp of its own (a console script in a venv folder)."""
    exe = console_script(tmp_path / "venv" / "bin")
    out = subprocess.run([str(exe), "hook", "install", kind], cwd=repo.path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return exe


def installed_command(repo: Repo) -> str:
    data = json.loads((repo.path / ".claude" / "settings.json").read_text())
    (group,) = data["hooks"]["PreToolUse"]
    (hook,) = group["hooks"]
    assert hook["type"] == "command"
    return str(hook["command"])


def run_hook(command: str, path: Path, cwd: Path, search: str, shell: str = "sh") -> subprocess.CompletedProcess[str]:
    """Run the installed command as Claude Code does (a shell command line, the event on stdin)."""
    event = {
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "cwd": str(cwd),
        "tool_name": "Edit",
        "tool_input": {"file_path": str(path), "old_string": "a", "new_string": "b"},
    }
    env = {**os.environ, "PATH": search}
    return subprocess.run(
        [shell, "-c", command], input=json.dumps(event), capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def reason(out: str) -> str:
    d = json.loads(out)["hookSpecificOutput"]
    assert (d["hookEventName"], d["permissionDecision"]) == ("PreToolUse", "deny")
    return str(d["permissionDecisionReason"])


@pytest.mark.skipif(shutil.which("wtp", path=BARE_PATH) is not None, reason="a wtp is installed system-wide")
def test_the_hook_runs_its_own_wtp_then_the_one_on_path_then_denies_saying_wtp_is_missing(
    repo: Repo, tmp_path: Path
) -> None:
    exe = install(repo, tmp_path, "claude")
    command = installed_command(repo)
    assert str(exe) in command  # by absolute path: the agent's PATH need not have it
    repo.wtp("start", "a", "--touch", "src/app.js")
    b = Path(repo.wtp("start", "b").lines[-1])

    # the recorded wtp is there: it answers, though PATH has no wtp
    for shell in ("sh", "bash"):
        res = run_hook(command, b / "src/app.js", b, BARE_PATH, shell)
        assert res.returncode == 0 and reason(res.stdout).startswith("wtp: src/app.js is declared by task 'a'")
    assert run_hook(command, b / "other.txt", b, BARE_PATH).stdout == ""  # nobody's file: allowed

    # moved away: the one on PATH answers instead
    moved = console_script(tmp_path / "elsewhere")
    exe.unlink()
    res = run_hook(command, b / "src/app.js", b, f"{moved.parent}:{BARE_PATH}")
    assert res.returncode == 0 and reason(res.stdout).startswith("wtp: src/app.js is declared by task 'a'")

    # none anywhere: denied, saying what is missing and what to do, for any file
    res = run_hook(command, b / "other.txt", b, BARE_PATH)
    assert (res.returncode, res.stderr) == (0, ""), res.stderr
    assert reason(res.stdout) == (
        f"wtp is missing: this hook runs {exe}, which is gone, and no wtp is on PATH, so the edit cannot be "
        "checked against the other tasks: install wtp (or put it on PATH), then run: wtp hook install claude"
    )


@pytest.mark.skipif(shutil.which("wtp", path=BARE_PATH) is not None, reason="a wtp is installed system-wide")
def test_on_missing_allow_lets_the_edit_through_with_a_warning_and_install_updates_an_old_hook(
    repo: Repo, tmp_path: Path
) -> None:
    settings = repo.path / ".claude" / "settings.json"
    old = {
        "matcher": "Edit|MultiEdit|Write|NotebookEdit",
        "hooks": [{"type": "command", "command": "wtp hook pre-edit"}],
    }
    repo.write(".claude/settings.json", json.dumps({"hooks": {"PreToolUse": [old]}}))
    repo.write(".wtp.toml", '[hook]\non_missing = "allow"\n')
    exe = console_script(tmp_path / "venv" / "bin")
    out = subprocess.run([str(exe), "hook", "install", "claude"], cwd=repo.path, capture_output=True, text=True)
    assert out.stdout.splitlines()[0] == (
        f"updated the PreToolUse hook 'wtp hook pre-edit' for Edit|MultiEdit|Write|NotebookEdit in {settings}"
    )
    command = installed_command(repo)  # the PATH-only command of an older install, replaced in place
    assert str(exe) in command
    exe.unlink()
    res = run_hook(command, repo.path / "README.md", repo.path, BARE_PATH)
    assert (res.returncode, res.stdout) == (1, "")  # the protocol's non-blocking error: the edit goes ahead
    assert res.stderr == (
        f"wtp hook: wtp is missing: this hook runs {exe}, which is gone, and no wtp is on PATH, so the edit "
        "cannot be checked against the other tasks; the edit goes ahead unchecked\n"
    )
    again = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "uninstall", "claude"], cwd=repo.path, capture_output=True
    )
    assert again.returncode == 0 and not settings.exists()


def test_on_missing_accepts_deny_or_allow(repo: Repo) -> None:
    repo.write(".wtp.toml", '[hook]\non_missing = "maybe"\n')
    out = repo.wtp("hook", "install", "claude")
    assert out.code == 2
    assert out.err == f"wtp: {repo.path / '.wtp.toml'}: 'hook.on_missing' must be one of deny, allow, not 'maybe'\n"


@pytest.mark.skipif(shutil.which("wtp", path=BARE_PATH) is not None, reason="a wtp is installed system-wide")
def test_the_git_hook_refuses_a_commit_saying_wtp_is_missing_or_lets_it_through_when_told(
    repo: Repo, tmp_path: Path
) -> None:
    exe = install(repo, tmp_path, "git")
    p = Path(repo.wtp("start", "a").lines[-1])
    (p / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=p, check=True)
    env = {**os.environ, "PATH": BARE_PATH}

    def commit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "commit", "-q", "-m", "a"], cwd=p, capture_output=True, text=True, env=env)

    exe.unlink()
    refused = commit()
    assert (refused.returncode, refused.stderr) == (
        1,
        f"wtp pre-commit hook: wtp is missing: this hook runs {exe}, which is gone, and no wtp is on PATH, so the "
        "commit cannot be checked against the other tasks: install wtp (or put it on PATH) and run 'wtp hook "
        "install git', or commit with --no-verify\n",
    )
    repo.write(".wtp.toml", '[hook]\non_missing = "allow"\n')
    console_script(tmp_path / "venv" / "bin")
    again = subprocess.run([str(exe), "hook", "install", "git"], cwd=repo.path, capture_output=True, text=True)
    assert again.stdout.splitlines()[0].startswith("updated the wtp pre-commit hook ")
    exe.unlink()
    through = commit()
    assert (through.returncode, through.stderr) == (
        0,
        f"wtp pre-commit hook: wtp is missing: this hook runs {exe}, which is gone, and no wtp is on PATH; the "
        "commit goes ahead unchecked\n",
    )


def test_installing_again_never_overwrites_a_wtp_hook_someone_edited(repo: Repo) -> None:
    assert repo.wtp("hook", "install", "git").code == 0
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    lines = hook.read_text().splitlines()
    edited = "\n".join([*lines[:3], "./scripts/lint.sh || exit 1   # added by the user", *lines[3:]]) + "\n"
    hook.write_text(edited)
    again = repo.wtp("hook", "install", "git")
    assert (again.code, again.err) == (
        1,
        f"wtp: the wtp pre-commit hook {hook} was edited, so it is kept as it is: move your additions into "
        f"{hook.parent / 'pre-commit.wtp-chained'} (it runs first), delete {hook}, then run 'wtp hook install git' "
        "again\n",
    )
    assert hook.read_text() == edited
