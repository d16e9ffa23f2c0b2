"""Restore means files too (issue 24 B): a land given back to its pre-land tip leaves the
worktree's files and index as the user had them, relative to the task's own branch."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Repo, wait_for

WAIT = 60.0


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``path`` exists (the gate is running); fails at once if the lander ended."""

    def there() -> bool:
        assert proc.poll() is None, proc.communicate()
        return path.exists()

    wait_for(there, str(path), WAIT)


def _gate(tmp: Path) -> tuple[str, Path, Path]:
    """A gate that says it started, waits for 'go', then fails (both files outside the worktree)."""
    started, go = tmp / "gate-started", tmp / "gate-go"
    return f"touch '{started}'; while [ ! -e '{go}' ]; do sleep 0.02; done; exit 1", started, go


def _task_and_base(r: Repo) -> tuple[Path, str]:
    """Task 't' with one commit, and a base that moved on (so the candidate differs from the tip)."""
    p = Path(r.wtp("start", "t").lines[-1])
    tip = r.commit({"src/t.js": "task\n", "README.md": "readme by the task\n"}, "t: work", cwd=p)
    r.commit({"VERSION": "1.0.0\n2.0.0\n", "src/base.js": "from the base\n"}, "base moves on")
    return p, tip


def _status(wt: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=wt, capture_output=True, text=True, check=True).stdout


def _fail_gate_while(r: Repo, tmp: Path, edit: Callable[[], None]) -> tuple[int, str, str]:
    gate, started, go = _gate(tmp)
    proc = r.spawn("land", "t", "--gate", gate)
    try:
        _wait_for(started, proc)
        edit()
        go.touch()
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()  # only the lander this test started, by its pid
    return proc.returncode, out, err


def test_a_failed_gate_keeps_edits_staged_unstaged_and_untracked_relative_to_the_task_branch(
    repo: Repo, tmp_path: Path
) -> None:
    p, tip = _task_and_base(repo)

    def edit() -> None:
        repo.write("src/t.js", "task, staged edit\n", cwd=p)
        repo.git("add", "src/t.js", cwd=p)
        repo.write("src/t.js", "task, staged edit, then more\n", cwd=p)
        repo.write("src/app.js", "unstaged edit\n", cwd=p)
        repo.write("notes.txt", "a new file\n", cwd=p)
        repo.write("staged-new.txt", "a new staged file\n", cwd=p)
        repo.git("add", "staged-new.txt", cwd=p)

    code, out, err = _fail_gate_while(repo, tmp_path, edit)
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert repo.git("rev-parse", "wtp/t") == tip
    assert repo.git("rev-parse", "HEAD", cwd=p) == tip
    # The index, against the task's own branch: exactly what the user staged.
    assert _status(p, "diff", "--cached", "--name-status", "--no-renames", "HEAD") == (
        "M\tsrc/t.js\nA\tstaged-new.txt\n"
    )
    assert _status(p, "show", ":src/t.js") == "task, staged edit\n"
    # The files, against the index: exactly what the user changed and did not stage.
    assert _status(p, "diff", "--name-status", "--no-renames") == "M\tsrc/app.js\nM\tsrc/t.js\n"
    assert _status(p, "ls-files", "--others", "--exclude-standard") == "notes.txt\n"
    assert (p / "src/t.js").read_text() == "task, staged edit, then more\n"
    assert (p / "src/app.js").read_text() == "unstaged edit\n"
    assert (p / "notes.txt").read_text() == "a new file\n"
    # Nothing of the base's: its new file is gone, its changed file is the task's again.
    assert not (p / "src/base.js").exists()
    assert (p / "VERSION").read_text() == "1.0.0\n"


def test_an_edit_to_a_file_the_base_changed_is_carried_onto_the_task_branch(repo: Repo, tmp_path: Path) -> None:
    p, tip = _task_and_base(repo)

    def edit() -> None:  # the candidate's VERSION has the base's line; the user adds one above
        repo.write("VERSION", "0.9.0\n1.0.0\n2.0.0\n", cwd=p)

    code, out, err = _fail_gate_while(repo, tmp_path, edit)
    assert code == 1, (out, err)
    assert repo.git("rev-parse", "HEAD", cwd=p) == tip
    assert _status(p, "diff", "--cached", "HEAD") == ""
    assert (p / "VERSION").read_text() == "0.9.0\n1.0.0\n"  # the user's line, without the base's
    assert _status(p, "status", "--porcelain", "--untracked-files=all") == " M VERSION\n"


