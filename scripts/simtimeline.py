"""What the throughput study (simulate.py --timeline) records and makes of it: each task's
state changes as wtp's registry shows them, the tasks that share a file as a chain with its
gaps and its floor, and how long waiting lands went on after their task had landed."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

# What a worker's time goes to: editing and building, its 'wtp land' call, the other wtp
# calls (start, list, path), waiting for the workers' shared to-do list, and nothing to do.
ACTIVITIES = ("work", "land", "wtp", "lock", "idle")


def watch_registry(registry: Path, t0: float, events: list[tuple[float, str, str]], stop: threading.Event) -> None:
    """Record each task's state changes as wtp's registry shows them (read every 20 ms when it
    changed, without the lock: the file is replaced whole, never written in place), and once
    more when told to stop."""
    seen: dict[str, str] = {}
    sig = None
    while True:
        stopping = stop.wait(0.02)
        try:
            st = registry.stat()
            if (st.st_mtime_ns, st.st_size) != sig:
                sig = (st.st_mtime_ns, st.st_size)
                at = time.perf_counter() - t0
                for t in json.loads(registry.read_bytes())["tasks"]:
                    if seen.get(t["name"]) != t["state"]:
                        seen[t["name"]] = t["state"]
                        events.append((at, t["name"], f"registry: {t['state']}"))
        except (OSError, ValueError):
            pass
        if stopping:
            return


def until_settled(registry: Path, name: str, land: subprocess.Popen[bytes]) -> str:
    """Wait until task ``name`` has landed or is blocked, as wtp's registry shows it (a stat
    every 20 ms; the file is replaced whole), or its land ended: its state then."""
    sig = None
    while True:
        ended = land.poll() is not None
        try:
            st = registry.stat()
            if ended or (st.st_mtime_ns, st.st_size) != sig:
                sig = (st.st_mtime_ns, st.st_size)
                task = next(t for t in json.loads(registry.read_bytes())["tasks"] if t["name"] == name)
                if ended or task["state"] in ("landed", "blocked"):
                    return str(task["state"])
        except (OSError, ValueError, StopIteration):
            if ended:
                return "unknown"
        time.sleep(0.02)


def chain(events: list[tuple[float, str, str]], names: list[str], wall: float, waiting: bool) -> dict[str, Any]:
    """The tasks that share one file run one after another: for each, when it became active,
    when a worker began it, when it landed (from the registry), and the gap before the next
    one became active; their sum is the floor of the wall time at any number of workers."""
    first: dict[tuple[str, str], float] = {}
    for at, name, what in sorted(events):
        what = what.split("] ", 1)[-1]
        first.setdefault((name, what.split(" (")[0]), at)
    rows: list[dict[str, Any]] = []
    spans: list[float] = []
    gaps: list[float] = []
    order = sorted(names, key=lambda n: first.get((n, "registry: active"), wall))
    for i, n in enumerate(order):
        active, begun, landed = (first.get((n, k)) for k in ("registry: active", "working", "registry: landed"))
        row: dict[str, Any] = {"task": n, "active": active, "working": begun, "landed": landed}
        if active is not None and landed is not None:
            spans.append(landed - active)
            after = first.get((order[i + 1], "registry: active")) if i + 1 < len(order) else None
            if after is not None:
                row["gap_to_next"] = after - landed
                gaps.append(after - landed)
        rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    # How long each waiting 'wtp land' went on after its task had landed (a lander that
    # conducts the queue serves the tasks behind its own before it returns).
    lag = [
        first[(n, "land exited 0")] - first[(n, "registry: landed")]
        for n in {name for _, name, _ in events}
        if (n, "land exited 0") in first and (n, "registry: landed") in first
    ]
    return {
        "tasks": rows,
        "in_flight_s": round(sum(spans), 2),
        "gaps_s": round(sum(gaps), 2),
        **(
            {"land_returned_after_landed_s": {"sum": round(sum(lag), 2), "max": round(max(lag, default=0.0), 2)}}
            if waiting
            else {}
        ),
    }


def report(rows: list[dict[str, Any]], one: float) -> None:
    """Print each level's worker time and chain (and keep the chain's floor in its row);
    ``one``: the wall time one at a time."""
    for r in rows:
        if "wall_s_runs" in r:
            print(f"  level {r['level']}: wall s of each run: {r['wall_s_runs']} (the median stands)")
        busy = " ".join(f"{k} {sum(a[k] for a in r['worker_seconds'].values()):.1f}s" for k in ACTIVITIES)
        print(f"  level {r['level']}: worker time ({len(r['worker_seconds'])} workers x {r['wall_s']}s): {busy}")
        if "chain" in r:
            c = r["chain"]
            print(
                f"  level {r['level']}: the shared-file tasks were in flight {c['in_flight_s']}s, "
                f"with {c['gaps_s']}s between one landing and the next starting"
                + (
                    f" ({-c['gaps_s']}s less: each started on the work of the one before as it landed)"
                    if c["gaps_s"] < 0
                    else ""
                )
            )
            if r["level"] > 1 and c["tasks"] and c["tasks"][0]["active"] is not None and c["gaps_s"] > 0:
                # The same chain with no gap: the floor at this level with wtp's costs as measured.
                c["floor_s"] = round(c["tasks"][0]["active"] + c["in_flight_s"], 2)
                print(
                    f"  level {r['level']}: with no gap in that chain: {c['floor_s']}s, "
                    f"at most {one / c['floor_s']:.2f}x"
                )
            if (lag := c.get("land_returned_after_landed_s")) is not None:
                print(
                    f"  level {r['level']}: 'wtp land' returned {lag['sum']}s in all (at most {lag['max']}s) "
                    "after its task had landed"
                )
