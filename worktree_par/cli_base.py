"""What the typer front door's modules share: the group that turns every error into one
line and the contract's exit code, and how a command body's code ends the command."""

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click import exceptions as _cx  # typer vendors click since 0.26
from typer.core import TyperGroup

from .commands.shell import TASKS, CommandSpec
from .errors import ExitCode
from .exits import exit_for, failed, in_command, json_asked

JSON = typer.Option(False, "--json", help="Print JSON (stable shape, see README).")


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
        json_asked(list(sys.argv[1:] if args is None else args))
        try:
            rv = in_command(
                lambda: super(WtpGroup, self).main(
                    args, prog_name or "wtp", complete_var, standalone_mode=False, **extra
                )
            )
        except _cx.NoArgsIsHelpError as e:  # 'wtp hook' alone: its help, on stdout, as bare 'wtp' does
            print(e.ctx.get_help() if e.ctx else e.format_message())
            sys.exit(0)
        except _cx.UsageError as e:
            where = e.ctx.command_path if e.ctx else "wtp"
            hint = _glob_hint(list(sys.argv[1:] if args is None else args))
            failed(f"{e.format_message()} (see '{where} --help'){hint}", ExitCode.USAGE)
            sys.exit(ExitCode.USAGE)
        except _cx.ClickException as e:
            failed(e.format_message(), e.exit_code)
            sys.exit(e.exit_code)
        except typer.Abort:
            exit_for(KeyboardInterrupt())
        except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - exits turns it into one line
            exit_for(e)
        sys.exit(rv if isinstance(rv, int) else 0)


def _glob_hint(args: list[str]) -> str:
    """The shell expands an unquoted ``--touch src/*.py`` into several paths; typer then sees
    the second one as an extra argument (issue 29).  Say so when the words after a --touch
    value are paths that exist here."""
    for i, a in enumerate(args[:-2]):
        if a == "--touch":
            rest = args[i + 2 :]
            extra = rest[: next((j for j, w in enumerate(rest) if w.startswith("-")), len(rest))]
            if extra and all(os.path.lexists(w) for w in extra):
                return "; the shell expanded an unquoted --touch glob: quote the glob, e.g. --touch 'src/**'"
    return ""


def _choices(metavar: str | None) -> list[str]:
    """The values a metavar such as 'rebase|squash|merge' or '[claude|git]' lists."""
    words = (metavar or "").strip("[]. ").split("|")
    return words if len(words) > 1 and all(w.replace("-", "").isalnum() for w in words) else []


def completion_spec(group: Any) -> dict[str, CommandSpec]:
    """What completion offers for each command of ``group``, read from its typer commands:
    options, the choices their metavars list ('rebase|squash|merge'), task names for a TASK
    argument, the commands of a nested group ('hook install')."""
    spec: dict[str, CommandSpec] = {}

    def add(name: str, cmd: Any) -> None:
        cs = spec[name] = CommandSpec()
        for p in cmd.params:
            if p.param_type_name == "option":
                cs.opts += [o for o in [*p.opts, *p.secondary_opts] if o.startswith("-")]
                if not p.is_flag:
                    cs.values.update((o, _choices(p.metavar)) for o in p.opts)
            elif "TASK" in (p.metavar or ""):
                cs.args = [TASKS]
            elif "COMMAND" in (p.metavar or ""):
                cs.args = sorted(getattr(group, "commands", {}))
            else:
                cs.args = cs.args or _choices(p.metavar)
        cs.opts += ["--help"]
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            add(f"{name} {sub}", subcmd)
            cs.args.append(sub)

    for name, cmd in getattr(group, "commands", {}).items():
        add(name, cmd)
    return spec


def done(code: int) -> None:
    if code:
        raise typer.Exit(code)
