"""Worktrees and what is in them: the worktree list, status, stopped operations,
snapshots, rebases, merges and the checkout's files."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .. import atomic, locks
from ..errors import GitError
from .core import Result, require_version, run, spawn
from .parse import (
    MergeTree,
    Sha,
    commit_ids,
    is_object_id,
    parse_merge_tree,
    parse_read_tree_refusal,
    parse_status,
)
from .refs import refs_under
from .status import STATUS_ARGS, Dirty, dirty_of, status_paths

# --- worktrees --------------------------------------------------------------------


def worktree(
    root: Path, args: list[str], lock: Path, *, parallel_checkout: bool = False, check: bool = True, hooks: bool = True
) -> Result:
    """'git worktree add/remove/prune/unlock' under the repo-wide worktree lock ``lock``: git
    reads every worktree's admin folder while adding one, and fails ('failed to read
    .git/worktrees/x/commondir') when another process is creating or deleting one.
    ``hooks`` False: the repository's post-checkout hook does not run (a throw-away worktree
    wtp makes to run a gate in: the hook ran under the worktree lock, past any --timeout)."""
    # git's parallel checkout (one worker per core; git keeps small checkouts sequential).
    opts = ["-c", "checkout.workers=0"] if parallel_checkout and args[0] == "add" else []
    if not hooks:
        opts += ["-c", f"core.hooksPath={os.devnull}"]
    with locks.Lock(lock, what="the worktree lock"):
        return run([*opts, "worktree", *args], root, check=check)


def head_last_logged(wt: Path) -> Sha | None:
    """The commit a worktree's HEAD last named, from its reflog file read directly: git reads
    no log of a HEAD whose branch was deleted under it (an unborn HEAD).  None without one."""
    try:
        lines = atomic.read_regular(git_dir_of(wt) / "logs" / "HEAD").decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        fields = line.split(" ", 2)
        if len(fields) == 3 and is_object_id(fields[1]) and fields[1].strip("0"):
            # A commit git has (a log edited by hand may name one it never had).
            ok = run(["cat-file", "-e", f"{fields[1]}^{{commit}}"], wt, check=False).code == 0
            return Sha(fields[1]) if ok else None
    return None


def git_dir_of(wt: Path) -> Path:
    """The private git dir of a worktree (``.git`` or the ``gitdir:`` its .git file names),
    read without a git call; asks git when the .git entry is anything else."""
    dot = wt / ".git"
    if dot.is_dir():
        return dot
    try:
        text = atomic.read_regular(dot, follow=True).decode("utf-8", "surrogateescape")  # (a FIFO: not waited on)
    except OSError:
        text = ""
    if text.startswith("gitdir: ") and text.count("\n") <= 1:
        return (wt / text[len("gitdir: ") :].strip("\n")).resolve()
    return Path(run(["rev-parse", "--path-format=absolute", "--git-dir"], wt).out.strip())


def private_refs(wt: Path, *prefixes: str) -> dict[str, Sha]:
    """``refs_under`` for refs private to a worktree ('refs/worktree/', 'refs/bisect/'),
    without a git call when it has none.  git keeps them in the worktree's own git dir,
    never packed (pack-refs leaves per-worktree refs loose): with the files backend, no
    folder there for a prefix means no such ref.  A reftable store, or a folder there, is
    asked of git."""
    gd = git_dir_of(wt)
    if all(not os.path.lexists(gd / p.rstrip("/")) for p in ("reftable", *prefixes)):
        return {}
    return refs_under(wt, *prefixes)


def head_names(wt: Path) -> str:
    """The ref the worktree's HEAD is attached to ('refs/heads/x'), read without a git call; '' if detached."""
    try:
        text = (git_dir_of(wt) / "HEAD").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""
    return text[len("ref: ") :].strip() if text.startswith("ref: ") and text.count("\n") <= 1 else ""


def in_progress(wt: Path) -> tuple[str, list[Sha]]:
    """The operation stopped in a worktree ("rebase", "merge", "cherry-pick", "revert", "am",
    "bisect" or "") and the commits it holds: the original head and every commit it still has
    to replay, the merged heads, the picked commit, the commit a bisect began on."""
    gd = git_dir_of(wt)

    def read(p: Path) -> str:  # (a FIFO planted there is not waited on)
        try:
            return atomic.read_regular(p).decode(errors="replace")
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
    start = read(gd / "BISECT_START")  # where the bisect began: a branch name, or a commit id
    if start.strip():
        return "bisect", commit_ids(start)
    return "", []


