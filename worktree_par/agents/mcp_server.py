"""``wtp mcp``: a Model Context Protocol server over stdio, built on the official ``mcp`` SDK
(the optional extra ``worktree-par[mcp]``).  Each tool answers with the same JSON as the
CLI's ``--json``; a refusal comes back as a tool error carrying the one-line message.

Each call is one wtp process, exactly as if the agent had run the CLI: the server holds no
lock of its own, so ``list``, ``queue``, ``check`` and ``gate_status`` answer while a
``land`` waits in the queue (issue 24).  In one process they could not: a waiting land
polls the queue under wtp's file locks, which refuse a second holder in the same process
(locks.py), and its clean-up on an interrupt takes SIGINT, which only the main thread can.
A call the client cancels ends its process with SIGINT, as Ctrl-C ends the CLI, so a land
puts its task back the way the CLI does.  The processes coordinate through wtp's locks, as
concurrent shells do; starting one costs ~50 ms."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .. import __version__

INSTRUCTIONS = """\
wtp runs several tasks in parallel on one git repository, each in its own branch and git
worktree. Start a task before editing (start), work only inside its worktree (path), check
collisions with other tasks (check), and land it through the push queue (land, which
returns at once with detach=true; follow it with queue or list). A refusal names what is
wrong and what to do."""

GRACE = 60  # seconds a cancelled call's process has to put things back after SIGINT


def _gates(where: str | None) -> tuple[str, list[str], bool]:
    """The project's [land] gate, the land gates the user trusted, and [land] require_gate
    (('', [], False) when the repository cannot be read: the land itself then says why)."""
    from ..errors import WtpError
    from ..exits import here
    from ..repo import open_ctx

    try:
        ctx = open_ctx(here(where))
        trusted = ctx.store.read().extra.get("trusted", {}).get("land.gate", [])
        return ctx.cfg.land_gate, [g for g in trusted if isinstance(g, str)], ctx.cfg.land_require_gate
    except WtpError:
        return "", [], False


def _opts(name: str, values: list[str] | None) -> list[str]:
    """Repeated options as ``--name=value``: a value starting with '-' stays a value."""
    return [f"--{name}={v}" for v in values or ()]


async def _drain(stream: ByteReceiveStream | None, into: bytearray) -> None:
    if stream is not None:
        async for chunk in stream:
            into += chunk


async def _interrupt(proc: Process) -> None:
    """SIGINT, as Ctrl-C: wtp puts back what it was doing; SIGKILL only after GRACE."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGINT)
    with anyio.move_on_after(GRACE):
        await proc.wait()
        return
    proc.kill()
    await proc.wait()


async def wtp(where: str | None, args: list[str]) -> Any:
    """Run ``wtp [-C where] ARGS`` (positional values after '--'); its JSON, or a tool error
    with its one-line message."""
    argv = [sys.executable, "-m", "worktree_par", *(["-C", where] if where else []), *args]
    out, err = bytearray(), bytearray()
    try:
        proc = await anyio.open_process(argv, stdin=subprocess.DEVNULL)
    except (OSError, ValueError) as e:  # ValueError: a NUL in an argument
        raise ToolError(f"cannot run wtp: {e}") from None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, proc.stdout, out)
            tg.start_soon(_drain, proc.stderr, err)
        code = await proc.wait()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await _interrupt(proc)
        raise
    return result(code, out.decode(errors="replace"), err.decode(errors="replace"))


def result(code: int, out: str, err: str) -> Any:
    """A wtp process's outcome as a tool's answer: exit 0, or 4 (queued), is its JSON (with
    stderr's lines under 'messages'); any other exit is a tool error with its one line."""
    try:
        data = json.loads(out) if out.strip() else {}
    except ValueError:
        data = {"output": out}
    lines = err.strip().splitlines()
    if isinstance(data, list):  # one document per task ('wtp land A B --json')
        failed = [f"{d.get('task')}: {d['error']}" for d in data if isinstance(d, dict) and d.get("error")]
        data = {"tasks": data, **({"error": "; ".join(failed)} if failed else {})}
    if code not in (0, 4):
        said = data.get("error") if isinstance(data, dict) else None
        if not isinstance(said, str):
            said = lines[-1].removeprefix("wtp: ") if lines else f"wtp exited {code}"
        raise ToolError(said)
    if isinstance(data, dict) and lines:
        data.setdefault("messages", lines)
    return data


