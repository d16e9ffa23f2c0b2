"""Two clones landing a task of the same name through a forge (review 5, D1): the head branch
'wtp/<name>' is one per name on the forge, so the second clone must neither push over the
first one's head branch nor take over its request, and a request merged with a head that is
not the land's own candidate is never taken for its land."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Repo, git, wait_for
from .shamforge import URL1, ShamForge, clone_of, shamforge  # noqa: F401  (the fixture)

KINDS = ("github", "gitlab", "gitea")


def _task(r: Repo, name: str, file: str, text: str) -> tuple[Path, str]:
    p = Path(r.wtp("start", name).lines[-1])
    r.commit({file: text}, f"{name} work in {r.path.name}", cwd=p)
    return p, r.git("rev-parse", "HEAD", cwd=p)


@contextlib.contextmanager
def _held_land(r: Repo, sham: ShamForge, tmp_path: Path, name: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """'wtp land name' in a process of its own, held right after its request was opened; let
    go and waited for at the end even when the test fails (no lander is left held)."""
    hold = tmp_path / f"hold-{r.path.name}"
    env = {"WTP_TEST_HOLD_AT": "land:forge-opened", "WTP_TEST_HOLD_FILE": str(hold), **sham.env()}
    proc = r.spawn("land", name, "--gate", "true", env=env)
    try:
        wait_for(Path(f"{hold}.reached").exists, "the land held after its request opened", 120)
        yield proc, hold
    finally:
        hold.touch()
        if proc.poll() is None:
            try:
                proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _task_json(r: Repo, name: str) -> dict[str, object]:
    return next(t for t in r.wtp("list", "--all", "--json").json()["tasks"] if t["name"] == name)


def _files(sham: ShamForge) -> dict[str, str]:
    names = git(sham.bare, "ls-tree", "--name-only", "main").split()
    return {n: git(sham.bare, "show", f"main:{n}") for n in names}


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_clone_neither_pushes_over_nor_takes_over_the_request_of_the_first(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    sham = shamforge(kind)
    for k, v in sham.env().items():
        monkeypatch.setenv(k, v)
    a, b = clone_of(sham, tmp_path / "a"), clone_of(sham, tmp_path / "b")
    _task(a, "t1", "t1.txt", "work of clone a\n")
    pb, tip_b = _task(b, "t1", "t1-b.txt", "work of clone b\n")
    with _held_land(a, sham, tmp_path, "t1") as (lander, hold):
        head_a = sham.tip("wtp/t1")
        url = URL1[kind]

        out = b.wtp("land", "t1", "--gate", "true")
        assert out.code == 1, out.err
        said = (
            f"wtp: another clone lands a task named 't1' through the same head branch 'wtp/t1' ({kind} request #1: "
            f"{url}); 'main' is untouched by this land and 't1' keeps its branch and worktree: run 'wtp land t1' "
            "again once that request is merged or closed, or start this work under another task name"
        )
        assert out.err.strip().splitlines()[-1] == said
        assert sham.tip("wtp/t1") == head_a  # not pushed over
        assert list(sham.pulls) == [1] and sham.pulls[1].state == "open"  # not taken over, not merged
        t = _task_json(b, "t1")
        assert (t["state"], t["path"], t["request"]) == ("blocked", str(pb), None)
        assert b.git("rev-parse", "wtp/t1") == tip_b and (pb / "t1-b.txt").read_text() == "work of clone b\n"

        hold.touch()
        _, err = lander.communicate(timeout=120)
        assert lander.returncode == 0, err
        assert _files(sham) == {"README.md": "sham", "t1.txt": "work of clone a"}
        assert _task_json(a, "t1")["state"] == "landed"

    # The first clone's request is merged: the second clone's t1 lands now, through a request of its own.
    out = b.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    assert _files(sham) == {"README.md": "sham", "t1.txt": "work of clone a", "t1-b.txt": "work of clone b"}
    assert [(n, p.state) for n, p in sorted(sham.pulls.items())] == [(1, "merged"), (2, "merged")]


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_merged_with_someone_elses_head_is_not_this_land(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """Someone pushes to the head branch of an open request and merges it while the land
    waits to merge: the land is blocked (not told 'landed'), its branch and worktree kept."""
    sham = shamforge(kind)
    for k, v in sham.env().items():
        monkeypatch.setenv(k, v)
    a = clone_of(sham, tmp_path / "a")
    pa, tip = _task(a, "t1", "t1.txt", "work of clone a\n")
    with _held_land(a, sham, tmp_path, "t1") as (lander, hold):
        cand = sham.tip("wtp/t1") or ""
        other = sham.push_head("wtp/t1")
        with sham.lock:
            assert sham.merge(sham.pulls[1], other, "merge")[0] == ""
        hold.touch()
        _, err = lander.communicate(timeout=120)
        assert lander.returncode == 1, err
        said = (
            f"wtp: {kind} merged request #1 of 't1' with the head {other[:12]}, not with the candidate wtp gated "
            f"({cand[:12]}): someone else pushed to its head branch 'wtp/t1' (another clone landing a task of the "
            f"same name?), so 't1' is not landed; its branch and worktree are kept: see {URL1[kind]}, then run "
            "'wtp land t1' again"
        )
        assert err.strip().splitlines()[-1] == said, err
    t = _task_json(a, "t1")
    assert (t["state"], t["path"]) == ("blocked", str(pa))
    assert a.git("rev-parse", "wtp/t1") == tip and (pa / "t1.txt").read_text() == "work of clone a\n"
    assert "t1.txt" not in _files(sham)


def test_recovery_does_not_take_a_request_merged_with_someone_elses_head_for_the_land(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash variant: the land is killed after its request opened; someone pushes to its
    head branch and merges the request; the next command finds the land not landed."""
    sham = shamforge("github")
    for k, v in sham.env().items():
        monkeypatch.setenv(k, v)
    a = clone_of(sham, tmp_path / "a")
    pa, tip = _task(a, "t1", "t1.txt", "work of clone a\n")
    killed = a.wtp_proc("land", "t1", "--gate", "true", env={"WTP_TEST_KILL_AT": "land:forge-opened", **sham.env()})
    assert killed.code == -9, killed.err
    other = sham.push_head("wtp/t1")
    with sham.lock:
        assert sham.merge(sham.pulls[1], other, "merge")[0] == ""
    out = a.wtp("doctor", "--fix", "--json")
    t = _task_json(a, "t1")
    assert (t["state"], t["path"], t["request"]) == ("blocked", str(pa), None), out.out + out.err
    assert t["note"] == (
        "its request #1 was merged with another head than its candidate (someone else pushed to its head "
        "branch): its own work is not on the base; land it again for a new request"
    )
    assert a.git("rev-parse", "wtp/t1") == tip and "t1.txt" not in _files(sham)
    # Landed again: a new request (the merged one's head branch is a leftover the forge keeps).
    out = a.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    assert _files(sham)["t1.txt"] == "work of clone a"
    assert [(n, p.state) for n, p in sorted(sham.pulls.items())] == [(1, "merged"), (2, "merged")]


