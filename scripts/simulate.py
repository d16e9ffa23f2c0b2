#!/usr/bin/env python3
"""The parallel-throughput study: how much faster do N tasks finish with wtp running
1, 2, 3 or 4 of them at once than one after another, and does anything break?

    python3 scripts/simulate.py [--tasks 12] [--levels 1,2,3,4] [--plot docs/speedup.png]

A reproducible workload (fixed seed) of tasks, each with an edit phase (writes and
commits its change), a build phase that mostly waits, as real builds and deploys do
(plus a little CPU), and a land phase (wtp land with a gate that runs the project's
test).  A share of tasks collide: on a file (declared with --touch) or on a deploy
target (--use deploy:prod, and their deploy runs under 'wtp gate deploy:prod').
Workers behave as the practice says: start a task; if wtp queues it because it
shares state with one in flight, switch to another task and come back later.

Reported per level: wall time, speed-up over one at a time, tasks landed,
collisions caught before start, land refusals, and whether main passed its test
after every land (every commit on main is re-checked at the end); with --timeline,
where each worker's time went and the tasks that share a file as a chain, whose
length bounds the wall time at any number of workers (simtimeline.py).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repos  # noqa: E402
from benchlib import ENV, WTP  # noqa: E402
from simtimeline import ACTIVITIES, chain, report, until_settled, watch_registry  # noqa: E402

# The project's test: every counter file holds one integer line, and the shared log is well formed.
TEST = """import pathlib, sys
for f in pathlib.Path('src').glob('*.txt'):
    for line in f.read_text().splitlines():
        if not (line.startswith('task ') and line.split()[1].isdigit()):
            sys.exit(f'bad line in {f}: {line!r}')
