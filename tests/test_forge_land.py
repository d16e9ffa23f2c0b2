"""Landing through a forge (issue 26) with the real CLI against the stand-in forge
(tests/shamforge.py): a protected base, pull/merge requests, the wtp/gate status, the
head-SHA guarded merge, the forge's queue, a moved base, a red gate, a closed request,
crashes after the request was opened and after the merge, and a missing token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Repo, git, wait_for
from .shamforge import ShamForge, clone_of, shamforge  # noqa: F401  (the fixture)

KINDS = ("github", "gitlab", "gitea")


def _project(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    merge: str = "direct",
    **kw: object,
) -> tuple[Repo, ShamForge]:
    sham = shamforge(kind, **kw)
    return clone_of(sham, tmp_path / "work", monkeypatch, sham.wtp_toml(merge)), sham


def _task(r: Repo, name: str) -> Path:
    p = Path(r.wtp("start", name).lines[-1])
    r.commit({f"{name}.txt": f"{name}\n"}, f"{name} work", cwd=p)
    return p


def _base_log(r: Repo, sham: ShamForge) -> list[str]:
    return git(sham.bare, "log", "--format=%s", "main").splitlines()


@pytest.mark.parametrize("kind", KINDS)
def test_three_tasks_land_through_requests_in_order(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, kind)
    for name in ("t1", "t2", "t3"):
        _task(r, name)
    for name in ("t1", "t2", "t3"):
        out = r.wtp("land", name, "--gate", "true", "--json")
        assert out.code == 0, out.err
        assert out.json()["state"] == "landed"
        assert "request #" in out.err
    log = _base_log(r, sham)
    assert [s for s in log if s.endswith("work")][:3] == ["t3 work", "t2 work", "t1 work"]
    assert len(git(sham.bare, "rev-list", "--min-parents=2", "main").split()) == 0  # linear
    pulls = sorted(sham.pulls.values(), key=lambda p: p.number)
    assert [p.head for p in pulls] == ["wtp/t1", "wtp/t2", "wtp/t3"]  # one request each, never a second
    for p in pulls:
        assert p.state == "merged"
        assert sham.latest(p.head_sha(sham)).get("wtp/gate") == "success"  # the gated candidate carries the verdict
    assert all(sham.tip(f"wtp/{n}") is None for n in ("t1", "t2", "t3"))  # head branches deleted
    tasks = {t["name"]: t for t in r.wtp("list", "--all", "--json").json()["tasks"]}
    assert all(tasks[n]["state"] == "landed" and tasks[n]["path"] is None for n in ("t1", "t2", "t3"))
    assert [tasks[n]["request"] for n in ("t1", "t2", "t3")] == [p.number for p in pulls]


def test_a_direct_push_to_the_protected_base_is_refused_and_suggests_via(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    r.write(".wtp.toml", "max_active = 5\n")  # via = "push"
    # The remote's URL names GitHub; git reaches the stand-in's repository behind it.
    r.git("remote", "set-url", "origin", "https://github.com/acme/app.git")
    r.git("config", f"url.{sham.url}.insteadOf", "https://github.com/acme/app.git")
    _task(r, "t1")
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 1
    assert "protected branch hook declined" in out.err
    assert out.err.rstrip().endswith('set [land] via = "github"'), out.err
    assert _base_log(r, sham) == ["initial"]


def test_a_base_moved_by_another_merge_while_the_gate_runs_is_rebuilt_and_landed(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The base moves on the forge while t1's gate runs (another merge): the guarded merge
    answers 'moved', wtp rebuilds on the new base, gates that candidate, and lands it; the
    forge never merges a head that was not gated on its final parent."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    _task(r, "t1")
    runs = tmp_path / "runs"
    flag = tmp_path / "moved-once"
    # The gate's first run asks the test (through a file) to move the base, and waits for it.
    ask, done = tmp_path / "ask", tmp_path / "done"
    gate = f"echo run >> {runs}; if [ ! -e {flag} ]; then touch {flag} {ask}; while [ ! -e {done} ]; do sleep 0.02; done; fi"
    import threading

    def mover() -> None:
        wait_for(ask.exists, "the gate's first run")
        sham.advance_base()
        done.touch()

    th = threading.Thread(target=mover)
    th.start()
    out = r.wtp("land", "t1", "--gate", gate)
    th.join()
    assert out.code == 0, out.err
    assert len(runs.read_text().splitlines()) == 2  # gated again on the moved base
    log = _base_log(r, sham)
    assert log[:2] == ["t1 work", "another change"] or log[0] == "t1 work"
    merged = [p for p in sham.pulls.values() if p.state == "merged"]
    assert len(merged) == 1 and sham.latest(merged[0].head_sha(sham)).get("wtp/gate") == "success"
    # what the forge merged is exactly the candidate that was gated last: its parent is the moved base
    head = merged[0].head_sha(sham)
    assert git(sham.bare, "rev-parse", f"{head}^") == git(sham.bare, "rev-parse", "main~1")


def test_a_red_gate_opens_no_request_and_a_closed_request_blocks(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github", merge="queue", required={"ci"})
    _task(r, "t1")
    out = r.wtp("land", "t1", "--gate", "test ! -e t1.txt")  # red on t1's candidate only (the base passes)
    assert out.code == 1 and "gate 'test ! -e t1.txt' exited 1" in out.err
    assert sham.pulls == {} and _base_log(r, sham) == ["initial"]
    # Queue mode: the request waits in the forge's queue; closed there, the task is blocked.
    import threading

    def close_when_queued() -> None:
        wait_for(lambda: any(p.queued for p in sham.pulls.values()), "the request in the forge's queue")
        sham.close(next(p.number for p in sham.pulls.values() if p.queued))

    closer = threading.Thread(target=close_when_queued)
    closer.start()
    out = r.wtp("land", "t1", "--gate", "true")
    closer.join()
    assert out.code == 1, out.err
    assert "request #1" in out.err and "closed" in out.err, out.err
    t = r.wtp("list", "--json").json()["tasks"][0]
    assert t["state"] == "blocked" and _base_log(r, sham) == ["initial"]
    assert t["request"] == 1


@pytest.mark.parametrize("step", ["land:forge-opened", "land:forge-merged"])
def test_a_land_killed_after_the_request_opened_or_merged_is_finished_by_the_next(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    _task(r, "t1")
    killed = r.wtp_proc("land", "t1", "--gate", "true", env={"WTP_TEST_KILL_AT": step, **sham.env()})
    assert killed.code == -9, killed.err
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 0, out.err
    assert len(sham.pulls) == 1  # never a second request
    merges = sham.calls("PUT", "/merge")
    assert len(merges) == 1  # never merged twice
    assert _base_log(r, sham)[0] == "t1 work"
    assert r.wtp("list", "--all", "--json").json()["tasks"][0]["state"] == "landed"
    assert sham.tip("wtp/t1") is None  # review 30: the recovered land left its head branch on the forge
    assert r.git("for-each-ref", "refs/remotes/origin/wtp/") == ""  # nor a tracking ref of it here


def test_a_missing_token_is_one_line_naming_the_variable(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.delenv("GH_TOKEN", raising=False)
    import shutil

    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(only_git))  # no 'gh' to ask either
    _task(r, "t1")
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 2
    assert out.err.count("\n") == 1 and "GITHUB_TOKEN" in out.err and sham.token not in out.err
    assert r.wtp("list", "--json").json()["tasks"][0]["state"] == "active"


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [(401, 2, "GITHUB_TOKEN"), (404, 2, "[forge] repo"), (500, 1, "500"), (0, 3, "did not answer")],
)
def test_a_forge_that_refuses_or_fails_is_one_line_and_loses_nothing(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: int,
    words: str,
) -> None:
    """401, 404, a 5xx past the retries, and a forge that never answers (status 0: a stall,
    under [remote] timeout = 2): one line, the documented exit code, no traceback, the task
    back to active with its commit, the base untouched."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    r.write(".wtp.toml", r.path.joinpath(".wtp.toml").read_text() + "\n[remote]\ntimeout = 2\n")
    p = _task(r, "t1")
    tip = r.git("rev-parse", "HEAD", cwd=p)
    if status:
        sham.fail(status, times=50, match="/pulls", message=f"sham says {status}")
    else:
        sham.stall(times=50, match="/pulls")
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == code, out.err
    last = out.err.strip().splitlines()[-1]
    assert last.startswith("wtp: ") and words in last and "Traceback" not in out.err, out.err
    assert sham.token not in out.err
    t = r.wtp("list", "--json").json()["tasks"][0]
    assert t["state"] == "active"
    assert r.git("rev-parse", "wtp/t1") == tip  # given back to its pre-land tip
    assert _base_log(r, sham) == ["initial"]


