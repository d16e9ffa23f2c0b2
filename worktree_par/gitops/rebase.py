"""Replaying a task's commits with ``git rebase``: at once (``rebase_onto``), or started now and
waited for later (``Replay``), so that a caller does other work while git replays."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

from .. import atomic, interrupts
from .core import run, spawn
from .parse import Sha, is_object_id
from .refs import stored_ref
from .work import git_dir_of, head_names


class Rebase(NamedTuple):
    ok: bool
    conflicts: list[str]
    error: str  # git's last line when it failed without a conflict
    no_space: bool = False  # it failed writing the worktree: the disk is full (ENOSPC)


# strerror(ENOSPC), when git names it; a short write ('unable to write file x') has no strerror.
NO_SPACE = ("No space left on device", "unable to write file")

# Whatever the user's rebase.* config says: no other branch moved with them, no fixup squashed,
# merges flattened as always.
_PLAIN = ["--no-autostash", "--no-update-refs", "--no-autosquash", "--no-rebase-merges"]


class Replay:
    """``git rebase --onto onto upstream`` in ``wt``, started and not yet waited for: replay only
    the commits after ``upstream``, as they were made.  ``end`` waits and says how it went; on
    failure the rebase is aborted, so the branch and files are as before.  Until ``end`` (or
    ``wait``) returns, git is writing the worktree: nothing else may look at it or touch it."""

    def __init__(self, wt: Path, onto: str, upstream: str) -> None:
        self.wt = wt
        self._proc: subprocess.Popen[bytes] | None = spawn(
            ["rebase", "--quiet", *_PLAIN, "--onto", onto, upstream], wt, env={"GIT_EDITOR": "true"}
        )
        self._done: tuple[int, str] | None = None

    def wait(self) -> None:
        """Wait for git to end, whatever signal comes meanwhile (it is delivered after): a caller
        leaving on an error must not leave git replaying in a worktree that its clean-up restores."""
        if self._done is None:
            with interrupts.finishing():
                self._collect()

    def _collect(self) -> None:
        assert self._proc is not None
        _out, err = self._proc.communicate()
        self._done = (self._proc.returncode, err.decode("utf-8", "surrogateescape"))
        self._proc = None

    def end(self) -> Rebase:
        if self._done is None:
            try:
                self._collect()
            except BaseException:
                self.wait()
                raise
        assert self._done is not None
        code, err = self._done
        if code == 0:
            return Rebase(True, [], "")
        wt = self.wt
        paths = run(["diff", "--name-only", "-z", "--diff-filter=U"], wt, check=False).z()
        # A file/directory conflict parks the file side as 'path~<side>' next to the folder 'path':
        # name the path itself, as merge-tree's parser does.
        named = {p.rsplit("~", 1)[0] if "~" in p and (wt / p.rsplit("~", 1)[0]).is_dir() else p for p in paths}
        rebase_abort(wt)
        # git's own error, not its closing 'Could not apply <sha>...' (which hides why: a commit
        # that could not be signed, a hook that refused)
        lines = err.strip().splitlines()
        said = [ln for ln in lines if ln.startswith(("error:", "fatal:")) and "could not apply" not in ln.lower()]
        last = (
            "; ".join([*said[:2], lines[-1]] if said and lines[-1] not in said else said or lines[-1:]) or "no output"
        )
        return Rebase(False, sorted(named), last, any(s in err for s in NO_SPACE))


def rebase_onto(wt: Path, onto: str, upstream: str) -> Rebase:
    """``Replay``, waited for at once."""
    return Replay(wt, onto, upstream).end()


def rebase_abort(wt: Path) -> None:
    """'git rebase --abort'.  git puts the branch back where the rebase began, even over a commit
    made on it meanwhile (one made as the rebase started, before git detached HEAD: git's last
    step, moving the branch, then failed): such a branch is put back where it was, with its files
    (review 51)."""
    moved = _moved_since_it_began(wt)
    run(["rebase", "--abort"], wt, check=False)
    if moved is not None:
        branch, was, now = moved
        if run(["reset", "--quiet", "--keep", now], wt, check=False).code != 0:
            run(["update-ref", "-m", "wtp: keep a commit made during a rebase", branch, now, was], wt, check=False)


def _moved_since_it_began(wt: Path) -> tuple[str, Sha, Sha] | None:
    """(the branch, where the rebase in progress began, where the branch is now) when it moved."""
    git_dir = git_dir_of(wt)
    for state in ("rebase-merge", "rebase-apply"):
        try:
            name = atomic.read_regular(git_dir / state / "head-name").decode(errors="replace").strip()
            began = atomic.read_regular(git_dir / state / "orig-head").decode(errors="replace").strip()
        except OSError:
            continue
        if not name.startswith("refs/heads/") or not is_object_id(began):
            return None
        now = run(["rev-parse", "--verify", "--quiet", "--end-of-options", name], wt, check=False).out.strip()
        return (name, Sha(began), Sha(now)) if is_object_id(now) and now != began else None
    return None


def replayed_from(wt: Path) -> Sha | None:
    """The commit a rebase that rewrote the branch in ``wt`` started from: git's ORIG_HEAD,
    read without a git call (a rebase with nothing to replay leaves it as it was).  None
    when there is none."""
    try:
        text = atomic.read_regular(git_dir_of(wt) / "ORIG_HEAD").decode(errors="replace").strip()
    except OSError:
        return None
    return Sha(text) if is_object_id(text) else None


def replayed_to(wt: Path, common_dir: Path) -> Sha:
    """The commit the branch checked out in ``wt`` is on, just after a rebase moved it: the
    loose ref git wrote as it moved the branch, read without a git call (``stored_ref``).
    Asked of git for a detached HEAD, and where ``stored_ref`` asks it (a reftable store)."""
    branch = head_names(wt)
    found = stored_ref(wt, common_dir, branch) if branch.startswith("refs/heads/") else None
    return found or Sha(run(["rev-parse", "--verify", "--end-of-options", "HEAD"], wt).out.strip())
