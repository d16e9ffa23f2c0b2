"""``wtp mcp``: a Model Context Protocol server over stdio, built on the official ``mcp`` SDK
(the optional extra ``worktree-par[mcp]``).  Each tool answers with the same JSON as the
CLI's ``--json`` (the command's one body in ``commands`` produces it); a refusal comes
back as a tool error carrying the one-line message.  stdout is the protocol's channel,
so a tool's printed output is captured and returned, never written there."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from . import __version__
from .commands import check as c_check
from .commands import gate as c_gate
from .commands import land as c_land
from .commands import lists as c_lists
from .commands import run as c_run
from .commands import start as c_start
from .errors import WtpError

INSTRUCTIONS = """\
wtp runs several tasks in parallel on one git repository, each in its own branch and git
worktree. Start a task before editing (start), work only inside its worktree (path), check
collisions with other tasks (check), and land it through the push queue (land, which
returns at once with detach=true; follow it with queue or list). A refusal names what is
wrong and what to do."""

_lock = threading.Lock()  # one command at a time: they print to a captured stdout


def _call(body: Callable[[], int]) -> Any:
    """Run a command body with its stdout captured: its JSON, or a tool error with its line."""
    out, errs = io.StringIO(), io.StringIO()
    with _lock, contextlib.redirect_stdout(out), contextlib.redirect_stderr(errs):
        try:
            code = body()
        except WtpError as e:
            raise ToolError(e.message) from None
    text = out.getvalue()
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = {"output": text}
    if code not in (0, 4) and isinstance(data, dict) and "error" not in data:
        raise ToolError(errs.getvalue().strip().splitlines()[-1] if errs.getvalue().strip() else f"exit {code}")
    if isinstance(data, dict) and errs.getvalue().strip():
        data.setdefault("messages", errs.getvalue().strip().splitlines())
    return data


def build(where: str | None) -> MCPServer:
    server = MCPServer("wtp", instructions=INSTRUCTIONS, version=__version__)

    @server.tool(
        name="list",
        description="Every task: state, ahead/behind, dirty and changed files, processes (as 'wtp list --json').",
    )
    def list_tasks(all_tasks: bool = False) -> Any:
        return _call(lambda: c_lists.list_(where, True, all_tasks))

    @server.tool(
        description="Start a task (branch + worktree) or queue it (as 'wtp start --json'); "
        "touch: globs of paths it will write; use: shared resources it holds. state 'queued' means it waits."
    )
    def start(task: str, touch: list[str] | None = None, use: list[str] | None = None, base: str | None = None) -> Any:
        return _call(lambda: c_start.start(where, task, base=base, touch=touch or (), use=use or (), as_json=True))

    @server.tool(description="The worktree path of a task (where to work on it).")
    def path(task: str) -> Any:
        out = _call(lambda: c_run.path(where, task))
        return {"task": task, "path": str(out.get("output", "")).strip()}

    @server.tool(
        description="Which tasks collide: declared, overlap, conflict, undeclared (as 'wtp check --json'); "
        "tasks: limit to pairs involving these."
    )
    def check(tasks: list[str] | None = None) -> Any:
        return _call(lambda: c_check.check(where, tasks or None, "never", True, all_tasks=not tasks))

    @server.tool(
        description="Land a task through the push queue: rebase, gate, publish (as 'wtp land --json'). "
        "detach=true (default) queues it and returns at once; follow it with 'queue' or 'list'."
    )
    def land(task: str, detach: bool = True, strategy: str | None = None, gate: str | None = None) -> Any:
        return _call(lambda: c_land.land(where, task, strategy=strategy, gate=gate, detach=detach, as_json=True))

    @server.tool(description="The land queue in order: task, mode, candidate, gate state (as 'wtp queue --json').")
    def queue() -> Any:
        return _call(lambda: c_lists.queue(where, True))

    @server.tool(
        description="Who holds a named gate (e.g. deploy:prod) and who waits for it, in order; "
        "remote=true for a gate held through the remote (its lease and fencing token too)."
    )
    def gate_status(name: str, remote: bool = False) -> Any:
        return _call(lambda: c_gate.gate_status(where, name, True, remote))

    @server.tool(
        name="next", description="Start queued tasks whose slot and collisions have cleared (as 'wtp next --json')."
    )
    def next_tasks() -> Any:
        return _call(lambda: c_start.next_(where, True))

    return server


def serve(where: str | None) -> None:
    build(where).run("stdio")