@pytest.mark.parametrize("reflog", [True, False], ids=["reflog", "no-reflog"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_head_branch_left_by_this_clones_own_failed_open_does_not_wedge_the_task(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    reflog: bool,
) -> None:
    """Review 30: the candidate was pushed to the head branch, then opening the request failed
    (a 500; a kill between the two does the same): every later land was refused for a head
    branch "no request names", until someone deleted it by hand.  The land records each
    candidate it pushes (refs/wtp/forge-pushed/), so the next land pushes over its own leftover
    and lands; the task branch's reflog, which told it before, need not be kept
    (core.logAllRefUpdates = false brought the wedge back)."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, kind)
    if not reflog:
        r.git("config", "core.logAllRefUpdates", "false")
    _task(r, "t1")
    if not reflog:
        r.git("reflog", "expire", "--expire=now", "--all")
    sham.fail(500, times=1, match="POST")  # the first POST opens the request
    failed = r.wtp("land", "t1", "--gate", "true")
    assert failed.code == 1 and "the forge failed" in failed.err, failed.err
    left = sham.tip("wtp/t1")
    assert left is not None and not sham.pulls  # pushed, never opened
    again = r.wtp("land", "t1", "--gate", "true")
    assert again.code == 0, again.err
    assert _base_log(r, sham)[0] == "t1 work"
    assert [p.state for p in sham.pulls.values()] == ["merged"] and sham.tip("wtp/t1") is None
    assert r.git("for-each-ref", "refs/wtp/forge-pushed/") == ""  # the records go with the head branch


@pytest.mark.parametrize("kind", KINDS)
def test_a_forge_that_says_merged_with_a_commit_the_base_lacks_is_not_a_landing(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """Review 30: the forge answered the merge with a commit that is not on the base (a lie,
    or a merge not visible yet): wtp warned, said 'landed', exit 0, and removed the worktree
    and branch, the commit kept by nothing but a stale tracking ref."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, kind)
    p = _task(r, "t1")
    tip = r.git("rev-parse", "HEAD", cwd=p)
    fake = "1234567890abcdef1234567890abcdef12345678"

    def lie(self: ShamForge, pr: object, guard: str | None, style: str) -> tuple[str, str]:
        pr.state, pr.merge_sha, pr.merged_head, pr.queued = "merged", fake, self.tip(pr.head), None  # type: ignore[attr-defined]
        return "", fake

    monkeypatch.setattr(ShamForge, "merge", lie)
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 1, out.err
    assert "says it merged request #1 of 't1' as " in out.err, out.err  # GitLab's fast-forward names another
    assert "but origin/main does not hold that commit after a fetch" in out.err, out.err
    t = r.wtp("list", "--all", "--json").json()["tasks"][0]
    assert t["state"] != "landed" and t["commit"] is None, t
    assert p.is_dir() and r.git("rev-parse", "wtp/t1") != "" and _base_log(r, sham) == ["initial"]
    assert r.wtp("rm", "t1").code == 1  # its commit is on no branch: not removed unforced
    assert tip in r.git("rev-list", "wtp/t1").split()  # kept where it was
    assert t["state"] == "blocked" and "check 'main' on the forge" in t["note"], t
    monkeypatch.undo()
    monkeypatch.setenv("GITHUB_TOKEN" if kind == "github" else f"{kind.upper()}_TOKEN", sham.token)
    again = r.wtp("land", "t1", "--gate", "true")  # not a wedge: a new request lands it
    assert again.code == 0, again.err
    assert _base_log(r, sham)[0].startswith("t1 work") or "t1 work" in _base_log(r, sham)


def test_a_killed_land_whose_merge_the_base_lost_is_landed_again_not_stuck(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 32: the forge merged the request, the land was killed, and someone rewrote the
    base to before the merge: every 'wtp land' and 'wtp doctor --fix' said 'asks it again' and
    failed, for good.  The merge the base lacks is not a landing: the land says so, gives the
    task back, and lands it through a new request."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    _task(r, "t1")
    before = git(sham.bare, "rev-parse", "main")
    killed = r.wtp_proc("land", "t1", "--gate", "true", env={"WTP_TEST_KILL_AT": "land:forge-merged", **sham.env()})
    assert killed.code == -9, killed.err
    git(sham.bare, "update-ref", "refs/heads/main", before)  # the base rewritten past the merge
    out = r.wtp("land", "t1", "--gate", "true")  # says so, rolls it back, and lands it through a new request
    assert out.code == 0 and "does not hold that merge: it is not landed" in out.err, out.err
    assert [p.state for p in sorted(sham.pulls.values(), key=lambda p: p.number)] == ["merged", "merged"]
    assert "t1 work" in _base_log(r, sham)[0]


def test_a_committed_api_on_another_host_than_the_remote_gets_no_token_until_trusted(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 30: the committed [forge] api decided where the token went, whatever the remote:
    a change to it (by a person, or an agent) sent GITHUB_TOKEN to another host at the next
    land.  Here the remote is github.com (rewritten to the stand-in's repository by git) and
    the api another host: refused until the user trusts it, and nothing is sent before."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    r.git("remote", "set-url", "origin", "https://github.com/acme/app.git")
    r.git("config", f"url.{sham.url}.insteadOf", "https://github.com/acme/app.git")
    _task(r, "t1")
    out = r.wtp("land", "t1", "--gate", "true")
    assert out.code == 1, out.err
    assert out.err.strip().splitlines()[-1] == (
        f"wtp: [forge] api in {r.path / '.wtp.toml'} sends your forge token to 127.0.0.1, which is not the host of "
        "the remote (github.com): review it, then run 'wtp trust'"
    )
    assert sham.calls() == []  # not one call, so no token
    assert f"trusted forge.api: {sham.api}" in r.wtp("trust").out
    landed = r.wtp("land", "t1", "--gate", "true")
    assert landed.code == 0, landed.err
    assert _base_log(r, sham)[0] == "t1 work"


def test_queue_mode_waits_for_the_forge_and_wtp_queue_shows_the_request(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github", merge="queue", required={"ci"})
    _task(r, "t1")
    lander = r.spawn("land", "t1", "--gate", "true", env=sham.env())

    def entry() -> dict[str, object]:
        entries = r.wtp("queue", "--json").json()["entries"]
        return entries[0] if entries else {}

    wait_for(lambda: any(p.queued for p in sham.pulls.values()), "the request in the forge's queue")
    wait_for(lambda: entry().get("request") == 1, "the request's number in 'wtp queue'")
    shown = entry()
    assert (shown["request_state"], shown["task"]) == ("open", "t1")
    cand = sham.pulls[1].head_sha(sham)
    sham.set_status(cand, "success", "ci")
    sham.release(1)
    out, err = lander.communicate(timeout=120)
    assert lander.returncode == 0, err
    log = _base_log(r, sham)
    assert log[0] == "Merge pull request #1 from wtp/t1" and "t1 work" in log  # the queue merges (a ruleset setting)
    assert r.wtp("list", "--all", "--json").json()["tasks"][0]["request"] == 1


@pytest.mark.parametrize("how", [("--mode", "speculative"), ("--mode", "batch"), ("--detach",)])
def test_landers_at_once_and_detached_land_through_the_forge_one_request_each(
    shamforge: Callable[..., ShamForge],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: tuple[str, ...],
) -> None:
    """Every mode and --detach work the same way through a forge: the conductor stacks the
    waiting landers, the publication point merges one request at a time, and a candidate
    whose parent the forge rewrote is rebuilt (its tree was gated: not gated again)."""
    r, sham = _project(shamforge, tmp_path, monkeypatch, "github")
    names = ["t1", "t2", "t3"]
    for n in names:
        _task(r, n)
    procs = [r.spawn("land", n, "--gate", "true", *how, env=sham.env()) for n in names]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    wait_for(
        lambda: [t["state"] for t in r.wtp("list", "--all", "--json").json()["tasks"]] == ["landed"] * 3,
        "every task landed",
        300,  # three detached landers, each several processes: generous for a loaded machine
    )
    log = _base_log(r, sham)
    assert sorted(s for s in log if s.endswith("work")) == ["t1 work", "t2 work", "t3 work"]
    assert sorted(p.head for p in sham.pulls.values()) == ["wtp/t1", "wtp/t2", "wtp/t3"]
    assert all(p.state == "merged" for p in sham.pulls.values())
