"""Starting a task on the work of a task that is landing (stacking.py): a task whose declared
paths collide only with a task in the land queue starts on that task's work instead of
waiting for it to land, lands only its own commits, and never before or without the task
below it.  A landing task takes no slot.  Real landers, real gates, a bare remote."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Repo, wait_for
from .test_agents import edit, hook


@pytest.fixture(autouse=True)
def _let_go(tmp_path: Path) -> Iterator[None]:
    """What a failed assertion left waiting (a gate held on 'go', a land held on 'hold') is let
    go when the test ends, so no process of it waits on after the run."""
    yield
    (tmp_path / "go").touch()
    (tmp_path / "hold").touch()


def _held(tmp: Path) -> str:
    """A gate that waits until the test lets it go (a file appears), then runs the project's test."""
    return f"while [ ! -e {tmp}/go ]; do sleep 0.02; done; ./check.sh"


def _task(r: Repo, name: str) -> dict:
    return next(t for t in r.wtp("list", "--all", "--json").json()["tasks"] if t["name"] == name)


def _record(r: Repo, name: str) -> dict:
    return next(t for t in r.state()["tasks"] if t["name"] == name)


def _started(r: Repo, name: str) -> bool:
    t = next((t for t in r.state()["tasks"] if t["name"] == name), None)
    return t is not None and t["state"] == "active" and not t["phase"]


def _shared(r: Repo, name: str, line: str) -> Path:
    """Task ``name`` (started) appends ``line`` to the shared file and commits it."""
    wt = Path(_task(r, name)["path"])
    text = (wt / "shared.txt").read_text() if (wt / "shared.txt").exists() else ""
    r.commit({"shared.txt": text + line + "\n"}, f"{name} work", cwd=wt)
    return wt


def _origin(r: Repo) -> tuple[list[str], str]:
    r.git("fetch", "-q", "origin")
    return r.git("log", "--format=%s", "origin/main").splitlines(), r.git("show", "origin/main:shared.txt")


def _landing(r: Repo, tmp: Path, name: str = "a") -> subprocess.Popen[str]:
    """Task ``name`` declares shared.txt and changes it; its land waits in its held gate; task
    'b', declaring shared.txt too, is queued before that land began."""
    assert r.wtp("start", name, "--touch", "shared.txt").code == 0
    _shared(r, name, f"{name} line")
    queued = r.wtp("start", "b", "--touch", "shared.txt")
    assert queued.code == 4, queued.err
    assert f"waits because path shared.txt with task '{name}'" in queued.err
    lander = r.spawn("land", name, "--gate", _held(tmp))
    wait_for(lambda: _started(r, "b"), f"'b' to start on the work of '{name}' once its land began")
    return lander


def test_a_task_colliding_only_with_a_landing_one_starts_on_its_work_and_lands_its_own_commits(
    project: Repo, tmp_path: Path
) -> None:
    lander = _landing(project, tmp_path)
    b = _task(project, "b")
    assert b["stacked_on"] == "a"
    assert (Path(b["path"]) / "shared.txt").read_text() == "a line\n"  # a's work, as it lands
    assert _record(project, "b")["fork"] == project.git("rev-parse", "refs/wtp/backup/a")
    assert "  └ started on the work of 'a' (landing): lands after it" in project.wtp("list").lines
    # Another task on the shared file waits for b, which is being worked on.
    c = project.wtp("start", "c", "--touch", "shared.txt")
    assert c.code == 4 and "with task 'b'" in c.err, c.err
    _shared(project, "b", "b line")
    # b's edit of the shared file is made on a's: the two are not a collision for check, nor for the hook.
    report = project.wtp("check", "--json", "--fail-on", "never").json()["collisions"]
    assert not [x for x in report if set(x["tasks"]) == {"a", "b"}], report
    wt_b = Path(_task(project, "b")["path"])
    assert hook(project, edit(wt_b / "shared.txt")) == (0, "", "")  # allowed, silently
    (tmp_path / "go").touch()
    out, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "queued task 'b' starts on the work of 'a' while it lands, in the background (log: " in err
    log = (project.path / ".git" / "wtp" / "logs" / "start-behind.log").read_text()
    assert "task 'b' shares shared.txt with task 'a', which is landing: it starts on the work of 'a'" in log
    land_b = project.wtp_proc("land", "b", "--gate", "./check.sh")
    assert land_b.code == 0, land_b.err
    subjects, text = _origin(project)
    assert subjects[:2] == ["b work", "a work"]  # b replayed its own commit only
    assert text == "a line\nb line"