def test_a_head_branch_no_request_names_is_not_pushed_over(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'wtp/t1' exists on the forge with no request (another clone between its push and its
    request, or a leftover): the land is blocked and says how to clear a leftover; cleared,
    it lands."""
    sham = shamforge("github")
    for k, v in sham.env().items():
        monkeypatch.setenv(k, v)
    a = clone_of(sham, tmp_path / "a")
    pa, tip = _task(a, "t1", "t1.txt", "work of clone a\n")
    theirs = sham.push_head("wtp/t1")
    out = a.wtp("land", "t1", "--gate", "true")
    assert out.code == 1, out.err
    assert out.err.strip().splitlines()[-1] == (
        f"wtp: the head branch 'wtp/t1' on github holds {theirs[:12]}, which no request names: another clone may "
        "be about to open one for its own task 't1'; 'main' is untouched and 't1' keeps its branch and worktree; "
        "if that branch is a leftover, delete it ('git push origin --delete wtp/t1'), then run 'wtp land t1' again"
    )
    assert sham.tip("wtp/t1") == theirs and sham.pulls == {}
    assert a.git("rev-parse", "wtp/t1") == tip and _task_json(a, "t1")["path"] == str(pa)
    git(a.path, "push", "-q", "origin", "--delete", "wtp/t1")
    out = a.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    assert _files(sham)["t1.txt"] == "work of clone a"
