"""Hostile input (issue 6): each case gets exit 2 (or 1 for a refusal), one line naming
what is wrong and what to do, no traceback, and nothing written before validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo, git, make_repo

BAD_NAMES = [
    ("a/b", "may not contain '/'"),
    ("../escape", "may not contain '/'"),
    ("-rf", "may not start with '-'"),
    (".hidden", "may not start with '.'"),
    ("a..b", "may not contain '..'"),
    ("x.lock", "may not end in '.lock'"),
    ("x.", "may not end in '.'"),
    ("x;rm -rf ~", "may only contain letters"),
    ("$(id)", "may only contain letters"),
    ("a\nb", "may only contain letters"),
    ("tab\there", "may only contain letters"),
    ("caf\u00e9", "may only contain letters"),
    ("x" * 65, "65 characters long"),
    ("", "it is empty"),
    ("feat/login", "may not contain '/'"),
]


def _nothing_written(r: Repo) -> None:
    assert not r.state_file.exists()
    assert r.branches() == ["main"]
    assert len(r.git("worktree", "list").splitlines()) == 1
    assert not (r.path.parent / "repo.worktrees").exists()


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_bad_task_names(repo: Repo, name: str, why: str) -> None:
    out = repo.wtp_proc("start", "--", name)
    assert out.code == 2
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why in out.err and "try something like" in out.err
    assert "\n" not in out.err.rstrip("\n") and "\t" not in out.err
    _nothing_written(repo)


def test_a_name_with_a_slash_is_refused_with_the_rule_and_a_name_that_works(repo: Repo) -> None:
    """Issue 29: 'feat/login' was refused with 'may only contain letters...' and 'try
    something like fix-login'; now the rule is named and the suggestion is 'feat-login'."""
    out = repo.wtp_proc("start", "feat/login")
    assert out.code == 2
    assert out.err == (
        "wtp: invalid task name 'feat/login': it may not contain '/' (a task is one branch and one worktree "
        "folder, not a path); try something like 'feat-login'\n"
    )


BAD_CONFIGS = [
    ("max_actve = 2\n", "unknown key 'max_actve'"),
    ("[land]\nstrategi = 'x'\n", "unknown key 'land.strategi'"),
    ("max_active = '2'\n", "'max_active' must be a whole number"),
    ("max_active = true\n", "'max_active' must be a whole number"),
    ("max_active = [\n", "not valid TOML"),
    ("max_active = 0\n", "'max_active' must be 1 or more"),
    ("max_active = -3\n", "'max_active' must be 1 or more"),
    ("[land]\ntimeout = -5\n", "'land.timeout' must be a positive number"),
    ("port_base = 65000\n", "'port_base' must be between 1024"),
    ("port_base = 80\n", "'port_base' must be between 1024"),
    ("[land]\nstrategy = 'yolo'\n", "'land.strategy' must be one of rebase, squash, merge"),
    ("[setup]\ncopy = ['../outside']\n", "must be a path inside the repository"),
    ("[setup]\ncopy = '/etc'\n", "'setup.copy' must be a list of strings"),
    ("setup = 3\n", "'setup' must be a table"),
    ("worktree_root = '.'\n", "is inside the worktree"),
    ("base = 'nope'\n", "base branch 'nope' does not exist"),
    ("branch_prefix = 'a..b/'\n", "invalid branch name"),
]


@pytest.mark.parametrize("text,why", BAD_CONFIGS)
def test_bad_configs(repo: Repo, text: str, why: str) -> None:
    repo.write(".wtp.toml", text)
    out = repo.wtp_proc("start", "a")
    assert out.code == 2, out.err
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why in out.err
    _nothing_written(repo)


BAD_STATES = [
    ('{"version": 1, "tasks": [', "is corrupt"),
    ("not json at all", "is corrupt"),
    ('{"version": 99, "tasks": []}', "written by a newer wtp (format 99"),
    ('["a list"]', "is corrupt"),
    ('{"version": 1, "tasks": [{"bogus": 1}]}', "is corrupt"),
]


@pytest.mark.parametrize("text,why", BAD_STATES)
def test_bad_state_files(repo: Repo, text: str, why: str) -> None:
    repo.state_file.parent.mkdir()
    repo.state_file.write_text(text)
    for cmd in (["list"], ["start", "a"]):
        out = repo.wtp_proc(*cmd)
        assert out.code == 2
        assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
        assert str(repo.state_file) in out.err and why in out.err
    assert repo.state_file.read_text() == text  # never overwritten
    assert repo.branches() == ["main"]


def test_a_corrupt_state_is_restored_from_the_kept_copy(repo: Repo) -> None:
    repo.wtp_proc("start", "a")
    repo.wtp_proc("start", "b")
    repo.state_file.write_text(repo.state_file.read_text()[:40])  # truncated
    out = repo.wtp_proc("list")
    assert out.code == 2 and "run 'wtp doctor --fix' to restore the previous good copy" in out.err
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 0, fixed.err
    assert "restored" in fixed.out
    # the kept copy predates the end of b's start; doctor completed it
    tasks = json.loads(repo.wtp_proc("list", "--json").out)["tasks"]
    assert [(t["name"], t["state"]) for t in tasks] == [("a", "active"), ("b", "active")]
    assert repo.wtp_proc("doctor").out == "healthy: nothing to fix\n"


