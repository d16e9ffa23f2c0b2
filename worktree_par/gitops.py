"""The one chokepoint for git: every git call in wtp goes through ``run``, and every git
verb wtp uses has one typed helper here, so callers never build git argument lists or
read git's text (the parsers are in gitparse).

We call the git binary with argument lists (never a shell string).  GitPython is not
used: its import costs ~40 ms and it has no worktree API, so every call would be the
same subprocess as this one (README, Dependencies).  ``WTP_TRACE=1`` prints each call
with its directory, exit code and duration on stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from . import locks
from .errors import GitError, NotARepo, UsageError
from .gitparse import (
    HEX40,
    MergeTree,
    PushResult,
    Sha,
    Worktree,
    commit_ids,
    parse_merge_tree,
    parse_push,
    parse_read_tree_refusal,
    parse_status,
    parse_status_entries,
    parse_version,
    parse_worktrees,
)

__all__ = ["HEX40", "GitError", "Sha", "Worktree", "parse_status"]

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
ZERO = "0" * 40
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
        if not Path(cwd).is_dir():
            raise UsageError(f"directory {cwd} does not exist") from e
        raise UsageError("git is not installed or not on PATH: install git 2.38 or newer") from e
    res = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "surrogateescape"),
    )
    if _TRACE:
        ms = (time.monotonic() - t0) * 1000
        print(f"wtp trace: git {' '.join(args)}  [in {cwd}] -> {res.code} ({ms:.1f} ms)", file=sys.stderr)
    if check and res.code not in ok_codes:
        raise GitError(args, res.code, res.out, res.err, str(cwd))
    return res


def spawn(args: list[str], cwd: Path | str) -> subprocess.Popen[bytes]:
    """Start ``git <args>`` without waiting, for callers that run several at once."""
    return subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())


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
            return RepoInfo(path, top, common, Path(record.read_text().strip()))
        except OSError:
            raise NotARepo(
                f"the git dir {common} is kept apart from its checkout, and git cannot say where that is: "
                "run any wtp command once from the main checkout"
            ) from None
    return RepoInfo(path, top, common, first.path)


def _remember_main(record: Path, top: Path) -> None:
    try:
        if not record.is_file() or record.read_text().strip() != str(top):
            record.parent.mkdir(exist_ok=True)
            record.write_text(f"{top}\n")
    except OSError:
        pass  # a read-only state dir: the error comes where state is written


# --- refs -------------------------------------------------------------------------


def rev_parse(cwd: Path, rev: str) -> Sha | None:
    """The commit ``rev`` names, or None when it names no commit."""
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def ref_value(cwd: Path, ref: str) -> Sha | None:
    res = run(["rev-parse", "--verify", "--quiet", "--end-of-options", ref], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def tree_of(cwd: Path, rev: str) -> Sha:
    return Sha(run(["rev-parse", "--verify", "--end-of-options", f"{rev}^{{tree}}"], cwd).out.strip())


def head(wt: Path) -> tuple[Sha | None, str | None]:
    """(HEAD commit, the branch it is attached to or None when detached) of a worktree."""
    res = run(["rev-parse", "--verify", "--quiet", "HEAD"], wt, check=False)
    sym = run(["symbolic-ref", "--quiet", "HEAD"], wt, check=False)
    return (Sha(res.out.strip()) if res.code == 0 else None), (sym.out.strip() if sym.code == 0 else None)


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


def refs_under(cwd: Path, prefix: str) -> dict[str, Sha]:
    """Every ref below ``prefix`` (e.g. 'refs/heads/wtp/') with the object it names."""
    out = run(["for-each-ref", "--format=%(refname)%00%(objectname)", prefix], cwd).out
    return {f[0]: Sha(f[1]) for f in (line.split("\0") for line in out.splitlines()) if len(f) == 2}


def config_values(cwd: Path, pattern: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the git config whose key matches the regular expression."""
    res = run(["config", "-z", "--get-regexp", pattern], cwd, ok_codes=(0, 1))
    return [(k, v) for k, _, v in (e.partition("\n") for e in res.z())]


def update_ref(cwd: Path, ref: str, new: str, old: str | None, why: str, *, no_deref: bool = False) -> bool:
    """Compare-and-swap ``ref`` from ``old`` (None: must not exist) to ``new``."""
    expected = old if old is not None else ZERO
    args = [
        "update-ref",
        "--create-reflog",
        "-m",
        f"wtp: {why}",
        *(["--no-deref"] if no_deref else []),
        ref,
        new,
        expected,
    ]
    return run(args, cwd, check=False).code == 0


