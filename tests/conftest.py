"""Hermetic real-git fixtures (after git-revise's hermetic_seal and pre-commit's
dont_write_to_home_directory): git never sees the developer's config, every repo
lives in tmp, and tests drive the real CLI, in-process or as subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
sys.path.insert(0, str(ROOT / "scripts"))
import repos  # noqa: E402  (scripts/repos.py: the repository builder tests, benchmarks and demo share)

_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="wtp-test-home-"))
    config.stash[_HOME] = home
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Test\n\temail = test@example.com\n"
        '[protocol "file"]\n\tallow = always\n[advice]\n\tdetachedHead = false\n'
    )
    for k in list(os.environ):
        if (k.startswith("GIT_") or k.startswith("WTP_")) and k != "WTP_FAULT_SEED":
            del os.environ[k]
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
        GIT_EDITOR="false",  # a git call that would open an editor fails instead of hanging
        PYTHONDONTWRITEBYTECODE="1",
    )
    # Started in the background by a script without job control, the runner ignores Ctrl-C,
    # and so would every wtp it starts: the tests that stop a land with SIGINT then wait forever.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds.
    Tests wait on state they can see (a file, a queue entry), never on a sleep that
    assumes another process got there meanwhile: under load it has not."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.02)


def _pipe_holders(*streams: object) -> list[str]:
    """The processes that hold the other end of these pipes (a CLI's stdout and stderr that
    never reached their end), each with its state: who kept a test waiting, and on what."""
    inodes = set()
    for s in streams:
        try:
            inodes.add(os.readlink(f"/proc/self/fd/{s.fileno()}"))  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            pass
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if not any(os.readlink(f) in inodes for f in (d / "fd").iterdir()):
                continue
            status = dict(line.split(":", 1) for line in (d / "status").read_text().splitlines() if ":" in line)
            want = ("State", "PPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
            state = " ".join(f"{k}={status.get(k, '?').strip()}" for k in want)
            wchan = (d / "wchan").read_text()
            args = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            found.append(f"pid {d.name} ({state} wchan={wchan}): {args}")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found


class _Watched(subprocess.Popen[str]):
    """A CLI started by a test: when it does not finish in time, the failure names every
    process still holding its output open, and what each was doing."""

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str, str]:
        try:
            return super().communicate(input, timeout)
        except subprocess.TimeoutExpired as e:
            holders = _pipe_holders(self.stdout, self.stderr) or ["none: its output is closed"]
            e.add_note(f"exit code so far: {self.poll()}; holding its output: " + "; ".join(holders))
            raise


def end_pids(pids: Path) -> None:
    """SIGKILL the processes whose pids a test's wrapper script wrote to ``pids`` (one per
    line): the ones this test started, ended by pid, never by name."""
    for pid in [int(p) for p in pids.read_text().split()] if pids.exists() else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_file(root: Path, rel: str, text: str) -> Path:
    """Write ``text`` to ``root``/``rel``, making its folders."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def git(cwd: Path, *args: str, check: bool = True) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr}")
    return res.stdout.strip()


@dataclass
class Out:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        data = json.loads(self.out)
        assert isinstance(data, dict), self.out
        return data

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass
class Repo:
    path: Path
    remote: Path | None = None

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        return git(cwd or self.path, *args, check=check)

    def write(self, rel: str, text: str, cwd: Path | None = None) -> Path:
        return write_file(cwd or self.path, rel, text)

    def commit(self, files: dict[str, str], msg: str = "change", cwd: Path | None = None) -> str:
        for rel, text in files.items():
            self.write(rel, text, cwd)
        self.git("add", "-A", cwd=cwd)
        self.git("commit", "-q", "-m", msg, cwd=cwd)
        return self.git("rev-parse", "HEAD", cwd=cwd)

    def wtp(self, *args: str, cwd: Path | None = None, input: str | None = None) -> Out:
        """Run the CLI in-process (typer's CliRunner), as if started in cwd."""
        from typer.testing import CliRunner

        from worktree_par.cli import app

        runner = CliRunner()
        res = runner.invoke(app, ["-C", str(cwd or self.path), *args], input=input, catch_exceptions=False)
        return Out(res.exit_code, res.stdout, res.stderr)

    def wtp_proc(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
    ) -> Out:
        """Run the CLI as a real subprocess."""
        res = subprocess.run(
            [sys.executable, "-m", "worktree_par", *args],
            cwd=cwd or self.path,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )
        return Out(res.returncode, res.stdout, res.stderr)

    def spawn(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, new_session: bool = False
    ) -> subprocess.Popen[str]:
        """The CLI as a background process; ``new_session``: in a session of its own, so a
        test's Ctrl-C (os.killpg) reaches it alone."""
        return _Watched(
            [sys.executable, "-m", "worktree_par", *args],
            cwd=cwd or self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )

    @property
    def state_file(self) -> Path:
        return self.path / ".git" / "wtp" / "state.json"

    def state(self) -> dict:
        data = json.loads(self.state_file.read_text())
        assert isinstance(data, dict), data
        return data

    def branches(self) -> list[str]:
        return self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def make_repo(base: Path, *, fixture: str | None = "webapp", remote: bool = False, name: str = "repo") -> Repo:
    """A repository with one commit of a fixture tree on main; with a bare 'origin' if asked."""
    path = base / name
    repos.build(
        path,
        tree=FIXTURES / fixture if fixture else None,
        files=None if fixture else {"README.md": "hello\n"},
        origin=base / "origin.git" if remote else None,
    )
    return Repo(path, base / "origin.git" if remote else None)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


