"""Disposable build outputs (issue 29): ignored files a build makes again go with a task's
worktree on land and rm, without --force and without an archive; any other ignored file
(.env, local settings, data) and any untracked file that is not ignored stays the guard's
to keep.  Real git, real files, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from worktree_par import config, disposable
from worktree_par.errors import ConfigError

from .conftest import Repo, wait_for

# What the project ignores: build outputs of several ecosystems, and a secret.
GITIGNORE = "node_modules/\n.env\ndist/\ntarget/\n*.egg-info/\n.venv/\nout/\n"


@pytest.fixture
def built(repo: Repo) -> Repo:
    repo.commit({".gitignore": GITIGNORE}, "ignore build outputs")
    return repo


def _start(r: Repo, name: str) -> Path:
    out = r.wtp("start", name)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _build(p: Path) -> None:
    """What a Python and a Rust build leave behind."""
    (p / "dist").mkdir()
    (p / "dist" / "app-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 wheel")
    (p / "target" / "debug").mkdir(parents=True)
    (p / "target" / "debug" / "app").write_bytes(b"\x7fELF binary")


def test_a_landed_task_holding_only_build_outputs_is_removed(built: Repo) -> None:
    p = _start(built, "a")
    built.commit({"src/a.js": "a\n"}, "a: work", cwd=p)
    _build(p)
    out = built.wtp("land", "a", "--gate", "true")
    assert out.code == 0, out.err
    assert out.lines[1:] == ["removed task 'a' (worktree and branch 'wtp/a')"]
    assert not p.exists() and "wtp/a" not in built.branches()
    assert built.git("for-each-ref", "refs/wtp/") == ""  # nothing archived: a build makes them again
    assert built.git("show", "main:src/a.js") == "a"


def test_a_landed_task_with_a_dotenv_is_kept_and_the_message_says_why(built: Repo) -> None:
    p = _start(built, "a")
    built.commit({"src/a.js": "a\n"}, "a: work", cwd=p)
    _build(p)
    built.write(".env", "SECRET=1\n", cwd=p)
    out = built.wtp("land", "a", "--gate", "true")
    assert out.code == 0, out.err
    assert out.lines[1:] == [
        f"kept the worktree {p}: it has 1 ignored file that is not a build output (.env), kept nowhere else; "
        "save what you need from it and run 'wtp rm a', "
        "or run 'wtp rm a --force' to archive it under refs/wtp/archive/a and remove the worktree"
    ]
    assert (p / ".env").read_text() == "SECRET=1\n" and (p / "dist").is_dir()


def test_rm_of_a_task_holding_only_build_outputs_needs_no_force(built: Repo) -> None:
    p = _start(built, "a")
    _build(p)
    (p / "pkg.egg-info").mkdir()
    (p / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n")
    out = built.wtp("rm", "a")
    assert out.code == 0, out.err
    assert out.lines == [
        "removed task 'a' (worktree and branch 'wtp/a')",
        "deleted 3 build output(s), made again by a build: dist/, pkg.egg-info/, target/",
    ]
    assert not p.exists() and "wtp/a" not in built.branches()
    assert built.git("for-each-ref", "refs/wtp/") == ""


def test_rm_of_a_task_with_a_dotenv_beside_its_build_outputs_still_needs_force(built: Repo) -> None:
    p = _start(built, "a")
    _build(p)
    built.write(".env", "SECRET=1\n", cwd=p)
    out = built.wtp("rm", "a")
    assert (out.code, out.err) == (
        1,
        "wtp: task 'a' has 1 ignored file that is not a build output (.env): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n",
    )
    assert (p / "dist").is_dir() and (p / ".env").is_file()
    out = built.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert built.git("show", "refs/wtp/archive/a:.env") == "SECRET=1"
    listed = built.git("ls-tree", "-r", "--name-only", "refs/wtp/archive/a").split()
    assert not [f for f in listed if f.startswith(("dist/", "target/"))]  # outputs are not archived


def test_a_dist_folder_that_is_not_ignored_is_still_protected(repo: Repo) -> None:
    repo.commit({".gitignore": "target/\n"}, "ignore only target/")  # dist/ is untracked, not ignored
    p = _start(repo, "a")
    repo.commit({"src/a.js": "a\n"}, "a: work", cwd=p)
    _build(p)  # target/ is ignored: a build output; dist/ is not: the user's
    out = repo.wtp("land", "a", "--gate", "true")  # land takes no untracked file along, nor loses one
    assert (out.code, out.err) == (
        1,
        "wtp: task 'a' has 1 uncommitted file (dist/app-1.0-py3-none-any.whl): "
        "commit or stash them, then run 'wtp land a' again\n",
    )
    assert (p / "dist" / "app-1.0-py3-none-any.whl").exists()
    out = repo.wtp("rm", "a")
    assert (out.code, out.err) == (
        1,
        "wtp: task 'a' has 1 commit not on 'main' or any other branch (branch 'wtp/a'); 1 uncommitted file (dist/): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n",
    )
    assert (p / "dist").is_dir()


def test_rm_disposable_in_the_config_adds_the_project_outputs(built: Repo) -> None:
    built.commit({".wtp.toml": '[rm]\ndisposable = ["out/"]\n'}, "out/ is a build output here")
    p = _start(built, "a")
    (p / "out" / "classes").mkdir(parents=True)
    (p / "out" / "classes" / "App.class").write_bytes(b"\xca\xfe\xba\xbe")
    out = built.wtp("rm", "a")
    assert out.code == 0, out.err
    assert out.lines[-1] == "deleted 1 build output(s), made again by a build: out/"
    assert not p.exists()


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("*", "matches every ignored file (a .env too): name the outputs, like 'out/'"),
        ("**/", "matches every ignored file (a .env too): name the outputs, like 'out/'"),
        ("../x", "must be a path or glob inside the repository, like 'out/' or 'generated/**'"),
        ("!dist/", "must be a path or glob inside the repository, like 'out/' or 'generated/**'"),
    ],
)
def test_rm_disposable_refuses_globs_that_would_take_user_files(tmp_path: Path, entry: str, why: str) -> None:
    (tmp_path / ".wtp.toml").write_text(f"[rm]\ndisposable = [{entry!r}]\n".replace("'", '"'))
    with pytest.raises(ConfigError) as e:
        config.load(tmp_path)
    assert str(e.value) == f"{tmp_path / '.wtp.toml'}: 'rm.disposable' entry {entry!r} {why}"


def test_the_default_config_holds_rm_disposable_and_loads(tmp_path: Path) -> None:
    text = config.render_default("main", "origin", 3)
    assert "[rm]\n" in text and "\ndisposable = []\n" in text
    (tmp_path / ".wtp.toml").write_text(text)
    assert config.load(tmp_path).rm_disposable == ()


@pytest.mark.parametrize(
    ("path", "disposable_"),
    [
        ("dist/", True),
        ("packages/web/dist/", True),  # a monorepo's package
        ("packages/web/node_modules/", True),
        ("crates/core/target/", True),
        ("src/pkg.egg-info/", True),
        (".coverage", True),
        (".coverage.host.123.456", True),
        ("docs/_build/", True),
        ("cmake-build-debug/", True),
        ("build/lib/x.o", True),  # a file inside an output folder
        ("src/__pycache__/m.cpython-312.pyc", True),
        (".env", False),
        ("config/local.toml", False),
        ("data/", False),
        ("bin/", False),  # Go's bin/ may hold a person's scripts: the project opts in
        ("out/", False),
        ("dist", False),  # a file named like a folder output is not one
        ("distribution/", False),
    ],
)
def test_which_ignored_paths_are_build_outputs(path: str, disposable_: bool) -> None:
    assert disposable.matches(path, disposable.DISPOSABLE) is disposable_


def test_project_globs_follow_gitignore_anchoring() -> None:
    assert disposable.matches("generated/api.py", ("generated/**",))
    assert not disposable.matches("src/generated/api.py", ("generated/**",))  # a '/' anchors it at the root
    assert disposable.matches("src/generated/", ("generated/",))  # a bare name matches at any depth
    assert not disposable.matches("generated", ("generated/",))  # '/' at the end: folders only


def test_a_repository_cloned_into_a_build_output_is_still_kept(built: Repo) -> None:
    p = _start(built, "a")
    dep = p / ".venv" / "src" / "dep"  # where 'pip install -e git+...' clones, and people edit
    dep.mkdir(parents=True)
    built.git("init", "-q", "-b", "main", cwd=dep)
    built.commit({"dep.py": "edited\n"}, "local fix", cwd=dep)
    (p / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    out = built.wtp("rm", "a")
    assert (out.code, out.err) == (
        1,
        "wtp: task 'a' has the nested repository '.venv/src/dep' (1 ref, 0 uncommitted files): "
        "land it, or run 'wtp rm a --force' to archive and remove it\n",
    )
    assert (dep / "dep.py").exists()


def test_a_tracked_folder_named_like_an_output_makes_nothing_in_it_disposable(repo: Repo) -> None:
    """Review 35: a monorepo's tracked app folder called 'site/' (or 'build/', 'target/') made
    the ignored '.env' in it a "build output", deleted by a plain 'wtp rm'.  Only a folder the
    project ignores counts: a 'build/' in .gitignore holding a tracked file still does."""
    repo.commit({".gitignore": ".env\nbuild/\n", "apps/site/index.js": "1\n", "apps/web/index.js": "2\n"}, "a monorepo")
    (repo.path / "build").mkdir()
    (repo.path / "build" / "keep.txt").write_text("tracked in an ignored folder\n")
    repo.git("add", "-f", "build/keep.txt")
    repo.git("commit", "-q", "-m", "a tracked file in build/")
    p = _start(repo, "u")
    (p / "apps" / "site" / ".env").write_text("STRIPE_KEY=only-here\n")
    (p / "build" / "app.o").write_bytes(b"\x7fELF")
    out = repo.wtp("rm", "u")
    assert (out.code, out.err) == (
        1,
        "wtp: task 'u' has 1 ignored file that is not a build output (apps/site/.env): "
        "land it, or run 'wtp rm u --force' to archive and remove it\n",
    )
    assert (p / "apps" / "site" / ".env").is_file()
    (p / "apps" / "site" / ".env").unlink()
    out = repo.wtp("rm", "u")
    assert out.code == 0, out.err
    assert "deleted 1 build output(s), made again by a build: build/app.o" in out.lines


def test_what_is_made_in_a_copied_path_is_the_users(repo: Repo) -> None:
    """Review 35: the guard skipped everything under a setup.copy path, so a plain 'wtp rm'
    deleted a file made in a copied 'data/', a copied '.env' edited for the task, and a
    repository cloned into 'data/', none of them anywhere else.  What the copy put there,
    unchanged, still goes without asking."""
    repo.commit({".gitignore": ".env\ndata/\n", ".wtp.toml": '[setup]\ncopy = ["data", ".env"]\n'}, "copy data")
    (repo.path / "data").mkdir()
    (repo.path / "data" / "seed.csv").write_text("seed\n")
    (repo.path / ".env").write_text("KEY=main\n")
    p = _start(repo, "a")
    assert (p / "data" / "seed.csv").read_text() == "seed\n"
    (repo.path / ".env").write_text(
        "KEY=main, edited later\n"
    )  # the main worktree moves on: the copy is still as copied
    out = repo.wtp("rm", "a")
    assert out.code == 0, out.err  # only what the copy put there
    p = _start(repo, "b")
    (p / "data" / "results.csv").write_text("made only here\n")
    (p / ".env").write_text("KEY=secret-only-in-this-worktree\n")
    repo.git("init", "-q", str(p / "data" / "mylib"))
    repo.commit({"v.txt": "v\n"}, "my unpushed work", cwd=p / "data" / "mylib")
    out = repo.wtp("rm", "b")
    assert out.code == 1
    assert "2 ignored files that are not build outputs (.env, data/results.csv)" in out.err, out.err
    assert "the nested repository 'data/mylib'" in out.err, out.err
    out = repo.wtp("rm", "b", "--force")
    assert out.code == 0, out.err
    assert repo.git("show", "refs/wtp/archive/b:data/results.csv") == "made only here"
    assert repo.git("show", "refs/wtp/archive/b:.env") == "KEY=secret-only-in-this-worktree"
    assert not [
        f for f in repo.git("ls-tree", "-r", "--name-only", "refs/wtp/archive/b").split() if f.endswith("seed.csv")
    ]


def test_a_copied_path_is_judged_as_git_names_it_and_its_repositories_are_looked_at(repo: Repo) -> None:
    """Review 37: a file made in a copied 'data/' under a folder named like an output
    ('data/dist/') was deleted as a build output, where the same file in an ignored folder
    not copied is kept; a clone with an unpushed commit in a copied '.venv' was never looked
    at.  A repository the copy brought, as the main worktree has it, is not the task's.  (What
    setup.run writes into a copied file is not told from what anyone else writes there while
    it runs (review 39): it counts as the user's, and the test's setup writes elsewhere.)"""
    repo.commit(
        {
            ".gitignore": ".env\ndata/\n.venv/\n",
            ".wtp.toml": '[setup]\ncopy = ["data", ".env", ".venv"]\nrun = ["echo PORT=$PORT > port.txt"]\n',
        },
        "copy",
    )
    (repo.path / "data").mkdir()
    (repo.path / "data" / "seed.csv").write_text("seed\n")
    (repo.path / ".env").write_text("KEY=main\n")
    repo.git("init", "-q", str(repo.path / ".venv" / "src" / "dep"))
    repo.commit({"dep.py": "d\n"}, "the dependency", cwd=repo.path / ".venv" / "src" / "dep")
    assert repo.wtp("trust").code == 0
    p = _start(repo, "a")
    (p / "port.txt").unlink()  # setup.run's own output, not a copied path: the user's like any file
    out = repo.wtp("rm", "a")  # the copy and the copied clone: nothing of the task's
    assert out.code == 0, out.err
    p = _start(repo, "b")
    (p / "data" / "dist").mkdir()
    (p / "data" / "dist" / "results.csv").write_text("made here\n")
    repo.commit({"mine.py": "m\n"}, "unpushed work", cwd=p / ".venv" / "src" / "dep")
    out = repo.wtp("rm", "b")
    assert out.code == 1, out.err
    assert "1 ignored file that is not a build output (data/dist/results.csv)" in out.err, out.err
    assert "the nested repository '.venv/src/dep'" in out.err, out.err
    out = repo.wtp("rm", "b", "--force")
    assert out.code == 0, out.err
    assert repo.git("show", "refs/wtp/archive/b:data/dist/results.csv") == "made here"


def _held_setup(repo: Repo, tmp: Path, ignore: str, copy: str, first: str = "") -> tuple[Path, Path]:
    """setup.copy of ``copy`` (a TOML array) and a setup.run that, the first time, waits for a
    'go' file after touching 'ready'; .env is 'KEY=main' in the main worktree.  (go, ready)."""
    go, ready = tmp / "go", tmp / "ready"
    setup = f"{first}{{ test -e {go} || {{ touch {ready}; while [ ! -e {go} ]; do sleep 0.05; done; }}; }}"
    repo.commit({".gitignore": ignore, ".wtp.toml": f"[setup]\ncopy = {copy}\nrun = [{json.dumps(setup)}]\n"}, "copy")
    (repo.path / ".env").write_text("KEY=main\n")
    return go, ready


def test_an_edit_inside_a_copied_repository_or_after_a_killed_setup_is_the_users(repo: Repo, tmp_path: Path) -> None:
    """Review 38: a repository setup.copy brought counted as the main worktree's even with a
    file its own .gitignore hides edited in the task (a plain rm deleted the edit); and a
    start killed while setup.run ran had its copy recorded later, by the resumed start, with
    the user's edits made meanwhile taken for the copy's."""
    go, ready = _held_setup(repo, tmp_path, ".env\nvendor/\n", '["vendor", ".env"]')
    lib = repo.path / "vendor" / "lib"
    repo.git("init", "-q", str(lib))
    repo.commit({".gitignore": "local.cfg\n", "lib.py": "l\n"}, "lib", cwd=lib)
    (lib / "local.cfg").write_text("token=main\n")
    assert repo.wtp("trust").code == 0
    start = repo.spawn("start", "a", new_session=True)
    wait_for(ready.exists, "setup.run to run")
    os.killpg(start.pid, signal.SIGKILL)
    start.communicate()
    p = repo.path.parent / "repo.worktrees" / "a"
    (p / ".env").write_text("KEY=edited after the kill\n")
    go.touch()
    assert repo.wtp_proc("doctor", "--fix").code == 0
    (p / "vendor" / "lib" / "local.cfg").write_text("token=edited here\n")
    out = repo.wtp_proc("rm", "a")
    assert out.code == 1, out.err
    assert "1 ignored file that is not a build output (.env)" in out.err, out.err
    assert "the nested repository 'vendor/lib'" in out.err, out.err
    assert (p / ".env").read_text() == "KEY=edited after the kill\n"


def test_a_copy_entry_spelled_with_dot_slash_is_the_same_path(repo: Repo) -> None:
    """Review 38: setup.copy = ["./data"] copied, but the guard never matched 'data/' to it,
    so every untouched task's plain rm was refused."""
    repo.commit({".gitignore": "data/\n", ".wtp.toml": '[setup]\ncopy = ["./data"]\n'}, "copy ./data")
    (repo.path / "data").mkdir()
    (repo.path / "data" / "seed.csv").write_text("seed\n")
    p = _start(repo, "a")
    assert (p / "data" / "seed.csv").is_file()
    out = repo.wtp("rm", "a")
    assert out.code == 0, out.err


