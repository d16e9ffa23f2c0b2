"""Giving up on a request in the forge's queue (review 5, D2): on Ctrl-C or at [land] timeout
wtp takes the request out of the queue through the forge's API and asks it once more, so the
forge never merges later a land wtp said did not happen; merged meanwhile is landed; a request
that cannot be taken out leaves the land 'unknown' until the forge can be asked again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Repo, git, wait_for
from .shamforge import URL1, ShamForge, clone_of, shamforge  # noqa: F401  (the fixture)

KINDS = ("github", "gitlab", "gitea")


def _project(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    timeout: int = 0,
    **kw: object,
) -> tuple[Repo, ShamForge, Path, str]:
    """A clone landing through ``kind`` in queue mode, the check 'ci' required (so the request
    waits in the queue until a test sets it), and task t1 with one commit."""
    sham = shamforge(kind, required={"ci"}, **kw)
    land = f"[land]\ntimeout = {timeout}\n" if timeout else ""
    r = clone_of(sham, tmp_path / "work", monkeypatch, sham.wtp_toml("queue").replace("[land]\n", land or "[land]\n"))
    p = Path(r.wtp("start", "t1").lines[-1])
    r.commit({"t1.txt": "t1\n"}, "t1 work", cwd=p)
    return r, sham, p, r.git("rev-parse", "HEAD", cwd=p)


def _t1(r: Repo) -> dict[str, object]:
    return next(t for t in r.wtp("list", "--all", "--json").json()["tasks"] if t["name"] == "t1")


def _base(sham: ShamForge) -> list[str]:
    return git(sham.bare, "log", "--format=%s", "main").splitlines()


def _queued(sham: ShamForge) -> bool:
    with sham.lock:
        return 1 in sham.pulls and sham.pulls[1].queued is not None


@contextlib.contextmanager
def _lander(r: Repo, sham: ShamForge) -> Iterator[subprocess.Popen[str]]:
    """'wtp land t1' in a session of its own; stopped (Ctrl-C, then SIGKILL) at the end if a
    failing test left it waiting in the queue."""
    proc = r.spawn("land", "t1", "--gate", "true", env=sham.env(), new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def _release_late(sham: ShamForge) -> str:
    """The forge's queue takes the request up after wtp gave up on it: its state then."""
    with sham.lock:
        pr = sham.pulls[1]
        head = pr.head_sha(sham)
    sham.set_status(head, "success", "ci")
    return sham.release(1).state


