"""The agents' commands on the typer front door: 'wtp hook pre-edit|pre-commit|install|
uninstall' and 'wtp mcp'."""

import typer
from typer.core import TyperGroup

from .cli_base import done as _done
from .commands import hook as c_hook


def register(app: typer.Typer) -> None:
    """Add the hook group and the mcp command to ``app``."""
    app.add_typer(hook_app, name="hook", short_help="Hooks for coding agents and git: install, and the hooks' bodies.")
    app.command(short_help="Serve wtp to agents over MCP (stdio); needs the 'mcp' extra.")(mcp)


hook_app = typer.Typer(
    cls=TyperGroup,
    help="Agents' hooks: ask before an edit or a commit whether another task claims the file.\n\n"
    "\b\nExample: wtp hook install claude",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@hook_app.command("pre-edit")
def hook_pre_edit() -> None:
    """Claude Code's PreToolUse hook: reads the hook's JSON on stdin; answers deny (or ask, or
    warn, per [hook] on_collision) when another live task declared, changed or is editing
    the file, as JSON on stdout; records the path for the task otherwise.

    \b
    Example: wtp hook install claude   (puts 'wtp hook pre-edit' in .claude/settings.json)"""
    _done(c_hook.hook_pre_edit())


@hook_app.command("pre-commit")
def hook_pre_commit(ctx: typer.Context) -> None:
    """The git pre-commit hook's body: refuses (exit 1) a commit in a task's worktree that
    touches a path another live task declared, changed or edited.

    \b
    Example: wtp hook install git"""
    _done(c_hook.hook_pre_commit(ctx.find_root().obj))


@hook_app.command("install")
def hook_install(
    ctx: typer.Context, target: str = typer.Argument(..., help="claude | git", metavar="claude|git")
) -> None:
    """Install a hook: 'claude' merges the pre-edit hook into .claude/settings.json (keeping
    every other setting and hook; new task worktrees get it too); 'git' adds a pre-commit
    hook to the shared hooks folder (core.hooksPath honoured, an existing hook chained).
    Idempotent.

    \b
    Example: wtp hook install claude"""
    _done(c_hook.hook_install(ctx.find_root().obj, target))


@hook_app.command("uninstall")
def hook_uninstall(
    ctx: typer.Context, target: str = typer.Argument(..., help="claude | git", metavar="claude|git")
) -> None:
    """Remove exactly what 'wtp hook install' added (a chained git hook is put back).

    \b
    Example: wtp hook uninstall claude"""
    _done(c_hook.hook_install(ctx.find_root().obj, target, remove=True))


def mcp(ctx: typer.Context) -> None:
    """A Model Context Protocol server over stdio: tools start, list, check, land, path,
    queue, gate_status and next, each answering with the CLI's --json.  Needs the optional
    extra: pip install 'worktree-par[mcp]'.

    \b
    Example: claude mcp add wtp -- wtp mcp"""
    _done(c_hook.mcp(ctx.obj))