def test_a_copy_is_recorded_once_by_the_start_that_made_it(repo: Repo, tmp_path: Path) -> None:
    """Review 39: the record was written again after setup.run and by a start that retried a
    failed setup, so an edit made while setup.run ran (by the user, or an agent already in the
    worktree), or before the retry, was taken for the copy's, and a plain rm deleted it."""
    go, ready = _held_setup(repo, tmp_path, ".env\ndata/\n", '[".env", "data"]', first="test -d data && ")
    assert repo.wtp("trust").code == 0
    out = repo.wtp_proc("start", "a")  # 'data' is not in the main worktree yet: setup fails
    assert "setup of task 'a' failed" in out.err, out.err
    p = repo.path.parent / "repo.worktrees" / "a"
    (p / ".env").write_text("KEY=edited before the retry\n")
    (repo.path / "data").mkdir()
    (repo.path / "data" / "seed.csv").write_text("seed\n")
    retry = repo.spawn("start", "a")
    wait_for(ready.exists, "the retried setup.run to run")
    (p / "data" / "seed.csv").write_text("edited while setup.run ran\n")
    go.touch()
    _, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, err
    assert "setup: '.env' is in the worktree already (an earlier start of 'a'): not copied again; if that copy " in err
    out = repo.wtp_proc("rm", "a")
    assert out.code == 1, out.err
    assert "2 ignored files that are not build outputs (.env, data/seed.csv)" in out.err, out.err