def test_edits_that_clash_with_undoing_the_rebase_are_kept_under_a_ref_named_in_one_line(
    repo: Repo, tmp_path: Path
) -> None:
    p, tip = _task_and_base(repo)

    def edit() -> None:  # the very line the base added: it cannot go back without it
        repo.write("VERSION", "1.0.0\n2.0.0 edited\n", cwd=p)
        repo.write("notes.txt", "a new file\n", cwd=p)

    code, out, err = _fail_gate_while(repo, tmp_path, edit)
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert repo.git("rev-parse", "HEAD", cwd=p) == tip
    assert (p / "VERSION").read_text() == "1.0.0\n"
    assert not (p / "src/base.js").exists()
    lines = [line for line in err.splitlines() if "refs/wtp/" in line]
    assert len(lines) == 1, err
    cmd = lines[0].split("bring them back with '")[1].rstrip("'")  # the command it names, run as given
    assert cmd.startswith(f"git -C {p} stash apply"), lines[0]
    subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert "2.0.0 edited" in (p / "VERSION").read_text()
    assert (p / "notes.txt").read_text() == "a new file\n"


def test_a_commit_on_a_squashed_candidate_keeps_the_pre_land_commits_after_the_next_land(
    repo: Repo, tmp_path: Path
) -> None:
    """The branch keeps wtp's squash and the new commit on it; the task's own commits were
    kept only by the backup ref, which the next land replaced: they must outlive it."""
    p, tip = _task_and_base(repo)
    first = repo.git("rev-parse", "HEAD~1", cwd=p)  # a second commit of the task, below its tip
    repo.git("reset", "-q", "--hard", first, cwd=p)
    own = [repo.commit({"src/t1.js": "one\n"}, "t: one", cwd=p), repo.commit({"src/t2.js": "two\n"}, "t: two", cwd=p)]
    gate, started, go = _gate(tmp_path)
    proc = repo.spawn("land", "t", "--strategy", "squash", "--gate", gate.replace("exit 1", "true"))
    try:
        _wait_for(started, proc)
        late = repo.commit({"src/late.js": "late\n"}, "t: late", cwd=p)
        go.touch()
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "kept on the branch, untested" in err, err
    assert repo.git("rev-parse", "wtp/t") == late
    # blocked (red on the task's tree, not on the base's): the backup ref now holds 'late'
    again = repo.wtp_proc("land", "t", "--gate", "test ! -e src/late.js")
    assert again.code == 1, again
    for c in own:
        assert repo.git("for-each-ref", "--contains", c) != "", f"commit {c} of the task is lost"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only; skipped where it cannot be mounted), unmounted afterwards."""
    where = tmp_path / "small-disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_during_the_rebase_puts_the_worktree_back_and_land_works_with_room(
    repo: Repo, small_disk: Path
) -> None:
    repo.commit({".wtp.toml": f'worktree_root = "{small_disk}"\n'}, "worktrees on the small disk")
    p = Path(repo.wtp("start", "t").lines[-1])
    assert p.parent == small_disk
    tip = repo.commit({"task.txt": "the task's own file\n", "README.md": "readme by the task\n"}, "t: work", cwd=p)
    repo.commit({"big.txt": "x" * 600_000 + "\n"}, "the base gains a big file")
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 100_000))  # 100 kB left: big.txt cannot fit
    try:
        out = repo.wtp_proc("land", "t", "--gate", "true")
        assert out.code == 1, out
        assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1, out.err
        assert "is full" in out.err and "wtp land t" in out.err, out.err
        assert "commit" not in out.err.replace("commits", ""), out.err  # no advice to commit what the rebase did
        # The worktree is the task's again: its files, nothing of the base's, nothing to commit.
        assert repo.git("rev-parse", "HEAD", cwd=p) == tip
        assert _status(p, "status", "--porcelain", "--untracked-files=all") == ""
        assert (p / "task.txt").read_text() == "the task's own file\n"
        assert not (p / "big.txt").exists()
    finally:
        filler.unlink()
    again = repo.wtp_proc("land", "t", "--gate", "true")
    assert again.code == 0, again
    assert repo.git("show", "main:task.txt") == "the task's own file"


def test_a_land_interrupted_during_its_gate_keeps_the_edits_made_meanwhile(repo: Repo, tmp_path: Path) -> None:
    p, tip = _task_and_base(repo)
    gate, started, go = _gate(tmp_path)
    proc = repo.spawn("land", "t", "--gate", gate)
    try:
        _wait_for(started, proc)
        repo.write("src/t.js", "task, staged edit\n", cwd=p)
        repo.git("add", "src/t.js", cwd=p)
        repo.write("src/app.js", "unstaged edit\n", cwd=p)
        proc.send_signal(signal.SIGINT)  # Ctrl-C, to the lander this test started
        _, err = proc.communicate(timeout=WAIT)
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert repo.git("rev-parse", "HEAD", cwd=p) == tip
    assert _status(p, "diff", "--cached", "--name-status", "HEAD") == "M\tsrc/t.js\n"
    assert _status(p, "diff", "--name-status") == "M\tsrc/app.js\n"
    assert not (p / "src/base.js").exists() and (p / "VERSION").read_text() == "1.0.0\n"