def test_a_landing_task_takes_no_slot(project: Repo, tmp_path: Path) -> None:
    project.write(".wtp.toml", "max_active = 1\n")
    assert project.wtp("start", "a").code == 0
    _shared(project, "a", "a line")
    full = project.wtp("start", "b")
    assert full.code == 4 and "no slot is free: 1 of 1 taken" in full.err
    lander = project.spawn("land", "a", "--gate", _held(tmp_path))
    # a's slot is free while it lands: the land itself starts b there, in the background (a
    # 'wtp next' of the test's own would race that one, and either may be the one to start b).
    wait_for(lambda: _started(project, "b"), "'b' to start in the slot 'a' freed as it began to land")
    assert _record(project, "a")["state"] == "landing"
    assert _task(project, "b")["stacked_on"] is None  # no collision: an ordinary start
    assert project.wtp("next").out == "nothing to start\n"
    third = project.wtp("start", "c")
    assert third.code == 4 and "no slot is free: 1 of 1 taken" in third.err  # b has the slot
    (tmp_path / "go").touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "queued task 'b' starts in the slot that is free, in the background (log: " in err


LINES = "".join(f"line {i}\n" for i in range(10))


def _edit(r: Repo, name: str, first: str | None = None, last: str | None = None, broken: bool | None = None) -> None:
    """Task ``name`` changes the first or last line of the shared file, adds or removes BROKEN, and commits."""
    wt = Path(_task(r, name)["path"])
    lines = (wt / "shared.txt").read_text().splitlines()
    lines[0], lines[-1] = first or lines[0], last or lines[-1]
    (wt / "shared.txt").write_text("\n".join(lines) + "\n")
    if broken is not None:
        (wt / "BROKEN").write_text("") if broken else (wt / "BROKEN").unlink()
    r.git("add", "-A", cwd=wt)
    r.git("commit", "-q", "-m", f"{name} work", cwd=wt)


def _red_below(r: Repo, tmp: Path) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """'a' lands red (its commit adds BROKEN); 'b', started on its work, removes BROKEN: alone it
    would be green.  Both lands are under way, b's behind a's, when a's gate is let go."""
    r.commit({"shared.txt": LINES}, "the shared file")
    r.git("push", "-q", "origin", "main")
    assert r.wtp("start", "a", "--touch", "shared.txt").code == 0
    _edit(r, "a", last="a line", broken=True)
    assert r.wtp("start", "b", "--touch", "shared.txt").code == 4
    lander = r.spawn("land", "a", "--gate", _held(tmp))
    wait_for(lambda: _started(r, "b"), "'b' to start on the work of 'a'")
    _edit(r, "b", first="b line", broken=False)
    land_b = r.spawn("land", "b", "--gate", "./check.sh")
    wait_for(lambda: _record(r, "b")["state"] == "landing", "'b' to wait to land")
    (tmp / "go").touch()
    return lander, land_b


