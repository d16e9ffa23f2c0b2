"""What the ninth review (the repositories, environments and inputs users have) broke, each
kept as a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo, make_repo, wait_for


def _start(r: Repo, name: str, files: dict[str, str] | None = None) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    if files:
        r.commit(files, f"{name} work", cwd=p)
    return p


def _fork(r: Repo, name: str) -> object:
    return next(t for t in r.state()["tasks"] if t["name"] == name)["fork"]


def test_a_task_started_from_the_queue_records_its_fork(project: Repo) -> None:
    """A task a land started from the queue had no fork recorded: its land took the merge-base
    instead, so a commit force-pushed off the base came back with it, and a land of it with no
    commits of its own said 'landed' and removed it."""
    project.write(".wtp.toml", "max_active = 1\n")
    project.git("commit", "-q", "-am", "one at a time")
    project.git("push", "-q", "origin", "main")
    cfg = project.git("rev-parse", "HEAD")
    _start(project, "a", {"a.txt": "a\n"})
    assert project.wtp("start", "p").code == 4  # queued behind a
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 0
    wait_for(lambda: _fork(project, "p") is not None, "p, started in the slot a's land freed, to record its fork")
    p = Path(project.wtp("path", "p").out.strip())
    landed = project.git("rev-parse", "origin/main")
    # where its branch was made: the base as a began to land, or as it landed (a background start)
    assert _fork(project, "p") == project.git("rev-parse", "wtp/p") and _fork(project, "p") in (cfg, landed)
    out = project.wtp("land", "p", "--gate", "./check.sh")
    assert (out.code, out.err.strip()) == (1, f"wtp: task 'p' has no commits to land: commit your work in {p} first")
    project.commit({"p.txt": "p\n"}, "p work", cwd=p)
    project.git("push", "-q", "--force", "origin", f"{cfg}:refs/heads/main")  # a drops 'a' from the base
    assert project.wtp("land", "p", "--gate", "./check.sh").code == 0
    project.git("fetch", "-q", "origin")
    subjects = project.git("log", "--format=%s", "origin/main").splitlines()
    assert subjects == ["p work", "one at a time", "the test", "initial"]


def test_a_land_rebase_leaves_the_users_branches_and_fixups_alone(project: Repo, tmp_path: Path) -> None:
    """With rebase.updateRefs (and rebase.autoSquash) in the user's config, the land's rebase
    moved the user's own branch that pointed into the task's commits, and left it moved when
    the land failed; the commits are replayed as they were made."""
    project.git("config", "rebase.updateRefs", "true")
    project.git("config", "rebase.autoSquash", "true")
    p = _start(project, "a", {"one.txt": "1\n"})
    project.git("branch", "mybranch", "wtp/a")
    project.commit({"two.txt": "2\n", "BROKEN": "red\n"}, "fixup! a work", cwd=p)
    mine = project.git("rev-parse", "mybranch")
    other = make_repo(tmp_path / "o", name="other")
    other.git("fetch", "-q", str(project.remote), "main")
    other.git("reset", "-q", "--hard", "FETCH_HEAD")
    other.commit({"other.txt": "o\n"}, "other")
    other.git("push", "-q", str(project.remote), "HEAD:main")  # the base moved: the land really rebases
    out = project.wtp("land", "a", "--gate", "./check.sh")
    assert out.code == 1, out.err  # red: BROKEN
    assert project.git("rev-parse", "mybranch") == mine
    project.git("rm", "-q", "BROKEN", cwd=p)
    project.git("commit", "-q", "-m", "three", cwd=p)
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 0
    assert project.git("rev-parse", "mybranch") == mine
    project.git("fetch", "-q", "origin")
    subjects = project.git("log", "--format=%s", "-4", "origin/main").splitlines()
    assert subjects == ["three", "fixup! a work", "a work", "other"]


def _cli(r: Repo, *args: str, stdout: int | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", *args],
        cwd=r.path,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    out = res.stdout.decode("latin-1") if res.stdout is not None else ""
    return res.returncode, out, res.stderr.decode("utf-8", "replace")


def test_a_reader_gone_does_not_change_what_a_land_does_or_its_exit_code(project: Repo) -> None:
    """'wtp land a | true': the land was done, but the write to the closed pipe made it say
    'Broken pipe: free space or fix the permissions' and exit 2."""
    _start(project, "a", {"a.txt": "a\n"})
    r, w = os.pipe()
    os.close(r)  # the reader is gone before wtp writes anything
    try:
        code, _, err = _cli(project, "land", "a", "--gate", "./check.sh", stdout=w)
    finally:
        os.close(w)
    assert code == 0, err
    assert err.splitlines()[-1].startswith("gate: ./check.sh on the candidate of 'a'"), err  # and nothing after
    assert project.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"


def test_a_closed_stdout_or_a_locale_that_cannot_encode_the_output_is_no_internal_error(project: Repo) -> None:
    """'wtp list >&-' crashed on sys.stdout being None; in a latin-1 locale the list's own '└'
    (or a commit subject) raised UnicodeEncodeError: 'internal error' both times."""
    p = _start(project, "a")
    project.commit({"c.txt": "c\n"}, "naïve └ subject", cwd=p)
    res = subprocess.run(
        ["sh", "-c", f'exec "{sys.executable}" -m worktree_par list >&-'], cwd=project.path, capture_output=True
    )
    assert (res.returncode, res.stderr) == (0, b"")
    code, out, err = _cli(project, "list", env={"PYTHONIOENCODING": "latin-1"})
    assert (code, err) == (0, "")
    assert "naïve \\u2514 subject" in out  # latin-1 where it can, escaped where it cannot


@pytest.mark.parametrize(
    "args",
    [
        ["land", "t1", "--json"],
        ["check", "--json"],
        ["list", "--json"],
        ["queue", "--json"],
        ["doctor", "--json"],
        ["land", "t1", "--json", "--timeout", "-1"],
        ["check", "--json", "--fail-on", "bogus"],
    ],
)
def test_under_json_every_refusal_prints_one_json_document(project: Repo, args: list[str]) -> None:
    """Review 9: a bad config, an unknown task or a bad option printed nothing on stdout under
    --json (only 'start' and errors inside 'land' answered in JSON), against the README."""
    bad = "-1" not in args and "bogus" not in args
    if bad:
        project.write(".wtp.toml", 'max_active = "x"\n')
    out = project.wtp_proc(*args)
    doc = json.loads(out.out)  # one document, nothing else on stdout
    assert out.code == 2, out.err
    assert doc == {"task": None, "state": "refused", "error": doc["error"], "paths": [], "exit": 2}
    assert out.err.strip() == f"wtp: {doc['error']}"
    if bad:
        assert doc["error"].endswith(".wtp.toml: 'max_active' must be a whole number, not 'x'")


def test_under_json_an_unknown_task_prints_a_json_document(project: Repo) -> None:
    out = project.wtp_proc("land", "nosuch", "--json")
    assert (out.code, json.loads(out.out)["state"], out.err.count("\n")) == (2, "refused", 1), out.err
    ran = project.wtp_proc("run", "nosuch", "--", "echo", "--json")  # the command's --json is not wtp's
    assert (ran.code, ran.out) == (2, ""), ran.err


@pytest.mark.parametrize(
    ("root", "error"),
    [
        ("/", "'worktree_root' must name a folder for the task worktrees, not '/'"),
        ("../{nope}", "'worktree_root' = '../{nope}': the only placeholder is {repo}"),
    ],
)
def test_worktree_root_values_that_cannot_be_meant_are_refused(repo: Repo, root: str, error: str) -> None:
    """Review 9: '/' put worktrees at /<task>, an unknown placeholder became a folder named
    '{nope}'."""
    repo.write(".wtp.toml", f"worktree_root = {json.dumps(root)}\n")
    out = repo.wtp("start", "t")
    assert (out.code, out.err.strip()) == (2, f"wtp: {repo.path / '.wtp.toml'}: {error}")


def test_worktree_root_expands_the_home_folder(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    repo.write(".wtp.toml", 'worktree_root = "~/wt/{repo}"\n')
    out = repo.wtp("start", "t")
    assert out.code == 0, out.err
    assert Path(out.lines[-1]) == (tmp_path / "home" / "wt" / repo.path.name / "t").resolve()


def test_tasks_of_a_submodule_are_not_put_inside_its_superproject(tmp_path: Path) -> None:
    """Review 9: run in a submodule's checkout, the default worktree_root ('../<repo>.worktrees')
    is inside the superproject's worktree, whose 'git add -A' or 'git clean' would take them."""
    lib = make_repo(tmp_path / "l", fixture=None, name="lib")
    sup = make_repo(tmp_path / "s", fixture=None, name="super")
    sup.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "lib")
    sup.git("commit", "-qm", "the submodule")
    sub = Repo(sup.path / "lib")
    out = sub.wtp("start", "t1")
    assert (out.code, out.err.strip()) == (
        2,
        f"wtp: worktree_root '../{{repo}}.worktrees' is inside the superproject's worktree {sup.path.resolve()}, of "
        "which this repository is a submodule: its 'git add -A' or 'git clean' would take the task worktrees; set "
        "worktree_root outside it, like '../../{repo}.worktrees'",
    )
    assert sup.git("status", "--porcelain") == ""
    sub.write(".wtp.toml", 'worktree_root = "../../{repo}.worktrees"\n')
    assert Path(sub.wtp("start", "t1").lines[-1]) == (tmp_path / "s" / "lib.worktrees" / "t1").resolve()


