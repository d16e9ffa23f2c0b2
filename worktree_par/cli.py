"""Command line: parse arguments with typer and call the command's one body in
``commands`` (entry's fast path calls the same bodies).

The only layer that knows typer.  Errors from the core are caught once, in
``WtpGroup.main``, and printed as one line with the contract's exit code.
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from typer._click import exceptions as _cx  # typer vendors click since 0.26
from typer.core import TyperGroup

from . import commands
from .errors import ExitCode
from .exits import err, exit_for


class WtpGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # typer would turn it into a silent exit 130
            exit_for(e)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            rv = super().main(args, prog_name or "wtp", complete_var, standalone_mode=False, **extra)
        except _cx.UsageError as e:
            where = e.ctx.command_path if e.ctx else "wtp"
            err(f"wtp: {e.format_message()} (see '{where} --help')")
            sys.exit(ExitCode.USAGE)
        except _cx.ClickException as e:
            err(f"wtp: {e.format_message()}")
            sys.exit(e.exit_code)
        except typer.Abort:
            exit_for(KeyboardInterrupt())
        except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - exits turns it into one line
            exit_for(e)
        sys.exit(rv if isinstance(rv, int) else 0)


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

JSON = typer.Option(False, "--json", help="Print JSON (stable shape, see README).")


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


def _done(code: int) -> None:
    if code:
        raise typer.Exit(code)


# --- init ------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    base: Optional[str] = typer.Option(None, help="Base branch (default: detected)."),
    remote: Optional[str] = typer.Option(None, help="Remote to land to."),
    no_remote: bool = typer.Option(False, "--no-remote", help="Land by moving the local base branch."),
    max_active: int = typer.Option(3, "--max-active", min=1, help="Active tasks at once."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing .wtp.toml."),
) -> None:
    """Write a commented .wtp.toml with detected defaults (and trust its commands)."""
    _done(commands.init(ctx.obj, base=base, remote=remote, no_remote=no_remote, max_active=max_active, force=force))


# --- start / next / path / run / rm -------------------------------------------------


@app.command()
def start(
    ctx: typer.Context,
    task: str = typer.Argument(..., help="Task name: letters, digits, '.', '_', '-'."),
    base: Optional[str] = typer.Option(None, "--base", help="Branch or commit to fork from."),
    touch: list[str] = typer.Option(
        [], "--touch", help="Glob of paths the task will write (repeatable).", metavar="GLOB"
    ),
    use: list[str] = typer.Option(
        [], "--use", help="Shared resource held for the task's life (repeatable).", metavar="RESOURCE"
    ),
    wait: bool = typer.Option(False, "--wait", help="Block until the task is admitted."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0, help="With --wait: give up after S seconds (exit 3)."
    ),
    force: bool = typer.Option(False, "--force", help="Start despite the cap or declared collisions."),
    as_json: bool = JSON,
) -> None:
    """Admit, queue or refuse TASK; when admitted, create its branch and worktree and print its path."""
    _done(
        commands.start(
            ctx.obj, task, base=base, touch=touch, use=use, wait=wait, timeout=timeout, force=force, as_json=as_json
        )
    )


@app.command("next")
def next_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Start queued tasks whose slot and collisions have cleared."""
    _done(commands.next_(ctx.obj, as_json))


CURRENT = "Task name (default: the task whose worktree you are in)."


@app.command()
def path(
    ctx: typer.Context,
    task: Optional[str] = typer.Argument(None, help=CURRENT),
    main: bool = typer.Option(False, "--main", help="The main worktree instead."),
) -> None:
    """Print TASK's worktree path, alone on stdout."""
    _done(commands.path(ctx.obj, task, main))


@app.command()
def completion(shell: str = typer.Argument(..., help="bash | zsh | fish")) -> None:
    """Print a completion script (commands, options, task names): eval "$(wtp completion bash)"."""
    group = typer.main.get_command(app)
    spec = {
        name: sorted({o for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("-")})
        for name, cmd in getattr(group, "commands", {}).items()
    }
    _done(commands.completion(shell, spec))


@app.command("shell-init")
def shell_init(shell: str = typer.Argument(..., help="bash | zsh | fish")) -> None:
    """Print the shell function for 'wtp cd TASK' and 'wtp start --cd': eval "$(wtp shell-init bash)"."""
    _done(commands.shell_init(shell))


