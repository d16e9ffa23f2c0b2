"""What the tenth review (the day's fixes, and the agent hook, MCP and shell doors) broke,
each kept as a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from .conftest import Repo, make_repo


def _start(r: Repo, name: str, files: dict[str, str] | None = None) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    if files:
        r.commit(files, f"{name} work", cwd=p)
    return p


def _cli(r: Repo, *args: str, stdout: IO[str] | int = subprocess.PIPE, stderr: IO[str] | int = subprocess.PIPE) -> int:
    return subprocess.run(
        [sys.executable, "-m", "worktree_par", *args], cwd=r.path, stdout=stdout, stderr=stderr, timeout=120
    ).returncode


@pytest.mark.parametrize("which", ["stdout", "stderr"])
def test_an_output_on_a_full_disk_changes_neither_the_land_nor_its_exit_code(project: Repo, which: str) -> None:
    """Review 10: with stderr on a full disk the land stopped mid-gate at its progress line
    (nothing published); with stdout there it landed and then said 'No space left on device'
    and exited 2 (a traceback under --json)."""
    _start(project, "a", {"a.txt": "a\n"})
    with open("/dev/full", "w") as full:
        streams = {"stdout": full} if which == "stdout" else {"stderr": full}
        code = _cli(project, "land", "a", "--gate", "./check.sh", "--json", **streams)
    assert code == 0
    assert project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"


def test_a_refusal_under_json_on_a_full_disk_keeps_its_exit_code(project: Repo) -> None:
    with open("/dev/full", "w") as full:
        assert _cli(project, "land", "nosuch", "--json", stdout=full) == 2
        assert _cli(project, "nosuch", stderr=full) == 2


def _hook(r: Repo, data: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "pre-edit"],
        input=json.dumps(data, ensure_ascii=False).encode(),  # as an agent sends it: UTF-8
        capture_output=True,
        cwd=r.path,
        env={**os.environ, **(env or {})},
        timeout=30,
    )
    return res.returncode, res.stdout.decode()


def _write(path: str, cwd: Path) -> dict[str, object]:
    return {"cwd": str(cwd), "tool_name": "Write", "tool_input": {"file_path": path, "content": "x"}}


def test_the_hook_resolves_a_link_before_the_dots_after_it(project: Repo) -> None:
    """Review 10: '<a>/lnk/../new.txt', lnk leading into task b's worktree, writes <b>/new.txt;
    the hook collapsed 'lnk/..' as text, allowed it and recorded new.txt as a's claim."""
    a = _start(project, "a")
    b = _start(project, "b", {"sub/keep": "k\n"})
    (a / "lnk").symlink_to(b / "sub")
    code, out = _hook(project, _write(f"{a}/lnk/../new.txt", a))
    assert code == 0
    answer = json.loads(out)["hookSpecificOutput"]
    assert answer["permissionDecision"] == "deny", answer
    assert answer["permissionDecisionReason"] == (
        f"wtp: {a}/lnk/../new.txt resolves to {b.resolve()}/new.txt, in the worktree of task 'b', so task 'a' "
        "should not edit it now: wait for it to land ('wtp list' shows it), pick another file, or coordinate with "
        "that task"
    )
    code, out = _hook(project, _write(f"{b}/new.txt", b))  # b's own file stays b's
    assert (code, out) == (0, "")


def test_the_hook_reads_its_json_as_utf8_whatever_the_locale(project: Repo) -> None:
    """Review 10: under a latin-1 locale the hook read 'café.txt' as 'cafÃ©.txt': the edit of
    a file another task changed went through."""
    a = _start(project, "a")
    b = _start(project, "b", {"café.txt": "b\n"})
    assert b.exists()
    code, out = _hook(project, _write(f"{a}/café.txt", a), env={"PYTHONIOENCODING": "latin-1", "LC_ALL": "C"})
    assert code == 0 and json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "deny", out