def build(where: str | None) -> MCPServer:
    # WARNING: the SDK's INFO lines ("Processing request of type ...") on stderr are noise
    # in the agent's log for every call (issue 29).
    server = MCPServer("wtp", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    @server.tool(
        name="list",
        description="Every task: state, ahead/behind, dirty and changed files, processes (as 'wtp list --json').",
    )
    async def list_tasks(all_tasks: bool = False) -> Any:
        return await wtp(where, ["list", "--json", *(["--all"] if all_tasks else [])])

    @server.tool(
        description="Start a task (branch + worktree) or queue it (as 'wtp start --json'); "
        "touch: globs of paths it will write; use: shared resources it holds. state 'queued' means it waits."
    )
    async def start(
        task: str, touch: list[str] | None = None, use: list[str] | None = None, base: str | None = None
    ) -> Any:
        base_opt = [f"--base={base}"] if base is not None else []
        return await wtp(where, ["start", "--json", *_opts("touch", touch), *_opts("use", use), *base_opt, "--", task])

    @server.tool(description="The worktree path of a task (where to work on it).")
    async def path(task: str) -> Any:
        out = await wtp(where, ["path", "--", task])
        return {"task": task, "path": str(out.get("output", "")).strip()}

    @server.tool(
        description="Which tasks collide: declared, overlap, conflict, undeclared (as 'wtp check --json'); "
        "tasks: limit to pairs involving these. test=true also runs the gate on the merge of the live tasks "
        "and names tasks that fail together while each passes alone (kind 'semantic'; as 'wtp check --test'); "
        "budget: gate runs at once."
    )
    async def check(tasks: list[str] | None = None, test: bool = False, budget: int | None = None) -> Any:
        opts = [*(["--test"] if test else []), *([f"--budget={budget}"] if budget is not None and test else [])]
        return await wtp(
            where, ["check", "--json", "--fail-on=never", *opts, *(["--", *tasks] if tasks else ["--all"])]
        )

    @server.tool(
        description="Land a task through the push queue: rebase, gate, publish (as 'wtp land --json'). "
        "detach=true (default) queues it and returns at once; follow it with 'queue' or 'list'. "
        "also: more tasks to land in the same call (a task started on another's work joins after it); "
        "the answer then has one document per task under 'tasks'."
    )
    async def land(
        task: str,
        detach: bool = True,
        strategy: str | None = None,
        gate: str | None = None,
        also: list[str] | None = None,
    ) -> Any:
        configured, trusted, required = _gates(where) if gate is not None else ("", [], False)
        if (configured or trusted) and gate not in trusted:  # what tests the base is the team's, as trusted
            raise ToolError(
                f"the project's [land] gate is '{configured or trusted[0]}': an agent cannot land with another "
                f"gate, nor with one the user has not trusted (a person can, with 'wtp land --gate'); leave gate out"
            )
        if required and not trusted:  # the team asks for a gate and has set none: not the agent's to choose
            raise ToolError("[land] require_gate is true and the project sets no gate: a person sets [land] gate")
        opts = [
            *(["--detach"] if detach else []),
            *([f"--strategy={strategy}"] if strategy is not None else []),
            *([f"--gate={gate}"] if gate is not None else []),
        ]
        return await wtp(where, ["land", "--json", *opts, "--", task, *(also or [])])

    @server.tool(description="The land queue in order: task, mode, candidate, gate state (as 'wtp queue --json').")
    async def queue() -> Any:
        return await wtp(where, ["queue", "--json"])

    @server.tool(
        description="Who holds a named gate (e.g. deploy:prod) and who waits for it, in order; "
        "remote=true for a gate held through the remote (its lease and fencing token too)."
    )
    async def gate_status(name: str, remote: bool = False) -> Any:
        return await wtp(where, ["gate", "--status", "--json", *(["--remote"] if remote else []), "--", name])

    @server.tool(
        description="Remove a task's worktree and branch (as 'wtp rm'); refuses to lose anything not kept elsewhere "
        "(uncommitted work, unlanded commits) unless force=true, which archives all of it first and says where."
    )
    async def rm(task: str, force: bool = False) -> Any:
        out = await wtp(where, ["rm", *(["--force"] if force else []), "--", task])
        lines = str(out.get("output", "")).strip().splitlines()
        nothing = lines[:1] and lines[0].endswith(("nothing to remove", "is already removed"))  # removal.rm's words
        return {"task": task, "removed": not nothing, "messages": lines}

    @server.tool(
        name="next", description="Start queued tasks whose slot and collisions have cleared (as 'wtp next --json')."
    )
    async def next_tasks() -> Any:
        return await wtp(where, ["next", "--json"])

    return server


def serve(where: str | None) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started with SIGINT ignored ('wtp mcp &' in a script): the server still takes none,
        # but through a handler of its own, which its calls' processes do not inherit (an
        # ignored signal stays ignored across exec): a cancelled call's SIGINT ends them.
        signal.signal(signal.SIGINT, lambda _sig, _frame: None)
    build(where).run("stdio")