def test_a_stacked_task_never_lands_before_or_without_the_task_below_it(project: Repo, tmp_path: Path) -> None:
    lander, land_b = _red_below(project, tmp_path)
    _, err_a = lander.communicate(timeout=60)
    _, err_b = land_b.communicate(timeout=60)
    assert lander.returncode == 1 and "gate" in err_a, err_a
    assert land_b.returncode == 1, err_b
    said = "task 'b' was started on the work of task 'a', which has not landed (it is blocked): land 'a' first"
    assert said in err_b
    assert _origin(project)[0][0] == "the shared file"  # neither landed
    # a is worked on again: its edits of the shared file may change what b built on, so they collide again.
    report = project.wtp("check", "--json", "--fail-on", "never").json()["collisions"]
    assert [x["kind"] for x in report if set(x["tasks"]) == {"a", "b"}] == ["declared", "overlap"], report
    again = project.wtp_proc("land", "b", "--gate", "./check.sh")
    assert (again.code, again.err.splitlines()[-1]) == (
        1,
        f"wtp: {said} ('wtp land a b' lands both), or remove it ('wtp rm a --force' archives its work) to land 'b' without it",
    ), again.err
    # a fixed: both land, in one command, a first.
    _edit(project, "a", broken=False)
    both = project.wtp_proc("land", "b", "a", "--gate", "./check.sh")  # b after a all the same
    assert both.code == 0, both.err
    subjects, text = _origin(project)
    assert subjects[:3] == ["b work", "a work", "a work"]
    assert text.splitlines()[0] == "b line" and text.splitlines()[-1] == "a line"


def test_a_stacked_task_lands_its_own_commits_alone_once_the_task_below_is_removed(
    project: Repo, tmp_path: Path
) -> None:
    lander, land_b = _red_below(project, tmp_path)
    lander.communicate(timeout=60)
    land_b.communicate(timeout=60)
    assert land_b.returncode == 1
    work_a = project.git("rev-parse", "wtp/a")
    # b's branch holds a's commit, but b's land replays only its own: that does not keep a's work.
    rm = project.wtp("rm", "a")
    assert rm.code == 1, rm.err
    assert "1 commit not on 'main' or any other branch but wtp/b, whose task started on its work" in rm.err
    rm = project.wtp("rm", "a", "--force")
    assert rm.code == 0, rm.err
    assert "archived" in rm.err + rm.out
    out = project.wtp_proc("land", "b", "--gate", "./check.sh")
    assert out.code == 0, out.err
    subjects, text = _origin(project)
    assert subjects[:2] == ["b work", "the shared file"]  # a's commit is not in it
    assert text.splitlines()[0] == "b line" and text.splitlines()[-1] == "line 9"
    project.git("fetch", "-q", "origin")
    assert project.git("ls-tree", "--name-only", "origin/main", "BROKEN") == ""
    assert work_a in project.git("rev-list", "refs/wtp/archive/a").split()  # a's work is kept


def test_a_task_colliding_on_a_resource_with_a_landing_one_still_waits(project: Repo, tmp_path: Path) -> None:
    assert project.wtp("start", "a", "--use", "deploy:prod").code == 0
    _shared(project, "a", "a line")
    lander = project.spawn("land", "a", "--gate", _held(tmp_path))
    wait_for(lambda: _record(project, "a")["state"] == "landing", "'a' to wait to land")
    b = project.wtp("start", "b", "--use", "deploy:prod")
    assert b.code == 4 and "resource deploy:prod with task 'a'" in b.err, b.err
    (tmp_path / "go").touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "started queued task 'b'" in err  # once a landed, as before
    assert _task(project, "b")["stacked_on"] is None


def test_what_a_land_says_it_starts_in_the_background_is_what_starts(project: Repo, tmp_path: Path) -> None:
    """A task queued for a slot ahead of one that could start on the landing task's work takes
    the slot a's land frees first ('wtp next' starts in queue order): it starts while a lands,
    nothing is started on a's work, and the land says exactly that."""
    project.write(".wtp.toml", "max_active = 1\n")
    assert project.wtp("start", "a", "--touch", "shared.txt").code == 0
    _shared(project, "a", "a line")
    assert project.wtp("start", "q1").code == 4  # waits for a slot
    assert project.wtp("start", "q2", "--touch", "shared.txt").code == 4  # could start on a's work
    lander = project.spawn("land", "a", "--gate", _held(tmp_path))
    wait_for(lambda: _started(project, "q1"), "'q1' to start in the slot a's land freed")
    assert _record(project, "a")["state"] == "landing" and _record(project, "q2")["state"] == "queued"
    (tmp_path / "go").touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "queued task 'q1' starts in the slot that is free, in the background (log: " in err, err
    assert "'q2' starts" not in err, err
    assert _record(project, "q2")["state"] == "queued"


