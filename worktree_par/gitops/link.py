"""A linked worktree's link to its repository: what breaks it (``link_problem``, read without
a git call), what mends it (``link_fix``: doctor --fix, or the user first) and the mending
(``relink``), which touches none of the worktree's files."""

from __future__ import annotations

import os
from pathlib import Path

from .. import atomic
from ..errors import GitError
from .core import run
from .work import worktree


def link_problem(wt: Path) -> str:
    """What breaks the link between a linked worktree and its repository, "" when nothing
    does: its ``.git`` file is missing, or the admin folder it names (under the common git
    dir's ``worktrees/``) is gone.  Read without a git call: git, finding no repository
    there, would go on to the parent folders and answer for whatever repository holds them.
    A ``.git`` folder (or a link to one) is a linked worktree's only when it holds what its
    admin folder does; anything else is another repository, or none, to git."""
    dot = wt / ".git"
    if dot.is_dir():
        if (dot / "HEAD").is_file() and (dot / "commondir").is_file():
            return ""
        if dot.is_symlink():
            return f"its .git is a symbolic link to {os.readlink(dot)}, a folder that is not its git dir"
        return "its .git is a folder that is not its git dir (a repository of its own, or none)"
    try:
        text = atomic.read_regular(dot, follow=True).decode("utf-8", "surrogateescape")  # (a FIFO: not waited on)
    except FileNotFoundError:
        if dot.is_symlink():
            return f"its .git is a symbolic link to {os.readlink(dot)}, which does not exist"
        return "its .git file is missing"
    except OSError as e:
        if os.path.exists(dot) and not os.path.isfile(dot):
            return "its .git is neither a file nor a folder (a FIFO, a socket or a device)"
        return f"its .git file cannot be read ({e.strerror})"
    if not text.startswith("gitdir: "):
        return "its .git file does not name a git dir"
    admin = wt / text[len("gitdir: ") :].strip()
    if not (admin / "HEAD").is_file() or not (admin / "commondir").is_file():
        return f"its admin folder {admin} is gone"
    return ""


DOCTOR_FIX = "run 'wtp doctor --fix'"


def link_fix(wt: Path) -> str:
    """What to do about a broken link (``link_problem``): doctor --fix (DOCTOR_FIX) writes a
    .git file or makes an admin folder; anything else at .git is the user's to mend first."""
    dot = wt / ".git"
    if dot.is_symlink():
        return f"restore what its .git links to, or delete that link and {DOCTOR_FIX}"
    if dot.is_dir():
        return f"move that .git folder out of the worktree (it may hold work of its own) and {DOCTOR_FIX}"
    if os.path.lexists(dot) and not dot.is_file():
        return f"delete what stands at its .git (it holds nothing) and {DOCTOR_FIX}"
    if dot.is_file() and not os.access(dot, os.R_OK):
        return "make its .git file readable, then run the command again"
    return DOCTOR_FIX


def _admin_of(common: Path, wt: Path) -> Path | None:
    """The admin folder under ``common``/worktrees whose ``gitdir`` file names ``wt``/.git."""
    want = (wt / ".git").resolve()
    for admin in sorted((common / "worktrees").glob("*")):
        try:
            named = (admin / (admin / "gitdir").read_text().strip()).resolve()
        except OSError:
            continue
        if named == want and (admin / "HEAD").is_file():
            return admin
    return None


def relink(root: Path, common: Path, wt: Path, branch: str, lock: Path) -> str:
    """Mend a worktree whose link is broken (``link_problem``), touching none of its files;
    says what it did.  A missing .git file is written back when its admin folder is still
    there (its HEAD, index and stopped operation are kept); a lost admin folder is made
    again from ``branch`` (the index, which lived there, is rebuilt from the branch)."""
    admin = _admin_of(common, wt)
    if admin is not None:
        # Only a folder that holds its files: one made at a worktree's old path after the
        # worktree was moved away by hand is not it, and must not become it.
        top = run(["--git-dir", str(admin), "ls-tree", "-z", "--name-only", "HEAD"], root, check=False)
        names = top.z() if top.code == 0 else []
        if names and not any(os.path.lexists(wt / n) for n in names):
            raise GitError(
                ["worktree", "repair"],
                1,
                "",
                f"{wt} holds none of the files of its branch: it is not that worktree",
                str(root),
            )
        if link_fix(wt) != DOCTOR_FIX:  # the user's link, or a FIFO: never written through, nor replaced
            raise GitError(["worktree", "repair"], 1, "", link_fix(wt), str(root))
        (wt / ".git").write_text(f"gitdir: {admin}\n")
        return f"wrote back its .git file (its admin folder {admin} was kept)"
    if run(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], root, check=False).code != 0:
        raise GitError(["worktree", "add", branch], 1, "", f"branch '{branch}' does not exist", str(root))
    # 'git worktree add' makes an admin folder only for an empty path: make one beside the
    # worktree, with the same name, and move its .git file into the worktree.
    spare = wt.parent / f".wtp-relink-{os.getpid()}" / wt.name
    spare.parent.mkdir(exist_ok=True)
    try:
        worktree(root, ["add", "--no-checkout", "--quiet", str(spare), branch], lock)
        os.replace(spare / ".git", wt / ".git")
        worktree(root, ["repair", str(wt)], lock)  # the admin folder's gitdir now names wt
    finally:
        for d in (spare, spare.parent):
            try:
                d.rmdir()
            except OSError:
                pass
    run(["read-tree", branch], wt)  # the index from the branch; every file stays as it is
    return f"made its admin folder again from branch '{branch}' (what was staged is now unstaged)"