@app.command()
def run(
    ctx: typer.Context, task: str, cmd: list[str] = typer.Argument(..., help="Command and its arguments, after --.")
) -> None:
    """Run CMD inside TASK's worktree with the task's environment; exit with CMD's code."""
    _done(commands.run(ctx.obj, task, cmd))


@app.command()
def rm(
    ctx: typer.Context,
    task: Optional[str] = typer.Argument(None, help=CURRENT),
    force: bool = typer.Option(
        False, "--force", help="Archive unlanded work under refs/wtp/archive/TASK and remove anyway."
    ),
) -> None:
    """Remove TASK's worktree and branch; refuses to lose work unless --force."""
    _done(commands.rm(ctx.obj, task, force))


app.command("abandon", help="Alias of rm.")(rm)


# --- list ----------------------------------------------------------------------------


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = JSON,
    all_tasks: bool = typer.Option(False, "--all", help="Include landed and abandoned tasks."),
) -> None:
    """Every task: state, branch, path, ahead/behind base, dirty and changed files, processes."""
    _done(commands.list_(ctx.obj, as_json, all_tasks))


app.command("status", help="Alias of list.")(list_)


# --- check --------------------------------------------------------------------------


@app.command()
def check(
    ctx: typer.Context,
    tasks: Optional[list[str]] = typer.Argument(None, help="Limit the report to pairs involving these tasks."),
    fail_on: str = typer.Option(
        "overlap", "--fail-on", help="Exit 1 at or above: conflict | overlap | declared | never."
    ),
    as_json: bool = JSON,
) -> None:
    """Report tasks whose work collides: declared, overlap, conflict (and hot files)."""
    _done(commands.check(ctx.obj, tasks, fail_on, as_json))


# --- land ---------------------------------------------------------------------------


@app.command()
def land(
    ctx: typer.Context,
    task: Optional[str] = typer.Argument(None, help=CURRENT),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="rebase | squash | merge (default: config)."),
    gate: Optional[str] = typer.Option(
        None, "--gate", help="Command that must pass on the candidate (default: config land.gate)."
    ),
    no_push: bool = typer.Option(False, "--no-push", help="Move the local base branch only, even with a remote."),
    keep: bool = typer.Option(False, "--keep", help="Keep the worktree and branch after landing."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0, help="Give up waiting in the queue after S seconds (exit 3)."
    ),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="speculative | batch | serial: how the queue gates candidates (default: config)."
    ),
    detach: bool = typer.Option(False, "--detach", help="Queue the land and return at once; it goes on alone."),
    as_json: bool = JSON,
) -> None:
    """Join the push queue and land TASK onto the base: rebase, gate, publish with compare-and-swap."""
    _done(
        commands.land(
            ctx.obj,
            task,
            strategy=strategy,
            gate=gate,
            no_push=no_push,
            keep=keep,
            timeout=timeout,
            mode=mode,
            detach=detach,
            as_json=as_json,
        )
    )


@app.command()
def queue(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The land queue in order: each entry's task, mode, candidate and gate state."""
    _done(commands.queue(ctx.obj, as_json))


# --- gates and trust ------------------------------------------------------------------


@app.command()
def gate(
    ctx: typer.Context,
    resource: str = typer.Argument(..., help="Gate name, e.g. deploy:prod."),
    cmd: list[str] = typer.Argument(..., help="Command to run holding the gate, after --."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0, help="Give up waiting after S seconds (exit 3)."),
) -> None:
    """Run CMD holding the named gate; other holders of the gate wait their turn (FIFO)."""
    _done(commands.gate(ctx.obj, resource, cmd, timeout))


@app.command()
def trust(ctx: typer.Context) -> None:
    """Trust the commands in the committed config (setup.run, land.gate) as they are now."""
    _done(commands.trust(ctx.obj))


@app.command()
def doctor(
    ctx: typer.Context,
    fix: bool = typer.Option(False, "--fix", help="Repair what it finds, without losing work."),
    adopt: bool = typer.Option(False, "--adopt", help="With --fix: register wtp worktrees the registry does not know."),
    as_json: bool = JSON,
) -> None:
    """Find drift and stale state (dead holders, missing worktrees, interrupted operations) and repair it."""
    _done(commands.doctor(ctx.obj, fix, adopt, as_json))


def main() -> None:
    app()