def test_a_symlink_planted_as_state_file_is_not_followed(repo: Repo, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"version": 1, "tasks": []}')
    repo.state_file.parent.mkdir()
    repo.state_file.symlink_to(target)
    out = repo.wtp_proc("start", "a")
    assert out.code == 2 and "symlink" in out.err
    assert target.read_text() == '{"version": 1, "tasks": []}'


def test_outside_a_repository(tmp_path: Path) -> None:
    out = Repo(tmp_path).wtp_proc("list")
    assert (out.code, out.err) == (
        2,
        f"wtp: {tmp_path} is not inside a git repository: run wtp from a clone, or pass -C REPO\n",
    )


def test_in_a_bare_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "b.git")
    out = Repo(tmp_path / "b.git").wtp_proc("start", "a")
    assert out.code == 2 and "is a bare repository" in out.err
    assert not (tmp_path / "b.git" / "wtp").exists()


def test_in_a_repository_with_no_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main", "empty")
    r = Repo(tmp_path / "empty")
    out = r.wtp_proc("start", "a")
    assert out.code == 2 and "this repository has no commit yet: commit something first" in out.err
    assert not r.state_file.exists()


def test_on_a_detached_head(repo: Repo) -> None:
    repo.git("checkout", "-q", "--detach")
    out = repo.wtp_proc("start", "a")
    assert out.code == 0, out.err


def test_missing_directory_for_minus_c(tmp_path: Path) -> None:
    out = Repo(tmp_path).wtp_proc("-C", str(tmp_path / "nope"), "list")
    assert (
        out.code == 2 and out.err == f"wtp: directory {tmp_path / 'nope'} does not exist: pass an existing path to -C\n"
    )


@pytest.mark.parametrize(
    "args,why",
    [
        (["start"], "Missing argument 'TASK'"),
        (["start", "a", "--timeout", "5"], "--timeout goes with --wait"),
        (["start", "a", "--wait", "--timeout", "-1"], "--timeout"),
        (["bogus"], "No such command 'bogus'"),
        (["start", "a", "--touch", "../x"], "--touch '../x' is not a path"),
        (["start", "a", "--touch", "/etc/passwd"], "--touch '/etc/passwd' is not a path"),
        (["start", "a", "--use", ""], "--use '' is not a resource name"),
        (["run", "a"], "Missing argument"),
        (["gate", "bad name", "--", "true"], "invalid gate name"),
    ],
)
def test_bad_usage(repo: Repo, args: list[str], why: str) -> None:
    out = repo.wtp_proc(*args)
    assert out.code == 2, out.err
    assert len(out.err.splitlines()) == 1 and "Traceback" not in out.err
    assert why.lower() in out.err.lower()
    _nothing_written(repo)


def test_state_files_follow_the_umask(tmp_path: Path) -> None:
    r = make_repo(tmp_path)
    proc = subprocess.run(
        ["sh", "-c", 'umask 027 && exec "$0" -m worktree_par start a', __import__("sys").executable],
        cwd=r.path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert oct(r.state_file.stat().st_mode & 0o777) == oct(0o640)


# --- issue 14: repositories and machines as users and agents leave them ---------------


def test_12_a_bare_clone_with_linked_worktrees_reads_the_committed_config(tmp_path: Path) -> None:
    src = make_repo(tmp_path, name="src")
    src.commit({".wtp.toml": "max_active = 1\n[land]\ngate = 'exit 3'\n"}, "config")
    bare = tmp_path / "b.git"
    git(tmp_path, "clone", "-q", "--bare", str(src.path), str(bare))
    wt = tmp_path / "main-wt"
    git(bare, "worktree", "add", "-q", str(wt), "main")
    r = Repo(wt)
    assert r.wtp("trust").code == 0
    p = Path(r.wtp("start", "a").lines[-1])
    assert p.parent == tmp_path / "b.worktrees"
    queued = r.wtp("start", "b")
    assert queued.code == 4 and queued.err.startswith(
        "task 'b' is queued (place 1): waits because no slot is free: 1 of 1 taken"
    )
    r.commit({"a.txt": "a\n"}, cwd=p)
    out = r.wtp("land", "a")
    # the committed gate ran (it fails on the base too: a broken gate, the task stays landable)
    assert out.code == 1 and "gate 'exit 3' fails on 'main' itself" in out.err


def test_13_a_separate_git_dir_checkout_lands_and_follows(tmp_path: Path) -> None:
    top, gd = tmp_path / "checkout", tmp_path / "gitdir"
    git(tmp_path, "init", "-q", "-b", "main", f"--separate-git-dir={gd}", str(top))
    r = Repo(top)
    r.commit({"README.md": "hi\n"}, "initial")
    p = Path(r.wtp("start", "a").lines[-1])
    r.commit({"a.txt": "a\n"}, cwd=p)
    lister = r.wtp("list", "--json", cwd=p).json()  # from the linked worktree too
    assert lister["tasks"][0]["name"] == "a"
    out = r.wtp("land", "a")
    assert out.code == 0, out.err
    assert r.git("rev-parse", "--abbrev-ref", "HEAD") == "main"  # the real checkout followed
    assert (top / "a.txt").read_text() == "a\n" and r.git("status", "--porcelain") == ""


def test_21_a_process_deeper_than_path_max_still_keeps_its_worktree(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    deep = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, time\nfor _ in range(25):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)\nprint('ready', flush=True)\ntime.sleep(60)",
        ],
        cwd=p,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert deep.stdout is not None and deep.stdout.readline() == "ready\n"
        out = repo.wtp("rm", "a")
        assert out.code == 1 and f"1 process running inside (python3[{deep.pid}])" in out.err.replace(
            "python[", "python3["
        )
        assert p.is_dir()
    finally:
        deep.kill()
        deep.wait()


