"""The one chokepoint for git: every git call in wtp goes through ``run``.

We call the git binary with argument lists (never a shell string).  GitPython is
deliberately not imported: importing it costs ~100 ms, more than the whole
per-command budget (issue 7), and its own ``Git.execute`` is a subprocess call
like this one.  Porcelain output is parsed with ``-z`` wherever git offers it.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, NewType

from .errors import GitError, NotARepo, UsageError

Sha = NewType("Sha", str)

# Variables that point git at another repository or index.  Inherited from a
# hook or an outer git process they would make us operate on the wrong repo
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
)
_env_cache: dict[str, str] | None = None
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def base_env() -> dict[str, str]:
    global _env_cache
    if _env_cache is None:
        env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"
        # GIT_OPTIONAL_LOCKS stays on: 'git status' then saves the index it refreshed, which is
        # what keeps the next status fast; with it off, every status re-reads racily-clean files
        # (1.85x slower 'wtp list' on a fresh 20,000-file worktree).
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
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input.encode("utf-8", "surrogateescape") if input is not None else None,
            capture_output=True,
            env=full_env,
        )
    except FileNotFoundError as e:
        if not Path(cwd).is_dir():
            raise UsageError(f"directory {cwd} does not exist") from e
        raise UsageError("git is not installed or not on PATH: install git 2.38 or newer") from e
    res = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "surrogateescape"),
    )
    if check and res.code not in ok_codes:
        raise GitError(args, res.code, res.out, res.err)
    return res


def spawn(args: list[str], cwd: Path | str) -> subprocess.Popen[bytes]:
    """Start ``git <args>`` without waiting, for callers that run several at once."""
    return subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())


# --- repository discovery -------------------------------------------------------------


class RepoInfo(NamedTuple):
    cwd: Path  # where the command runs (a worktree, main or linked)
    toplevel: Path  # top of the worktree we are in
    common_dir: Path  # shared .git dir: state lives under it
    main_root: Path  # the main worktree's top level


def discover(path: Path) -> RepoInfo:
    """Find the repository containing ``path``; refuse bare repos and non-repos."""
    if not path.is_dir():
        raise UsageError(f"directory {path} does not exist: pass an existing path to -C")
    res = run(
        [
            "rev-parse",
            "--path-format=absolute",
            "--is-bare-repository",
            "--git-common-dir",
            "--show-toplevel",
        ],
        path,
        check=False,
    )
    if res.code != 0:
        if "must be run in a work tree" in res.err:
            raise NotARepo(
                f"{path} is a bare repository or a .git directory: wtp needs a working tree (clone it first)"
            )
        if "not a git repository" in res.err:
            raise NotARepo(f"{path} is not inside a git repository: run wtp from a clone, or pass -C REPO")
        raise GitError(["rev-parse"], res.code, res.out, res.err)
    lines = res.out.splitlines()
    if lines and lines[0] == "true":
        raise NotARepo(f"{path} is a bare repository: wtp needs a repository with a working tree (clone it first)")
    if len(lines) < 3:
        raise NotARepo(f"{path} is inside a .git directory, not a working tree: run wtp from the work tree")
    common = Path(lines[1])
    top = Path(lines[2])
    if common.name == ".git" and (common.parent / ".git").is_dir():
        main_root = common.parent
    else:
        main_root = worktrees(top)[0].path
    return RepoInfo(cwd=path, toplevel=top, common_dir=common, main_root=main_root)


# --- refs -------------------------------------------------------------------------


def rev_parse(cwd: Path, rev: str) -> Sha | None:
    """The commit ``rev`` names, or None when it names no commit."""
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def ref_value(cwd: Path, ref: str) -> Sha | None:
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", ref], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


_PLAIN_REF = re.compile(r"[A-Za-z0-9._/-]+")


def check_ref_format(cwd: Path, ref: str) -> bool:
    """git's rules for a ref name.  Names made only of letters, digits and ``._/-`` (every
    wtp branch with the default prefix) are checked here by the rules that can apply to
    them, saving a git call per command; anything else is asked of git itself."""
    if _PLAIN_REF.fullmatch(ref):
        parts = ref.split("/")
        return not (
            len(parts) < 2
            or "" in parts
            or ".." in ref
            or ref.endswith(".")
            or any(p.startswith(".") or p.endswith(".lock") for p in parts)
        )
    return run(["check-ref-format", ref], cwd, check=False).code == 0


class RefInfo(NamedTuple):
    commit: Sha | None  # the commit the ref peels to, None when it names no commit
    symref: str  # the target of a symbolic ref, else ""


def refs(cwd: Path, names: list[str]) -> dict[str, RefInfo]:
    """The refs among ``names`` that exist, looked up in one ``for-each-ref`` call."""
    if not names:
        return {}
    fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00%(symref)"
    out = run(["for-each-ref", f"--format={fmt}", *names], cwd).out
    wanted = set(names)
    found: dict[str, RefInfo] = {}
    for line in out.splitlines():
        f = line.split("\0")
        if len(f) != 6 or f[0] not in wanted:  # patterns also match refs below a name
            continue
        commit = f[2] if f[1] == "commit" else f[4] if f[3] == "commit" else None
        found[f[0]] = RefInfo(Sha(commit) if commit else None, f[5])
    return found


def config_values(cwd: Path, pattern: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the git config whose key matches the regular expression."""
    res = run(["config", "-z", "--get-regexp", pattern], cwd, check=False, ok_codes=(0, 1))
    if res.code not in (0, 1):
        raise GitError(["config", "--get-regexp", pattern], res.code, res.out, res.err)
    return [tuple(e.split("\n", 1)) if "\n" in e else (e, "") for e in res.z()]  # type: ignore[misc]


