"""The chokepoint: every git call runs through ``run``, with a clean environment; and
finding the repository a command runs in."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

from .. import atomic
from ..errors import GitError, NotARepo, RemoteTimeout, UsageError
from .parse import Worktree, parse_version, parse_worktrees

# Variables that point git at another repository or index, or make it read paths otherwise.
# Inherited from a hook or an outer git process they would make us operate on the wrong repo
# (pre-commit issue #300), so they never reach our git calls.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    # and those that change what every pathspec means (':(exclude)' read as a file name)
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)
_env_cache: dict[str, str] | None = None
MIN_VERSION = (2, 38)  # merge-tree --write-tree


def base_env() -> dict[str, str]:
    global _env_cache
    if _env_cache is None:
        env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"
        # GIT_OPTIONAL_LOCKS stays on: 'git status' then saves the index it refreshed, which is
        # what keeps the next status fast (README, Performance).
        env["LC_ALL"] = "C"
        _env_cache = env
    return _env_cache


class Result(NamedTuple):
    code: int
    out: str
    err: str

    def z(self) -> list[str]:
        """Split NUL-terminated output into its fields."""
        return [f for f in self.out.split("\0") if f]


_TRACE = os.environ.get("WTP_TRACE") == "1"


def _trace(argv: list[str], cwd: Path | str, code: int, t0: float) -> None:
    """WTP_TRACE's line for one git call: argv, directory, exit code, time."""
    ms = (time.monotonic() - t0) * 1000
    print(f"wtp trace: {' '.join(argv)}  [in {cwd}] -> {code} ({ms:.1f} ms)", file=sys.stderr)


def run(
    args: list[str],
    cwd: Path | str,
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> Result:
    """Run ``git <args>`` in ``cwd``; raise GitError unless the exit code is in ok_codes."""
    full_env = base_env() if not env else {**base_env(), **env}
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input.encode("utf-8", "surrogateescape") if input is not None else None,
            capture_output=True,
            env=full_env,
        )
    except FileNotFoundError as e:
        raise _not_found(cwd) from e
    res = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "surrogateescape"),
    )
    if _TRACE:
        _trace(["git", *args], cwd, res.code, t0)
    if check and res.code not in ok_codes:
        raise GitError(args, res.code, res.out, res.err, str(cwd))
    return res


def _not_found(cwd: Path | str) -> UsageError:
    """Why git could not be started in ``cwd``."""
    if not Path(cwd).is_dir():
        return UsageError(f"directory {cwd} does not exist")
    return UsageError("git is not installed or not on PATH: install git 2.38 or newer")


