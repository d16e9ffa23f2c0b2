"""Console entry point: the fast front door.  ``wtp`` and ``wtp --help`` are answered from a
stored copy of the help text without importing typer, and so are the plain forms of the
commands agents run most, ``wtp [-C DIR] path|start|land TASK``, ``wtp [-C DIR] list
[--json]`` and ``wtp [-C DIR] check [TASK]... [OPTIONS]``: typer's import and command building are a third of their fixed cost (README, Performance).
They call the same bodies in ``commands`` as the typer CLI; everything else goes to it.
tests/test_cli_help.py keeps the stored copy identical to what typer renders
(scripts/gen_help.py rewrites it)."""

from __future__ import annotations

import os
import sys

# os.path, not pathlib: pathlib's import (re, enum, urllib.parse) is most of '--help' (~3 ms).
HELP_FILE = os.path.join(os.path.dirname(__file__), "help.txt")

# The commands the fast path answers: (takes a TASK, may take --json).  Plain tuples and a
# plain class: importing typing (for NamedTuple) would cost 'wtp --help' ~2 ms.
FAST = {"path": (True, False), "start": (True, False), "land": (True, False), "list": (False, True)}
OPTIONAL_TASK = ("path", "land")  # inside a task's worktree, these take that task


class Call:
    """A parsed fast-path command line."""

    def __init__(self, name: str, where: str | None, task: str | None, as_json: bool) -> None:
        self.name, self.where, self.task, self.as_json = name, where, task, as_json


# check's options as the typer command declares them: flag -> (keyword of commands.check.check,
# takes a value).  A flag not named here (an option added later, --help) goes to typer.
CHECK_OPTIONS = {"--all": ("all_tasks", False), "--fail-on": ("fail_on", True), "--json": ("as_json", False)}


class CheckCall:
    """``wtp [-C DIR] check [TASK]... [OPTIONS]``, its options as keywords of the body."""

    def __init__(self, where: str | None, names: list[str], options: dict[str, object]) -> None:
        self.where, self.names, self.options = where, names, options


def parse_check(where: str | None, rest: list[str]) -> CheckCall | None:
    """check's arguments in any order, as click reads them ('--fail-on X' or '--fail-on=X');
    None for anything it does not know."""
    names: list[str] = []
    options: dict[str, object] = {}
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("-"):
            names.append(arg)
        else:
            flag, eq, value = arg.partition("=")
            if flag not in CHECK_OPTIONS:
                return None
            key, takes_value = CHECK_OPTIONS[flag]
            if not takes_value:
                if eq:
                    return None
                options[key] = True
            elif eq:
                options[key] = value
            elif i + 1 < len(rest):
                i += 1
                options[key] = rest[i]
            else:
                return None
        i += 1
    return CheckCall(where, names, options)


class RunCall:
    """``wtp [-C DIR] run [TASK] -- CMD...``: typer cannot tell a left-out TASK from CMD's first word."""

    def __init__(self, where: str | None, task: str | None, cmd: list[str]) -> None:
        self.where, self.task, self.cmd = where, task, cmd


def parse(args: list[str]) -> Call | RunCall | CheckCall | None:
    """``[-C DIR] CMD [TASK] [--json]`` for a command in FAST, ``run [TASK] -- CMD...``,
    ``check ...``; None for anything else."""
    where = None
    if len(args) >= 2 and args[0] == "-C":
        where, args = args[1], args[2:]
    if args[:1] == ["run"]:
        if args[1:2] == ["--"]:
            return RunCall(where, None, args[2:])
        if args[2:3] == ["--"] and not args[1].startswith("-"):
            return RunCall(where, args[1], args[3:])
        return None
    if args[:1] == ["check"]:
        return parse_check(where, args[1:])
    if not args or args[0] not in FAST:
        return None
    (takes_task, takes_json), rest = FAST[args[0]], args[1:]
    as_json = takes_json and rest[-1:] == ["--json"]
    if as_json:
        rest = rest[:-1]
    if takes_task:
        if len(rest) > 1 or (rest and rest[0].startswith("-")) or (not rest and args[0] not in OPTIONAL_TASK):
            return None
        return Call(args[0], where, rest[0] if rest else None, False)
    return Call(args[0], where, None, as_json) if not rest else None


LAND_VALUES = {"--gate": "gate", "--strategy": "strategy", "--mode": "mode", "--timeout": "timeout"}
LAND_FLAGS = {"--detach": "detach", "--no-push": "no_push", "--keep": "keep", "--json": "as_json", "--follow": "follow"}


def parse_land(args: list[str]) -> tuple[str | None, str | None, dict[str, object]] | None:
    """``[-C DIR] land [TASK...] [options]`` (``--detach`` above all, which must return at
    once): (where, task, keyword arguments of commands.land.land); None for anything else,
    which typer answers (and explains)."""
    where = None
    if len(args) >= 2 and args[0] == "-C":
        where, args = args[1], args[2:]
    if args[:1] != ["land"]:
        return None
    tasks: list[str] = []
    opts: dict[str, object] = {}
    rest = args[1:]
    while rest:
        a = rest.pop(0)
        if a in LAND_FLAGS:
            opts[LAND_FLAGS[a]] = True
        elif a in LAND_VALUES and rest:
            opts[LAND_VALUES[a]] = rest.pop(0)
        elif not a.startswith("-"):
            tasks.append(a)
        else:
            return None
    task = tasks[0] if tasks else None
    if len(tasks) > 1:
        opts["also"] = tuple(tasks[1:])
    if "timeout" in opts:
        try:
            opts["timeout"] = float(str(opts["timeout"]))
        except ValueError:
            return None
        if not 0 <= float(str(opts["timeout"])) < float("inf"):
            return None
    return where, task, opts