def test_a_task_on_a_removed_task_still_lands_only_after_the_task_below_that(project: Repo, tmp_path: Path) -> None:
    """c was started on b's work, b on a's: removing b does not let c land before or without a."""
    project.commit({"shared.txt": LINES}, "the shared file")
    project.git("push", "-q", "origin", "main")
    for name in "abc":
        out = project.wtp("start", name, "--touch", "shared.txt")
        assert out.code == (0 if name == "a" else 4), out.err
    _edit(project, "a", last="a line", broken=True)  # a is red
    land_a = project.spawn("land", "a", "--gate", _held(tmp_path))
    wait_for(lambda: _started(project, "b"), "'b' to start on the work of 'a'")
    _edit(project, "b", first="b line")
    land_b = project.spawn("land", "b", "--gate", _held(tmp_path))
    wait_for(lambda: _started(project, "c"), "'c' to start on the work of 'b'")
    assert _task(project, "c")["stacked_on"] == "b"
    report = project.wtp("check", "--json", "--fail-on", "never").json()["collisions"]
    assert not [x for x in report if "c" in x["tasks"] and len(x["tasks"]) == 2], report  # on a's and b's work
    wt_c = Path(_task(project, "c")["path"])
    project.commit({"c.txt": "c\n"}, "c work", cwd=wt_c)
    rm = project.wtp("rm", "b", "--force")  # withdrawn from its land and archived
    assert rm.code == 0, rm.err
    (tmp_path / "go").touch()
    land_a.communicate(timeout=60)
    land_b.communicate(timeout=60)
    assert _record(project, "a")["state"] == "blocked"
    out = project.wtp_proc("land", "c", "--gate", "./check.sh")
    assert out.code == 1, out.err
    assert (
        "task 'c' was started on the work of task 'a' (through the removed 'b'), which has not landed (it is blocked)"
        in out.err
    )
    assert _origin(project)[0][0] == "the shared file"


def test_a_start_takes_the_landing_tasks_work_as_it_lands_not_an_earlier_land_of_it(
    project: Repo, tmp_path: Path
) -> None:
    """Between a land marking its task and keeping its tip, the backup ref an earlier land of it
    left holds an older tip: a task started then starts on the tip that lands."""
    project.commit({"shared.txt": LINES}, "the shared file")
    project.git("push", "-q", "origin", "main")
    assert project.wtp("start", "a", "--touch", "shared.txt").code == 0
    _edit(project, "a", last="a line", broken=True)
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 1  # red: blocked, its backup ref stays
    old = project.git("rev-parse", "refs/wtp/backup/a")
    _edit(project, "a", broken=False)
    new = project.git("rev-parse", "wtp/a")
    assert _start_while_marked(project, tmp_path, old) == new


def test_a_land_does_not_say_a_task_starts_that_another_clones_claim_may_hold_back(
    remote_repo: Repo, tmp_path: Path
) -> None:
    """q2 collides with landing 'a' (here) and with 'z' (another clone's shared claim): 'wtp
    next' starts nothing, and the land does not say for sure that it does."""
    from .test_remote import clone

    other = clone(remote_repo, "other")
    for r in (remote_repo, other):
        r.write(".wtp.toml", "share = true\n")
    assert other.wtp_proc("start", "z", "--touch", "z.txt").code == 0
    assert remote_repo.wtp_proc("start", "a", "--touch", "shared.txt").code == 0
    _shared(remote_repo, "a", "a line")
    held = remote_repo.wtp_proc("start", "q2", "--touch", "shared.txt", "--touch", "z.txt")
    assert held.code == 4, held.err
    out = remote_repo.wtp_proc("land", "a", "--gate", "true")
    assert out.code == 0, out.err
    # the land does not ask the network for the claims before it lands, so it names no task
    assert "'wtp next' starts the queued tasks that can start now, in the background (log: " in out.err, out.err
    assert "'q2' starts" not in out.err
    log = remote_repo.path / ".git" / "wtp" / "logs" / "start-behind.log"
    wait_for(lambda: "nothing to start" in log.read_text(), "the background 'wtp next' to end")
    assert _record(remote_repo, "q2")["state"] == "queued"


