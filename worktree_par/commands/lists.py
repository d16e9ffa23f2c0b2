"""'wtp list', 'wtp queue' and the task names shell completion offers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..exits import err, here, open_repo
from .common import emit

if TYPE_CHECKING:
    from ..repo import Ctx


def list_(where: str | None, as_json: bool = False, all_tasks: bool = False, remote: bool = False) -> int:
    from .. import listing

    c = open_repo(where)
    if remote:
        return _list_remote(c, as_json)
    infos = listing.list_tasks(c, all_tasks=all_tasks)
    semantic = listing.semantic_last(c)
    if as_json:
        emit(listing.list_json(infos, semantic))
    else:
        from .. import render

        try:
            cwd = str(here(where).resolve())
        except UsageError:
            cwd = None
        render.task_table(infos, c, cwd)
        if semantic:
            print(listing.semantic_line(semantic))
    return 0


def _list_remote(c: Ctx, as_json: bool) -> int:
    """The tasks of other clones, from their claims on the remote."""
    from .. import records, render
    from ..remote import sharing

    name = c.remote()
    if name is None:
        raise UsageError(f"--remote needs a remote, and '{c.cfg.remote or 'none'}' is not one here")
    found = sharing.others(c, name)
    if as_json:
        emit({"remote": name, "tasks": [x.to_json() for x in found]})
        return 0
    if not found:
        print(f"no other clone shares a task through '{name}'" + ("" if c.cfg.share else " (share = false here)"))
        return 0
    render.table(
        ["TASK", "CLONE", "HOST", "AGE", "DECLARES"],
        [
            [x.task, x.clone, x.host, x.age(), records.shown(", ".join([*x.touch, *x.use, *x.recorded])) or "-"]
            for x in found
        ],
    )
    return 0


def queue(where: str | None, as_json: bool = False) -> int:
    from .. import render
    from ..gates import Gate
    from ..land import status as queue_status
    from ..land.request import QUEUE
    from ..locks import STOPPED, Holder
    from ..state import LANDING

    c = open_repo(where)
    st = c.store.read()
    status = queue_status.read(c)
    doing = queue_status.doing(c)
    rows = []
    tickets = Gate(c.store, QUEUE).tickets()
    # Stopped (Ctrl-Z), the conductor does nothing of what it said it does: said with it.
    conductor = next((Holder.from_json(k["holder"]) for k in tickets if k.get("granted")), None)
    halted = conductor is not None and conductor.stopped()
    for place, ticket in enumerate(tickets, 1):
        name = str(ticket.get("label", ""))
        raw = ticket.get("data")
        data: dict[str, object] = raw if isinstance(raw, dict) else {}
        t = st.tasks.get(name)
        now = doing.get(name) if t is not None and t.phase else None
        gate = queue_status.describe(now) or "waiting"
        if ticket["holder"]["pid"] == status.get("conductor") and (t is None or t.state != LANDING):
            # The conductor's own task is settled (its lander returned: land/handoff.py); its
            # ticket is the queue it still holds for the tasks behind.
            gate = f"{t.state if t is not None else 'removed'}; conducting the rest"
        if gate == "passed" and t is not None and t.candidate and isinstance(data.get("gate"), str):
            from ..land import verdicts

            gate = verdicts.queue_note(c, str(data["gate"]), t.candidate) or gate
        own = Holder.from_json(ticket["holder"])
        if own is not None and own.stopped():
            gate += f" ({STOPPED})"
        elif halted and now is not None and conductor is not None:
            gate += f" (its conductor, pid {conductor.pid}, is {STOPPED})"
        rows.append(
            {
                "place": place,
                "task": name,
                "mode": data.get("mode"),
                "candidate": t.candidate if t is not None else None,
                "request": t.request if t is not None else None,
                "gate": gate,
                "pid": ticket["holder"]["pid"],
                "conductor": status.get("conductor") if t is not None and t.phase else None,
            }
        )
    _forge_states(c, rows)
    from ..land import window

    live = status.get("depth") if rows else None  # the conductor's window, while it conducts
    depth = live if isinstance(live, dict) else window.describe(c)
    if any(r["mode"] == "serial" for r in rows):  # one candidate at a time, whatever the window says
        depth = {**depth, "window": 1, "adaptive": False, "mode": "serial"}
    if as_json:
        emit({"entries": rows, "depth": depth})
    elif not rows:
        print("the land queue is empty")
    else:
        render.table(
            ["PLACE", "TASK", "MODE", "CANDIDATE", "GATE", "PID"],
            [
                [
                    str(r["place"]),
                    str(r["task"]),
                    str(r["mode"] or "-"),
                    str(r["candidate"] or "-")[:12],
                    str(r["gate"])
                    + (f"; request #{r['request']} {r.get('request_state') or ''}".rstrip() if r["request"] else ""),
                    str(r["pid"]),
                ]
                for r in rows
            ],
        )
        fixed = "serial: one at a time" if depth.get("mode") == "serial" else "fixed: [land] depth"
        how = f"adaptive, {depth['floor']} to {depth['cap']}" if depth.get("adaptive") else fixed
        if depth.get("adaptive") and depth.get("gate_cores") and depth["cap"] != max(1, c.cfg.max_active):
            how += f"; a gate keeps {depth['gate_cores']} of the {depth['cores']} cores busy"
        print(f"depth: {depth['window']} in flight ({how})")
    return 0


def flaky(where: str | None, as_json: bool = False) -> int:
    """'wtp queue --flaky': per gate command, the reds that did not hold."""
    from .. import render
    from ..land import flaky as ledger

    c = open_repo(where)
    rows = ledger.rows(c)
    if as_json:
        emit({"gates": rows})
    elif not rows:
        held = "every red gate held on its re-run" if c.cfg.land_confirm_red else "reds are not run again"
        print(f"no flaky gate recorded: {held}")
    else:
        from ..records import shown  # a courtesy file: whatever wrote it, nothing reaches the terminal raw

        render.table(
            ["GATE", "FLAKY", "LAST", "TASKS"],
            [
                [
                    shown(str(r["gate"])),
                    str(r["count"]),
                    str(r["last"] or "-"),
                    shown(", ".join(dict.fromkeys(f"{e['task']} ({e['how']})" for e in reversed(r["events"])))),
                ]
                for r in rows
            ],
        )
    return 0


def _forge_states(c: Ctx, rows: list[dict[str, object]]) -> None:
    """Through a forge: each entry's request as the forge reports it now (state, checks);
    a forge that cannot be asked leaves them out, with one line."""
    from ..land import forge_lane

    wanted = [r for r in rows if isinstance(r["request"], int)]
    if not wanted or not forge_lane.enabled(c):
        return
    from ..errors import WtpError

    try:
        f = forge_lane.connect(c, err)
        for r in wanted:
            req = f.get(int(str(r["request"])))
            r["request_state"], r["checks"] = req.state, req.checks_summary or req.checks or None
    except WtpError as e:
        err(f"wtp: the forge's view of the requests is left out: {e.message}")


def task_names(where: str | None) -> int:
    """The names shell completion offers (answered without typer or git beyond discovery)."""
    from ..state import FINAL, LANDED

    c = open_repo(where)
    for t in sorted(c.store.read().tasks.values(), key=lambda t: t.seq):
        if t.state not in FINAL or (t.state == LANDED and t.path):
            print(t.name)
    return 0