def spawn(
    args: list[str], cwd: Path | str, *, stdin: bool = False, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``git <args>`` without waiting, for callers that run several at once (``stdin``:
    with a pipe to write its input to).  Under ``WTP_TRACE=1`` its trace line is printed
    when it ends (when the caller waits for it)."""
    popen = _TracedPopen if _TRACE else subprocess.Popen
    pipe = subprocess.PIPE if stdin else None
    full_env = base_env() if not env else {**base_env(), **env}
    try:
        return popen(["git", *args], cwd=cwd, stdin=pipe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
    except FileNotFoundError as e:
        raise _not_found(cwd) from e


class _TracedPopen(subprocess.Popen[bytes]):
    """A spawned git that prints the trace line ``run`` prints, once, the first time a wait
    for it returns (``communicate`` ends with one).  Its duration runs from the start to
    that wait: for calls run side by side, an upper bound of the time git took."""

    def __init__(self, argv: list[str], cwd: Path | str, **kwargs: Any) -> None:
        self._t0 = time.monotonic()
        self._argv, self._cwd, self._traced = argv, cwd, False
        super().__init__(argv, cwd=cwd, **kwargs)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if not self._traced:
            self._traced = True
            _trace(self._argv, self._cwd, code, self._t0)
        return code


# --- the network boundary: every git call that talks to a remote has a deadline ------------

NETWORK_TIMEOUT = 30.0  # [remote] timeout when the config says nothing
# Per context, not per process: the MCP server runs many commands in one process, and one
# command's --timeout must not shorten another's.
_timeout: ContextVar[float] = ContextVar("wtp_network_timeout", default=NETWORK_TIMEOUT)
_until: ContextVar[float | None] = ContextVar("wtp_network_until", default=None)
_live: set[int] = set()  # process groups of network calls still running, ended at exit


def set_network_timeout(seconds: float) -> None:
    """The longest any one network call of this command may take ([remote] timeout)."""
    _timeout.set(float(seconds))


@contextmanager
def network_deadline(seconds: float) -> Iterator[None]:
    """Every network call inside ends by ``seconds`` from now (a command's --timeout); an
    enclosing deadline that ends sooner still holds."""
    end = time.monotonic() + seconds
    outer = _until.get()
    token = _until.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _until.reset(token)


def narrow_network(seconds: float) -> None:
    """Every network call from here on in this context ends by ``seconds`` from now: a
    command's --timeout, set once where it bounds the command's other waits (each command
    runs in a context of its own: the MCP server's calls each run in a copy)."""
    end = time.monotonic() + seconds
    outer = _until.get()
    _until.set(end if outer is None else min(outer, end))


def unbound_network() -> None:
    """Lift the command's --timeout from the network calls of this context (a land's child
    that goes on for other tasks once its own lander returned: land/handoff.py)."""
    _until.set(None)


def network_budget() -> float:
    """Seconds the next network call may take: the configured timeout, or less when the
    command's deadline comes sooner."""
    until = _until.get()
    budget = _timeout.get()
    return budget if until is None else max(0.0, min(budget, until - time.monotonic()))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass  # already gone


@atexit.register
def _end_live() -> None:
    # A renewal thread can still be inside a network call when wtp exits: its git (and the
    # ssh or helper it started) must not outlive us.
    for pgid in list(_live):
        _kill_group(pgid)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # Not communicate(): a helper that left the group could hold the pipes open forever.
    proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def run_network(args: list[str], cwd: Path | str, remote: str, what: str) -> Result:
    """Run ``git <args>`` that talks to ``remote`` under the deadline: past it, the whole
    process group (git, ssh, a helper) is killed and RemoteTimeout says so in one line."""
    budget = network_budget()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base_env(),
            start_new_session=True,  # its own group: killpg reaches everything it started
        )
    except FileNotFoundError as e:
        raise UsageError("git is not installed or not on PATH: install git 2.38 or newer") from e
    _live.add(proc.pid)
    try:
        out, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        _reap(proc)
        raise RemoteTimeout(
            f"remote '{remote}' did not answer within {_secs(budget)}s ({what}): its git process was stopped; "
            "check the network and the remote's URL, then try again (or raise [remote] timeout in .wtp.toml)"
        ) from None
    except BaseException:  # Ctrl-C: the group is not ours in the terminal's eyes, so end it here
        _kill_group(proc.pid)
        _reap(proc)
        raise
    finally:
        _live.discard(proc.pid)
    res = Result(proc.returncode, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape"))
    if _TRACE:
        _trace(["git", *args], cwd, res.code, t0)
    return res


def require_version(cwd: Path) -> None:
    """Refuse a git older than wtp needs (checked where the newer feature failed)."""
    found = parse_version(run(["version"], cwd).out)
    if found < MIN_VERSION:
        raise UsageError(f"wtp needs git {'.'.join(map(str, MIN_VERSION))} or newer, found {found[0]}.{found[1]}")


# --- repository discovery -------------------------------------------------------------


class RepoInfo(NamedTuple):
    cwd: Path  # where the command runs (a worktree, main or linked)
    toplevel: Path  # top of the worktree we are in
    common_dir: Path  # shared git dir: state lives under it
    main_root: Path  # the main worktree's top level (the bare repository when there is none)
    bare: bool = False  # a bare repository with linked worktrees: there is no main worktree

    @property
    def config_root(self) -> Path:
        """Where the committed config is read: the main worktree, or this worktree when bare."""
        return self.toplevel if self.bare else self.main_root


MAIN_ROOT_FILE = "main-root"  # under <common>/wtp: the main worktree, where git cannot tell it


def superproject(cwd: Path) -> Path | None:
    """The working tree of the superproject this repository is checked out in as a submodule,
    or None."""
    out = run(["rev-parse", "--show-superproject-working-tree"], cwd, check=False).out.strip()
    return Path(out).resolve() if out else None


def discover(path: Path) -> RepoInfo:
    """Find the repository containing ``path``; refuse bare repos and non-repos."""
    if not path.is_dir():
        raise UsageError(f"directory {path} does not exist: pass an existing path to -C")
    res = run(
        [
            "rev-parse",
            "--path-format=absolute",
            "--is-bare-repository",
            "--git-dir",
            "--git-common-dir",
            "--show-toplevel",
        ],
        path,
        check=False,
    )
    if res.code != 0:
        if "must be run in a work tree" in res.err:
            parts = path.resolve().parts
            if ".git" in parts:
                top = Path(*parts[: parts.index(".git")])
                raise NotARepo(f"{path} is inside a .git directory: run wtp from the working tree ({top})")
            raise NotARepo(
                f"{path} is a bare repository or a .git directory: wtp needs a working tree (clone it first)"
            )
        if "not a git repository" in res.err:
            raise NotARepo(f"{path} is not inside a git repository: run wtp from a clone, or pass -C REPO")
        raise GitError(["rev-parse"], res.code, res.out, res.err, str(path))
    lines = res.out.splitlines()
    if lines and lines[0] == "true":
        raise NotARepo(f"{path} is a bare repository: wtp needs a repository with a working tree (clone it first)")
    if len(lines) < 4:
        raise NotARepo(f"{path} is inside a .git directory, not a working tree: run wtp from the work tree")
    git_dir, common, top = Path(lines[1]), Path(lines[2]), Path(lines[3])
    record = common / "wtp" / MAIN_ROOT_FILE
    if git_dir == common:  # we stand in the main worktree
        if common != top / ".git":  # git init --separate-git-dir: remember where the checkout is
            _remember_main(record, top)
        return RepoInfo(path, top, common, top)
    if common.name == ".git" and (common.parent / ".git").is_dir():
        return RepoInfo(path, top, common, common.parent)
    first = worktrees(top)[0]
    if first.bare:
        return RepoInfo(path, top, common, first.path, bare=True)
    if first.path == common:  # git 2.39 names the git dir itself for a separate-git-dir checkout
        try:
            return RepoInfo(path, top, common, Path(atomic.read_regular(record).decode().strip()))
        except OSError:
            raise NotARepo(
                f"the git dir {common} is kept apart from its checkout, and git cannot say where that is: "
                "run any wtp command once from the main checkout"
            ) from None
    return RepoInfo(path, top, common, first.path)


def _remember_main(record: Path, top: Path) -> None:
    try:
        if not record.is_file() or atomic.read_regular(record).decode().strip() != str(top):
            record.parent.mkdir(exist_ok=True)
            atomic.replace(record, f"{top}\n".encode())  # (over whatever is there: never opened, a FIFO too)
    except OSError:
        pass  # a read-only state dir: the error comes where state is written


def worktrees(cwd: Path) -> list[Worktree]:
    """``git worktree list --porcelain -z`` parsed; the main worktree comes first."""
    for attempt in range(5):
        # Another process adding or removing a worktree can make the listing fail for a moment.
        res = run(["worktree", "list", "--porcelain", "-z"], cwd, check=False)
        if res.code == 0 or "failed to read" not in res.err:
            break
        time.sleep(0.05 * (attempt + 1))
    if res.code != 0:
        raise GitError(["worktree", "list"], res.code, res.out, res.err, str(cwd))
    return parse_worktrees(res.out)


# --- object format ----------------------------------------------------------------------


class ObjectFormat(NamedTuple):
    """The hash a repository names its objects with: ``sha1`` (40 hex digits) or ``sha256`` (64)."""

    name: str
    hexlen: int

    @property
    def null_id(self) -> str:
        """The all-zero id git uses for "no object" (a ref that does not exist)."""
        return "0" * self.hexlen


_formats: dict[str, ObjectFormat] = {}


def object_format(cwd: Path) -> ObjectFormat:
    """The object format of the repository at ``cwd``, asked of git once per directory:
    the one place wtp learns how long an object id is (never assume 40)."""
    key = str(cwd)
    if key not in _formats:
        name = run(["rev-parse", "--show-object-format"], cwd).out.strip() or "sha1"
        _formats[key] = ObjectFormat(name, 64 if name == "sha256" else 40)
    return _formats[key]


def _secs(x: float) -> str:
    """Seconds as said in a line: a budget cut from a deadline a moment ago (0.999) is the 1 s
    it was given; two significant figures below 10 (0.04, 2.5), whole seconds above."""
    return f"{x:.0f}" if x >= 9.5 else f"{x:.2g}"