def _on_a_terminal(r: Repo, env: dict[str, str]) -> str:
    """'wtp list' with its stdout on a pseudo-terminal: what it wrote there."""
    import pty

    master, slave = pty.openpty()
    try:
        res = subprocess.run(
            [sys.executable, "-m", "worktree_par", "list"],
            cwd=r.path,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "120", **env},
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed and read to the end
                break
            if not chunk:
                break
            out += chunk
        return out.decode()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_list_colours_only_where_colour_is_wanted(project: Repo) -> None:
    """Review 9: NO_COLOR and TERM=dumb were ignored by the list's colours."""
    project.wtp("start", "a")
    assert "\x1b[" in _on_a_terminal(project, {"TERM": "xterm"})  # the test can fail
    for env in ({"NO_COLOR": "1", "TERM": "xterm"}, {"TERM": "dumb"}):
        assert "\x1b[" not in _on_a_terminal(project, env), env


def test_config_that_is_not_utf8_or_has_a_bom_is_one_line(repo: Repo) -> None:
    """Review 9: a .wtp.toml in latin-1 was an internal error; one with a BOM said only
    'Invalid statement'."""
    cfg = repo.path / ".wtp.toml"
    cfg.write_bytes(b"max_active = 3 # \xe9\n")
    out = repo.wtp_proc("list")
    assert (out.code, out.err.strip()) == (
        2,
        f"wtp: {cfg}: not UTF-8 text (invalid continuation byte at byte 17): save it as UTF-8",
    )
    cfg.write_bytes(b"\xef\xbb\xbfmax_active = 3\n")
    out = repo.wtp_proc("list")
    assert out.code == 2 and out.err.strip().endswith(
        "(it starts with a byte-order mark: save it as UTF-8 without one): fix the file or move it aside"
    ), out.err


