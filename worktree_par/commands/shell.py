"""'wtp shell-init', 'wtp completion' and 'wtp cd' without the shell function: the shell
function and completion scripts (the function lives beside this module as package data)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

SHELLS = ("bash", "zsh", "fish")
TASKS = "@tasks"  # an argument completed with the live task names ('wtp __tasks')


@dataclass
class CommandSpec:
    """What completion offers for one command ('hook install' for a group's command)."""

    opts: list[str] = field(default_factory=list)  # every option spelling
    values: dict[str, list[str]] = field(default_factory=dict)  # option taking a value -> its choices
    args: list[str] = field(default_factory=list)  # choices for its arguments; [TASKS] for task names


def _check(shell: str) -> None:
    if shell not in SHELLS:
        raise UsageError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")


def shell_init(shell: str) -> int:
    """Print the shell function that gives 'wtp cd TASK', 'wtp start --cd' and a shell moved
    to the main worktree after 'wtp land' or 'wtp rm' removed the one it stood in."""
    _check(shell)
    print(_script("wtp.fish" if shell == "fish" else "wtp.sh"))
    return 0


INIT_LINES = {
    "bash": ("~/.bashrc", 'eval "$(wtp shell-init bash)"'),
    "zsh": ("~/.zshrc", 'eval "$(wtp shell-init zsh)"'),
    "fish": ("~/.config/fish/config.fish", "wtp shell-init fish | source"),
}


def cd_without_function(task: str | None, login_shell: str | None = None) -> int:
    """'wtp cd' reached the program: the shell function is not loaded, and a program cannot
    change its shell's directory.  Say the one line to add, for the user's shell ($SHELL)."""
    shell = Path(login_shell if login_shell is not None else os.environ.get("SHELL", "")).name
    path = f'cd "$(wtp path{" " + shlex.quote(task) if task else " --main"})"'
    if shell in INIT_LINES:
        rc, line = INIT_LINES[shell]
        how = f"add this line to {rc} and open a new shell: {line}"
    else:
        how = "add the line for your shell to its rc file: " + "; ".join(
            f"{s}: {line}" for s, (_, line) in INIT_LINES.items()
        )
    raise UsageError(
        f"'wtp cd' needs wtp's shell function (a program cannot move its shell): {how} (meanwhile: {path})"
    )


def completion(shell: str, spec: dict[str, CommandSpec]) -> int:
    """Print the completion script for ``shell``; ``spec``: what each command takes."""
    _check(shell)
    print(_fish(spec) if shell == "fish" else _bash(spec, zsh=shell == "zsh"))
    return 0


def _words(ws: list[str]) -> str:
    return " ".join(ws)


def _bash(spec: dict[str, CommandSpec], zsh: bool) -> str:
    top = sorted(n for n in spec if " " not in n)
    groups = sorted({n.split(" ")[0] for n in spec if " " in n})
    per_cmd, per_value, free = [], [], []
    for name, cs in sorted(spec.items()):
        per_cmd.append(f'    "{name}") opts="{_words(cs.opts)}"; args="{_words(cs.args)}" ;;')
        for opt, choices in sorted(cs.values.items()):
            if choices:
                per_value.append(
                    f'    "{name} {opt}") COMPREPLY=($(compgen -W "{_words(choices)}" -- "$cur")); return ;;'
                )
            else:
                free.append(f'"{name} {opt}"')
    value_cases = "\n".join(per_value)
    if free:  # an option's own value (a command, a glob, seconds): nothing wtp knows to offer
        value_cases += "\n    " + "|".join(free) + ") return ;;"
    return (
        ("autoload -U +X bashcompinit && bashcompinit\n" if zsh else "")
        + f"""_wtp_complete() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cmd="" opts="" args="" w i=1
  [ "$COMP_CWORD" -gt 1 ] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  COMPREPLY=()
  while [ "$i" -lt "$COMP_CWORD" ]; do  # the command: the first words that are not options
    w="${{COMP_WORDS[i]}}"
    case "$w" in
      --) return ;;
      -C) i=$((i + 1)) ;;
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd="$w"
         else case " {_words(groups)} " in *" $cmd "*) case "$cmd" in *" "*) ;; *) cmd="$cmd $w" ;; esac ;; esac; fi ;;
    esac
    i=$((i + 1))
  done
  if [ "$prev" = -C ]; then COMPREPLY=($(compgen -d -- "$cur")); return; fi
  if [ -z "$cmd" ]; then COMPREPLY=($(compgen -W "{_words(top)} -C --help --version" -- "$cur")); return; fi
  case "$cmd $prev" in
{value_cases}
  esac
  case "$cmd" in
{chr(10).join(per_cmd)}
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$opts" -- "$cur")) ;;
    *) [ "$args" = {TASKS} ] && args="$(command wtp __tasks 2>/dev/null)"  # only when offered: a process each time
       COMPREPLY=($(compgen -W "$args" -- "$cur")) ;;
  esac
}}
complete -F _wtp_complete wtp"""
    )


def _fish(spec: dict[str, CommandSpec]) -> str:
    top = sorted(n for n in spec if " " not in n)
    lines = [
        f"complete -c wtp -f -n __fish_use_subcommand -a '{_words(top)}'",
        "complete -c wtp -f -n __fish_use_subcommand -s C -x -a '(__fish_complete_directories)'",
        "complete -c wtp -f -n __fish_use_subcommand -l help -l version",
    ]
    for name, cs in sorted(spec.items()):
        parts = name.split(" ")
        cond = f"__fish_seen_subcommand_from {parts[0]}"
        if len(parts) == 2:
            cond += f"; and __fish_seen_subcommand_from {parts[1]}"
        elif any(n.startswith(name + " ") for n in spec):  # a group: its commands until one is given
            subs = _words(sorted(n.split(" ")[1] for n in spec if n.startswith(name + " ")))
            cond += f"; and not __fish_seen_subcommand_from {subs}"
        args = "(command wtp __tasks 2>/dev/null)" if cs.args == [TASKS] else _words(cs.args)
        if args:
            lines.append(f"complete -c wtp -f -n '{cond}' -a '{args}'")
        for opt in cs.opts:
            flag = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            if opt in cs.values:  # takes a value: its choices, or nothing wtp knows to offer
                choices = cs.values[opt]
                flag += f" -x -a '{_words(choices)}'" if choices else " -r"
            lines.append(f"complete -c wtp -f -n '{cond}' {flag}")
    return "\n".join(lines)


def _script(name: str) -> str:
    return Path(__file__).with_name(name).read_text().rstrip("\n")