"""


@dataclass
class Spec:
    name: str
    kind: str  # independent | file | deploy
    edit: float
    build: float


def workload(n: int, seed: int, edit: float, build: float, collide: float) -> list[Spec]:
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        r = rng.random()
        kind = "file" if r < collide / 2 else "deploy" if r < collide else "independent"
        specs.append(Spec(f"t{i:02d}", kind, edit * rng.uniform(0.7, 1.3), build * rng.uniform(0.7, 1.3)))
    return specs


def backlog(specs: list[Spec], order: str) -> list[Spec]:
    """The order a worker takes up new tasks.  'listed' (the default): as listed.  'contended':
    the tasks that declare something another task declares too (a shared file, a deploy
    target) first, in list order, then the rest, so that they join wtp's queue early (the
    longest chain first, as a list scheduler would; a worker knows this without guessing, it
    declares its tasks' --touch and --use itself).  Measured, it gains nothing: with workers
    that wait for their land the task wtp starts waits for a free worker instead (all three
    are in a land), and with workers that switch, the chain already starts at once."""
    if order == "listed":
        return list(specs)
    shared = {k for k in ("file", "deploy") if sum(s.kind == k for s in specs) > 1}
    return [s for s in specs if s.kind in shared] + [s for s in specs if s.kind not in shared]


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res


def make_repo(base: Path, level: int) -> Path:
    files = {"src/shared.txt": "task 0 start\n", "test_project.py": TEST, ".wtp.toml": f"max_active = {level}\n"}
    repo = base / f"level{level}" / "proj"
    return repos.build(repo, files=files, origin=repo.parent / "origin.git", env=ENV)


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def run_level(
    base: Path,
    specs: list[Spec],
    level: int,
    cpu: float,
    gate_seconds: float = 0.0,
    mode: str = "",
    detach: bool = False,
    timeline: bool = False,
    order: str = "listed",
    prompt: bool = False,
) -> dict[str, Any]:
    repo = make_repo(base, level)
    registry = repo / ".git" / "wtp" / "state.json"
    todo = backlog(specs, order)
    parked: list[Spec] = []  # queued by wtp: come back to them later
    lock = threading.Lock()
    stats = {"landed": 0, "caught": 0, "refused": 0}
    errors: list[str] = []
    events: list[tuple[float, str, str]] = []  # (seconds since the start, task, what happened)
    returns: list[float] = []  # how long each 'land --detach' kept its worker from the next task
    spent: dict[str, dict[str, float]] = {}  # per worker: seconds by what it was doing (ACTIVITIES)

    def note(s: Spec, what: str) -> None:
        events.append((time.perf_counter() - t0, s.name, f"[{threading.current_thread().name}] {what}"))

    class timed:
        """Charge the time of a block to the current worker's ``what``."""

        def __init__(self, what: str) -> None:
            self.what = what

        def __enter__(self) -> None:
            self.t = time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            mine = spent.setdefault(threading.current_thread().name, dict.fromkeys(ACTIVITIES, 0.0))
            mine[self.what] += time.perf_counter() - self.t

    def start_args(s: Spec) -> list[str]:
        extra = (
            ["--touch", "src/shared.txt"]
            if s.kind == "file"
            else ["--use", "deploy:prod"]
            if s.kind == "deploy"
            else []
        )
        return [*WTP, "start", s.name, "--json", *extra]

    def work(s: Spec, path: Path) -> None:
        note(s, f"working ({s.kind})")
        with timed("work"):
            time.sleep(s.edit)  # edit phase
            target = path / "src" / ("shared.txt" if s.kind == "file" else f"{s.name}.txt")
            with target.open("a") as f:
                f.write(f"task {int(s.name[1:])} edited\n")
            sh(["git", "add", "-A"], path)
            sh(["git", "commit", "-q", "-m", f"{s.name}: {s.kind} change"], path)
            build = ["sh", "-c", f"sleep {s.build:.3f}"]  # build phase: mostly waiting
            burn(cpu)
            if s.kind == "deploy":  # one deploy to prod at a time
                sh([*WTP, "gate", "deploy:prod", "--", *build], path)
            else:
                sh(build, path)
        note(s, "built; landing")
        gate = f"{sys.executable} test_project.py"
        if gate_seconds:  # a test suite as long as the build: the land queue's gates matter
            gate = f"sleep {gate_seconds:g}; {gate}"
        c0 = time.perf_counter()
        land = [
            *WTP,
            "land",
            s.name,
            "--gate",
            gate,
            *(["--detach"] if detach else ["--timeout", "600"]),
            *(["--mode", mode] if mode else []),
        ]
        with timed("land"):
            if prompt:  # what-if: the same waiting land, but the worker goes on once its task has landed
                proc = subprocess.Popen(land, cwd=repo, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with lock:
                    landers.append(proc)
                code = 0 if until_settled(registry, s.name, proc) == "landed" else 1
                res = subprocess.CompletedProcess(land, code, "", "" if code == 0 else f"'{s.name}' did not land")
            else:
                res = sh(land, repo, check=False)
        note(s, f"land exited {res.returncode}")
        if detach and res.returncode == 0:
            with lock:
                returns.append(time.perf_counter() - c0)
            return  # switch to the next task at once while it lands; counted when the queue is done
        with lock:
            if res.returncode == 0:
                stats["landed"] += 1
            else:
                stats["refused"] += 1
                errors.append(res.stderr.strip()[-300:])

    waited: set[str] = set()  # parked tasks a worker is waiting for with 'wtp start --wait'
    landers: list[subprocess.Popen[bytes]] = []  # --what-if-prompt-return: the lands left running

    def worker() -> None:
        while True:
            with timed("lock"):
                lock.acquire()
            try:
                ready, wait_on = None, None
                if parked:  # a parked task whose collision cleared: wtp started it meanwhile
                    with timed("wtp"):
                        listed = json.loads(sh([*WTP, "list", "--json"], repo).stdout)["tasks"]
                    states = {t["name"]: t for t in listed}
                    for p in parked:
                        if states.get(p.name, {}).get("state") == "active":
                            ready, path = p, Path(states[p.name]["path"])  # the listing gives its worktree
                            parked.remove(p)
                            break
                s = ready or (todo.pop(0) if todo else None)
                if s is None and not parked:
                    return
                if s is None:  # nothing new to take up: wait for a parked task no other worker waits for
                    wait_on = next((p for p in parked if p.name not in waited), None)
                    if wait_on is not None:
                        waited.add(wait_on.name)
            finally:
                lock.release()
            if s is None:
                if wait_on is None:
                    with timed("idle"):
                        time.sleep(0.1)
                    continue
                # What wtp advises when there is nothing else to do: 'wtp start TASK --wait' returns
                # as soon as the task is started (a second at most here, then look at the others).
                with timed("idle"):
                    res = sh([*WTP, "start", wait_on.name, "--wait", "--timeout", "1", "--json"], repo, check=False)
                with lock:
                    waited.discard(wait_on.name)
                    if res.returncode != 0 or wait_on not in parked:
                        continue  # still queued, or another worker took it up meanwhile
                    parked.remove(wait_on)
                s, ready, path = wait_on, wait_on, Path(json.loads(res.stdout)["path"])
            if ready is None:
                with timed("wtp"):
                    out = json.loads(sh(start_args(s), repo, check=False).stdout)  # exit 4: queued
                if out["state"] == "queued":
                    with lock:
                        if "with task" in (out.get("note") or ""):
                            stats["caught"] += 1
                        parked.append(s)
                    note(s, f"queued by wtp: {out.get('note')}")
                    continue
                path = Path(out["path"])
            work(s, path)

    t0 = time.perf_counter()
    watching = threading.Event()
    watch = threading.Thread(target=watch_registry, args=(registry, t0, events, watching), daemon=True)
    if timeline:
        watch.start()
    threads = [threading.Thread(target=worker, name=f"w{i + 1}") for i in range(level)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if detach:  # the lands go on alone: the work is done when every task has landed or is blocked
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = [t["state"] for t in json.loads(sh([*WTP, "list", "--all", "--json"], repo).stdout)["tasks"]]
            if all(st in ("landed", "blocked", "abandoned") for st in states):
                break
            time.sleep(0.05)
        stats["landed"] = states.count("landed")
        stats["refused"] = states.count("blocked")
    wall = time.perf_counter() - t0
    for proc in landers:  # ours: each ends once the queue behind its task is served
        proc.wait(timeout=600)
    watching.set()
    if timeline:
        watch.join()
    # main passed its test after every land: re-check every commit on main
    sh(["git", "fetch", "-q", "origin"], repo)
    commits = sh(["git", "rev-list", "origin/main"], repo).stdout.split()
    check = repo.parent / "check"
    sh(["git", "worktree", "add", "-q", "--detach", str(check), "origin/main"], repo)
    all_pass = True
    for c in commits:
        sh(["git", "checkout", "-q", "--detach", c], check)
        all_pass &= subprocess.run([sys.executable, "test_project.py"], cwd=check, capture_output=True).returncode == 0
    linear = sh(["git", "rev-list", "--merges", "origin/main"], repo).stdout.strip() == ""
    return {
        "level": level,
        "wall_s": round(wall, 2),
        "landed": stats["landed"],
        "tasks": len(specs),
        "collisions_caught_before_start": stats["caught"],
        "land_refusals": stats["refused"],
        "main_passed_after_every_land": all_pass and linear and len(commits) == stats["landed"] + 1,
        "errors": errors[:3],
        **({"detach_return_s_max": round(max(returns), 3)} if returns else {}),
        "worker_seconds": {w: {k: round(v, 2) for k, v in a.items()} for w, a in sorted(spent.items())},
        **(
            {
                "timeline": [f"{at:7.2f}s {name} {what}" for at, name, what in sorted(events)],
                "chain": chain(events, [s.name for s in specs if s.kind == "file"], wall, waiting=not detach),
            }
            if timeline
            else {}
        ),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot drawn")
        return False
    levels = [r["level"] for r in rows]
    speed = [r["speedup"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
    ax.plot(levels, levels, "--", color="grey", label="ideal")
    ax.plot(levels, speed, "o-", color="tab:blue", label="wtp")
    for x, y in zip(levels, speed):
        ax.annotate(f"{y:.2f}x", (x, y), textcoords="offset points", xytext=(0, 7), ha="center")
    ax.set_xlabel("tasks at once")
    ax.set_ylabel("speed-up over one at a time")
    ax.set_xticks(levels)
    ax.set_title("Throughput of parallel tasks with wtp")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--levels", default="1,2,3,4")
    ap.add_argument("--edit", type=float, default=0.6, help="seconds of editing per task")
    ap.add_argument("--build", type=float, default=2.0, help="seconds a build or deploy waits")
    ap.add_argument("--cpu", type=float, default=0.3, help="CPU seconds each build burns")
    ap.add_argument(
        "--collide", type=float, default=0.34, help="share of tasks that collide (half on a file, half on deploy)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="runs per level; the median wall time is reported")
    ap.add_argument("--gate-seconds", type=float, default=0.0, help="seconds the land gate waits before the test")
    ap.add_argument("--mode", default="", help="land queue mode (default: wtp's, speculative)")
    ap.add_argument("--detach", action="store_true", help="land with --detach: switch to the next task at once")
    ap.add_argument(
        "--what-if-prompt-return",
        action="store_true",
        help="what-if study, not a user's practice: workers wait for their land, but take up the next task the "
        "moment their task has landed (wtp's registry says so) and leave the 'wtp land' to finish alone, as they "
        "would if a waiting 'wtp land' returned at once instead of serving the tasks queued behind its own first",
    )
    ap.add_argument(
        "--order",
        choices=("contended", "listed"),
        default="listed",
        help="which new task a free worker takes: as listed (default), or those that share a file or resource first",
    )
    ap.add_argument("--timeline", action="store_true", help="record when each task started, built and landed")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    specs = workload(args.tasks, args.seed, args.edit, args.build, args.collide)
    kinds = {k: sum(s.kind == k for s in specs) for k in ("independent", "file", "deploy")}
    print(
        f"workload: {args.tasks} tasks ({kinds}), edit ~{args.edit}s, build ~{args.build}s + {args.cpu}s CPU, "
        f"gate +{args.gate_seconds:g}s, land mode {args.mode or 'default'}{', detached' if args.detach else ''}"
        f"{', what-if: land returns once its task landed' if args.what_if_prompt_return else ''}, "
        f"new tasks taken {'as listed' if args.order == 'listed' else 'contended first'}, seed {args.seed}"
    )
    base = Path(tempfile.mkdtemp(prefix="wtp-sim-"))
    rows: list[dict[str, Any]] = []
    try:
        for level in (int(x) for x in args.levels.split(",")):
            runs = []
            for i in range(args.repeat):
                runs.append(
                    run_level(
                        base / f"run{i}",
                        specs,
                        level,
                        args.cpu,
                        args.gate_seconds,
                        args.mode,
                        args.detach,
                        args.timeline,
                        args.order,
                        args.what_if_prompt_return,
                    )
                )
                print(f"  level {level}: {runs[-1]['wall_s']}s", flush=True)
            # The run with the median wall time stands for the level (all walls are kept).
            row = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
            if len(runs) > 1:
                row["wall_s_runs"] = [r["wall_s"] for r in runs]
                row["main_passed_after_every_land"] = all(r["main_passed_after_every_land"] for r in runs)
            rows.append(row)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    one = next((r["wall_s"] for r in rows if r["level"] == 1), rows[0]["wall_s"])
    print(
        f"\n{'at once':>7} {'wall s':>7} {'speed-up':>8} {'landed':>7} {'caught':>7} {'refused':>7}  main always green"
    )
    for r in rows:
        r["speedup"] = round(one / r["wall_s"], 2)
        print(
            f"{r['level']:>7} {r['wall_s']:>7} {r['speedup']:>7}x {r['landed']:>4}/{r['tasks']:<2} {r['collisions_caught_before_start']:>7} {r['land_refusals']:>7}  {r['main_passed_after_every_land']}"
        )
    # The tasks that share a file run one after another: each starts on the work of the one
    # before once that one is landing (wtp stacks it), and lands after it.  Their work back to
    # back, each land after the one before, is a floor under the wall time at any number of
    # workers (wtp's overhead, each task's start and land, comes on top, at one at a time too).
    # Waiting for each land before starting the next, as wtp did before it stacked, the floor
    # was their work and gates back to back.
    serial = sum(s.edit + s.build + args.cpu + args.gate_seconds for s in specs if s.kind == "file")
    begin = floor = 0.0
    for s in (s for s in specs if s.kind == "file"):
        begin += s.edit + s.build + args.cpu  # the next one starts as this one begins to land
        floor = max(begin + args.gate_seconds, floor)
    work = sum(s.edit + s.build + args.cpu + args.gate_seconds for s in specs)
    print(
        f"\nthe {kinds['file']} tasks on one file, each started on the work of the one before as it lands: "
        f"{floor:.2f}s (all {args.tasks}: {work:.2f}s of work and gates): at most {work / floor:.2f}x with no "
        f"overhead at all (waiting for each land before starting the next: {serial:.2f}s, {work / serial:.2f}x)"
    )
    report(rows, one)
    if args.plot and plot(rows, args.plot):
        print(f"plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "workload": vars(args) | {"plot": str(args.plot), "json": str(args.json)},
                    "floor_s": round(floor, 2),
                    "floor_waiting_for_each_land_s": round(serial, 2),
                    "rows": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