@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_while_queued_takes_the_request_out_of_the_queue(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    r, sham, p, tip = _project(shamforge, tmp_path, monkeypatch, kind)
    with _lander(r, sham) as lander:
        wait_for(lambda: _queued(sham), "the request in the forge's queue", 120)
        lander.send_signal(signal.SIGINT)
        _, err = lander.communicate(timeout=120)
        assert lander.returncode == 130, err
        said = err.strip().splitlines()[-2:]
    with sham.lock:
        assert (sham.pulls[1].state, sham.pulls[1].queued) == ("open", None)  # out of the queue
    t = _t1(r)
    assert said == [
        f"interrupted: 'main' untouched by this land, task 't1' is active again; {t['note']}",
        "wtp: interrupted",
    ]
    assert (t["state"], t["request"]) == ("active", 1)
    assert t["note"] == (
        f"its {kind} request #1 stays open ({URL1[kind]}): 'wtp land t1' takes it up again, 'wtp rm t1' closes it"
    )
    assert _release_late(sham) == "open"  # the queue no longer holds it: nothing merges behind wtp's back
    assert _base(sham) == ["initial"]
    assert r.git("rev-parse", "wtp/t1") == tip and (p / "t1.txt").read_text() == "t1\n"


@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_before_the_forge_answered_the_enqueue_still_takes_the_request_out(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """The forge queued the request, but its answer has not reached wtp when Ctrl-C comes:
    the request is taken out of the queue all the same, and the land says so at once."""
    r, sham, p, tip = _project(shamforge, tmp_path, monkeypatch, kind)
    sham.hold_queueing = threading.Event()
    try:
        with _lander(r, sham) as lander:
            wait_for(lambda: _queued(sham), "the request in the forge's queue", 120)
            lander.send_signal(signal.SIGINT)
            wait_for(lambda: _out_of_queue(sham), "the request taken out of the forge's queue", 120)
            sham.hold_queueing.set()
            _, err = lander.communicate(timeout=120)
            assert lander.returncode == 130, err
    finally:
        sham.hold_queueing.set()
    assert _release_late(sham) == "open"  # nothing merges behind wtp's back
    assert _base(sham) == ["initial"]
    t = _t1(r)
    assert (t["state"], t["request"]) == ("active", 1), err
    assert r.git("rev-parse", "wtp/t1") == tip and (p / "t1.txt").read_text() == "t1\n"


def _out_of_queue(sham: ShamForge) -> bool:
    with sham.lock:
        return sham.pulls[1].queued is None


@pytest.mark.parametrize("kind", KINDS)
def test_at_land_timeout_the_request_is_taken_out_of_the_queue_and_the_task_blocked(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    r, sham, p, tip = _project(shamforge, tmp_path, monkeypatch, kind, timeout=3)
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 1, out.err
    said = (
        f"wtp: {kind} did not merge request #1 of 't1' (still in the forge's queue after 3s ([land] timeout): "
        f"taken out of the queue): {URL1[kind]}; 'main' is untouched; raise [land] timeout, or run "
        "'wtp land t1' again"
    )
    assert out.err.strip().splitlines()[-1] == said
    assert _t1(r)["state"] == "blocked"
    assert _release_late(sham) == "open" and _base(sham) == ["initial"]
    assert r.git("rev-parse", "wtp/t1") == tip


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_the_queue_merges_while_wtp_takes_it_out_is_landed(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    r, sham, _p, _tip = _project(shamforge, tmp_path, monkeypatch, kind, timeout=3, on_dequeue="merge")
    with _lander(r, sham) as lander:
        wait_for(lambda: _queued(sham), "the request in the forge's queue", 120)
        with sham.lock:
            head = sham.pulls[1].head_sha(sham)
        sham.set_status(head, "success", "ci")  # the queue could merge it now; it does when wtp gives up
        out, err = lander.communicate(timeout=120)
        assert lander.returncode == 0, err
        assert (
            f"still in the forge's queue after 3s ([land] timeout), but {kind} merged request #1 while wtp took it "
            "out of the queue"
        ) in out.splitlines(), out
    assert _t1(r)["state"] == "landed" and sham.pulls[1].state == "merged"
    assert "t1.txt" in git(sham.bare, "ls-tree", "--name-only", "main").split()


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_that_cannot_be_taken_out_of_the_queue_leaves_the_land_unknown_then_landed(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """The forge refuses the dequeue: wtp never says 'not landed' unasked; once the forge
    merges the request, the next land finds it landed."""
    r, sham, _p, _tip = _project(shamforge, tmp_path, monkeypatch, kind, timeout=3, on_dequeue="refuse")
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 1, out.err
    why = {
        "github": "GitHub did not take pull request #1 out of the merge queue (the merge queue is locked)",
        "gitlab": "GitLab did not cancel the automatic merge of !1 (406 Not Acceptable)",
        "gitea": "Gitea answered 423 to DELETE /repos/acme/app/pulls/1/merge (the merge queue is locked)",
    }[kind]
    said = (
        f"wtp: still in the forge's queue after 3s ([land] timeout), and it could not be taken out of it ({why}), "
        f"and 'origin' could not be asked whether it took the push ({why}): whether 't1' landed is not known: "
        "run 'wtp land t1' again once 'origin' answers (or 'wtp doctor --fix'): it asks 'origin' and finishes "
        "the land, or gives the task back"
    )
    assert out.err.strip().splitlines()[-1] == said
    t = _t1(r)
    assert t["state"] == "landing" and t["request"] == 1, t
    assert _queued(sham)
    assert _release_late(sham) == "merged"
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    assert _t1(r)["state"] == "landed"
    assert "t1.txt" in git(sham.bare, "ls-tree", "--name-only", "main").split()


@pytest.mark.parametrize("kind", ["github"])
def test_rm_while_queued_says_how_to_take_the_request_out_then_removes(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """'wtp rm' of a task whose request waits in the forge's queue: it can be merged at any
    moment, so rm cannot take it back itself; it says who holds it and how to stop that land
    (which takes the request out of the queue), rather than 'in a moment'."""
    r, sham, p, _tip = _project(shamforge, tmp_path, monkeypatch, kind)
    with _lander(r, sham) as lander:
        wait_for(lambda: _queued(sham), "the request in the forge's queue", 120)
        out = r.wtp_proc("rm", "t1", env=sham.env())
        assert out.code == 1, out.err
        tasks = json.loads((r.path / ".git" / "wtp" / "state.json").read_text())["tasks"]
        pid = next(t for t in tasks if t["name"] == "t1")["holder"]["pid"]  # the lander's child, which lands
        assert out.err.strip() == (
            "wtp: task 't1' waits in the forge's merge queue (request #1), which may merge it at any moment: stop "
            f"its 'wtp land' (pid {pid}) with Ctrl-C or 'kill {pid}', which takes the request out of the queue, "
            "then run 'wtp rm t1' again"
        )
        assert _queued(sham) and p.is_dir()
        os.kill(pid, signal.SIGTERM)  # as the line says
        _, err = lander.communicate(timeout=120)
        assert lander.returncode == 130, err
    out = r.wtp_proc("rm", "t1", "--force", env=sham.env())  # its commits are on no branch: archived
    assert out.code == 0, out.err
    with sham.lock:
        assert sham.pulls[1].state == "closed"
    assert not p.exists() and _base(sham) == ["initial"]


class _Dropping:
    """t1 landing in queue mode through ``kind``, with no required check: the test moves the
    base and lets the queue take the request up, which drops it while it is behind."""

    def __init__(self, sham: ShamForge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sham = sham
        r = clone_of(sham, tmp_path / "work", monkeypatch, sham.wtp_toml("queue"))
        p = Path(r.wtp("start", "t1").lines[-1])
        r.commit({"t1.txt": "t1\n"}, "t1 work", cwd=p)
        self.proc = r.spawn("land", "t1", "--gate", "true", env=sham.env())
        self.last: str | None = None

    def queued_with(self) -> str | None:
        with self.sham.lock:
            q = self.sham.pulls[1].queued if 1 in self.sham.pulls else None
            return q["sha"] if q else None

    def drop(self, n: int) -> None:
        """Once a new candidate is queued: the base moves, and the queue drops the request."""
        wait_for(lambda: self.queued_with() not in (None, self.last), f"a candidate queued ({n})", 120)
        self.last = self.queued_with()
        self.sham.advance_base(name=f"other{n}.txt")
        assert self.sham.release(1).queued is None  # dropped: behind the base

    def end(self) -> tuple[int, str]:
        try:
            _, err = self.proc.communicate(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode, err


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_request_the_queue_drops_after_the_base_moved_is_rebuilt_not_blocked(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """Review 30: another merge moved the base while the request waited in the queue, and the
    queue dropped it as not up to date: the task was blocked, told to fix that on the forge,
    with the checks' summary for a reason.  A lost race is rebuilt on the new base, the same
    request queued again with the new candidate, and landed."""
    sham = shamforge(kind)
    d = _Dropping(sham, tmp_path, monkeypatch)
    try:
        d.drop(1)
        wait_for(lambda: d.queued_with() not in (None, d.last), "the rebuilt candidate queued again", 120)
        assert sham.release(1).state == "merged"
    finally:
        code, err = d.end()
    assert code == 0, err
    assert "t1 work" in git(sham.bare, "log", "--format=%s", "main").splitlines(), err
    assert "rebuilding (attempt 2/" in err
    assert len(sham.pulls) == 1  # the same request, never a second


def test_a_queue_that_keeps_dropping_the_request_blocks_it_with_its_reason(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 32: a queue that drops the request for a reason of its own while other merges
    move the base was taken for a lost race every time: ten rebuilds, each gated again, then
    'kept moving', the queue's reason never said.  Twice rebuilt; the third drop blocks."""
    d = _Dropping(shamforge("github"), tmp_path, monkeypatch)
    try:
        for n in (1, 2, 3):
            d.drop(n)
    finally:
        code, err = d.end()
    assert code == 1, err
    assert err.count("rebuilding (attempt") == 2, err
    assert "the forge's queue dropped it" in err.strip().splitlines()[-1], err