def test_a_queued_task_whose_start_failed_before_does_not_hide_one_that_can_start(
    project: Repo, tmp_path: Path
) -> None:
    """q0's start failed (its --base is gone); q2 may start on landing 'a': the land starts it
    and says so, and says nothing of q0."""
    project.write(".wtp.toml", "max_active = 1\n")
    project.git("branch", "other")
    assert project.wtp("start", "a", "--touch", "shared.txt").code == 0
    _shared(project, "a", "a line")
    assert project.wtp("start", "q0", "--base", "other").code == 4
    project.git("branch", "-D", "other")
    project.write(".wtp.toml", "max_active = 2\n")
    assert "queued task 'q0' cannot start" in project.wtp("next").err  # tried once, and failed
    project.write(".wtp.toml", "max_active = 1\n")
    assert project.wtp("start", "q2", "--touch", "shared.txt").code == 4
    lander = project.spawn("land", "a", "--gate", _held(tmp_path))
    wait_for(lambda: _started(project, "q2"), "'q2' to start on the work of 'a'")
    (tmp_path / "go").touch()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    assert "queued task 'q2' starts on the work of 'a' while it lands, in the background" in err
    assert "queued task 'q0' starts" not in err


def test_a_start_takes_an_amended_tip_that_lands_not_the_red_one_before(project: Repo, tmp_path: Path) -> None:
    """a's red land kept its tip; a is fixed by amending; while its next land is marked, not
    yet taken by a conductor, b starts on the amended tip, the one that lands."""
    project.commit({"shared.txt": LINES}, "the shared file")
    project.git("push", "-q", "origin", "main")
    assert project.wtp("start", "a", "--touch", "shared.txt").code == 0
    _edit(project, "a", last="a line", broken=True)
    assert project.wtp("land", "a", "--gate", "./check.sh").code == 1
    wt_a = Path(_task(project, "a")["path"])
    (wt_a / "BROKEN").unlink()
    project.git("commit", "-q", "-a", "--amend", "--no-edit", cwd=wt_a)
    amended = project.git("rev-parse", "wtp/a")
    assert _start_while_marked(project, tmp_path, project.git("rev-parse", "refs/wtp/backup/a")) == amended


def test_a_removed_middle_task_whose_name_is_reused_still_leaves_the_top_waiting(project: Repo, tmp_path: Path) -> None:
    """c on b on a; b removed, and a new task named b started: c still lands after a."""
    land_a, land_b = _chain_of_three(project, tmp_path)
    assert project.wtp("rm", "b", "--force").code == 0
    assert project.wtp("start", "b", "--touch", "other.txt").code == 0  # another task, the same name
    (tmp_path / "go").touch()
    land_a.communicate(timeout=60)
    land_b.communicate(timeout=60)
    out = project.wtp_proc("land", "c", "--gate", "./check.sh")
    assert out.code == 1, out.err
    assert "task 'c' was started on the work of task 'a' (through the removed 'b'), which has not landed" in out.err
    assert _origin(project)[0][0] == "the shared file"


