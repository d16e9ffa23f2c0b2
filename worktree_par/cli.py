"""Command line: parse arguments with typer and call the command's one body in
``commands`` (entry's fast path calls the same bodies).

The only layer that knows typer.  Errors from the core are caught once, in
``WtpGroup.main``, and printed as one line with the contract's exit code.
"""

from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from . import cli_agents, cli_check
from .cli_base import JSON, WtpGroup, completion_spec
from .cli_base import done as _done
from .commands import check as c_check
from .commands import doctor as c_doctor
from .commands import gate as c_gate
from .commands import init as c_init
from .commands import land as c_land
from .commands import lists as c_lists
from .commands import rm as c_rm
from .commands import run as c_run
from .commands import shell as c_shell
from .commands import start as c_start
from .config import MODES, STRATEGIES
from .errors import ExitCode
from .exits import err

app = typer.Typer(
    cls=WtpGroup,
    name="wtp",
    help="Run several tasks in parallel on one git repository, safely: one branch and worktree per task, "
    "admission control, an overlap checker and a push queue.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    chdir: Optional[Path] = typer.Option(None, "-C", help="Run as if started in PATH.", metavar="PATH"),
    version: bool = typer.Option(False, "--version", help="Print wtp's version and exit.", is_eager=True),
) -> None:
    if version:
        from . import __version__

        print(f"wtp {__version__}")
        raise typer.Exit(0)
    ctx.obj = str(chdir) if chdir is not None else None
    if ctx.invoked_subcommand is None:  # bare 'wtp': the help, on stdout, exit 0, at any width
        print(ctx.get_help())
        raise typer.Exit(0)


# --- init ------------------------------------------------------------------------------

TIMEOUT_HELP = "Give up waiting after S seconds (exit 3)."