def _mount(*args: str) -> bool:
    return os.geteuid() == 0 and subprocess.run(["mount", *args], capture_output=True).returncode == 0


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a full or read-only filesystem")


@needs_root
def test_27_a_full_state_filesystem_is_one_clear_line(repo: Repo) -> None:
    repo.wtp("start", "a")
    state = repo.path / ".git" / "wtp"
    saved = {f.name: f.read_bytes() for f in state.iterdir() if f.is_file()}
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)):
        pytest.skip("mount failed")
    try:
        for name, data in saved.items():
            (state / name).write_bytes(data)
        with open(state / "filler", "wb") as f:
            try:
                f.write(b"x" * (1 << 20))
            except OSError:
                pass
        out = repo.wtp_proc("start", "b")
        assert out.code == 2 and out.out == "" and "Traceback" not in out.err
        assert len(out.err.splitlines()) == 1 and "No space left on device" in out.err
        assert json.loads((state / "state.json").read_text())["tasks"][0]["name"] == "a"  # unharmed
    finally:
        subprocess.run(["umount", str(state)], check=True)


@needs_root
def test_28_a_read_only_state_dir_is_one_clear_line_and_reads_still_work(repo: Repo) -> None:
    repo.wtp("start", "a")
    state = repo.path / ".git" / "wtp"
    if not _mount("--bind", str(state), str(state)):
        pytest.skip("mount failed")
    try:
        assert _mount("-o", "remount,ro,bind", str(state))
        out = repo.wtp_proc("start", "b")
        assert out.code == 2 and "Traceback" not in out.err and len(out.err.splitlines()) == 1
        assert "Read-only file system" in out.err
        listed = repo.wtp_proc("list", "--json")
        assert listed.code == 0 and json.loads(listed.out)["tasks"][0]["name"] == "a"
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_29_a_command_run_from_a_deleted_directory_is_one_clear_line(repo: Repo) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    script = f"cd {p} && {sys.executable} -m worktree_par land a >/dev/null && {sys.executable} -m worktree_par list"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == (
        "warning: landing 'a' untested: no gate (pass --gate CMD, or set [land] gate in .wtp.toml)\n"
        f"the worktree you are in was removed: cd {repo.path}\n"  # land said where to go
        "wtp: the current directory no longer exists (a worktree removed by 'wtp land' or 'wtp rm'?): "
        "cd to the repository, or pass -C REPO\n"
    )


BAD_STATE_SHAPES = [
    {"version": 1, "tasks": {"a": 1}},
    {"version": 1, "tasks": [{"name": 5, "state": "active", "branch": "wtp/a", "base": "main", "seq": 1}]},
    {"version": 1, "tasks": [{"name": "a", "state": "flying", "branch": "wtp/a", "base": "main", "seq": 1}]},
    {
        "version": 1,
        "tasks": [{"name": "a", "state": "active", "branch": "wtp/a", "base": "main", "seq": 1, "holder": [1]}],
    },
    {"version": 1, "seq": "x", "tasks": []},
]


@pytest.mark.parametrize("bad", BAD_STATE_SHAPES)
def test_30_a_state_file_of_the_wrong_shape_is_quarantined_and_rebuilt_from_git(repo: Repo, bad: dict) -> None:
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    repo.state_file.write_text(json.dumps(bad))
    (repo.path / ".git" / "wtp" / "state.json.bak").write_text(json.dumps(bad))
    for args in (["list"], ["start", "b"], ["land", "a"], ["doctor"]):
        out = repo.wtp_proc(*args)
        assert out.code in (1, 2) and "Traceback" not in out.err and "internal error" not in out.err, (args, out.err)
    out = repo.wtp_proc("doctor", "--fix")
    assert "Traceback" not in out.err and "rebuilt the registry from git: 1 task(s) (a)" in out.out
    assert list((repo.path / ".git" / "wtp").glob("state.json.corrupt-*"))  # set aside, not deleted
    listed = repo.wtp("list", "--json").json()["tasks"]
    assert [(t["name"], t["state"], t["path"]) for t in listed] == [("a", "active", str(p))]
    assert repo.wtp("land", "a").code == 0


