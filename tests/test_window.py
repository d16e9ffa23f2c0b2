"""The queue's adaptive depth (issue 28): as Zuul's window, it starts at the cap
(max_active), grows by one per task landed, is halved by a red that held, never below 2;
'[land] depth = N' fixes it.  'wtp queue' shows it."""

from __future__ import annotations

from pathlib import Path

from .conftest import Repo
from .test_queue import _land_all_at_once, _tasks


def _depth(r: Repo) -> dict[str, object]:
    depth = r.wtp("queue", "--json").json()["depth"]
    assert isinstance(depth, dict)
    return depth


def test_the_window_halves_on_a_red_and_grows_with_each_landed_task(project: Repo, tmp_path: Path) -> None:
    assert _depth(project) == {"window": 5, "adaptive": True, "floor": 2, "cap": 5}
    _tasks(project, 1, broken={1})
    assert project.wtp("land", "t1", "--gate", "./check.sh").code == 1
    assert _depth(project) == {"window": 2, "adaptive": True, "floor": 2, "cap": 5}  # 5 // 2
    for i in (2, 3, 4, 5):
        p = Path(project.wtp("start", f"t{i}").lines[-1])
        project.commit({f"f{i}.txt": f"{i}\n"}, f"t{i} work", cwd=p)
    results = _land_all_at_once(project, ["t2", "t3", "t4", "t5"], "--gate", "./check.sh")
    assert [code for code, _, _ in results] == [0] * 4, results
    # whichever lander conducts first: two in flight (its own and one behind it), twice
    stacked = [line for _, _, err in results for line in err.splitlines() if line.startswith("landing ")]
    assert len(stacked) == 2 and all(line.count("'") == 4 for line in stacked), stacked  # two in flight at first
    assert _depth(project) == {"window": 5, "adaptive": True, "floor": 2, "cap": 5}  # 2 + 4 landed, capped at 5


def test_a_fixed_depth_stays_fixed(project: Repo, tmp_path: Path) -> None:
    project.commit({".wtp.toml": "max_active = 5\n[land]\ndepth = 3\n"}, "depth 3")
    project.git("push", "-q", "origin", "main")
    _tasks(project, 1, broken={1})
    assert project.wtp("land", "t1", "--gate", "./check.sh").code == 1
    assert _depth(project) == {"window": 3, "adaptive": False, "floor": 2, "cap": 5}
    assert project.wtp("queue").lines == ["the land queue is empty"]