def test_doctor_stale_claims_must_be_a_number_of_days(repo: Repo) -> None:
    for bad in ("nan", "inf"):
        out = repo.wtp_proc("doctor", "--fix", "--stale-claims", bad)
        want = f"wtp: --stale-claims must be a number of days (0 or more), not {bad}"
        assert (out.code, out.err.strip()) == (2, want)


def test_a_callers_literal_pathspecs_do_not_reach_wtps_git(project: Repo) -> None:
    """Review 9: with GIT_LITERAL_PATHSPECS=1 exported, 'rm --force' of a task holding a nested
    repository failed on wtp's ':(exclude,literal)' pathspec."""
    p = _start(project, "a", {"a.txt": "a\n", ".gitignore": ".env\n"})
    (p / ".env").write_text("SECRET\n")  # ignored, not a build output: archived with the rest
    nested = Repo(p / "nested")
    subprocess.run(["git", "init", "-q", str(nested.path)], check=True)
    nested.commit({"n.txt": "n\n"}, "n")
    out = project.wtp_proc("rm", "a", "--force", env={"GIT_LITERAL_PATHSPECS": "1"})
    assert out.code == 0, out.err
    assert not p.exists()


def test_a_land_onto_a_base_checked_out_mid_merge_says_how_to_finish_the_merge(repo: Repo) -> None:
    """Review 9: with a merge stopped in the main checkout, the land said 'uncommitted changes
    to files the landing changed (fatal: You need to resolve your current index first)' and
    advised a stash that fails on an unmerged index."""
    repo.write(".wtp.toml", 'remote = ""\n')
    repo.commit({"m.txt": "a\n"}, "m")
    repo.git("switch", "-q", "-c", "other")
    repo.commit({"m.txt": "other\n"}, "other")
    repo.git("switch", "-q", "main")
    repo.commit({"m.txt": "mainside\n"}, "mainside")
    _start(repo, "t1", {"t.txt": "t\n"})
    repo.git("merge", "other", check=False)  # stops on the conflict in m.txt
    assert (repo.path / ".git" / "MERGE_HEAD").exists()
    out = repo.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    w = repo.path
    assert (
        f"'main' moved, but {w} has a merge in progress, so its files were not brought along: it was left detached "
        "at the previous commit so nothing looks reverted; finish the merge there (it commits on the detached HEAD), "
        f"then run 'git -C {w} switch main && git -C {w} merge HEAD@{{1}}'"
    ) in out.err + out.out
    repo.write("m.txt", "resolved\n")
    repo.git("commit", "-qam", "merge other")  # on the detached HEAD, as the line says
    subprocess.run(f"git -C {w} switch -q main && git -C {w} merge -q HEAD@{{1}}", shell=True, check=True)
    assert (w / "t.txt").read_text() == "t\n" and (w / "m.txt").read_text() == "resolved\n"
    assert repo.git("status", "--porcelain") == ""


