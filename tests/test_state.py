"""The registry's transaction: in-place changes are written, unchanged reads are not, and
the history of finished tasks is bounded so no command's cost grows with it."""

from __future__ import annotations

import json
from pathlib import Path

from worktree_par.state import ACTIVE, KEEP_FINISHED, LANDED, Store, Task


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