def test_30_a_ticket_file_of_the_wrong_shape_does_not_wedge_its_gate(repo: Repo) -> None:
    from worktree_par.gates import Gate
    from worktree_par.state import Store

    g = Gate(Store(repo.path / ".git"), "deploy")
    g.file.write_text(json.dumps({"version": 1, "seq": 1, "tickets": [{"seq": "one", "holder": 3}]}))
    out = repo.wtp_proc("gate", "deploy", "--timeout", "5", "--", "true")
    assert out.code == 0 and "Traceback" not in out.err
    assert repo.wtp_proc("doctor").code == 0


COCHANGE_DAMAGE = {
    "nested past reason": lambda good: "[" * 100_000 + "]" * 100_000,
    "file names that are numbers": lambda good: json.dumps({**good, "files": list(range(len(good["files"])))}),
    "a tip that is a git option": lambda good: json.dumps({**good, "tip": "--output=planted"}),
    "a commit that is a string": lambda good: json.dumps({**good, "commits": ["0"]}),
    "hot globs that are a string": lambda good: json.dumps({**good, "hot": "CHANGELOG.md"}),
}


@pytest.mark.parametrize("damage", COCHANGE_DAMAGE)
def test_a_damaged_cochange_cache_is_set_aside_in_one_line_and_mined_again(tmp_path: Path, damage: str) -> None:
    r = make_repo(tmp_path, fixture=None)
    for i in range(4):  # a history where src/feed.py and config/routes.yml change together
        r.commit({"src/feed.py": f"v{i}\n", "config/routes.yml": f"v{i}\n", "src/other.py": "v0\n"}, f"feed {i}")
    assert r.wtp_proc("start", "a", "--touch", "src/feed.py").code == 0
    cache = r.path / ".git" / "wtp" / "cochange-refs_heads_main.json"
    good = json.loads(cache.read_text())
    cache.write_text(COCHANGE_DAMAGE[damage](good))
    out = r.wtp_proc("start", "b", "--touch", "src/other.py")
    assert out.code == 0 and "Traceback" not in out.err, out.err
    [line] = [x for x in out.err.splitlines() if "co-change cache" in x]
    assert line.startswith(f"wtp: the co-change cache {cache} is not one wtp wrote (set aside as {cache.name}.bad-")
    assert line.endswith("): it is mined again")
    assert json.loads(cache.read_text()) == good  # mined again, as it was
    assert not (r.path / "planted").exists()


def test_a_local_gate_ticket_file_nested_past_reason_is_set_aside(repo: Repo) -> None:
    assert repo.wtp_proc("gate", "build", "--", "true").code == 0
    [tickets] = (repo.path / ".git" / "wtp" / "gates").glob("*/tickets.json")
    tickets.write_text("[" * 100_000 + "]" * 100_000)
    out = repo.wtp_proc("gate", "build", "--", "true")
    assert (out.code, out.err) == (0, "")
    assert list(tickets.parent.glob("tickets.json.corrupt-*"))


def test_a_state_file_nested_past_reason_is_one_line_not_an_internal_error(repo: Repo) -> None:
    """Issue 24 C: json recursing on a deeply nested state.json raised RecursionError, which
    ended as an internal error with a traceback log; now it is the state's one-line report."""
    repo.wtp("start", "a")
    repo.state_file.write_text('{"version": 1, "tasks": ' + "[" * 100_000 + "]" * 100_000 + "}")
    out = repo.wtp("list")
    assert out.code == 2
    assert out.err.startswith(f"wtp: state file {repo.state_file} is corrupt (RecursionError")
    assert out.err.count("\n") == 1 and "internal error" not in out.err


def test_nan_and_inf_are_not_numbers_of_seconds(repo: Repo) -> None:
    """Found by review: '--timeout nan' passed validation and stopped every gate at once."""
    for args in (
        ("gate", "x", "--timeout", "nan", "--", "true"),
        ("start", "a", "--wait", "--timeout", "inf"),
        ("land", "a", "--timeout", "nan"),
    ):
        out = repo.wtp(*args)
        assert out.code == 2 and out.err.startswith("wtp: --timeout must be a number of seconds"), (args, out.err)
    out = repo.wtp("check", "--test", "--timeout", "nan")
    assert (out.code, out.err) == (2, "wtp: --timeout must be a positive number of seconds, not nan\n")
    repo.write(".wtp.toml", "[land]\ntimeout = nan\n")
    out = repo.wtp("list")
    assert (out.code, out.err) == (
        2,
        f"wtp: {repo.path / '.wtp.toml'}: 'land.timeout' must be a finite number, not nan\n",
    )