def test_worktree_root_is_judged_from_the_main_checkout_not_the_current_directory(project: Repo) -> None:
    """Review 10: the '/' check resolved worktree_root against the current directory: '..'
    was refused when run from '/', and a root that is '/' from the repository passed when run
    from a subfolder (a worktree made at /<task>)."""
    project.write(".wtp.toml", 'worktree_root = ".."\n')
    listed = subprocess.run(
        [sys.executable, "-m", "worktree_par", "-C", str(project.path), "list"], cwd="/", capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    depth = len(project.path.resolve().parts) - 1
    project.write(".wtp.toml", f"worktree_root = {json.dumps('/'.join(['..'] * depth))}\n")
    deep = project.path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    out = project.wtp_proc("start", "zz", cwd=deep)
    assert (out.code, out.err.strip()) == (
        2,
        f"wtp: {project.path / '.wtp.toml'}: 'worktree_root' must name a folder for the task worktrees, not '/'",
    )
    assert not Path("/zz").exists()


def test_a_submodule_with_a_git_folder_of_its_own_is_checked_too(tmp_path: Path) -> None:
    """Review 10: the superproject check looked only at submodules whose git dir lives in the
    superproject's .git/modules; one added from an existing clone keeps a .git folder."""
    lib = make_repo(tmp_path / "l", fixture=None, name="lib")
    sup = make_repo(tmp_path / "s", fixture=None, name="super")
    subprocess.run(["git", "clone", "-q", str(lib.path), str(sup.path / "lib")], check=True)
    sup.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "lib")
    assert (sup.path / "lib" / ".git").is_dir()
    out = Repo(sup.path / "lib").wtp("start", "t1")
    assert out.code == 2 and "is inside the superproject's worktree" in out.err, out.err
    assert sup.git("status", "--porcelain") == "A  .gitmodules\nA  lib"


def test_rm_of_a_task_whose_publisher_is_stopped_says_so(project: Repo, tmp_path: Path) -> None:
    """Review 10: with the lander stopped (Ctrl-Z) mid-push, 'wtp rm' advised --force 'to
    withdraw it from the land', and 'wtp rm --force' then said 'see wtp list in a moment'."""
    import signal

    from .conftest import wait_for

    _start(project, "t1", {"x.txt": "x\n"})
    pushing, release = tmp_path / "pushing", tmp_path / "release"
    hook = project.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ntouch {pushing}\nwhile [ ! -e {release} ]; do sleep 0.05; done\n")
    hook.chmod(0o755)
    lander = project.spawn("land", "t1", "--gate", "./check.sh", new_session=True)
    pid = 0
    try:
        wait_for(pushing.exists, "the push to begin")
        tasks = json.loads((project.path / ".git" / "wtp" / "state.json").read_text())["tasks"]
        pid = next(t for t in tasks if t["name"] == "t1")["holder"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: "stopped" in project.wtp("list").out, "the lander to show as stopped")
        want = (
            f"wtp: task 't1' is being published by pid {pid}, which is stopped: resume it ('fg' in its shell, or "
            f"'kill -CONT {pid}') and it finishes; 'wtp list' then says whether it landed"
        )
        for args in (["rm", "t1"], ["rm", "t1", "--force"]):
            out = project.wtp_proc(*args)
            assert (out.code, out.err.strip()) == (1, want), args
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
        release.touch()
    _, err = lander.communicate(timeout=120)
    assert lander.returncode == 0, err


def test_doctor_adopt_says_what_it_could_not_fix_and_leaves_branches_wtp_never_makes(repo: Repo) -> None:
    """Review 10: for a hand-made worktree where a queued task would start, 'doctor --fix
    --adopt' printed "fixed: 'q' is already registered" and the next doctor found it again; a
    worktree on 'wtp/x/y' could never be fixed, so doctor was never healthy."""
    repo.write(".wtp.toml", "max_active = 1\n")
    repo.wtp("start", "a")
    assert repo.wtp("start", "q").code == 4  # queued
    root = repo.path.parent / f"{repo.path.name}.worktrees"
    repo.git("worktree", "add", "-q", "-b", "wtp/q", str(root / "q"))
    repo.git("worktree", "add", "-q", "-b", "wtp/x/y", str(root / "xy"))
    want = (
        f"worktree {root / 'q'} (refs/heads/wtp/q) is where task 'q' (queued) will start, on its branch: that task "
        "takes it as it is when it starts; move it away if it is not its"
    )
    for args in (["doctor", "--json"], ["doctor", "--fix", "--adopt", "--json"]):  # (review 11: plain doctor too)
        out = repo.wtp(*args)
        assert (out.code, json.loads(out.out)["findings"]) == (1, [{"problem": want, "fixed": None}]), args


def test_gate_json_goes_with_status(repo: Repo) -> None:
    """Review 10: 'wtp gate g1 --json -- cmd' took --json and ignored it (no document when the
    command was not found, exit 127)."""
    out = repo.wtp_proc("gate", "g1", "--json", "--", "true")
    assert out.code == 2 and json.loads(out.out)["error"] == "--json goes with --status: 'wtp gate g1 --status --json'"


