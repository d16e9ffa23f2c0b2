"""The one publication point (issue 24 A): for each task it publishes, its own gate passed
on exactly that tree, its branch did not move since its candidate was built, and its lander
still wants it; and nothing else in the package moves or pushes the base."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from .conftest import ROOT, Repo, wait_for

WAIT = 60


def _wait(pred: Callable[[], object], what: str) -> None:
    wait_for(pred, what, WAIT)


def _task(r: Repo, name: str, files: dict[str, str]) -> tuple[Path, str]:
    p = Path(r.wtp("start", name).lines[-1])
    return p, r.commit(files, f"{name} work", cwd=p)


def _spawn(r: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return r.spawn(*args, env=env, new_session=True)  # Ctrl-C goes to this lander alone (os.killpg)


def _ticket(r: Repo, name: str) -> bool:
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    return any(k.get("label") == name for k in Gate(Store(r.path / ".git"), QUEUE).tickets())


def _task_state(r: Repo, name: str) -> dict[str, object]:
    return next(t for t in r.state()["tasks"] if t["name"] == name)


def _on_origin(r: Repo) -> list[str]:
    r.git("fetch", "-q", "origin")
    return r.git("log", "--format=%s", "origin/main").splitlines()


def _hold_gate(tmp: Path) -> str:
    """A gate that says it started, then waits for 'go' (so the test acts while it runs)."""
    return f"touch {tmp}/gating-$WTP_TASK; while [ ! -e {tmp}/go ]; do sleep 0.02; done; ./check.sh"


def test_a_batch_never_vouches_for_a_follower_whose_gate_differs(project: Repo, tmp_path: Path) -> None:
    """Before: the batch gated only its top with the top's gate, and landed t2, whose own
    gate fails, with t1's."""
    r = project
    _task(r, "t1", {"a.txt": "a\n"})
    _task(r, "t2", {"b.txt": "b\n"})
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()
    try:
        p1 = _spawn(r, "land", "t1", "--mode", "batch", "--gate", "true")
        _wait(lambda: _ticket(r, "t1"), "t1 in the queue")
        p2 = _spawn(r, "land", "t2", "--mode", "batch", "--gate", "test ! -e b.txt")  # red on t2's tree only
        _wait(lambda: _ticket(r, "t2"), "t2 in the queue")
    finally:
        queue.release()
    out1, out2 = p1.communicate(timeout=120), p2.communicate(timeout=120)
    assert p1.returncode == 0, out1
    assert p2.returncode == 1, out2
    assert "gate 'test ! -e b.txt' exited 1" in out2[1]
    assert "t1 work" in _on_origin(r) and "t2 work" not in _on_origin(r)
    assert _task_state(r, "t2")["state"] == "blocked"


def test_a_commit_in_a_lower_tasks_worktree_during_a_batch_gate_keeps_that_task_out(
    project: Repo,
    tmp_path: Path,
) -> None:
    """The batch gates its top (t2's candidate, which holds t1's); a commit made in t1's
    worktree meanwhile keeps t1 out (before: only the top's branch was looked at, and C1 was
    published while t1's branch had moved on), and t2 is rebuilt without it and lands."""
    r = project
    p1, _ = _task(r, "t1", {"a.txt": "a\n"})
    _task(r, "t2", {"b.txt": "b\n"})
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    gate = _hold_gate(tmp_path)
    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()
    try:
        l1 = _spawn(r, "land", "t1", "--mode", "batch", "--gate", gate)
        _wait(lambda: _ticket(r, "t1"), "t1 in the queue")
        l2 = _spawn(r, "land", "t2", "--mode", "batch", "--gate", gate)
        _wait(lambda: _ticket(r, "t2"), "t2 in the queue")
    finally:
        queue.release()
    _wait(lambda: (tmp_path / "gating-t2").exists(), "the batch's gate on its top")
    late = r.commit({"a.txt": "a, later\n"}, "t1 late work", cwd=p1)
    (tmp_path / "go").touch()
    out1, out2 = l1.communicate(timeout=120), l2.communicate(timeout=120)
    assert l1.returncode == 1, out1
    assert "moved while the gate ran" in out1[1]
    assert l2.returncode == 0, out2
    on_origin = _on_origin(r)
    assert "t2 work" in on_origin and "t1 work" not in on_origin and "t1 late work" not in on_origin
    assert r.git("rev-parse", "wtp/t1") == late  # kept on the branch, untested


def test_a_follower_interrupted_while_a_conductor_holds_it_is_given_back(
    project: Repo,
    tmp_path: Path,
) -> None:
    """Ctrl-C of a lander whose task a conductor stacked: before, it said 'interrupted' and
    the conductor landed the task anyway; now it is withdrawn and given back, untouched."""
    r = project
    _task(r, "t1", {"a.txt": "a\n"})
    _, tip2 = _task(r, "t2", {"b.txt": "b\n"})
    gate = _hold_gate(tmp_path)
    l1 = _spawn(r, "land", "t1", "--gate", gate)
    _wait(lambda: (tmp_path / "gating-t1").exists(), "t1's gate")
    l2 = _spawn(r, "land", "t2", "--gate", gate)
    _wait(lambda: _task_state(r, "t2").get("phase") == "landing", "the conductor stacking t2")
    os.killpg(l2.pid, signal.SIGINT)
    _, err2 = l2.communicate(timeout=60)
    assert l2.returncode == 130, err2
    assert "task 't2' is withdrawn" in err2
    (tmp_path / "go").touch()
    out1 = l1.communicate(timeout=120)
    assert l1.returncode == 0, out1
    _wait(lambda: _task_state(r, "t2")["state"] == "active", "t2 given back")
    assert "t1 work" in _on_origin(r) and "t2 work" not in _on_origin(r)
    assert r.git("rev-parse", "wtp/t2") == tip2
    assert r.wtp("land", "t2", "--gate", "true").code == 0  # and it lands when asked again