def delete_ref(cwd: Path, ref: str, old: str) -> bool:
    """Delete ``ref`` if it still names ``old`` (only the guard calls this for task refs)."""
    return run(["update-ref", "-d", ref, old], cwd, check=False).code == 0


def attach_head(wt: Path, ref: str, why: str) -> None:
    run(["symbolic-ref", "-m", f"wtp: {why}", "HEAD", ref], wt)


def is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return run(["merge-base", "--is-ancestor", a, b], cwd, ok_codes=(0, 1)).code == 0


def merge_base(cwd: Path, a: str, b: str) -> Sha | None:
    res = run(["merge-base", a, b], cwd, check=False)
    return Sha(res.out.strip()) if res.code == 0 else None


def commits_not_in(cwd: Path, tips: Sequence[str], keep: Sequence[str], keep_globs: tuple[str, ...] = ()) -> list[Sha]:
    """Commits reachable from ``tips`` but from none of ``keep`` (refs or commits) nor the
    refs matching ``keep_globs`` (``--glob`` patterns): what deleting the tips would lose."""
    if not tips:
        return []
    args = ["rev-list", *tips, "--not", *keep, *(f"--glob={g}" for g in keep_globs), "--"]
    return [Sha(s) for s in run(args, cwd).out.split()]


def unmatched_commits(cwd: Path, left: str, right: str) -> list[Sha]:
    """Commits of ``right`` not on ``left`` whose change ``left`` has no copy of (by patch id)."""
    out = run(["rev-list", "--cherry-pick", "--right-only", "--no-merges", f"{left}...{right}", "--"], cwd).out
    return [Sha(s) for s in out.split()]


def count_commits(cwd: Path, tip: str, exclude: Sequence[str]) -> int:
    return int(run(["rev-list", "--count", tip, *(f"^{b}" for b in exclude), "--"], cwd).out.strip())


def subjects(cwd: Path, commits: Sequence[str]) -> dict[str, str]:
    """The one-line subject of each commit."""
    if not commits:
        return {}
    out = run(["log", "--no-walk=unsorted", "--format=%H%x00%s", *commits, "--"], cwd).out
    return dict(line.split("\0", 1) for line in out.splitlines() if "\0" in line)


# --- worktrees --------------------------------------------------------------------


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


def worktree(root: Path, args: list[str], lock: Path, *, parallel_checkout: bool = False, check: bool = True) -> Result:
    """'git worktree add/remove/prune/unlock' under the repo-wide worktree lock ``lock``: git
    reads every worktree's admin folder while adding one, and fails ('failed to read
    .git/worktrees/x/commondir') when another process is creating or deleting one."""
    # git's parallel checkout (one worker per core; git keeps small checkouts sequential).
    opts = ["-c", "checkout.workers=0"] if parallel_checkout and args[0] == "add" else []
    with locks.Lock(lock, what="the worktree lock"):
        return run([*opts, "worktree", *args], root, check=check)


def git_dir_of(wt: Path) -> Path:
    """The private git dir of a worktree (``.git`` or the ``gitdir:`` its .git file names),
    read without a git call; asks git when the .git entry is anything else."""
    dot = wt / ".git"
    if dot.is_dir():
        return dot
    try:
        text = dot.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        text = ""
    if text.startswith("gitdir: ") and text.count("\n") <= 1:
        return (wt / text[len("gitdir: ") :].strip("\n")).resolve()
    return Path(run(["rev-parse", "--path-format=absolute", "--git-dir"], wt).out.strip())


STATUS_ARGS = ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"]


def status_paths(wt: Path) -> list[str]:
    """Paths with staged, unstaged or untracked (not ignored) changes, renames under both names."""
    return parse_status(run(STATUS_ARGS, wt).out)


def ignored_paths(wt: Path) -> list[str]:
    """Ignored files and folders in a worktree (a folder wholly ignored is named once, with '/')."""
    out = run(["status", "--porcelain=v2", "-z", "--ignored=matching", "--untracked-files=normal"], wt).out
    return [e.path for e in parse_status_entries(out) if e.kind == "!"]