def test_a_non_blocking_stdout_is_waited_for_not_cut_short(project: Repo) -> None:
    """Review 11: a caller's non-blocking pipe that filled up (EAGAIN) was taken as a reader
    gone: 'wtp list --json' printed 4096 of 7223 bytes, exit 0, nothing said."""
    import fcntl
    import termios

    for i in range(12):
        project.wtp("start", f"task-with-a-long-name-{i:02d}", "--touch", f"src/area-{i}/**")
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: one page
    os.set_blocking(w, False)
    proc = subprocess.Popen([sys.executable, "-m", "worktree_par", "list", "--json"], cwd=project.path, stdout=w)
    os.close(w)

    def queued() -> int:
        buf = bytearray(4)
        fcntl.ioctl(r, termios.FIONREAD, buf)
        return int.from_bytes(buf, sys.byteorder)

    try:
        from .conftest import wait_for

        wait_for(lambda: queued() >= 4096 or proc.poll() is not None, "the pipe to fill up")
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
    assert proc.wait(timeout=60) == 0
    assert len(json.loads(data)["tasks"]) == 12


def test_an_output_that_cannot_be_written_is_said_on_stderr(project: Repo) -> None:
    """Review 11: 'wtp list --json >/dev/full' exited 0 and said nothing: the product of the
    command was lost without a word.  A reader that went away (a pipe to 'head') stays silent."""
    with open("/dev/full", "w") as full:
        res = subprocess.run(
            [sys.executable, "-m", "worktree_par", "list", "--json"],
            cwd=project.path,
            stdout=full,
            stderr=subprocess.PIPE,
        )
    assert (res.returncode, res.stderr.decode()) == (
        0,
        "wtp: could not write the output (No space left on device): the rest of it is dropped\n",
    )


@pytest.mark.parametrize("name", ["café.txt", "日本.txt"])
def test_the_hook_judges_non_ascii_paths_in_a_locale_that_cannot_encode_them(project: Repo, name: str) -> None:
    """Review 11: in a latin-1 or ASCII locale the paths wtp passed to git were encoded one way
    and git's answers read another: the edit of a file another task changed went through, or
    the hook failed with UnicodeEncodeError (and let it through)."""
    a = _start(project, "a")
    _start(project, "b", {name: "b\n"})
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip().lower() in ("ascii", "ansi_x3.4-1968")  # the test can fail: not UTF-8 here
    code, out = _hook(project, _write(f"{a}/{name}", a), env=env)
    assert code == 0 and json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "deny", out


def test_a_trusted_gate_taken_out_of_the_config_stops_lands_until_trusted_again(repo: Repo) -> None:
    """Review 11: an agent landed a .wtp.toml without [land] gate (the old gate passed it), then
    landed its next task untested through MCP; trust noticed added commands, never a removed
    gate."""
    repo.commit({".wtp.toml": '[land]\ngate = "true"\n'}, "the gate")
    assert repo.wtp("trust").code == 0
    p = _start(repo, "cfg")
    repo.commit({".wtp.toml": "max_active = 3\n"}, "no gate any more", cwd=p)
    assert repo.wtp("land", "cfg", "--no-push").code == 0  # gated by 'true', as trusted
    p = _start(repo, "t2", {"bad.txt": "x\n"})
    out = repo.wtp("land", "t2", "--no-push")
    assert (out.code, out.err.strip()) == (
        1,
        f"wtp: land.gate in {repo.path / '.wtp.toml'} no longer has the command you trusted (true), so nothing would "
        "test the land: review that change, then run 'wtp trust' (or pass --gate CMD)",
    )
    trusted = repo.wtp("trust")
    assert trusted.lines == [
        "no longer trusted land.gate: true (not in the config any more)",
        "the config has no commands to trust",
    ]
    assert repo.wtp("land", "t2", "--no-push").code == 0  # the user said so: untested, with its warning


def test_the_hook_says_an_empty_stdin_is_empty_and_reads_past_a_byte_order_mark(project: Repo) -> None:
    """Review 11: an empty stdin said 'Expecting value at line 1 column 1'; a BOM before the
    JSON made it 'not JSON'."""
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "pre-edit"], input=b"", capture_output=True, cwd=project.path
    )
    assert (res.returncode, res.stderr.decode()) == (
        1,
        "wtp hook pre-edit: stdin is empty (the hook reads Claude Code's PreToolUse JSON there); the edit goes ahead "
        "unchecked\n",
    )
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "pre-edit"],
        input=b'\xef\xbb\xbf{"tool_name": "Bash"}',
        capture_output=True,
        cwd=project.path,
    )
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")


@pytest.mark.parametrize("flags", [[], ["-E"], ["-X", "utf8=0"]])
def test_the_utf8_exec_happens_once_and_leaves_the_commands_locale_alone(repo: Repo, flags: list[str]) -> None:
    """Review 12: under -E (or -X utf8=0) the environment could not turn UTF-8 mode on, and wtp
    exec'd itself forever; and PYTHONUTF8=1 reached every gate and command it ran."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    res = subprocess.run(
        [
            sys.executable,
            *flags,
            "-m",
            "worktree_par",
            "gate",
            "g",
            "--",
            "sh",
            "-c",
            'echo "[$PYTHONUTF8][$WTP_UTF8_EXEC]"',
        ],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (res.returncode, res.stdout) == (0, "[0][]\n"), res.stderr


def test_a_callers_non_blocking_stdout_is_given_back_as_it_was(repo: Repo) -> None:
    """Review 12: wtp made the caller's non-blocking pipe blocking, and left it so (the flag
    belongs to the file description the caller shares)."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        subprocess.run([sys.executable, "-m", "worktree_par", "--version"], cwd=repo.path, stdout=w, check=True)
        assert not os.get_blocking(w)
    finally:
        os.close(r)
        os.close(w)


