"""'wtp shell-init' and 'wtp completion': the shell function and completion scripts
(the scripts live beside this module as package data)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    pass


SHELLS = ("bash", "zsh", "fish")


def shell_init(shell: str) -> int:
    """Print the shell function that gives 'wtp cd TASK', 'wtp start --cd' and a shell moved
    to the main worktree after 'wtp land' or 'wtp rm' removed the one it stood in."""
    if shell not in SHELLS:
        raise UsageError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
    if shell == "fish":
        print(_script("wtp.fish"))
    else:
        print(_script("wtp.sh"))
    return 0


def completion(shell: str, spec: dict[str, list[str]]) -> int:
    """Print the completion script for ``shell``; ``spec``: each command's options."""
    if shell not in SHELLS:
        raise UsageError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
    names = " ".join(sorted(spec))
    with_task = "path|run|rm|abandon|land|start|check"
    if shell == "fish":
        print(f"complete -c wtp -f -n __fish_use_subcommand -a '{names}'")
        print(
            f"complete -c wtp -f -n '__fish_seen_subcommand_from {with_task.replace('|', ' ')}' -a '(command wtp __tasks 2>/dev/null)'"
        )
        for cmd, opts in sorted(spec.items()):
            for o in opts:
                if o.startswith("--"):
                    print(f"complete -c wtp -f -n '__fish_seen_subcommand_from {cmd}' -l {o[2:]}")
        return 0
    cases = "\n".join(f'      {cmd}) opts="{" ".join(opts)}" ;;' for cmd, opts in sorted(spec.items()))
    print(
        ("autoload -U +X bashcompinit && bashcompinit\n" if shell == "zsh" else "")
        + f"""_wtp_complete() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="${{COMP_WORDS[1]}}" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{names} -C --help --version" -- "$cur")); return
  fi
  case "$cmd" in
{cases}
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$opts" -- "$cur")); return ;;
  esac
  case "$cmd" in
    {with_task}) COMPREPLY=($(compgen -W "$(command wtp __tasks 2>/dev/null)" -- "$cur")) ;;
  esac
}}
complete -F _wtp_complete wtp"""
    )
    return 0


def _script(name: str) -> str:
    return Path(__file__).with_name(name).read_text().rstrip("\n")