def test_a_cache_in_a_copied_repository_is_not_the_users(repo: Repo) -> None:
    """Review 39: a test run in the task wrote __pycache__ into a repository a copied .venv
    brought, and every plain rm was refused for it."""
    repo.commit({".gitignore": ".venv/\n", ".wtp.toml": '[setup]\ncopy = [".venv"]\n'}, "copy .venv")
    lib = repo.path / ".venv" / "src" / "lib"
    repo.git("init", "-q", str(lib))
    repo.commit({".gitignore": "__pycache__/\n", "lib.py": "l\n"}, "lib", cwd=lib)
    p = _start(repo, "a")
    (p / ".venv" / "src" / "lib" / "__pycache__").mkdir()
    (p / ".venv" / "src" / "lib" / "__pycache__" / "lib.cpython-311.pyc").write_bytes(b"\x00pyc")
    out = repo.wtp("rm", "a")
    assert out.code == 0, out.err


def test_an_edit_made_while_the_start_copies_is_the_users(repo: Repo, tmp_path: Path) -> None:
    """Review 40: the record was read from the worktree after every entry was copied, so a file
    edited there meanwhile (the copy of a big folder takes seconds) was taken for the copy's,
    and a plain rm deleted it.  It is read from the main worktree's files now, as 'cp -a'
    gives their kind, size and time to the copies."""
    repo.commit({".gitignore": ".env\ndata/\n", ".wtp.toml": '[setup]\ncopy = ["data/sub", ".env", "data"]\n'}, "copy")
    (repo.path / ".env").write_text("KEY=main\n")
    (repo.path / "data" / "sub").mkdir(parents=True)
    (repo.path / "data" / "sub" / "s.txt").write_text("s\n")
    (repo.path / "data" / "other.txt").write_text("o\n")
    hold = tmp_path / "hold"
    start = repo.spawn("start", "a", env={"WTP_TEST_HOLD_AT": "start:copied", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(lambda: hold.with_suffix(".reached").exists(), "the copy to be made")
    p = repo.path.parent / "repo.worktrees" / "a"
    (p / ".env").write_text("KEY=edited while the start ran\n")
    hold.write_text("")
    _, err = start.communicate(timeout=60)
    assert start.returncode == 0, err
    # 'data/sub' listed before 'data': copying it made 'data', which is then said, not blamed on an earlier start
    assert "setup: not copying 'data': copying 'data/sub' made it; list 'data' before what is in it" in err, err
    out = repo.wtp_proc("rm", "a")
    assert out.code == 1 and "1 ignored file that is not a build output (.env)" in out.err, out.err


def test_the_main_worktree_changing_during_a_start_leaves_the_task_removable(repo: Repo, tmp_path: Path) -> None:
    """Review 41: the record was read from the main worktree once the whole copy was done, so
    a file there written meanwhile (an app's database, a .env) was recorded new while the
    task's copy stayed old: an untouched task was refused by every plain rm.  Each entry is
    read just before it is copied."""
    repo.commit({".gitignore": ".env\n", ".wtp.toml": '[setup]\ncopy = [".env"]\n'}, "copy")
    (repo.path / ".env").write_text("KEY=main\n")
    hold = tmp_path / "hold"
    start = repo.spawn("start", "a", env={"WTP_TEST_HOLD_AT": "start:copied", "WTP_TEST_HOLD_FILE": str(hold)})
    wait_for(lambda: hold.with_suffix(".reached").exists(), "the copy to be made")
    (repo.path / ".env").write_text("KEY=main, written while the task started\n")
    hold.write_text("")
    _, err = start.communicate(timeout=60)
    assert start.returncode == 0, err
    out = repo.wtp_proc("rm", "a")
    assert out.code == 0, out.err


def _start_past_a_file_size_limit(repo: Repo) -> str:
    """'wtp start a' with a file-size limit that the main worktree's 'big/blob' (made here) is
    past, so its copy fails as on a full disk; its stderr."""
    (repo.path / "big").mkdir()
    (repo.path / "big" / "blob").write_bytes(b"x" * 300_000)
    limit = "import resource, sys, os; resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))"
    script = f"{limit}; os.execv(sys.executable, [sys.executable, '-m', 'worktree_par', 'start', 'a'])"
    res = subprocess.run([sys.executable, "-c", script], cwd=repo.path, capture_output=True, text=True, timeout=60)
    return res.stderr


def test_an_ignored_folder_the_branch_brings_and_a_failed_copy_are_said(repo: Repo, tmp_path: Path) -> None:
    """Review 41: an ignored folder holding a force-added file was skipped with "an earlier start
    of 'a'" on a first start; and a copy that cp failed (a full disk, a file-size limit) ended
    in an internal error instead of the setup-failed line."""
    repo.commit({".gitignore": "config/\nbig/\n", ".wtp.toml": '[setup]\ncopy = ["config", "big"]\n'}, "copy")
    (repo.path / "config").mkdir()
    (repo.path / "config" / "example.env").write_text("EXAMPLE=1\n")
    repo.git("add", "-f", "config/example.env")
    repo.git("commit", "-q", "-m", "an example config, force-added")
    (repo.path / "config" / "local.env").write_text("LOCAL=1\n")
    err = _start_past_a_file_size_limit(repo)
    assert "not copying 'config': the branch brings it, with files git tracks in it" in err, err
    assert "setup of task 'a' failed: copy failed" in err and "internal error" not in err, err


def test_what_a_failed_copy_had_copied_is_recorded(repo: Repo) -> None:
    """Review 42: the record was saved only when every entry copied, so after a copy cp failed
    (a full disk, a file-size limit) the entries copied before it had none, and were compared
    with the main worktree: once that changed, an untouched task was refused."""
    repo.commit({".gitignore": "data/\nbig/\n", ".wtp.toml": '[setup]\ncopy = ["data", "big"]\n'}, "copy")
    (repo.path / "data").mkdir()
    (repo.path / "data" / "f").write_text("v1\n")
    err = _start_past_a_file_size_limit(repo)
    assert "copy failed" in err, err
    shutil.rmtree(repo.path.parent / "repo.worktrees" / "a" / "big")  # the cut-short copy
    (repo.path / "data" / "f").write_text("v2, the main worktree moved on\n")
    out = repo.wtp_proc("rm", "a")
    assert out.code == 0, out.err
