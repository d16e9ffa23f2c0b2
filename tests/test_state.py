"""The registry's transaction: in-place changes are written, unchanged reads are not, and
the history of finished tasks is bounded so no command's cost grows with it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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
