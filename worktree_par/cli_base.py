"""What the typer front door's modules share: the group that turns every error into one
line and the contract's exit code, and how a command body's code ends the command."""

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click import exceptions as _cx  # typer vendors click since 0.26
from typer.core import TyperGroup

from .errors import ExitCode
from .exits import err, exit_for, in_command

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


def done(code: int) -> None:
    if code:
        raise typer.Exit(code)