def _damaged(records: list[dict], damage: str) -> list[dict]:
    a, b = records
    if damage == "base-branch":
        return [a, {**b, "name": "x", "branch": "main"}]
    if damage == "two-records":
        return [a, {**b, "name": "a"}]
    if damage == "name-a-path":
        return [a, {**b, "name": "../../../etc", "branch": "wtp/../../../etc"}]
    if damage == "another-tasks-branch":
        return [a, {**b, "branch": a["branch"]}]
    if damage == "shared-worktree":
        return [a, {**b, "path": a["path"]}]
    assert damage == "relative-path"
    return [a, {**b, "path": "b"}]


@pytest.mark.parametrize(
    "damage",
    ["base-branch", "two-records", "name-a-path", "another-tasks-branch", "shared-worktree", "relative-path"],
)
def test_records_of_the_right_shape_that_no_wtp_writes_are_corruption(repo: Repo, damage: str) -> None:
    """Review 35: records were checked for their types only.  A record naming 'main' as its
    task's branch had a plain 'wtp rm' delete the base branch; two records of one name had
    'wtp rm a' remove b's worktree and branch; a name that is a path could not be removed."""
    pa, pb = (Path(repo.wtp("start", n).lines[-1]) for n in "ab")
    data = json.loads(repo.state_file.read_text())
    data["tasks"] = _damaged(data["tasks"], damage)
    repo.state_file.write_text(json.dumps(data))
    for args in (["rm", "a"], ["rm", "b"], ["rm", "x"], ["list"]):
        out = repo.wtp_proc(*args)
        assert out.code == 2, (args, out.err)
        assert out.err.startswith(f"wtp: state file {repo.state_file} is corrupt (ValueError: "), out.err
        assert len(out.err.splitlines()) == 1 and "try something like" not in out.err
    assert repo.branches() == ["main", "wtp/a", "wtp/b"] and pa.is_dir() and pb.is_dir()  # nothing touched
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 0 and "restored" in fixed.out, fixed.out + fixed.err
    assert [t["name"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["a", "b"]


def test_an_interrupted_land_whose_record_names_a_folder_of_the_main_worktree_is_settled(remote_repo: Repo) -> None:
    """Review 54: the recovery of a land mends the worktree's link first, and took a damaged
    record for a worktree to mend: every 'doctor --fix' refused, sending the user to itself.
    The land is rolled back, then the record set aside; the main worktree is untouched."""
    r = remote_repo
    p = Path(r.wtp_proc("start", "a").out.strip())
    tip = r.commit({"a.txt": "a\n"}, cwd=p)
    r.commit({"other.txt": "o\n"}, msg="base moved")
    r.git("push", "-q", "origin", "main")
    killed = r.wtp_proc("land", "a", "--gate", "true", env={"WTP_TEST_KILL_AT": "land:before-gate"})
    assert killed.code != 0
    (r.path / "sub").mkdir()
    data = json.loads(r.state_file.read_text())
    data["tasks"][0]["path"] = str(r.path / "sub")
    r.state_file.write_text(json.dumps(data))
    first = r.wtp_proc("doctor", "--fix")
    assert "rolled back the interrupted land of 'a'" in first.out, first.out + first.err
    second = r.wtp_proc("doctor", "--fix")
    assert "marked task 'a' abandoned" in second.out, second.out + second.err  # (its real folder: said, kept)
    assert r.git("rev-parse", "wtp/a") == tip and not (r.path / "sub" / ".git").exists()
    assert r.git("status", "--porcelain") == ""


def test_a_record_naming_a_folder_of_the_main_worktree_has_nothing_deleted_there(repo: Repo) -> None:
    """Review 35: a record whose worktree was '<main>/src' had a plain 'wtp rm' write 'src/.git'
    into the main checkout (mending it as a broken worktree), and 'rm --force' delete src/."""
    repo.commit({"src/a.py": "a\n"}, "src")
    repo.wtp("start", "a")
    repo.git("branch", "wtp/v")
    data = json.loads(repo.state_file.read_text())
    data["tasks"].append({**data["tasks"][0], "name": "v", "branch": "wtp/v", "path": str(repo.path / "src"), "seq": 9})
    repo.state_file.write_text(json.dumps(data))
    for args in (["rm", "v"], ["rm", "v", "--force"]):
        out = repo.wtp_proc(*args)
        assert (out.code, out.err) == (
            2,
            f"wtp: task 'v' is recorded with its worktree at {repo.path / 'src'}, in the main worktree: its record "
            "is damaged, and nothing was touched; 'wtp doctor --fix' sets the record aside (the folder and the "
            "branch stay)\n",
        )
    assert not (repo.path / "src" / ".git").exists() and (repo.path / "src" / "a.py").is_file()
    assert len(repo.git("worktree", "list").splitlines()) == 2
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 0, fixed.out + fixed.err
    assert "in the main worktree (a damaged record)" in fixed.out and "marked task 'v' abandoned" in fixed.out
    assert (repo.path / "src" / "a.py").is_file() and "wtp/v" in repo.branches()
    assert repo.wtp_proc("doctor").out == "healthy: nothing to fix\n"


@pytest.mark.parametrize(
    "args",
    [["check", "a" * 100_000], ["start", "x", "--use", "a" * 100_000], ["gate", "é" * 50_000, "--", "true"]],
    ids=["task-name", "resource", "gate"],
)
def test_a_huge_bad_value_is_not_echoed_whole(repo: Repo, args: list[str]) -> None:
    """Review 36: an invalid 100,000-character task name (or --use value) came back whole in
    its one-line error: 100 KB on stderr, and in an MCP tool's error."""
    out = repo.wtp_proc(*args)
    assert out.code == 2 and len(out.err.splitlines()) == 1, out.err[:300]
    assert len(out.err) < 600 and f"... ({len(max(args, key=len))} characters)" in out.err, out.err


@pytest.mark.parametrize("prefix", ["wtp/", ""], ids=["default-prefix", "empty-prefix"])
def test_a_registry_rebuilt_from_git_leaves_out_worktrees_no_task_could_have(repo: Repo, prefix: str) -> None:
    """Review 37: after a lost registry, doctor --fix registered every worktree in the
    worktree root on a prefixed branch, one on 'wtp/a@b' (or on the base itself, with an empty
    prefix) too: a registry the record checks call corrupt, so every command exited 2 and each
    doctor --fix rebuilt the same one.  Adopting the base's worktree did the same."""
    if not prefix:
        repo.write(".wtp.toml", 'branch_prefix = ""\n')
    repo.wtp("start", "t1")
    root = repo.path.parent / "repo.worktrees"
    odd = root / ("main" if not prefix else "a@b")
    if prefix:
        repo.git("worktree", "add", "-q", "-b", "wtp/a@b", str(odd))
    else:
        repo.git("worktree", "add", "-q", "--force", str(odd), "main")
    repo.state_file.write_text("garbage")
    (repo.state_file.parent / "state.json.bak").unlink()
    fixed = repo.wtp_proc("doctor", "--fix")
    assert fixed.code == 0, fixed.out + fixed.err
    assert "rebuilt the registry from git: 1 task(s) (t1)" in fixed.out
    assert f"worktrees on branches no task could have, left as they are: {odd}" in fixed.out
    assert [t["name"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["t1"]
    assert repo.wtp_proc("doctor", "--fix", "--adopt").out == "healthy: nothing to fix\n"
    assert odd.is_dir()


def test_a_fifo_planted_as_the_state_file_is_one_line_not_a_hang(repo: Repo) -> None:
    """Review 37: a FIFO at state.json (or at a task's copy record) made every command wait
    for a writer that never came."""
    repo.wtp("start", "a")
    repo.state_file.unlink()
    os.mkfifo(repo.state_file)
    out = repo.wtp_proc("list", timeout=20)
    assert (out.code, out.err) == (
        2,
        f"wtp: state file {repo.state_file} is not a regular file: run 'wtp doctor --fix' to set it aside\n",
    )
    fixed = repo.wtp_proc("doctor", "--fix", timeout=20)
    assert fixed.code == 0 and "restored" in fixed.out, fixed.out + fixed.err
    assert [t["name"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["a"]


def test_a_folder_at_the_state_file_and_a_task_named_head_are_one_line(repo: Repo) -> None:
    """Review 38: a folder where state.json goes said "Is a directory (3): free space or fix
    the permissions"; with an empty branch_prefix a task named HEAD failed in git (a crash
    log, exit 1) instead of being refused as a name."""
    repo.wtp("start", "a")
    repo.state_file.unlink()
    repo.state_file.mkdir()
    out = repo.wtp_proc("list")
    assert (out.code, out.err) == (2, f"wtp: {repo.state_file} is a directory, not the registry: move it aside\n")
    repo.state_file.rmdir()
    repo.write(".wtp.toml", 'branch_prefix = ""\n')
    for name in ("HEAD", "ORIG_HEAD", "FETCH_HEAD"):  # review 39: git's own names, shadowed by a branch
        out = repo.wtp_proc("start", name)
        assert out.code == 2 and f"gives the invalid branch name '{name}'" in out.err, out.err


def test_a_folder_where_wtp_keeps_a_record_is_named_with_what_to_do(repo: Repo) -> None:
    """Review 47: a folder at a gate's tickets.json or at the registry's kept copy made every
    command that writes them fail naming a temporary file that no longer exists, and advising
    to free space or fix the permissions."""
    import hashlib

    repo.wtp("start", "a")
    tickets = repo.path / ".git" / "wtp" / "gates" / hashlib.sha1(b"g").hexdigest()[:16] / "tickets.json"
    tickets.mkdir(parents=True)
    out = repo.wtp_proc("gate", "g", "--", "true", timeout=30)
    assert (out.code, out.err) == (
        2,
        f"wtp: Is a directory ({tickets}): a folder stands where wtp keeps a file: move it away, "
        "then run the command again\n",
    )
    backup = repo.path / ".git" / "wtp" / "state.json.bak"
    backup.unlink(missing_ok=True)
    backup.mkdir()
    out = repo.wtp_proc("start", "b")
    assert out.code == 2 and out.err.endswith(
        f"(Is a directory); nothing was changed: move the folder {backup} aside (wtp keeps a file there)\n"
    ), out.err
    (tickets / "kept.txt").write_text("someone's\n")
    out = repo.wtp_proc("doctor")  # names both, and moves them aside with --fix, never deleting
    assert out.code == 1 and all(f"a folder stands where wtp keeps a file: {d}" in out.out for d in (tickets, backup))
    out = repo.wtp_proc("doctor", "--fix")
    assert out.code == 0 and f"moved the folder {tickets} aside to tickets.json.folder-" in out.out, out.out
    assert [p.name for p in tickets.parent.glob("tickets.json.folder-*/kept.txt")] == ["kept.txt"]
    assert repo.wtp_proc("gate", "g", "--", "true").code == 0 and repo.wtp_proc("start", "b").code == 0


def test_a_fifo_planted_as_a_gates_tickets_or_the_check_cache_is_no_hang(repo: Repo) -> None:
    """Review 38: a FIFO at a gate's tickets.json hung 'wtp gate' and 'wtp doctor' (the repair
    tool), one at check-cache.json hung 'wtp check': each waited for a writer."""
    import hashlib

    repo.wtp("start", "a")
    gates = repo.path / ".git" / "wtp" / "gates" / hashlib.sha1(b"g").hexdigest()[:16]
    gates.mkdir(parents=True)
    os.mkfifo(gates / "tickets.json")
    os.mkfifo(repo.path / ".git" / "wtp" / "check-cache.json")
    for args in (["gate", "g", "--", "true"], ["doctor"], ["check"]):
        out = repo.wtp_proc(*args, timeout=30)
        assert out.code in (0, 1) and "Traceback" not in out.err, (args, out.err)
    # Review 39: the co-change index's cache too ('wtp cochange' hung)
    assert repo.wtp_proc("cochange", "README.md").code == 0
    (cache,) = (repo.path / ".git" / "wtp").glob("cochange-*.json")
    cache.unlink()
    os.mkfifo(cache)
    out = repo.wtp_proc("cochange", "README.md", timeout=30)
    assert out.code == 0, out.err


def test_a_fifo_planted_as_a_log_is_one_line_not_a_hang(repo: Repo) -> None:
    """Review 38: a FIFO at a log under .git/wtp/logs/ (a land's gate log, a setup log) made
    the command writing it wait for a reader that never came, holding the land queue."""
    logs = repo.path / ".git" / "wtp" / "logs"
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    logs.mkdir(parents=True, exist_ok=True)
    os.mkfifo(logs / "land-a.log")
    out = repo.wtp_proc("land", "a", "--gate", "true", timeout=30)
    assert (out.code, out.err) == (
        2,
        f"wtp: {logs / 'land-a.log'} is not a regular file, so not a log: move it away, then land again\n",
    )
    assert repo.wtp("list", "--json").json()["tasks"][0]["state"] == "active"  # given back, nothing published
    (logs / "land-a.log").unlink()
    assert repo.wtp_proc("land", "a", "--gate", "true").code == 0
    # A setup log: the start goes on, its setup said failed, and why (not "copy failed").
    repo.write(".wtp.toml", '[setup]\nrun = ["true"]\n')
    assert repo.wtp("trust").code == 0
    os.mkfifo(logs / "setup-b.log")
    out = repo.wtp_proc("start", "b", timeout=30)
    assert out.code == 0 and (
        f"setup of task 'b' failed: setup.run could not run: not a regular file, so not a log (log: {logs / 'setup-b.log'})"
        in out.err
    ), out.err


def test_a_fifo_at_one_tasks_gate_log_refuses_that_task_alone(repo: Repo) -> None:
    """Review 43: met by the conductor, one task's planted log ended the lands beside it
    (both 'wtp land' exited 2, the good task not landed).  Its own lander refuses it first."""
    logs = repo.path / ".git" / "wtp" / "logs"
    for name in ("c", "d"):
        p = Path(repo.wtp("start", name).lines[-1])
        repo.commit({f"{name}.txt": f"{name}\n"}, cwd=p)
    logs.mkdir(parents=True, exist_ok=True)
    os.mkfifo(logs / "land-d.log")
    out = repo.wtp_proc("land", "c", "d", "--gate", "true", timeout=60)
    assert out.code == 2, out.err
    assert (
        f"wtp: d: {logs / 'land-d.log'} is not a regular file, so not a log: move it away, then land again" in out.err
    )
    states = {t["name"]: t["state"] for t in repo.wtp("list", "--all", "--json").json()["tasks"]}
    assert states == {"c": "landed", "d": "active"}, out.err


def test_a_fifo_where_a_log_tail_or_a_stopped_operation_is_read_is_not_waited_on(repo: Repo, tmp_path: Path) -> None:
    """Review 43: the tail of a gate's log (shown by 'wtp check' for a background collision,
    and by a failed land) and a worktree's BISECT_START or MERGE_HEAD were read with a plain
    open: a FIFO there hung 'wtp check', 'wtp list', 'wtp doctor' and 'wtp rm'."""
    fifo = tmp_path / "x.log"
    os.mkfifo(fifo)
    code = f"from pathlib import Path; from worktree_par.logtail import last_lines; print(last_lines(Path({str(fifo)!r}), 5))"
    tail = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert tail.stdout == "[]\n", tail.stderr
    p = Path(repo.wtp("start", "a").lines[-1])
    gd = Path(git(p, "rev-parse", "--absolute-git-dir"))
    for name in ("BISECT_START", "MERGE_HEAD"):
        os.mkfifo(gd / name)
        for args in (["list"], ["doctor"]):
            out = repo.wtp_proc(*args, timeout=30)
            assert "Traceback" not in out.err, (name, args, out.err)
        (gd / name).unlink()


def test_a_fifo_at_a_land_queue_record_is_read_as_none_not_waited_on(repo: Repo) -> None:
    """Review 44: a FIFO at the land queue's window, verdicts, status or flaky ledger made
    'wtp land' wait for ever holding the queue, and 'wtp queue' hang; doctor said healthy."""
    state = repo.path / ".git" / "wtp"
    p = Path(repo.wtp("start", "a").lines[-1])
    repo.commit({"a.txt": "a\n"}, cwd=p)
    state.mkdir(parents=True, exist_ok=True)
    for name in ("land-window.json", "verdicts.json", "queue-status.json", "flaky.json"):
        (state / name).unlink(missing_ok=True)
        os.mkfifo(state / name)
    for args in (["queue"], ["queue", "--flaky"], ["land", "a", "--gate", "true"]):
        out = repo.wtp_proc(*args, timeout=30)
        assert out.code == 0 and "Traceback" not in out.err, (args, out.err)
    assert repo.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"


def test_a_fifo_at_the_background_checks_log_is_said_and_list_goes_on(repo: Repo) -> None:
    """Review 43: with [check] test = "auto", 'wtp list' and 'wtp check' start the background
    check; a FIFO at its log made both exit 2 (its OSError not caught), unusable."""
    repo.commit({".wtp.toml": '[land]\ngate = "true"\n[check]\ntest = "auto"\n'}, "background check")
    assert repo.wtp("trust").code == 0
    logs = repo.path / ".git" / "wtp" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.mkfifo(logs / "check-test-background.log")
    for name in ("a", "b"):
        p = Path(repo.wtp("start", name).lines[-1])
        repo.commit({f"{name}.txt": f"{name}\n"}, cwd=p)
    for args in (["list"], ["check"]):
        out = repo.wtp_proc(*args, timeout=30)
        assert out.code == 0, (args, out.err)
        said = "the background check could not start: not a regular file, so not a log"
        assert said in out.out + out.err, (args, out.out, out.err)


def test_a_fifo_at_an_agents_record_or_a_remote_record_is_no_hang(remote_repo: Repo) -> None:
    """Review 45: a FIFO at a task's record of its agent's edits (.git/wtp/touched/<task>-<seq>)
    hung check, start and land, a land's child holding the state lock; one at clone-id or
    remote-seen.json hung 'wtp list --remote' and 'wtp gate --remote' past its --timeout."""
    from .test_agents import edit, hook

    r = remote_repo
    r.write(".wtp.toml", "share = true\n")
    p = Path(r.wtp("start", "a").lines[-1])
    seq = r.state()["tasks"][0]["seq"]
    touched = r.path / ".git" / "wtp" / "touched"
    touched.mkdir(parents=True, exist_ok=True)
    os.mkfifo(touched / f"a-{seq}")
    for args in (["check", "--all"], ["start", "c"], ["list", "--remote"]):
        out = r.wtp_proc(*args, timeout=30)
        assert out.code in (0, 1) and "Traceback" not in out.err, (args, out.err)
    code, _, err = hook(r, edit(p / "README.md"))  # the hook writes that record: refused, at once
    assert "Traceback" not in err, err
    for name in ("clone-id", "remote-seen.json"):
        (r.path / ".git" / "wtp" / name).unlink(missing_ok=True)
        os.mkfifo(r.path / ".git" / "wtp" / name)
    for args in (["list", "--remote"], ["gate", "g", "--remote", "--timeout", "5", "--", "true"]):
        out = r.wtp_proc(*args, timeout=30)
        assert out.code == 0 and "Traceback" not in out.err, (args, out.err)