@pytest.fixture
def remote_repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path, remote=True)


CHECK = "#!/bin/sh\n# the project's test: fails while a BROKEN file is in the tree\ntest ! -e BROKEN\n"


@pytest.fixture
def project(remote_repo: Repo) -> Repo:
    """A repository with a remote and a test ('./check.sh', red while a BROKEN file is in
    the tree) to gate lands with; up to five tasks at once."""
    r = remote_repo
    r.commit({"check.sh": CHECK, ".wtp.toml": "max_active = 5\n"}, "the test")
    (r.path / "check.sh").chmod(0o755)
    r.git("commit", "-q", "--amend", "--no-edit", "-a")
    r.git("push", "-q", "--force", "origin", "main")
    return r


def queued_landers(
    r: Repo,
    names: list[str],
    *extra: str,
    spawn: Callable[[str], subprocess.Popen[str]] | None = None,
    during: Callable[[list[subprocess.Popen[str]]], object] | None = None,
) -> list[subprocess.Popen[str]]:
    """The landers of ``names`` join the land queue in that order while the test holds it
    (``spawn`` starts one; by default 'wtp land NAME *extra'); ``during`` is given them once
    they all wait; then the queue is let go, and the first of them conducts the others."""
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()
    try:
        procs: list[subprocess.Popen[str]] = []
        for n, name in enumerate(names, 2):
            procs.append(spawn(name) if spawn is not None else r.spawn("land", name, *extra))
            wait_for(lambda n=n: len(queue.tickets()) >= n, f"{name} to join the land queue")  # type: ignore[misc]
        if during is not None:
            during(procs)
    finally:
        queue.release()
    return procs


@pytest.fixture
def repo_factory(tmp_path: Path) -> Iterator[Callable[..., Repo]]:
    n = 0

    def factory(*, fixture: str | None = "webapp", remote: bool = False) -> Repo:
        nonlocal n
        n += 1
        sub = tmp_path / f"r{n}"
        sub.mkdir()
        return make_repo(sub, fixture=fixture, remote=remote)

    yield factory


@pytest.fixture(autouse=True)
def _no_writes_to_real_home() -> Iterator[None]:
    """Fail a test that writes git config into the home the suite did not create."""
    home = Path(os.environ["HOME"])
    before = (home / ".gitconfig").read_text()
    yield
    assert (home / ".gitconfig").read_text() == before, "a test changed the global git config"


@contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """A git daemon serving the repositories under ``base`` (pushes allowed), bound to
    127.0.0.1 only; yields its git:// URL prefix and stops the daemon it started, by pid."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"git://127.0.0.1:{port}"
        for _ in range(100):
            if subprocess.run(["git", "ls-remote", f"{url}/origin.git"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture(autouse=True)
def _cwd_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test from its own tmp folder, so a relative path can never land in the project."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def _project_untouched() -> Iterator[None]:
    """Fail the run if a test committed into, or changed a tracked file of, this project's own
    repository (untracked files, such as a virtualenv a developer keeps there, do not count)."""

    def snapshot() -> tuple[str, str]:
        return git(ROOT, "rev-parse", "HEAD", check=False), git(
            ROOT, "status", "--porcelain", "--untracked-files=no", check=False
        )

    if not (ROOT / ".git").exists():
        yield
        return
    before = snapshot()
    yield
    assert snapshot() == before, "a test changed the project's own repository (HEAD or files)"