def _start_while_marked(r: Repo, tmp: Path, kept: str) -> str:
    """'a' lands again, held where its land has marked it but not kept its tip yet (the backup
    ref still holds ``kept``, an earlier land's); 'b' starts then: where b's branch forks."""
    hold = tmp / "hold"
    env = {"WTP_TEST_HOLD_AT": "land:marked", "WTP_TEST_HOLD_FILE": str(hold)}
    lander = r.spawn("land", "a", "--gate", "./check.sh", env=env)
    wait_for(lambda: Path(f"{hold}.reached").exists(), "a's land to be marked, its tip not kept yet")
    assert r.git("rev-parse", "refs/wtp/backup/a") == kept
    assert r.wtp("start", "b", "--touch", "shared.txt").code == 0
    fork = _record(r, "b")["fork"]
    hold.write_text("")
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 0, err
    return str(fork)


def test_a_commit_made_on_a_landing_branch_that_a_stacked_task_holds_is_not_dropped(
    project: Repo, tmp_path: Path
) -> None:
    """a waits in the queue (no conductor has taken it); its owner commits X on its branch; b
    starts on that branch.  b's branch holding X does not keep it: b's land replays only its own
    commits.  So a's land keeps X on a's branch, untested, and is blocked, as without b."""
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    assert project.wtp("start", "a", "--touch", "shared.txt").code == 0
    wt_a = _shared(project, "a", "a line")
    queue = Gate(Store(project.path / ".git"), QUEUE)
    queue.acquire()  # another conductor holds the queue: a waits in it
    try:
        lander = project.spawn("land", "a", "--gate", "./check.sh")
        wait_for(lambda: len(queue.tickets()) >= 2, "a to join the land queue")
        x = project.commit({"x.txt": "x\n"}, "a extra X", cwd=wt_a)
        assert project.wtp("start", "b", "--touch", "shared.txt").code == 0
        assert _record(project, "b")["fork"] == x
    finally:
        queue.release()
    _, err = lander.communicate(timeout=60)
    assert lander.returncode == 1, err
    assert "branch 'wtp/a' gained 1 commit wtp did not make while landing" in err
    assert project.git("rev-parse", "wtp/a") == x  # kept on a's branch
    assert _record(project, "a")["state"] == "blocked"


def test_a_damaged_chain_below_a_task_is_a_damaged_registry_not_a_crash(project: Repo, tmp_path: Path) -> None:
    """A record whose chain below (stacked_under) is not what a start writes is refused as a
    corrupt registry (one line, exit 2, what to run), never read past nor a crash."""
    lander = _landing(project, tmp_path)
    (tmp_path / "go").touch()
    lander.communicate(timeout=60)
    for damaged in (["\u00b2:a"], ["junk"], ["7:someone-else"]):
        data = project.state()
        next(t for t in data["tasks"] if t["name"] == "b")["stacked_under"] = damaged
        project.state_file.write_text(json.dumps(data))
        out = project.wtp_proc("list")
        assert out.code == 2, out.err
        assert (
            out.err.startswith("wtp: state file ") and "is corrupt (ValueError: task field 'stacked_under'" in out.err
        )
        assert "internal error" not in out.err and len(out.err.splitlines()) == 1


def test_in_a_chain_the_advice_names_every_task_below_and_any_order_lands_them(project: Repo, tmp_path: Path) -> None:
    """c on b on a, a red: c's refusal names the command that lands all three; once a is fixed,
    'wtp land c b a' lands them, a first."""
    land_a, land_b = _chain_of_three(project, tmp_path)
    (tmp_path / "go").touch()
    land_a.communicate(timeout=60)
    land_b.communicate(timeout=60)
    out = project.wtp_proc("land", "c", "--gate", "./check.sh")
    assert out.code == 1, out.err
    assert "land 'b' first ('wtp land a b c' lands them all)" in out.err, out.err
    _edit(project, "a", broken=False)
    every = project.wtp_proc("land", "c", "b", "a", "--gate", "./check.sh", "--json")
    assert every.code == 0, every.err
    assert [d["task"] for d in json.loads(every.out)] == ["c", "b", "a"]  # the order given
    assert _origin(project)[0][:4] == ["c work", "b work", "a work", "a work"]


