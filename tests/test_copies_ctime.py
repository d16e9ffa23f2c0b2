"""What setup.copy copied is told from the user's edits by change time too (copies.py): kind,
size and modification time alone missed an edit of the same size whose time was put back
('touch -r', a 'mv' of a file given the old time) or that fell in the copy's timestamp tick,
and a plain 'wtp rm' deleted it.  Real git, real files, the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Repo

DATA = {"data/seed.csv": "seed\n", "data/sub/more.csv": "1,2,3\n", "data/sub/deep/last.csv": "last\n"}


def _project(repo: Repo) -> None:
    """setup.copy of a '.env' and a 'data/' folder of several files, all ignored."""
    repo.commit({".gitignore": ".env\ndata/\n", ".wtp.toml": '[setup]\ncopy = [".env", "data"]\n'}, "copy")
    repo.write(".env", "KEY=main\n")
    for rel, text in DATA.items():
        repo.write(rel, text)


def _start(repo: Repo, name: str) -> Path:
    out = repo.wtp("start", name)
    assert out.code == 0, out.err
    return Path(out.lines[-1])


def _record(repo: Repo, name: str) -> Path:
    return repo.path / ".git" / "wtp" / "copied" / f"{name}.json"


def _refused(repo: Repo, name: str, rel: str) -> None:
    out = repo.wtp("rm", name)
    assert out.code == 1, out.err
    assert out.err.startswith(f"wtp: task '{name}' has 1 ignored file that is not a build output ({rel}): "), out.err


@pytest.mark.parametrize(("how", "rel"), [("touch -r", ".env"), ("mv over", ".env"), ("touch -r", "data/sub/more.csv")])
def test_a_same_size_edit_with_its_time_put_back_is_the_users(repo: Repo, how: str, rel: str) -> None:
    """An edit of the same size whose modification time is put back to the copy's matches the
    record in kind, size and time: the guard took it for the copy and a plain rm deleted it.
    Its change time is past the copy's: refused, and archived by --force."""
    _project(repo)
    p = _start(repo, "a")
    seen = json.loads(_record(repo, "a").read_text())["files"][rel]
    was = (p / rel).read_text()
    edited = was.replace(was[0], "X", 1)
    assert len(edited) == len(was) and edited != was
    if how == "mv over":  # written beside it, given the copy's time, renamed over it
        (p / (rel + ".new")).write_text(edited)
        os.utime(p / (rel + ".new"), ns=(seen[2], seen[2]))
        os.replace(p / (rel + ".new"), p / rel)
    else:
        (p / rel).write_text(edited)
        os.utime(p / rel, ns=(seen[2], seen[2]))
    st = os.lstat(p / rel)
    assert ["f", st.st_size, st.st_mtime_ns] == seen  # as recorded: only the change time tells
    _refused(repo, "a", rel)
    assert (p / rel).read_text() == edited
    out = repo.wtp("rm", "a", "--force")
    assert out.code == 0, out.err
    assert not p.exists()
    assert repo.git("show", f"refs/wtp/archive/a:{rel}") + "\n" == edited


def test_an_untouched_copy_goes_with_a_plain_rm(repo: Repo) -> None:
    """What the copy put there, read but not changed, is no one's work: no refusal, no archive."""
    _project(repo)
    p = _start(repo, "a")
    assert {rel: (p / rel).read_text() for rel in DATA} == DATA and (p / ".env").read_text() == "KEY=main\n"
    assert json.loads(_record(repo, "a").read_text())["until"].keys() == {".env", "data"}
    out = repo.wtp("rm", "a")
    assert out.code == 0, out.err
    assert not p.exists() and not _record(repo, "a").exists()
    assert repo.git("for-each-ref", "refs/wtp/") == ""


def test_a_record_made_before_change_times_is_read_as_before(repo: Repo) -> None:
    """A task started by an earlier wtp has a record without change times: its untouched copy
    still goes with a plain rm, and an edit that changed the size is still refused."""
    _project(repo)
    for name in ("a", "b"):
        p = _start(repo, name)
        data = json.loads(_record(repo, name).read_text())
        del data["until"]
        _record(repo, name).write_text(json.dumps(data))
    out = repo.wtp("rm", "a")
    assert out.code == 0, out.err
    (p / "data" / "seed.csv").write_text("seed, and an edit\n")
    _refused(repo, "b", "data/seed.csv")
    assert (p / "data" / "seed.csv").read_text() == "seed, and an edit\n"


def test_a_same_size_edit_in_a_repository_setup_copy_brought_is_the_users(repo: Repo) -> None:
    """Review 43: a repository inside a copied folder, as the main worktree has it, is not the
    task's (copies.as_in_main); an edit of a file its own .gitignore hides, same size, time
    put back, was taken for the copy and a plain rm deleted it."""
    _project(repo)
    lib = repo.path / "data" / "lib"
    lib.mkdir(parents=True)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "lib"]):
        repo.write("data/lib/.gitignore", "local.cfg\n")
        repo.write("data/lib/m.py", "code\n")
        repo.git(*args, cwd=lib)
    repo.write("data/lib/local.cfg", "secret=1\n")
    p = _start(repo, "a")
    cfg = p / "data" / "lib" / "local.cfg"
    was = cfg.stat().st_mtime_ns
    cfg.write_text("secret=2\n")
    os.utime(cfg, ns=(was, was))
    out = repo.wtp("rm", "a")
    assert out.code == 1 and "the nested repository 'data/lib'" in out.err, out.err
    assert cfg.read_text() == "secret=2\n"  # nothing deleted
    # --force keeps it, its ignored file too (the nested repository's archive held only what
    # 'git status' shows, and its ignored files were deleted unsaid)
    assert repo.wtp("rm", "a", "--force").code == 0
    assert repo.git("show", "refs/wtp/archive/a:data/lib/local.cfg") == "secret=2"