def update_ref(cwd: Path, ref: str, new: str, old: str | None, why: str) -> bool:
    """Compare-and-swap ``ref`` from ``old`` (None: must not exist) to ``new``."""
    expected = old if old is not None else "0" * 40
    res = run(["update-ref", "--create-reflog", "-m", f"wtp: {why}", ref, new, expected], cwd, check=False)
    return res.code == 0


def delete_ref(cwd: Path, ref: str, old: str) -> bool:
    return run(["update-ref", "-d", ref, old], cwd, check=False).code == 0


def is_ancestor(cwd: Path, a: str, b: str) -> bool:
    res = run(["merge-base", "--is-ancestor", a, b], cwd, check=False, ok_codes=(0, 1))
    if res.code not in (0, 1):
        raise GitError(["merge-base", "--is-ancestor", a, b], res.code, res.out, res.err)
    return res.code == 0


# --- worktrees --------------------------------------------------------------------


class Worktree(NamedTuple):
    path: Path
    head: Sha | None
    branch: str | None  # full ref name, e.g. refs/heads/wtp/a
    prunable: bool
    locked: bool


def worktrees(cwd: Path) -> list[Worktree]:
    """``git worktree list --porcelain -z`` parsed; the main worktree comes first."""
    for attempt in range(5):
        # Another process adding or removing a worktree can make the listing fail for a moment.
        res = run(["worktree", "list", "--porcelain", "-z"], cwd, check=False)
        if res.code == 0 or "failed to read" not in res.err:
            break
        time.sleep(0.05 * (attempt + 1))
    if res.code != 0:
        raise GitError(["worktree", "list"], res.code, res.out, res.err)
    fields = res.out.split("\0")
    result: list[Worktree] = []
    cur: dict[str, str] = {}
    for f in fields + [""]:
        if f == "":
            if cur:
                result.append(
                    Worktree(
                        path=Path(cur["worktree"]),
                        head=Sha(cur["HEAD"]) if "HEAD" in cur else None,
                        branch=cur.get("branch"),
                        prunable="prunable" in cur,
                        locked="locked" in cur,
                    )
                )
                cur = {}
            continue
        key, _, val = f.partition(" ")
        cur[key] = val
    return result


# --- working tree state -----------------------------------------------------------


def git_dir_of(worktree: Path) -> Path:
    """The private git dir of a worktree (``.git`` or the ``gitdir:`` its .git file names),
    read without a git call; asks git when the .git entry is anything else."""
    dot = worktree / ".git"
    if dot.is_dir():
        return dot
    try:
        text = dot.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        text = ""
    if text.startswith("gitdir: ") and text.count("\n") <= 1:
        return (worktree / text[len("gitdir: ") :].strip("\n")).resolve()
    return Path(run(["rev-parse", "--path-format=absolute", "--git-dir"], worktree).out.strip())


def status_paths(worktree: Path) -> list[str]:
    """Paths with staged, unstaged or untracked (not ignored) changes, renames under both names."""
    return parse_status(run(STATUS_ARGS, worktree).out)


STATUS_ARGS = ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"]


def parse_status(out: str) -> list[str]:
    """Paths named by ``git status --porcelain=v2 -z`` output."""
    fields = out.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        f = fields[i]
        i += 1
        if not f:
            continue
        kind = f[0]
        if kind == "1":
            paths.append(f.split(" ", 8)[8])
        elif kind == "2":  # rename/copy: new path here, original in the next field
            paths += [f.split(" ", 9)[9], fields[i]]
            i += 1
        elif kind == "u":
            paths.append(f.split(" ", 10)[10])
        elif kind == "?":
            paths.append(f[2:])
    return paths


def merge_base(cwd: Path, a: str, b: str) -> Sha | None:
    res = run(["merge-base", a, b], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def snapshot(worktree: Path) -> tuple[Sha, str]:
    """(commit, tree) holding the worktree's current files (tracked and untracked, not ignored).

    Built with a throw-away index so the user's index, files and refs are untouched;
    its parent is HEAD.  Used to archive uncommitted work and to compare live work.
    """
    res = run(["rev-parse", "--path-format=absolute", "--git-path", "index", "HEAD"], worktree, check=False)
    lines = res.out.splitlines()
    index = Path(lines[0])
    head = lines[1] if res.code == 0 and len(lines) > 1 and HEX40.match(lines[1]) else None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wtp-index-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.exists():
            # Starting from the real index keeps its stat cache, so add -A only re-hashes what changed.
            tmp_index.write_bytes(index.read_bytes())
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        run(["add", "--all", "--", "."], worktree, env=env)
        tree = run(["write-tree"], worktree, env=env).out.strip()
    args = ["commit-tree", tree, "-m", "wtp snapshot of uncommitted work"]
    if head:
        args[2:2] = ["-p", head]
    return Sha(run(args, worktree).out.strip()), tree