def test_doctor_follows_a_worktree_moved_with_git(repo: Repo, tmp_path: Path) -> None:
    """Review 12: a task's worktree moved with 'git worktree move' was 'gone', and the fix
    failed on git's "'wtp/t1' is already checked out at ..."."""
    p = _start(repo, "t1", {"t1.txt": "t1\n"})
    moved = tmp_path / "moved-t1"
    repo.git("worktree", "move", str(p), str(moved))
    found = [f["problem"] for f in json.loads(repo.wtp("doctor", "--json").out)["findings"]]
    assert found == [f"the worktree of task 't1' was moved to {moved} (not recorded yet)"]  # not "gone"
    out = repo.wtp("doctor", "--fix", "--json")
    fixed = [f["fixed"] for f in json.loads(out.out)["findings"]]
    assert fixed == [f"the worktree of 't1' was moved to {moved}: recorded there"], out.out
    assert Path(repo.wtp("path", "t1").out.strip()) == moved
    assert repo.wtp("doctor").out.strip() == "healthy: nothing to fix"


def test_doctor_never_takes_the_main_checkout_or_another_tasks_folder_for_a_moved_worktree(
    repo: Repo, tmp_path: Path
) -> None:
    """Review 13: the moved worktree was the first one git lists on the task's branch: the main
    checkout (the branch checked out there by hand), or a folder another task records; 'rm
    --force' of a task then went for the repository itself, or for the other task's worktree."""
    import shutil

    p1 = _start(repo, "t1", {"t1.txt": "t1\n"})
    shutil.rmtree(p1)
    repo.git("checkout", "-q", "--ignore-other-worktrees", "wtp/t1")
    out = repo.wtp("doctor", "--fix", "--json")
    fixed = [f["fixed"] for f in json.loads(out.out)["findings"] if "t1" in f["problem"]]
    assert fixed == [
        f"could not fix: branch 'wtp/t1' is checked out in {repo.path}, not a worktree of 't1': switch it first"
    ], out.out
    assert repo.wtp("path", "t1").out.strip() != str(repo.path)
    repo.git("checkout", "-q", "main")
    p2 = _start(repo, "t2", {"t2.txt": "t2\n"})
    repo.git("worktree", "prune")
    repo.git("worktree", "move", str(p2), str(tmp_path / "elsewhere-t2"))
    repo.git("worktree", "add", "-q", str(p2), "wtp/t1")  # t1's branch, in the folder t2 records
    repo.wtp("doctor", "--fix")
    assert Path(repo.wtp("path", "t1").out.strip()) != p2


def test_the_guard_never_removes_the_main_checkout(repo: Repo) -> None:
    """Review 13, in depth: whatever the registry says (here, a task recorded at the main
    checkout), removing a task's worktree never renames the repository aside."""
    _start(repo, "t1", {"t1.txt": "t1\n"})
    state = repo.path / ".git" / "wtp" / "state.json"
    data = json.loads(state.read_text())
    next(t for t in data["tasks"] if t["name"] == "t1")["path"] = str(repo.path)
    state.write_text(json.dumps(data))
    out = repo.wtp("rm", "t1", "--force")
    # Review 35: a record naming a folder of the main worktree is refused before anything reads it.
    assert out.code == 2 and f"task 't1' is recorded with its worktree at {repo.path}, in the main worktree" in out.err
    assert (repo.path / ".git").is_dir() and not [p for p in repo.path.parent.iterdir() if "wtp-trash" in p.name]


def test_an_interpreter_that_cannot_be_run_again_leaves_wtp_as_it_is(repo: Repo) -> None:
    """Review 13: where sys.executable cannot be run (an embedded interpreter), the exec into
    UTF-8 mode ended in a FileNotFoundError traceback."""
    code = "import sys; sys.executable = '/nonexistent/python3'; sys.argv = ['wtp', '--version']; "
    code += "from worktree_par.entry import main; main()"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    res = subprocess.run([sys.executable, "-c", code], cwd=repo.path, env=env, capture_output=True, text=True)
    from worktree_par import __version__

    assert (res.returncode, res.stdout, res.stderr) == (0, f"wtp {__version__}\n", "")
