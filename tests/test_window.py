"""The queue's adaptive depth (issue 28): as Zuul's window, it starts at the cap, grows by
one per task landed, is halved by a red that held, never below 2; the cap is max_active and
what the machine's cores can run of the gates, measured from the gate runs themselves;
'[land] depth = N' fixes it.  'wtp queue' shows it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .conftest import Repo
from .test_queue import _land_all_at_once, _tasks

CORES = len(os.sched_getaffinity(0))


def _depth(r: Repo) -> dict[str, object]:
    depth = r.wtp("queue", "--json").json()["depth"]
    assert isinstance(depth, dict)
    return depth


def _window(window: int, cap: int = 5, *, adaptive: bool = True, gate_cores: float | None = None) -> dict[str, object]:
    """'depth' as 'wtp queue --json' shows it; gates shorter than a second leave no measure."""
    return {"window": window, "adaptive": adaptive, "floor": 2, "cap": cap, "cores": CORES, "gate_cores": gate_cores}


def _land_four_at_once(r: Repo) -> list[str]:
    """t2..t5 landed at once with a quick gate: the conductors' 'landing ... behind ...' lines."""
    for i in (2, 3, 4, 5):
        p = Path(r.wtp("start", f"t{i}").lines[-1])
        r.commit({f"f{i}.txt": f"{i}\n"}, f"t{i} work", cwd=p)
    results = _land_all_at_once(r, ["t2", "t3", "t4", "t5"], "--gate", "./check.sh")
    assert [code for code, _, _ in results] == [0] * 4, results
    return [line for _, _, err in results for line in err.splitlines() if line.startswith("landing ")]


def test_the_window_halves_on_a_red_and_grows_with_each_landed_task(project: Repo, tmp_path: Path) -> None:
    assert _depth(project) == _window(5)
    _tasks(project, 1, broken={1})
    assert project.wtp("land", "t1", "--gate", "./check.sh").code == 1
    assert _depth(project) == _window(2)  # 5 // 2
    stacked = _land_four_at_once(project)
    # whichever lander conducts first: two in flight (its own and one behind it), twice
    assert len(stacked) == 2 and all(line.count("'") == 4 for line in stacked), stacked  # two in flight at first
    assert _depth(project) == _window(5)  # 2 + 4 landed, capped at 5


def test_a_fixed_depth_stays_fixed(project: Repo, tmp_path: Path) -> None:
    project.commit({".wtp.toml": "max_active = 5\n[land]\ndepth = 3\n"}, "depth 3")
    project.git("push", "-q", "origin", "main")
    _tasks(project, 1, broken={1})
    assert project.wtp("land", "t1", "--gate", "./check.sh").code == 1
    assert _depth(project) == _window(3, adaptive=False)
    assert project.wtp("queue").lines == ["the land queue is empty"]


# A gate that keeps every core busy for a second of CPU each (a test suite run in parallel).
BURN = f"""{sys.executable} -c '
import os, time
kids = []
for _ in range(len(os.sched_getaffinity(0))):
    pid = os.fork()
    if pid == 0:
        t = time.process_time()
        while time.process_time() - t < 1.0:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
' && ./check.sh"""


def test_gates_that_keep_the_cores_busy_cap_the_window_at_what_the_machine_runs(project: Repo) -> None:
    _tasks(project, 1)
    assert project.wtp("land", "t1", "--gate", BURN).code == 0
    depth = _depth(project)
    # One gate keeps every core busy: CORES cores over a run of 1 s, less when others slow it
    # down (a run stretched k times shows CORES / k, and the cap is then about k).
    gate_cores = depth["gate_cores"]
    assert isinstance(gate_cores, float) and CORES / 4.5 < gate_cores <= CORES * 1.1, depth
    cap = depth["cap"]
    assert isinstance(cap, int) and 2 <= cap < 5 and cap == max(2, int(CORES / gate_cores)), depth
    assert depth["window"] == depth["cap"], depth  # the window came down to it
    stacked = _land_four_at_once(project)
    assert stacked and all(line.count("'") // 2 <= cap for line in stacked), stacked  # no more in flight
    assert _depth(project)["gate_cores"] == gate_cores  # short gates leave the measure as it was
    project.commit({".wtp.toml": 'max_active = 5\n[land]\nmode = "batch"\n'}, "batch mode")
    project.git("push", "-q", "origin", "main")
    assert _depth(project)["cap"] == 5  # a batch of any size is one gate run: the cores do not cap it


def test_gates_that_wait_leave_the_cap_at_max_active(project: Repo) -> None:
    _tasks(project, 1)
    assert project.wtp("land", "t1", "--gate", "sleep 1.1 && ./check.sh").code == 0
    depth = _depth(project)
    gate_cores = depth["gate_cores"]
    assert isinstance(gate_cores, float) and gate_cores < 0.3, depth  # a shell and a sleep: next to nothing
    assert {k: v for k, v in depth.items() if k != "gate_cores"} == {
        k: v for k, v in _window(5).items() if k != "gate_cores"
    }


def test_the_depth_of_a_serial_land_is_said_as_serial_not_as_a_fixed_setting(project: Repo, tmp_path: Path) -> None:
    """Review 44: under '--mode serial' 'wtp queue' said 'depth: 1 in flight (fixed: [land]
    depth)' with no depth set."""
    from .conftest import wait_for

    _tasks(project, 1)
    lander = project.spawn(
        "land", "t1", "--mode", "serial", "--gate", f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done"
    )
    try:
        wait_for(lambda: bool(project.wtp("queue", "--json").json()["entries"]), "t1 to be in the land queue")
        assert project.wtp("queue").lines[-1] == "depth: 1 in flight (serial: one at a time)"
    finally:
        (tmp_path / "go").touch()
        lander.communicate(timeout=60)
    assert lander.returncode == 0