def test_a_follower_interrupted_once_its_push_was_committed_says_it_landed_anyway(
    project: Repo,
    tmp_path: Path,
) -> None:
    r = project
    _task(r, "t1", {"a.txt": "a\n"})
    _task(r, "t2", {"b.txt": "b\n"})
    from worktree_par.gates import Gate
    from worktree_par.land.request import QUEUE
    from worktree_par.state import Store

    hold = tmp_path / "publish"
    env = {"WTP_TEST_HOLD_AT": "land:before-publish", "WTP_TEST_HOLD_FILE": str(hold)}
    queue = Gate(Store(r.path / ".git"), QUEUE)
    queue.acquire()
    try:
        l1 = _spawn(r, "land", "t1", "--mode", "batch", "--gate", "true", env=env)
        _wait(lambda: _ticket(r, "t1"), "t1 in the queue")
        l2 = _spawn(r, "land", "t2", "--mode", "batch", "--gate", "true")
        _wait(lambda: _ticket(r, "t2"), "t2 in the queue")
    finally:
        queue.release()
    _wait(lambda: Path(f"{hold}.reached").exists(), "the conductor at the push")
    assert _task_state(r, "t2")["intent"] == "publishing"
    os.killpg(l2.pid, signal.SIGINT)
    _wait(lambda: _task_state(r, "t2")["intent"] == "publishing" and l2.poll() is None, "t2's lander waiting")
    hold.touch()
    _, err2 = l2.communicate(timeout=60)
    assert l1.communicate(timeout=60) and l1.returncode == 0
    assert l2.returncode == 130, err2
    landed = _task_state(r, "t2")["commit"]
    assert f"task 't2' landed anyway at {landed}" in err2
    assert "t2 work" in _on_origin(r)


def test_rm_of_a_task_a_conductor_holds_withdraws_it_first(project: Repo, tmp_path: Path) -> None:
    """Before: 'wtp rm' refused ('busy (landing)') and 'rm --force' could not take it back."""
    r = project
    _task(r, "t1", {"a.txt": "a\n"})
    _task(r, "t2", {"b.txt": "b\n"})
    gate = _hold_gate(tmp_path)
    l1 = _spawn(r, "land", "t1", "--gate", gate)
    _wait(lambda: (tmp_path / "gating-t1").exists(), "t1's gate")
    l2 = _spawn(r, "land", "t2", "--gate", gate)
    _wait(lambda: _task_state(r, "t2").get("phase") == "landing", "the conductor stacking t2")
    out = r.wtp_proc("rm", "t2", "--force")
    assert out.code == 0, out
    assert "task 't2' is withdrawn" in out.err
    assert r.git("rev-parse", "--verify", "-q", "refs/wtp/archive/t2", check=False)
    (tmp_path / "go").touch()
    assert l1.communicate(timeout=120) and l1.returncode == 0
    l2.communicate(timeout=60)
    assert l2.returncode != 0
    assert "t1 work" in _on_origin(r) and "t2 work" not in _on_origin(r)
    assert _task_state(r, "t2")["state"] == "abandoned"


def test_the_publication_point_is_the_only_code_that_moves_or_pushes_the_base() -> None:
    """A structural check, like the guard's: the calls that move a branch on the remote
    (push_cas) or the local base (sync_base, update_ref of refs/heads/...) appear only in
    land/publish.py, and only the conductor's rounds call publish."""
    pkg = ROOT / "worktree_par"
    pushers: dict[str, list[str]] = {}
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith("gitops/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("push_cas", "sync_base", "_cas"):
                pushers.setdefault(name, []).append(rel)
            if name == "update_ref" and node.args[1:2]:
                ref = ast.unparse(node.args[1])
                if "refs/heads/" in ref or ref in ("ref", "dest"):
                    pushers.setdefault("update_ref heads", []).append(rel)
            if name == "publish" and isinstance(f, ast.Attribute) and ast.unparse(f.value) == "publish":
                pushers.setdefault("publish", []).append(rel)
    assert {k: sorted(set(v)) for k, v in pushers.items()} == {
        "push_cas": ["land/publish.py"],
        "sync_base": ["land/publish.py"],
        "_cas": ["land/publish.py"],
        # the guard moves task branches back (restoring a pre-land tip), never the base: its
        # own structural test (test_guard.py) keeps that so
        "update_ref heads": ["guard.py", "land/publish.py"],
        "publish": ["land/round.py"],
    }