def run_fast(call: Call | RunCall | CheckCall) -> int:
    """Run the ``commands`` body the call stands for, with its arguments (importing only its module)."""
    if isinstance(call, CheckCall):
        from .commands import check as c_check

        # The keywords are those CHECK_OPTIONS names (tests/test_code_health.py binds both doors' calls).
        return c_check.check(call.where, call.names or None, **call.options)  # type: ignore[arg-type]
    if isinstance(call, RunCall):
        from .commands import run as c_run

        return c_run.run(call.where, call.task, call.cmd)
    if call.name == "list":
        from .commands import lists as c_lists

        return c_lists.list_(call.where, call.as_json)
    if call.name == "start":
        from .commands import start as c_start

        return c_start.start(call.where, call.task or "")
    if call.name == "path":
        from .commands import run as c_run

        return c_run.path(call.where, call.task)
    from .commands import land as c_land

    return c_land.land(call.where, call.task)


_UTF8_MARK = "WTP_UTF8_EXEC"  # set for the one exec into UTF-8 mode (main), gone once there


def main() -> None:
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling began (its imports): no traceback
        import contextlib

        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write("wtp: interrupted\n")
            sys.stderr.flush()
        sys.exit(130)  # the documented code for an interrupted command


def _main() -> None:
    # A caller that ignores SIGCHLD (some daemons and init wrappers do; it is inherited across
    # exec) makes the kernel reap our children itself: every git or gate would then read as
    # exit 0, a red gate as green and a failed call as done.  Children are reaped as usual.
    try:  # the builtin itself: 'signal' wraps its constants in enums, ~1 ms (3 without enum loaded)
        import _signal as signal  # type: ignore[import-not-found]
    except ImportError:  # an interpreter without it (not CPython)
        import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if not sys.flags.utf8_mode and sys.getfilesystemencoding().lower().replace("-", "") != "utf8":
        # A latin-1 or ASCII locale: paths would be encoded one way for git and read back another
        # (git's are bytes, UTF-8 in practice).  Once, before anything is read: the same command
        # in Python's UTF-8 mode (-X utf8: what wtp runs, its gates and commands, keep the
        # user's locale), never twice (the mark holds this pid, which an exec keeps).
        if sys.executable and os.environ.get(_UTF8_MARK) != str(os.getpid()):
            os.environ[_UTF8_MARK] = str(os.getpid())
            try:
                os.execv(sys.executable, [sys.executable, "-X", "utf8", *sys.orig_argv[1:]])
            except OSError:
                pass  # no interpreter to run again (an embedded one): on, in the locale's encoding
    os.environ.pop(_UTF8_MARK, None)
    from . import streams

    streams.settle()  # closed, unencodable or a reader gone: the command ends as it would anyway
    args = sys.argv[1:]
    if args == ["--version"]:
        from . import __version__

        sys.stdout.write(f"wtp {__version__}\n")
        sys.exit(0)
    if args in ([], ["-h"], ["--help"]) and os.environ.get("COLUMNS", "80") == "80" and os.path.exists(HELP_FILE):
        with open(HELP_FILE, encoding="utf-8") as f:
            sys.stdout.write(f.read())
        sys.exit(0)
    if args[-1:] == ["__tasks"] and len(args) in (1, 3):  # shell completion's task names, fast
        from .commands import lists as c_lists
        from .exits import finish

        finish(lambda: c_lists.task_names(args[1] if len(args) == 3 else None))
    if len(args) == 4 and args[0] == "-C" and args[2] == "__share":  # the agent hook's claim refresh
        from .commands import hook as c_hook
        from .exits import finish

        finish(lambda: c_hook.share_claim(args[1], args[3]))
    if len(args) in (4, 5) and args[0] == "-C" and args[2] == "__land":  # a detached land's child: request, ticket
        from .commands import land as c_land
        from .exits import finish

        finish(lambda: c_land.land_detached(args[1], args[3], args[4] if len(args) == 5 else None))
    if args in (["hook", "pre-edit"], ["hook", "pre-commit"]):  # on every edit or commit: no typer
        from .commands import hook as c_hook

        sys.exit(c_hook.hook_pre_edit() if args[1] == "pre-edit" else c_hook.hook_pre_commit(None))
    from .exits import json_asked

    json_asked(args)  # (the fast paths above take no --json)
    land_call = parse_land(args) if args[:1] == ["land"] or args[2:3] == ["land"] else None
    if land_call is not None:  # 'land --detach' returns in well under 100 ms: no typer
        from .commands import land as c_land
        from .exits import finish

        where, task, opts = land_call
        finish(lambda: c_land.land(where, task, **opts))  # type: ignore[arg-type]
    call = parse(args)
    if call is not None:
        from .exits import finish

        finish(lambda: run_fast(call))
    from . import crashpoints

    crashpoints.step("entry:typer")  # typer's import, the longest window before a command's own handling
    from .cli import main as cli_main

    cli_main()
