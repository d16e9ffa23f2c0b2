"""Command line: parse arguments, call the core, render text or JSON.

The only layer that knows typer.  Errors from the core are caught once, in
``WtpGroup.main``, and printed as one line with the contract's exit code.
Core modules are imported inside commands so that ``wtp --help`` stays fast.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

try:  # typer 0.20+ vendors click; older ones use the click package
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]

from .errors import USAGE
from .outcome import err, exit_for, open_repo, report_land, report_list, report_start


class WtpGroup(TyperGroup):
    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            rv = super().main(args, prog_name or "wtp", complete_var, standalone_mode=False, **extra)
        except _cx.UsageError as e:
            where = e.ctx.command_path if e.ctx else "wtp"
            err(f"wtp: {e.format_message()} (see '{where} --help')")
            sys.exit(USAGE)
        except _cx.ClickException as e:
            err(f"wtp: {e.format_message()}")
            sys.exit(e.exit_code)
        except typer.Abort:
            exit_for(KeyboardInterrupt())
        except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - outcome turns it into one line
            exit_for(e)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=WtpGroup,
    name="wtp",
    help="Run several tasks in parallel on one git repository, safely: one branch and worktree per task, "
    "admission control, an overlap checker and a push queue.",
    no_args_is_help=True,
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
) -> None:
    ctx.obj = chdir


def _open(ctx: typer.Context):  # type: ignore[no-untyped-def]
    return open_repo(ctx.obj)


def _after_dashes(cmd: list[str]) -> list[str]:
    from .errors import UsageError

    cmd = cmd[1:] if cmd and cmd[0] == "--" else cmd
    if not cmd:
        raise UsageError("no command given: put it after --, as in 'wtp run TASK -- make test'")
    return cmd


def _say(msg: str) -> None:
    err(msg)


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2))


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
    from . import config, gitops
    from .errors import Refusal, UsageError
    from .repo import Ctx
    from .state import Store

    if remote and no_remote:
        raise UsageError("--remote and --no-remote exclude each other: pass one")
    repo = gitops.discover(Path(ctx.obj).absolute() if ctx.obj else Path.cwd())
    target = repo.main_root / config.CONFIG_FILE
    if target.exists() and not force:
        raise Refusal(f"{target} already exists: edit it, or pass --force to overwrite it")
    c = Ctx(repo=repo, cfg=config.Config(remote=remote or ""), store=Store(repo.common_dir))
    if remote is None:
        found = c.remotes()
        remote = "" if no_remote else ("origin" if "origin" in found or not found else found[0])
        c.cfg = config.Config(remote=remote)
    detected = base or c.detect_base()
    target.write_text(config.render_default(detected, remote or "", max_active))
    from . import isolate

    with c.store.transaction() as st:  # init trusts what it writes
        isolate.trust(Ctx(repo=repo, cfg=config.load(repo.main_root), store=c.store), st)
    print(f"wrote {target} (base '{detected}', remote '{remote or 'none'}', max_active {max_active})")


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
    from . import tasks
    from .errors import UsageError
    from .state import QUEUED

    if timeout is not None and not wait:
        raise UsageError("--timeout goes with --wait: add --wait")
    c = _open(ctx)
    result = tasks.start(c, task, base_ref=base, touch=touch, use=use, force=force, say=_say)
    t = result.task
    if wait and t.state == QUEUED:
        for m in result.messages:
            err(m)
        result.messages = []
        t = tasks.wait_active(c, task, timeout, say=_say)
    if as_json:
        for m in result.messages:
            err(m)
        _emit(tasks.task_json(t))
        return
    report_start(t, result.messages)


@app.command("next")
def next_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Start queued tasks whose slot and collisions have cleared."""
    from . import tasks

    c = _open(ctx)
    started = tasks.promote(c, say=_say)
    if as_json:
        _emit({"started": [tasks.task_json(t) for t in started]})
    elif not started:
        waiting = c.store.read().queued()
        print(
            "nothing to start"
            + (f"; {len(waiting)} queued: " + "; ".join(f"{t.name}: {t.note}" for t in waiting) if waiting else "")
        )
    else:
        for t in started:
            print(f"{t.name}\t{t.path}")


@app.command()
def path(ctx: typer.Context, task: str) -> None:
    """Print TASK's worktree path, alone on stdout."""
    from . import tasks

    t, _ = tasks.run_in(_open(ctx), task)
    print(t.path)


@app.command()
def run(
    ctx: typer.Context, task: str, cmd: list[str] = typer.Argument(..., help="Command and its arguments, after --.")
) -> None:
    """Run CMD inside TASK's worktree with the task's environment; exit with CMD's code."""
    import subprocess

    from . import tasks

    cmd = _after_dashes(cmd)
    t, env = tasks.run_in(_open(ctx), task)
    try:
        code = subprocess.call(cmd, cwd=t.path, env=env)
    except FileNotFoundError:
        err(f"wtp: command not found: {cmd[0]}")
        raise typer.Exit(127) from None
    except PermissionError:
        err(f"wtp: command cannot be run (permission denied): {cmd[0]}")
        raise typer.Exit(126) from None
    raise typer.Exit(code if code >= 0 else 128 - code)