def test_a_branch_prefix_git_would_read_as_an_option_is_refused(repo: Repo) -> None:
    """Review 9: branch_prefix = "-x/" ended in git's usage text through a crash log."""
    repo.write(".wtp.toml", 'branch_prefix = "-x/"\n')
    out = repo.wtp("start", "t1")
    assert (out.code, out.err.strip()) == (
        2,
        "wtp: task name 't1' gives the invalid branch name '-x/t1': choose another name or fix branch_prefix in "
        ".wtp.toml",
    )


def test_a_rebase_that_cannot_sign_says_so(repo: Repo) -> None:
    """Review 9: with commit.gpgsign and no usable key the land said only 'Could not apply ...',
    which reads like a conflict."""
    repo.write(".wtp.toml", 'remote = ""\n')
    repo.git("add", "-A")
    repo.git("commit", "-qm", "cfg")
    _start(repo, "t1", {"x.txt": "x\n"})
    repo.commit({"b.txt": "b\n"}, "the base moves: the land rebases")
    repo.git("config", "commit.gpgsign", "true")
    repo.git("config", "gpg.program", "false")
    out = repo.wtp("land", "t1", "--gate", "true")
    assert out.code == 1
    line = out.err.strip().splitlines()[-1]
    assert line.startswith("wtp: rebase of 't1' onto 'main' failed: error: gpg failed to sign the data;"), line


def test_run_from_inside_git_dir_says_where_the_working_tree_is(repo: Repo) -> None:
    """Review 9: from .git the line said 'clone it first'."""
    out = repo.wtp_proc("list", cwd=repo.path / ".git")
    top = repo.path.resolve()
    assert (out.code, out.err.strip()) == (
        2,
        f"wtp: {top / '.git'} is inside a .git directory: run wtp from the working tree ({top})",
    )


def test_doctor_names_a_state_dir_that_cannot_be_used(repo: Repo, tmp_path: Path) -> None:
    """Review 9: with the state dir a dangling link, doctor said 'healthy' while start refused;
    with state.json a directory, 'Is a directory: free space or fix the permissions'."""
    repo.wtp("start", "a")
    state = repo.path / ".git" / "wtp"
    state.rename(tmp_path / "moved")
    state.symlink_to(tmp_path / "gone")
    out = repo.wtp_proc("doctor")
    assert out.code == 1, out.err
    assert f"the state dir {state} is a link to {tmp_path / 'gone'}, which does not exist" in out.out
    state.unlink()
    (tmp_path / "moved").rename(state)
    (state / "state.json").rename(tmp_path / "state.json")
    (state / "state.json").mkdir()
    out = repo.wtp_proc("doctor")
    assert out.code == 1 and f"{state / 'state.json'} is a directory, not the registry: move it aside" in out.out


def test_a_repository_with_no_commit_says_so(tmp_path: Path) -> None:
    """Review 9: in a fresh 'git init' the line said "no 'main'" although HEAD is on an unborn main."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path / "r")], check=True)
    out = Repo(tmp_path / "r").wtp("start", "t1")
    assert (out.code, out.err.strip()) == (
        2,
        "wtp: this repository has no commit yet: commit something first (a task starts from a commit)",
    )