def _chain_of_three(r: Repo, tmp: Path) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """a (red: it adds BROKEN) lands in a held gate; b, started on its work, lands behind it in
    a held gate; c, started on b's work, has a commit of its own.  The two lands, under way."""
    r.commit({"shared.txt": LINES}, "the shared file")
    r.git("push", "-q", "origin", "main")
    for name in "abc":
        assert r.wtp("start", name, "--touch", "shared.txt").code == (0 if name == "a" else 4)
    _edit(r, "a", last="a line", broken=True)
    land_a = r.spawn("land", "a", "--gate", _held(tmp))
    wait_for(lambda: _started(r, "b"), "'b' to start on the work of 'a'")
    _edit(r, "b", first="b line")
    land_b = r.spawn("land", "b", "--gate", _held(tmp))
    wait_for(lambda: _started(r, "c"), "'c' to start on the work of 'b'")
    r.commit({"c.txt": "c\n"}, "c work", cwd=Path(_task(r, "c")["path"]))
    return land_a, land_b


def test_check_counts_a_stacked_tasks_own_changes_not_those_of_the_task_below(project: Repo, tmp_path: Path) -> None:
    """While 'a' lands, 'b' started on its work holds a's commits too; 'wtp check' counts what b
    itself changed: a's files are neither b's undeclared changes nor b's overlap with 'c'."""
    assert project.wtp("start", "a", "--touch", "shared.txt", "--touch", "a.txt").code == 0
    wt_a = _shared(project, "a", "a line")
    project.commit({"a.txt": "a\n"}, "a's own file", cwd=wt_a)
    assert project.wtp("start", "b", "--touch", "shared.txt").code == 4
    assert project.wtp("start", "c", "--touch", "c.txt").code == 0
    project.commit({"a.txt": "c's take\n", "c.txt": "c\n"}, "c work", cwd=Path(_task(project, "c")["path"]))
    lander = project.spawn("land", "a", "--gate", _held(tmp_path))
    wait_for(lambda: _started(project, "b"), "'b' to start on the work of 'a'")
    _shared(project, "b", "b line")
    report = project.wtp("check", "--json", "--fail-on", "never").json()["collisions"]
    pairs = {(tuple(x["tasks"]), x["kind"]): x["paths"] for x in report}
    assert (("b",), "undeclared") not in pairs, report  # a.txt is a's
    assert not [k for k in pairs if "b" in k[0] and "c" in k[0]], report  # b did not touch a.txt; a did
    assert any("a" in k[0] and "c" in k[0] for k in pairs), report  # the pair that does collide is named
    (tmp_path / "go").touch()
    assert lander.wait(timeout=60) == 0


def test_a_land_of_a_task_whose_task_below_is_being_removed_says_so(project: Repo, tmp_path: Path) -> None:
    """'wtp rm a --force' withdraws 'a' from its land and removes it; a land of 'b', started on
    a's work, that comes meanwhile is told to land again once 'a' is gone, not to remove it
    (review 44)."""
    lander = _landing(project, tmp_path)
    _shared(project, "b", "b line")
    hold = tmp_path / "hold"
    rm = project.spawn(
        "rm", "a", "--force", env={"WTP_TEST_HOLD_AT": "rm:before-archive", "WTP_TEST_HOLD_FILE": str(hold)}
    )
    wait_for(Path(f"{hold}.reached").exists, "the removal of 'a' to be under way")
    out = project.wtp_proc("land", "b", "--gate", "./check.sh")
    assert out.code == 1, out.err
    assert out.err.splitlines()[-1] == (
        "wtp: task 'b' was started on the work of task 'a', which is being removed by another wtp command: "
        "land 'b' again once it is gone ('wtp list' shows it)"
    ), out.err
    hold.touch()
    assert rm.wait(timeout=60) == 0, rm.communicate()
    lander.communicate(timeout=60)
    out = project.wtp_proc("land", "b", "--gate", "./check.sh")
    # It goes on alone now (here to a conflict with main: its line was written after a's).
    assert "started on the work of task 'a'" not in out.err, out.err