@app.command()
def rm(
    ctx: typer.Context,
    task: str,
    force: bool = typer.Option(
        False, "--force", help="Archive unlanded work under refs/wtp/archive/TASK and remove anyway."
    ),
) -> None:
    """Remove TASK's worktree and branch; refuses to lose work unless --force."""
    from . import tasks

    for m in tasks.rm(_open(ctx), task, force=force, say=_say):
        print(m)


app.command("abandon", help="Alias of rm.")(rm)


# --- list ----------------------------------------------------------------------------


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = JSON,
    all_tasks: bool = typer.Option(False, "--all", help="Include landed and abandoned tasks."),
) -> None:
    """Every task: state, branch, path, ahead/behind base, dirty and changed files, processes."""
    report_list(_open(ctx), as_json, all_tasks)


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
    from . import overlap, render
    from .errors import UsageError

    if fail_on not in overlap.FAIL_ON:
        raise UsageError(f"--fail-on must be one of conflict, overlap, declared, never, not {fail_on!r}")
    report = overlap.check(_open(ctx), tasks or None)
    if as_json:
        _emit(report.to_json())
    else:
        render.check_report(report)
    if report.worst() >= overlap.FAIL_ON[fail_on]:
        raise typer.Exit(1)


# --- land ---------------------------------------------------------------------------


@app.command()
def land(
    ctx: typer.Context,
    task: str,
    strategy: Optional[str] = typer.Option(None, "--strategy", help="rebase | squash | merge (default: config)."),
    gate: Optional[str] = typer.Option(
        None, "--gate", help="Command that must pass on the candidate (default: config land.gate)."
    ),
    no_push: bool = typer.Option(False, "--no-push", help="Move the local base branch only, even with a remote."),
    keep: bool = typer.Option(False, "--keep", help="Keep the worktree and branch after landing."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0, help="Give up waiting in the queue after S seconds (exit 3)."
    ),
    as_json: bool = JSON,
) -> None:
    """Join the push queue and land TASK onto the base: rebase, gate, publish with compare-and-swap."""
    from . import land as landing
    from .config import STRATEGIES
    from .errors import GateFailed, LandConflict, UsageError

    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    c = _open(ctx)
    try:
        result = landing.land(
            c, task, strategy=strategy, gate=gate, push=not no_push, keep=keep, timeout=timeout, say=_say
        )
    except (LandConflict, GateFailed) as e:
        if as_json:
            _emit(
                {"task": task, "state": "blocked", "commit": None, "attempts": None, "paths": getattr(e, "paths", [])}
            )
        raise
    if as_json:
        for m in result.messages:
            err(m)
        _emit(result.to_json())
        return
    report_land(task, result)


# --- gates and trust ------------------------------------------------------------------


@app.command()
def gate(
    ctx: typer.Context,
    resource: str = typer.Argument(..., help="Gate name, e.g. deploy:prod."),
    cmd: list[str] = typer.Argument(..., help="Command to run holding the gate, after --."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0, help="Give up waiting after S seconds (exit 3)."),
) -> None:
    """Run CMD holding the named gate; other holders of the gate wait their turn (FIFO)."""
    from . import gates, isolate
    from .procs import run_guarded

    cmd = _after_dashes(cmd)
    gates.validate_gate(resource)
    c = _open(ctx)
    env = dict(os.environ)
    label = ""
    here = Path.cwd().resolve()
    for t in c.store.read().live():  # running inside a task's worktree: the task's env
        if t.path and (here == Path(t.path) or Path(t.path) in here.parents):
            env, label = isolate.task_env(c, t), t.name
    g = gates.Gate(c.store, resource)
    g.acquire(timeout, say=_say, label=label)
    try:
        outcome = run_guarded(cmd, Path.cwd(), env)
    finally:
        g.release()
    raise typer.Exit(outcome.code)


@app.command()
def trust(ctx: typer.Context) -> None:
    """Trust the commands in the committed config (setup.run, land.gate) as they are now."""
    from . import isolate

    c = _open(ctx)
    with c.store.transaction() as st:
        new = isolate.trust(c, st)
    cmds = isolate.config_commands(c)
    if not cmds:
        print("the config has no commands to trust")
    for key, items in cmds.items():
        for cmd in items:
            print(f"trusted {key}: {cmd}" + ("" if cmd in new.get(key, []) else " (unchanged)"))


@app.command()
def doctor(
    ctx: typer.Context,
    fix: bool = typer.Option(False, "--fix", help="Repair what it finds, without losing work."),
    adopt: bool = typer.Option(False, "--adopt", help="With --fix: register wtp worktrees the registry does not know."),
    as_json: bool = JSON,
) -> None:
    """Find drift and stale state (dead holders, missing worktrees, interrupted operations) and repair it."""
    from . import doctor as doc

    findings = doc.doctor(_open(ctx), fix, adopt)
    if as_json:
        _emit(
            {"healthy": not findings, "findings": [{"problem": f.problem, "fixed": f.fixed or None} for f in findings]}
        )
    elif not findings:
        print("healthy: nothing to fix")
    for f in findings if not as_json else []:
        print(f"problem: {f.problem}")
        if f.fixed:
            print(f"  fixed: {f.fixed}")
        elif fix:
            print("  not fixed automatically: see above")
    if not fix and any(f.fix for f in findings) and not as_json:
        print("run 'wtp doctor --fix' to repair")
    raise typer.Exit(1 if findings else 0)


def main() -> None:
    app()