def ending(op: str, wt: Path | str) -> str:
    """The git commands that end a stopped operation (in_progress) in ``wt``: a bisect, its reset."""
    go_on = f"'git -C {wt} {op} --continue' or 'git -C {wt} {op} --abort'"
    return f"'git -C {wt} bisect reset'" if op == "bisect" else go_on


def rebase_in_progress(wt: Path) -> bool:
    return in_progress(wt)[0] in ("rebase", "am")


def copy_index(index: Path, to: Path) -> None:
    """Copy an index file with its own time.  git reads the content of an entry that is not
    older than the index file ("racily clean"); a copy dated now would make such an entry
    look clean by its stat data and hide an edit made in the second the index was written
    that kept the file's size."""
    st = index.stat()  # before reading: a newer index read with an older time only makes git look closer
    to.write_bytes(index.read_bytes())
    os.utime(to, ns=(st.st_atime_ns, st.st_mtime_ns))


def snapshot(
    wt: Path,
    extra: list[str] | None = None,
    *,
    exclude: Sequence[str] = (),
    grafts: Sequence[tuple[str, str]] = (),
    dirty: Dirty | None = None,
    parent: str | None = None,
) -> tuple[Sha, Sha]:
    """(commit, tree) holding the worktree's current files (tracked and untracked, not ignored,
    plus the ignored ``extra`` paths).  Built with a throw-away index so the user's index,
    files and refs are untouched; its parent is HEAD.  ``exclude``: folders left out (nested
    repositories, which 'git add' would record as a bare pointer or refuse); ``grafts``:
    (folder, tree) pairs whose files are put at that folder instead, as real files;
    ``dirty``: the worktree's status when the caller has it (else it is asked here);
    ``parent``: the commit taken as its parent when HEAD names none (an unborn branch).

    One walk of the tree: from a copy of the real index, only the paths status reported are
    staged, what 'git add --all' gives without a second walk (tests/test_snapshot.py)."""
    if dirty is None:
        dirty = dirty_of(wt)
    index = git_dir_of(wt) / "index"
    import tempfile

    skip = [f":(exclude,literal){p}" for p in exclude]
    left_out = tuple(f"{p}/" for p in exclude)
    paths = [p.rstrip("/") for p in dirty.paths if p not in left_out and not p.startswith(left_out)]
    with tempfile.TemporaryDirectory(prefix="wtp-index-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.exists():
            # Starting from the real index keeps its stat cache and cached trees, so only what
            # changed is hashed and only the folders holding it are written again.
            copy_index(index, tmp_index)
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        # A path status names that is now a plain folder (not a repository) was a file: its
        # entry is removed, and the folder's files, which status names one by one, are added.
        # 'update-index --add' given the folder itself refuses it ('Unable to process path')
        # when the index has no entry there (a 'git rm' before the folder was made).
        gone = {p for p in paths if _plain_folder(wt / p)}
        if gone:
            run(["update-index", "--force-remove", "-z", "--stdin"], wt, env=env, input="\0".join(gone) + "\0")
            paths = [p for p in paths if p not in gone]
        if paths:
            # --replace: a file that became a folder (or the reverse) replaces the old entry.
            stage = ["update-index", "--add", "--remove", "--replace", "-z", "--stdin"]
            run(stage, wt, env=env, input="\0".join(paths) + "\0")
        if extra:  # (on stdin: thousands of paths are too long for a command line)
            spec = "\0".join([*extra, *skip]) + "\0"
            run(["add", "--force", "--pathspec-from-file=-", "--pathspec-file-nul"], wt, env=env, input=spec)
        for folder, tree in sorted(grafts):  # outer folders first
            run(["update-index", "--force-remove", "--", folder], wt, env=env)  # a pointer staged there
            run(["read-tree", f"--prefix={folder}/", tree], wt, env=env)
        tree_id = Sha(run(["write-tree"], wt, env=env).out.strip())
    head = [dirty.head] if dirty.head else [parent] if parent else []
    return commit_tree(wt, tree_id, head, "wtp snapshot of uncommitted work"), tree_id


def _plain_folder(p: Path) -> bool:
    """A folder (not a link to one) that is not a repository ('git add' records those as a commit)."""
    try:
        return stat.S_ISDIR(os.lstat(p).st_mode) and not os.path.lexists(p / ".git")
    except OSError:
        return False


def commit_tree(cwd: Path, tree: str, parents: Sequence[str], message: str, env: dict[str, str] | None = None) -> Sha:
    # The message on stdin, not as '-m': a record or an archive's list of what it keeps may be
    # past the kernel's limit for one argument (128 KiB), where the call could not even start.
    args = ["commit-tree", tree, *(a for p in dict.fromkeys(parents) for a in ("-p", p))]
    text = message if message.endswith("\n") else message + "\n"  # as '-m' ends it
    return Sha(run(args, cwd, env=env, input=text).out.strip())


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


def merge_tree(cwd: Path, a: str, b: str) -> MergeTree:
    """The tree merging commits a and b gives, and the paths that conflict (none: clean)."""
    res = run(["merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", a, b], cwd, check=False)
    parsed = parse_merge_tree(res.code, res.out, (a, b))
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


def tracked_among(cwd: Path, paths: list[str]) -> set[str]:
    """The paths among ``paths`` that are tracked, or folders holding tracked files."""
    if not paths:
        return set()
    found = run(["ls-files", "-z", "--", *paths], cwd).z()
    return {p for p in paths if any(f == p or f.startswith(p.rstrip("/") + "/") for f in found)}


def gitlinks(wt: Path) -> list[tuple[str, Sha]]:
    """(path, recorded commit) of every submodule in the worktree's index."""
    out = run(["ls-files", "--stage", "-z"], wt).out
    found = []
    for entry in out.split("\0"):
        if entry.startswith("160000 "):
            meta, _, path = entry.partition("\t")
            found.append((path, Sha(meta.split()[1])))
    return found


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
    subject: str = ""  # the branch's last commit
    when: int = 0  # its committer time (seconds since the epoch)


def branch_summary(wt: Path, root: Path, base_ref: str, ref: str) -> BranchSummary:
    """What 'wtp list' shows of a task: three git calls run side by side."""
    st = spawn(STATUS_ARGS, wt)
    ab = spawn(["rev-list", "--left-right", "--count", f"{base_ref}...{ref}", "--"], root)
    ch = spawn(["diff", "--name-only", "-z", "--no-renames", f"{base_ref}...{ref}", "--"], root)
    lg = spawn(["log", "-1", "--format=%ct%x00%s", ref, "--"], root)
    st_out, ab_out, ch_out, lg_out = (p.communicate()[0].decode("utf-8", "surrogateescape") for p in (st, ab, ch, lg))
    dirty = parse_status(st_out) if st.returncode == 0 else []
    ahead = behind = None
    if ab.returncode == 0:
        behind, ahead = (int(x) for x in ab_out.split())
    committed = set(ch_out.split("\0")) - {""} if ch.returncode == 0 else set()
    when, _, subject = lg_out.strip("\n").partition("\0")
    return BranchSummary(dirty, ahead, behind, committed, subject, int(when) if when.isdigit() else 0)


def staged_paths(wt: Path) -> list[str]:
    """Paths the commit being made would change.  In a pre-commit hook git points
    GIT_INDEX_FILE at the index it commits ('commit -a', 'commit PATH' use a temporary one):
    read that one, made absolute, since it is the commit's."""
    index = os.environ.get("GIT_INDEX_FILE")
    env = {"GIT_INDEX_FILE": os.path.abspath(index)} if index else None
    res = run(["diff", "--cached", "--name-only", "-z", "--no-renames"], wt, env=env)
    return res.z()


def data_commit(cwd: Path, message: str) -> Sha:
    """A commit of the empty tree carrying ``message``: how a record (a remote gate's tickets,
    a task's claim) travels in a ref."""
    # Written, since it may be missing; its id depends on the object format (sha1 or sha256).
    empty_tree = run(["hash-object", "-t", "tree", "-w", "--stdin"], cwd, input="").out.strip()
    return commit_tree(cwd, empty_tree, [], message, env=_DATA_AUTHOR)


_DATA_AUTHOR = {
    "GIT_AUTHOR_NAME": "wtp",
    "GIT_AUTHOR_EMAIL": "wtp@localhost",
    "GIT_COMMITTER_NAME": "wtp",
    "GIT_COMMITTER_EMAIL": "wtp@localhost",
}


def commit_message(cwd: Path, rev: str) -> str:
    out = run(["cat-file", "commit", rev], cwd).out
    return out.partition("\n\n")[2]
