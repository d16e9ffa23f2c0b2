"""The registry's transaction: in-place changes are written, unchanged reads are not, and
the history of finished tasks is bounded so no command's cost grows with it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from worktree_par import state
from worktree_par.errors import StateError
from worktree_par.state import ACTIVE, KEEP_FINISHED, LANDED, Store, Task

from .conftest import ROOT, Repo


def _task(name: str, seq: int, state: str = ACTIVE) -> Task:
    return Task(name=name, state=state, branch=f"wtp/{name}", base="main", seq=seq, path=f"/w/{name}")


def test_in_place_changes_are_written_and_reads_are_not(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction() as st:
        st.tasks["a"] = _task("a", st.next_seq())
        st.extra["trust"] = {"k": "v"}
    mtime = store.file.stat().st_mtime_ns
    with store.transaction() as st:
        pass
    assert store.file.stat().st_mtime_ns == mtime and not store.backup.exists()
    with store.transaction() as st:
        st.tasks["a"].touch.append("src/**")  # mutated in place, not reassigned
    with store.transaction() as st:
        st.extra["trust"]["k"] = "w"
    data = json.loads(store.file.read_text())
    assert data["tasks"][0]["touch"] == ["src/**"] and data["extra"]["trust"] == {"k": "w"}
    assert json.loads(store.backup.read_text())["extra"]["trust"] == {"k": "v"}


def test_reads_of_the_same_registry_are_snapshots_of_their_own_and_any_change_is_seen(tmp_path: Path) -> None:
    """The decoded registry is kept per file with its bytes: a read that finds the same bytes
    gets a copy of its own, and one byte changed (same size, written by another process),
    or a corrupt file after a good one, is decoded afresh."""
    store = Store(tmp_path)
    with store.transaction() as st:
        st.tasks["a"] = _task("a", st.next_seq())
        st.extra["trusted"] = {"land.gate": ["make"]}
    first, second = store.read(), store.read()
    for changed_here in (first, second):
        changed_here.tasks["a"].touch.append("src/**")
        changed_here.tasks["a"].state = LANDED
        changed_here.extra["trusted"]["land.gate"].append("rm -rf /")
    for st in (store.read(), store.read()):
        assert st.tasks["a"].touch == [] and st.tasks["a"].state == ACTIVE
        assert st.extra == {"trusted": {"land.gate": ["make"]}}
    raw = store.file.read_bytes()
    changed = raw.replace(b'"/w/a"', b'"/w/b"')
    assert len(changed) == len(raw) and changed != raw
    store.file.write_bytes(changed)
    assert store.read().tasks["a"].path == "/w/b"
    store.file.write_bytes(raw[:-3])
    with pytest.raises(StateError, match="is corrupt"):
        store.read()
    store.file.write_bytes(raw)
    assert store.read().tasks["a"].path == "/w/a"
    for i in range(20):  # a long-lived process meeting many repositories keeps a few of them
        (tmp_path / f"r{i}").mkdir()
        other = Store(tmp_path / f"r{i}")
        with other.transaction() as st:
            st.tasks["a"] = _task("a", st.next_seq())
        other.read()
    assert len(state._DECODED) <= 8


def test_only_the_newest_finished_tasks_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction() as st:
        st.tasks["live"] = _task("live", st.next_seq())
        for i in range(KEEP_FINISHED + 5):
            t = _task(f"done{i}", st.next_seq(), LANDED)
            t.path = None
            st.tasks[t.name] = t
    names = {t["name"] for t in json.loads(store.file.read_text())["tasks"]}
    assert "live" in names and len(names) == KEEP_FINISHED + 1
    assert {f"done{i}" for i in range(5)}.isdisjoint(names) and f"done{KEEP_FINISHED + 4}" in names


def test_a_misspelt_store_update_field_is_refused_at_run_time_and_by_mypy(repo: Repo, tmp_path: Path) -> None:
    """Before: Store.update(**fields) wrote 'stat' into state.json and left the task active."""
    import subprocess
    import sys

    from worktree_par.repo import open_ctx

    repo.wtp("start", "a")
    ctx = open_ctx(repo.path)
    t = ctx.store.read().tasks["a"]
    with pytest.raises(TypeError, match="stat"):
        ctx.store.update(t, stat="landed")  # type: ignore[call-arg]
    assert ctx.store.read().tasks["a"].state == "active"
    assert all("stat" not in t for t in repo.state()["tasks"])
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from worktree_par.state import Store, Task\n"
        "def f(s: Store, t: Task) -> None:\n"
        "    s.update(t, stat='landed')\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(probe)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert res.returncode == 1, res.stdout
    assert 'Unexpected keyword argument "stat" for "update" of "Store"' in res.stdout