@app.command(short_help="Write a commented .wtp.toml with detected defaults.")
def init(
    ctx: typer.Context,
    base: Optional[str] = typer.Option(None, help="Base branch (default: detected).", metavar="BRANCH"),
    remote: Optional[str] = typer.Option(None, help="Remote to land to.", metavar="REMOTE"),
    no_remote: bool = typer.Option(False, "--no-remote", help="Land by moving the local base branch."),
    max_active: int = typer.Option(3, "--max-active", min=1, help="Active tasks at once.", metavar="N"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing .wtp.toml."),
    agents: bool = typer.Option(
        False, "--agents", help="Also write the wtp section of AGENTS.md and CLAUDE.md (kept between markers)."
    ),
) -> None:
    """Write a commented .wtp.toml with detected defaults, the project's test command as the
    land gate included, and trust its commands.  --agents also tells coding agents how to
    work here, in AGENTS.md and CLAUDE.md (an existing .wtp.toml is then kept).

    \b
    Example: wtp init --max-active 3"""
    _done(
        c_init.init(
            ctx.obj, base=base, remote=remote, no_remote=no_remote, max_active=max_active, force=force, agents=agents
        )
    )


# --- start / next / path / run / rm -------------------------------------------------


@app.command(short_help="Start a task (branch + worktree) or queue it; prints its path.")
def start(
    ctx: typer.Context,
    task: str = typer.Argument(..., help="Task name: letters, digits, '.', '_', '-'.", metavar="TASK"),
    base: Optional[str] = typer.Option(None, "--base", help="Branch or commit to fork from.", metavar="REF"),
    touch: list[str] = typer.Option(
        [], "--touch", help="Glob of paths the task will write (repeatable).", metavar="GLOB"
    ),
    use: list[str] = typer.Option(
        [], "--use", help="Shared resource held for the task's life (repeatable).", metavar="RESOURCE"
    ),
    wait: bool = typer.Option(False, "--wait", help="Block until the task is admitted."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0, help="With --wait: give up after S seconds (exit 3).", metavar="S"
    ),
    force: bool = typer.Option(False, "--force", help="Start despite the cap or declared collisions."),
    touch_suggested: bool = typer.Option(
        False, "--touch-suggested", help="Also declare the files that usually change with the --touch ones."
    ),
    as_json: bool = JSON,
) -> None:
    """Admit, queue or refuse TASK; when admitted, create its branch and worktree and print
    its path, alone on stdout.  Queued: stdout stays empty, the reason goes to stderr, exit 4.
    On a task that exists, --touch and --use add to its declarations (refused, exit 1, when
    they collide with another task's).

    \b
    Example: cd "$(wtp start feed --touch 'src/feed/**')\""""
    _done(
        c_start.start(
            ctx.obj,
            task,
            base=base,
            touch=touch,
            use=use,
            wait=wait,
            timeout=timeout,
            force=force,
            as_json=as_json,
            touch_suggested=touch_suggested,
        )
    )


@app.command("next", short_help="Start queued tasks whose slot and collisions have cleared.")
def next_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Start queued tasks whose slot and collisions have cleared.

    \b
    Example: wtp next"""
    _done(c_start.next_(ctx.obj, as_json))


CURRENT = "Task name (default: the task whose worktree you are in)."


def _task() -> Any:
    return typer.Argument(None, help=CURRENT, metavar="[TASK]")


@app.command(short_help="Print a task's worktree path, alone on stdout.")
def path(
    ctx: typer.Context,
    task: Optional[str] = _task(),
    main: bool = typer.Option(False, "--main", help="The main worktree instead."),
) -> None:
    """Print TASK's worktree path, alone on stdout.

    \b
    Example: cd "$(wtp path feed)\""""
    _done(c_run.path(ctx.obj, task, main))


SHELLS = "|".join(c_shell.SHELLS)


@app.command(short_help="Print a completion script for bash, zsh or fish.")
def completion(shell: str = typer.Argument(..., help="The shell.", metavar=SHELLS)) -> None:
    """Print a completion script: commands, options, their choices and live task names.

    \b
    Example: eval "$(wtp completion bash)\""""
    _done(c_shell.completion(shell, completion_spec(typer.main.get_command(app))))


@app.command("shell-init", short_help="Print the shell function behind 'wtp cd' and 'start --cd'.")
def shell_init(shell: str = typer.Argument(..., help="The shell.", metavar=SHELLS)) -> None:
    """Print the shell function for 'wtp cd [TASK]', 'wtp start --cd' and a shell moved to the
    main worktree after 'wtp land' or 'wtp rm' removed the one it stood in.

    \b
    Example: eval "$(wtp shell-init bash)\""""
    _done(c_shell.shell_init(shell))


@app.command("cd", short_help="Move the shell to a task's worktree (needs 'wtp shell-init').")
def cd(
    task: Optional[str] = typer.Argument(None, help="Task name (default: the main worktree).", metavar="[TASK]"),
) -> None:
    """Move the shell into TASK's worktree, or the main one without TASK.  Only the shell
    function from 'wtp shell-init' can move a shell: run here, this prints (exit 2) the line
    that loads it, for the shell in $SHELL.

    \b
    Example: eval "$(wtp shell-init bash)"; wtp cd feed"""
    _done(c_shell.cd_without_function(task))


@app.command(short_help="Run a command in a task's worktree with the task's environment.")
def run(
    ctx: typer.Context,
    task: str = typer.Argument(..., help=CURRENT, metavar="[TASK]"),
    cmd: list[str] = typer.Argument(..., help="Command and its arguments, after --.", metavar="-- CMD..."),
) -> None:
    """Run CMD inside TASK's worktree with the task's environment (WTP_TASK, PORT, ...); exit
    with CMD's code (127: not found).  Inside a task's worktree TASK may be left out.

    \b
    Example: wtp run feed -- npm test"""
    _done(c_run.run(ctx.obj, task, cmd))


@app.command(short_help="Remove a task's worktree and branch; refuses to lose work.")
def rm(
    ctx: typer.Context,
    task: Optional[str] = _task(),
    force: bool = typer.Option(
        False, "--force", help="Archive unlanded work under refs/wtp/archive/TASK and remove anyway."
    ),
) -> None:
    """Remove TASK's worktree and branch; refuses to lose work unless --force, which archives
    it first and says what it dropped.

    \b
    Example: wtp rm feed"""
    _done(c_rm.rm(ctx.obj, task, force))


app.command("abandon", help="Alias of rm.")(rm)


# --- list ----------------------------------------------------------------------------


@app.command("list", short_help="Every task: state, ahead/behind, changes, last commit.")
def list_(
    ctx: typer.Context,
    as_json: bool = JSON,
    all_tasks: bool = typer.Option(False, "--all", help="Include landed and abandoned tasks."),
    remote: bool = typer.Option(False, "--remote", help="The tasks of other clones, from their shared claims."),
) -> None:
    """Every task: state, ahead/behind base, dirty and changed files, processes, its last
    commit; '*' marks the task you stand in.  --remote: the tasks other clones share
    through the remote (share = true), with their clone, host, age and declarations.

    \b
    Example: wtp list --json"""
    _done(c_lists.list_(ctx.obj, as_json, all_tasks, remote))


app.command("status", help="Alias of list.")(list_)


# --- check --------------------------------------------------------------------------


@app.command(short_help="Report tasks whose work collides (declared, overlap, conflict, semantic).")
def check(
    ctx: typer.Context,
    tasks: Optional[list[str]] = typer.Argument(
        None, help="Limit the report to pairs involving these tasks.", metavar="[TASK]..."
    ),
    all_tasks: bool = typer.Option(False, "--all", help="Every pair, even inside a task's worktree."),
    fail_on: str = cli_check.FAIL_ON,
    test: bool = cli_check.TEST,
    budget: Optional[int] = cli_check.BUDGET,
    all_pairs: bool = cli_check.ALL_PAIRS,
    timeout: Optional[float] = cli_check.TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Report tasks whose work collides: declared, overlap, conflict (and hot files), tasks
    that changed files outside their --touch, and with --test, tasks that fail the gate together
    (semantic).  Inside a task's worktree the report is about that task, unless --all.

    \b
    Example: wtp check --test --fail-on semantic"""
    _done(c_check.check(ctx.obj, tasks, fail_on, as_json, all_tasks, test, budget, all_pairs, timeout))


# --- land ---------------------------------------------------------------------------


@app.command(short_help="Land a task through the push queue: rebase, gate, publish.")
def land(
    ctx: typer.Context,
    tasks: Optional[list[str]] = typer.Argument(None, help=CURRENT + " Several: landed together.", metavar="[TASK]..."),
    strategy: Optional[str] = typer.Option(
        None, "--strategy", help="How the task's commits land (default: config).", metavar="|".join(STRATEGIES)
    ),
    gate: Optional[str] = typer.Option(
        None, "--gate", help="Command that must pass on the candidate (default: config land.gate).", metavar="CMD"
    ),
    no_push: bool = typer.Option(False, "--no-push", help="Move the local base branch only, even with a remote."),
    keep: bool = typer.Option(False, "--keep", help="Keep the worktree and branch after landing."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0, help="Give up waiting in the queue after S seconds (exit 3).", metavar="S"
    ),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="How the queue gates candidates (default: config).", metavar="|".join(MODES)
    ),
    detach: bool = typer.Option(False, "--detach", help="Queue the land and return at once; it goes on alone."),
    follow: bool = typer.Option(False, "--follow", help="Stream the gate's output to stderr as it runs."),
    as_json: bool = JSON,
) -> None:
    """Join the push queue and land TASK (or several) onto the base: rebase, gate, publish
    with compare-and-swap; exit 0 landed, 1 blocked, 3 timed out (several: the worst).

    \b
    Example: wtp land feed --gate 'make test'"""
    _done(
        c_land.land(
            ctx.obj,
            tasks[0] if tasks else None,
            strategy=strategy,
            gate=gate,
            no_push=no_push,
            keep=keep,
            timeout=timeout,
            mode=mode,
            detach=detach,
            follow=follow,
            as_json=as_json,
            also=tuple(tasks[1:]) if tasks else (),
        )
    )


@app.command(short_help="The land queue: place, task, candidate, gate state.")
def queue(
    ctx: typer.Context,
    flaky: bool = typer.Option(False, "--flaky", help="The flaky-gate ledger: reds a re-run or candidate overturned."),
    as_json: bool = JSON,
) -> None:
    """The land queue in order: each entry's task, mode, candidate and gate state (waiting,
    building, gating Ns, confirming, passed, failed, publishing), and the conductor's depth.

    \b
    Example: wtp queue --json"""
    _done(c_lists.flaky(ctx.obj, as_json) if flaky else c_lists.queue(ctx.obj, as_json))


# --- gates and trust ------------------------------------------------------------------


@app.command(short_help="Run a command holding a named gate, one holder at a time (FIFO).")
def gate(
    ctx: typer.Context,
    resource: str = typer.Argument(..., help="Gate name, e.g. deploy:prod.", metavar="NAME"),
    cmd: Optional[list[str]] = typer.Argument(
        None, help="Command to run holding the gate, after --.", metavar="-- CMD..."
    ),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0, help=TIMEOUT_HELP, metavar="S"),
    status: bool = typer.Option(False, "--status", help="Show who holds the gate and who waits, instead."),
    remote: bool = typer.Option(
        False, "--remote", help="Hold the gate through the remote, so other clones and machines wait too."
    ),
    as_json: bool = JSON,
) -> None:
    """Run CMD holding the named gate; other holders of the gate wait their turn (FIFO).
    Exits with CMD's code (127, before waiting, when CMD is not found).  Inside a task's
    worktree CMD gets the task's environment and the gate names the task as its holder.
    --remote (or [gate] remote) holds it through the remote, with a lease and a fencing
    token in WTP_GATE_TOKEN, so clones on other machines wait too.

    \b
    Example: wtp gate deploy:prod -- ./deploy.sh"""
    if status:
        _done(c_gate.gate_status(ctx.obj, resource, as_json, remote))
    else:
        _done(c_gate.gate(ctx.obj, resource, cmd or [], timeout, remote, as_json))


@app.command(short_help="Trust the commands in the committed config.")
def trust(ctx: typer.Context) -> None:
    """Trust the commands in the committed config (setup.run, land.gate) as they are now.

    \b
    Example: wtp trust"""
    _done(c_doctor.trust(ctx.obj))


@app.command(short_help="Find drift and stale state; --fix repairs it without losing work.")
def doctor(
    ctx: typer.Context,
    fix: bool = typer.Option(False, "--fix", help="Repair what it finds, without losing work."),
    adopt: bool = typer.Option(False, "--adopt", help="With --fix: register wtp worktrees the registry does not know."),
    stale_claims: Optional[float] = typer.Option(
        None,
        "--stale-claims",
        min=0,
        help="With --fix: clear other clones' shared claims older than DAYS.",
        metavar="DAYS",
    ),
    as_json: bool = JSON,
) -> None:
    """Find drift and stale state (dead holders, missing worktrees, interrupted operations)
    and, with --fix, repair it; exit 0 when healthy or everything found was fixed.

    \b
    Example: wtp doctor --fix"""
    _done(c_doctor.doctor(ctx.obj, fix, adopt, as_json, stale_claims))


@app.command("cochange", short_help="Files that usually change together; --calibrate the layer.")
def cochange_(
    ctx: typer.Context,
    files: Optional[list[str]] = typer.Argument(None, help="Files to ask about.", metavar="[FILE]..."),
    calibrate: bool = typer.Option(
        False, "--calibrate", help="Replay this repository's merges and turn the layer on only if it helps here."
    ),
    as_json: bool = JSON,
) -> None:
    """The files that usually changed together with FILEs in the base's history (the index
    start and check use), or, with --calibrate, whether that layer helps in this repository:
    its merges replayed, the verdict and its figures written to .wtp.toml.

    \b
    Example: wtp cochange src/feed.py"""
    _done(c_init.cochange_cmd(ctx.obj, files or [], calibrate, as_json))


# --- agents (their commands live in cli_agents) ----------------------------------------

cli_agents.register(app)


@app.command("help", short_help="Show a command's help: wtp help land.")
def help_(ctx: typer.Context, command: Optional[str] = typer.Argument(None, metavar="[COMMAND]")) -> None:
    """Show the help of COMMAND, or of wtp.

    \b
    Example: wtp help land"""
    root = ctx.parent
    assert root is not None and isinstance(root.command, TyperGroup)
    if command is None:
        print(root.get_help())
        return
    sub = root.command.get_command(root, command)
    if sub is None:
        err(f"wtp: no command named {command!r}: one of {', '.join(root.command.list_commands(root))}")
        raise typer.Exit(ExitCode.USAGE)
    with sub.make_context(command, [], parent=root, resilient_parsing=True) as sub_ctx:
        print(sub.get_help(sub_ctx))


def main() -> None:
    app()