def in_progress(wt: Path) -> tuple[str, list[Sha]]:
    """The operation stopped in a worktree ("rebase", "merge", "cherry-pick", "revert", "am"
    or "") and the commits it holds: the original head and every commit it still has to
    replay, the merged heads, the picked commit."""
    gd = git_dir_of(wt)

    def read(p: Path) -> str:
        try:
            return p.read_text(errors="replace")
        except OSError:
            return ""

    for d, name in (
        (gd / "rebase-merge", "rebase"),
        (gd / "rebase-apply", "am" if (gd / "rebase-apply" / "applying").exists() else "rebase"),
    ):
        if d.is_dir():
            text = "\n".join(read(d / f) for f in ("orig-head", "stopped-sha", "git-rebase-todo", "done", "amend"))
            return name, commit_ids(text)
    for f, name in (("MERGE_HEAD", "merge"), ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert")):
        text = read(gd / f)
        if text:
            return name, commit_ids(text)
    return "", []


def rebase_in_progress(wt: Path) -> bool:
    return in_progress(wt)[0] in ("rebase", "am")


def snapshot(wt: Path, extra: list[str] | None = None) -> tuple[Sha, Sha]:
    """(commit, tree) holding the worktree's current files (tracked and untracked, not ignored,
    plus the ignored ``extra`` paths).  Built with a throw-away index so the user's index,
    files and refs are untouched; its parent is HEAD."""
    res = run(["rev-parse", "--path-format=absolute", "--git-path", "index", "HEAD"], wt, check=False)
    lines = res.out.splitlines()
    index = Path(lines[0])
    head_sha = lines[1] if res.code == 0 and len(lines) > 1 and HEX40.match(lines[1]) else None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wtp-index-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.exists():
            # Starting from the real index keeps its stat cache, so add -A only re-hashes what changed.
            tmp_index.write_bytes(index.read_bytes())
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        run(["add", "--all", "--", "."], wt, env=env)
        if extra:
            run(["add", "--force", "--", *extra], wt, env=env)
        tree = Sha(run(["write-tree"], wt, env=env).out.strip())
    return commit_tree(wt, tree, [head_sha] if head_sha else [], "wtp snapshot of uncommitted work"), tree


def commit_tree(cwd: Path, tree: str, parents: Sequence[str], message: str, env: dict[str, str] | None = None) -> Sha:
    args = ["commit-tree", tree, *(a for p in dict.fromkeys(parents) for a in ("-p", p)), "-m", message]
    return Sha(run(args, cwd, env=env).out.strip())


def reset_keep(wt: Path, commit: str) -> bool:
    """Move the worktree's branch (and its clean files) to ``commit``; False when git refuses."""
    return run(["reset", "--quiet", "--keep", commit], wt, check=False).code == 0


def read_tree_2way(wt: Path, old: str, new: str) -> tuple[bool, list[str]]:
    """Bring a worktree's files from ``old`` to ``new`` where they were not changed by the user.
    (True, []) when done; (False, files in the way) when git refused and changed nothing."""
    res = run(["read-tree", "-m", "-u", old, new], wt, check=False)
    if res.code == 0:
        return True, []
    paths = parse_read_tree_refusal(res.err)
    if not paths:
        paths = [res.err.strip().splitlines()[-1] if res.err.strip() else "git read-tree failed"]
    return False, paths


class Rebase(NamedTuple):
    ok: bool
    conflicts: list[str]
    error: str  # git's last line when it failed without a conflict


def rebase_onto(wt: Path, onto: str, upstream: str) -> Rebase:
    """``git rebase --onto onto upstream``: replay only the commits after ``upstream``.  On
    failure the rebase is aborted, so the branch and files are as before."""
    res = run(
        ["rebase", "--quiet", "--no-autostash", "--onto", onto, upstream], wt, check=False, env={"GIT_EDITOR": "true"}
    )
    if res.code == 0:
        return Rebase(True, [], "")
    paths = run(["diff", "--name-only", "-z", "--diff-filter=U"], wt, check=False).z()
    rebase_abort(wt)
    last = res.err.strip().splitlines()[-1] if res.err.strip() else "no output"
    return Rebase(False, sorted(paths), last)


def rebase_abort(wt: Path) -> None:
    run(["rebase", "--abort"], wt, check=False)


def merge_tree(cwd: Path, a: str, b: str) -> MergeTree:
    """The tree merging commits a and b gives, and the paths that conflict (none: clean)."""
    res = run(["merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", a, b], cwd, check=False)
    parsed = parse_merge_tree(res.code, res.out)
    if parsed is None:
        if res.code == 129:
            require_version(cwd)
        raise GitError(["merge-tree", "--write-tree", a, b], res.code, res.out, res.err, str(cwd))
    return parsed


def log_messages(cwd: Path, upstream: str, tip: str) -> tuple[str, dict[str, str]]:
    """(the messages of upstream..tip, oldest first; the author env of the oldest one)."""
    msgs = run(["log", "--reverse", "--format=%B", f"{upstream}..{tip}", "--"], cwd).out.strip()
    first = run(["log", "-1", "--reverse", "--format=%an%x00%ae%x00%aI", f"{upstream}..{tip}", "--"], cwd).out
    an, ae, ad = (first.strip("\n").split("\0") + ["", "", ""])[:3]
    env = {"GIT_AUTHOR_NAME": an, "GIT_AUTHOR_EMAIL": ae, "GIT_AUTHOR_DATE": ad} if an else {}
    return msgs, env


def diff_names(cwd: Path, a: str, b: str) -> list[tuple[str, str]]:
    """(status letter, path) of every path that differs between commits a and b, no renames."""
    fields = run(["diff", "--name-status", "-z", "--no-renames", a, b, "--"], cwd).z()
    return list(zip(fields[::2], fields[1::2]))


def check_ignore(cwd: Path, paths: list[str]) -> set[str]:
    """The paths among ``paths`` that git ignores."""
    res = run(["check-ignore", "-z", "--no-index", "--stdin"], cwd, input="\0".join(paths) + "\0", ok_codes=(0, 1))
    return set(res.z())


def gitlinks(wt: Path) -> list[tuple[str, Sha]]:
    """(path, recorded commit) of every submodule in the worktree's index."""
    out = run(["ls-files", "--stage", "-z"], wt).out
    found = []
    for entry in out.split("\0"):
        if entry.startswith("160000 "):
            meta, _, path = entry.partition("\t")
            found.append((path, Sha(meta.split()[1])))
    return found


# --- remotes ----------------------------------------------------------------------


def fetch_branch(cwd: Path, remote: str, branch: str, dest_ref: str) -> None:
    """Fetch ``branch`` from ``remote`` into ``dest_ref``; retried, because a fetch racing
    pushes (and the repacks they trigger) into the same remote can fail once with 'did not
    send all necessary objects'."""
    args = ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{dest_ref}"]
    for attempt in range(3):
        res = run(args, cwd, check=False)
        if res.code == 0:
            return
        time.sleep(0.2 * (attempt + 1))
    raise GitError(args, res.code, res.out, res.err, str(cwd))


def fetch_commits(cwd: Path, source: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Fetch commits (by id) from another repository into refs here: [(commit, ref), ...]."""
    if pairs:
        run(["fetch", "--quiet", "--no-tags", source, *(f"+{c}:{r}" for c, r in pairs)], cwd)


def remote_tip(cwd: Path, remote: str, branch: str) -> Sha | None:
    """What ``branch`` names on the remote right now (asks it: ls-remote)."""
    res = run(["ls-remote", "--exit-code", remote, f"refs/heads/{branch}"], cwd, ok_codes=(0, 2))
    for line in res.out.splitlines():
        sha, _, name = line.partition("\t")
        if name == f"refs/heads/{branch}":
            return Sha(sha)
    return None


def push_cas(cwd: Path, remote: str, ref: str, new: str, expected: str) -> PushResult:
    """Push ``new`` to ``ref`` on ``remote`` only if the remote still holds ``expected``."""
    res = run(["push", "--porcelain", f"--force-with-lease={ref}:{expected}", remote, f"{new}:{ref}"], cwd, check=False)
    result = parse_push(res.out, res.err, ref)
    if not result.flag and res.code != 0 and not result.messages:
        raise GitError(["push", remote, ref], res.code, res.out, res.err, str(cwd))
    return result


def finish_checkout(wt: Path) -> list[str]:
    """Complete a checkout a killed 'git worktree add' left half done: the index from HEAD,
    then every missing file.  Files already there are not overwritten: the ones that differ
    from HEAD are returned."""
    run(["read-tree", "HEAD"], wt)
    run(["checkout-index", "--all", "--quiet"], wt, check=False)
    return status_paths(wt)


class BranchSummary(NamedTuple):
    dirty: list[str]  # uncommitted and untracked paths in the worktree
    ahead: int | None  # commits on the branch not on the base
    behind: int | None  # commits on the base not on the branch
    committed: set[str]  # paths the branch changed since it forked


def branch_summary(wt: Path, root: Path, base_ref: str, ref: str) -> BranchSummary:
    """What 'wtp list' shows of a task: three git calls run side by side."""
    st = spawn(STATUS_ARGS, wt)
    ab = spawn(["rev-list", "--left-right", "--count", f"{base_ref}...{ref}", "--"], root)
    ch = spawn(["diff", "--name-only", "-z", "--no-renames", f"{base_ref}...{ref}", "--"], root)
    st_out, ab_out, ch_out = (p.communicate()[0].decode("utf-8", "surrogateescape") for p in (st, ab, ch))
    dirty = parse_status(st_out) if st.returncode == 0 else []
    ahead = behind = None
    if ab.returncode == 0:
        behind, ahead = (int(x) for x in ab_out.split())
    committed = set(ch_out.split("\0")) - {""} if ch.returncode == 0 else set()
    return BranchSummary(dirty, ahead, behind, committed)
