"""One body per command, free of typer.  Both front doors call these: ``cli`` (typer)
after parsing, and ``entry``'s fast path for the commands agents run most.  Each takes
the parsed arguments (``where``: the -C directory), prints what the command prints, and
returns its exit code; errors are raised and turned into one line by ``exits``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, UsageError
from .exits import err, here, open_repo

if TYPE_CHECKING:
    from .land.lander import LandResult
    from .land.request import LandRequest
    from .repo import Ctx
    from .state import Task


def bound_waits(timeout: float | None) -> None:
    """A command's --timeout bounds every wait it makes, internal locks included."""
    if timeout is not None:
        from . import locks

        locks.deadline = time.monotonic() + timeout


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2))


def after_dashes(cmd: list[str]) -> list[str]:
    cmd = cmd[1:] if cmd and cmd[0] == "--" else cmd
    if not cmd:
        raise UsageError("no command given: put it after --, as in 'wtp run TASK -- make test'")
    return cmd


def task_here(ctx: Ctx, where: str | None) -> str | None:
    """The task whose worktree the command runs in (any subfolder), if any."""
    cwd = here(where).resolve()
    for t in sorted(ctx.store.read().tasks.values(), key=lambda t: -t.seq):
        if t.path and (cwd == Path(t.path) or Path(t.path) in cwd.parents):
            return t.name
    return None


def current_task(ctx: Ctx, where: str | None, task: str | None) -> str:
    """The task named, or else the one whose worktree the command runs in."""
    name = task or task_here(ctx, where)
    if name is None:
        raise UsageError("name a task, or run this inside a task's worktree: see 'wtp list'")
    return name


def path(where: str | None, task: str | None, main: bool = False) -> int:
    from . import tasks

    c = open_repo(where)
    if main:  # the main worktree (where 'wtp cd' alone goes)
        print(c.repo.config_root)
        return 0
    t, _ = tasks.run_in(c, current_task(c, where, task))
    print(t.path)
    return 0


def start(
    where: str | None,
    task: str,
    *,
    base: str | None = None,
    touch: Sequence[str] = (),
    use: Sequence[str] = (),
    wait: bool = False,
    timeout: float | None = None,
    force: bool = False,
    as_json: bool = False,
    touch_suggested: bool = False,
) -> int:
    """Stdout is the worktree's path and nothing else (so 'cd "$(wtp start x)"' is safe), or
    empty with exit 4 when the task was queued; notes and reasons go to stderr."""
    from . import listing, tasks
    from .progress import Watch
    from .state import QUEUED

    if timeout is not None and not wait:
        raise UsageError("--timeout goes with --wait: add --wait")
    bound_waits(timeout)
    c = open_repo(where)
    setup_log = c.store.dir / "logs" / f"setup-{task}.log"

    def note() -> str:
        cur = c.store.read().tasks.get(task)
        return cur.note if cur is not None and cur.state == QUEUED else ""

    with json_refusals(as_json, task):
        with Watch(f"starting '{task}'", err, log=lambda: setup_log) as w:
            result = tasks.start(
                c,
                task,
                base_ref=base,
                touch=list(touch),
                use=list(use),
                force=force,
                touch_suggested=touch_suggested,
                say=w.say,
            )
        t = result.task
        for m in result.messages:
            err(m)
        if wait and t.state == QUEUED:
            with Watch(f"waiting for a slot for '{task}'", err, detail=note, log=lambda: setup_log) as w:
                t = tasks.wait_active(c, task, timeout, say=w.say)
    if as_json:
        emit(listing.task_json(t))
    elif t.state != QUEUED:
        print(t.path)
    return ExitCode.QUEUED if t.state == QUEUED else 0


@contextmanager
def json_refusals(as_json: bool, task: str) -> Iterator[None]:
    """Under --json a refusal is JSON on stdout too (and still one line on stderr and its exit code)."""
    from .errors import WtpError

    try:
        yield
    except WtpError as e:
        if as_json:
            paths = getattr(e, "paths", [])
            emit({"task": task, "state": "refused", "error": e.message, "paths": list(paths), "exit": int(e.exit_code)})
        raise


def next_(where: str | None, as_json: bool = False) -> int:
    from . import listing, tasks

    c = open_repo(where)
    started = tasks.promote(c, say=err)
    if as_json:
        emit({"started": [listing.task_json(t) for t in started]})
    elif not started:
        waiting = c.store.read().queued()
        print(
            "nothing to start"
            + (f"; {len(waiting)} queued: " + "; ".join(f"{t.name}: {t.note}" for t in waiting) if waiting else "")
        )
    else:
        for t in started:
            print(f"{t.name}\t{t.path}")
    return 0


def run(where: str | None, task: str | None, cmd: list[str]) -> int:
    import subprocess

    from . import tasks

    cmd = after_dashes(cmd)
    c = open_repo(where)
    t, env = tasks.run_in(c, current_task(c, where, task))
    try:
        code = subprocess.call(cmd, cwd=t.path, env=env)
    except FileNotFoundError:
        err(f"wtp: command not found: {cmd[0]}")
        return ExitCode.NOT_FOUND
    except PermissionError:
        err(f"wtp: command cannot be run (permission denied): {cmd[0]}")
        return 126
    return code if code >= 0 else 128 - code


def rm(where: str | None, task: str | None, force: bool = False) -> int:
    from . import removal

    c = open_repo(where)
    name = current_task(c, where, task)
    for m in removal.rm(c, name, force=force, say=err):
        print(m)
    _left_behind(c, where)
    return 0


def _left_behind(ctx: Ctx, where: str | None) -> None:
    """The command removed the worktree it was run from: say where to go."""
    try:
        gone = not os.path.isdir(os.getcwd())
    except FileNotFoundError:
        gone = True
    if gone and where is None:
        err(f"the worktree you are in was removed: cd {ctx.repo.config_root}")


def list_(where: str | None, as_json: bool = False, all_tasks: bool = False, remote: bool = False) -> int:
    from . import listing

    c = open_repo(where)
    if remote:
        return _list_remote(c, as_json)
    infos = listing.list_tasks(c, all_tasks=all_tasks)
    if as_json:
        emit(listing.list_json(infos))
    else:
        from . import render

        try:
            cwd = str(here(where).resolve())
        except UsageError:
            cwd = None
        render.task_table(infos, c, cwd)
    return 0


def _list_remote(c: Ctx, as_json: bool) -> int:
    """The tasks of other clones, from their claims on the remote."""
    from . import render, sharing

    name = c.remote()
    if name is None:
        raise UsageError(f"--remote needs a remote, and '{c.cfg.remote or 'none'}' is not one here")
    found = sharing.others(c, name)
    if as_json:
        emit({"remote": name, "tasks": [x.to_json() for x in found]})
        return 0
    if not found:
        print(f"no other clone shares a task through '{name}'" + ("" if c.cfg.share else " (share = false here)"))
        return 0
    render.table(
        ["TASK", "CLONE", "HOST", "AGE", "DECLARES"],
        [[x.task, x.clone, x.host, x.age(), ", ".join([*x.touch, *x.use, *x.recorded]) or "-"] for x in found],
    )
    return 0


def check(
    where: str | None,
    names: list[str] | None,
    fail_on: str = "overlap",
    as_json: bool = False,
    *,
    all_tasks: bool = False,
) -> int:
    """Inside a task's worktree, with no task named, the report is about that task (--all: every pair)."""
    from . import overlap, render

    if fail_on not in overlap.FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(overlap.FAIL_ON)}, not {fail_on!r}")
    if names and all_tasks:
        raise UsageError("--all reports every pair: leave out the task names, or drop --all")
    c = open_repo(where)
    if not names and not all_tasks:
        mine = task_here(c, where)
        names = [mine] if mine else None
    report = overlap.check(c, names or None)
    if as_json:
        emit(report.to_json())
    else:
        render.check_report(report)
    return ExitCode.FINDING if report.worst() >= overlap.FAIL_ON[fail_on] else 0


def land(
    where: str | None,
    task: str | None,
    *,
    strategy: str | None = None,
    gate: str | None = None,
    no_push: bool = False,
    keep: bool = False,
    timeout: float | None = None,
    mode: str | None = None,
    detach: bool = False,
    follow: bool = False,
    as_json: bool = False,
) -> int:
    from . import tasks
    from .config import MODES, STRATEGIES
    from .land import lander

    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    bound_waits(timeout)
    c = open_repo(where)
    t = tasks.get(c.store.read(), current_task(c, where, task))
    if not detach:
        done = lander.landable(t)
        if done is not None:
            return _report(c, where, done, as_json)
    req = lander.request(c, t, strategy=strategy, gate=gate, push=not no_push, keep=keep, mode=mode, timeout=timeout)
    if detach:
        place, log = lander.detach(c, t, req, say=err)
        if as_json:
            emit({"task": t.name, "state": "landing", "place": place, "log": log})
        elif place:
            print(f"queued '{t.name}' to land at place {place}; 'wtp queue' follows it (log: {log})")
        else:
            print(f"'{t.name}' was handled at once; 'wtp list --all' shows how (log: {log})")
        return 0
    return _land(c, where, t, req, follow, as_json)


def land_detached(where: str | None, request: str) -> int:
    """The detached child of 'wtp land --detach': the request it was handed, whole."""
    from . import tasks
    from .land.request import LandRequest

    req = LandRequest.loads(request)
    if req is None:
        raise UsageError("the detached land was handed a request it cannot read: run 'wtp land TASK' again")
    bound_waits(req.timeout)
    c = open_repo(where)
    t = tasks.get(c.store.read(), req.task)
    if t.seq != req.seq:
        raise UsageError(f"task '{req.task}' was replaced since its land was detached: see 'wtp list'")
    return _land(c, where, t, req, False, False)


def _land(c: Ctx, where: str | None, t: Task, req: LandRequest, follow: bool, as_json: bool) -> int:
    from .errors import LandBlocked, WtpError
    from .land import lander
    from .progress import Watch

    gate_log = c.store.dir / "logs" / f"land-{t.name}.log"
    watch = Watch(
        f"landing '{t.name}'", err, detail=lambda: _land_detail(c, t.name), log=lambda: gate_log, follow=follow
    )
    try:
        with watch:
            result = lander.land(c, t, req, say=watch.say)
    except LandBlocked as e:
        if as_json:
            emit(
                {
                    "task": t.name,
                    "state": "blocked",
                    "commit": None,
                    "attempts": None,
                    "paths": e.paths,
                    "error": e.message,
                }
            )
        raise
    except WtpError as e:
        if as_json:
            emit(
                {"task": t.name, "state": "refused", "commit": None, "attempts": None, "paths": [], "error": e.message}
            )
        raise
    except KeyboardInterrupt:
        err(lander.interrupted(c, t))  # say what Ctrl-C left, before the 'interrupted' line
        raise
    return _report(c, where, result, as_json)


def _report(c: Ctx, where: str | None, result: LandResult, as_json: bool) -> int:
    if as_json:
        for m in result.messages:
            err(m)
        emit(result.to_json())
        return 0
    more = f" after {result.attempts} attempts" if result.attempts > 1 else ""
    print(f"landed '{result.task}' at {result.commit}{more}")
    for m in result.messages:
        print(m)
    _left_behind(c, where)
    return 0


def _land_detail(ctx: Ctx, task: str) -> str:
    """What the queue is doing with the task now, for the live line."""
    from .land import status

    now = status.describe(status.doing(ctx).get(task))
    if now:
        return now
    t = ctx.store.read().tasks.get(task)
    return t.note if t is not None else ""


def gate_status(where: str | None, resource: str, as_json: bool = True, remote: bool = False) -> int:
    """Who holds gate ``resource`` and who waits, in order (a remote gate: from the remote)."""
    from . import gates, remote_gates
    from .locks import Holder

    gates.validate_gate(resource)
    c = open_repo(where)
    through = remote_gates.remote_for(c, resource, remote)
    if through is not None:
        st = remote_gates.RemoteGate(c, resource, through, c.cfg.gate_lease, err).status()
        if as_json:
            emit(st)
        elif not st["tickets"]:
            print(f"nobody holds or waits for remote gate '{resource}' on '{through}' (last token {st['token']})")
        else:
            for n, t in enumerate(st["tickets"], 1):
                print(f"{n}. {remote_gates.describe(t)}; lease {t.get('lease')}s, beat {t.get('beat')}")
        return 0
    rows = []
    for place, ticket in enumerate(gates.Gate(c.store, resource).tickets(), 1):
        h = Holder.from_json(ticket["holder"])
        rows.append(
            {
                "place": place,
                "task": ticket.get("label") or None,
                "pid": h.pid if h else None,
                "command": h.cmd if h else None,
                "holds": bool(ticket.get("granted")),
                "since": ticket.get("granted"),
            }
        )
    if as_json:
        emit({"gate": resource, "tickets": rows})
    elif not rows:
        print(f"nobody holds or waits for gate '{resource}'")
    else:
        for r in rows:
            who = f"task '{r['task']}', " if r["task"] else ""
            print(f"{r['place']}. {'holds' if r['holds'] else 'waits'}: {who}pid {r['pid']} ({r['command']})")
    return 0


def gate(where: str | None, resource: str, cmd: list[str], timeout: float | None = None, remote: bool = False) -> int:
    from . import gates, isolate, remote_gates
    from .procs import run_guarded
    from .progress import Watch
    from .state import LIVE

    cmd = after_dashes(cmd)
    gates.validate_gate(resource)
    if not _runnable(cmd[0]):  # found out before waiting for a turn, as 'wtp run' says it
        err(f"wtp: command not found: {cmd[0]}")
        return ExitCode.NOT_FOUND
    bound_waits(timeout)
    c = open_repo(where)
    env, label = dict(os.environ), task_here(c, where) or ""
    t = c.store.read().tasks.get(label)
    if t is not None and t.state in LIVE:  # running inside a task's worktree: the task's env and label
        env = isolate.task_env(c, t)
    else:
        label = ""
    through = remote_gates.remote_for(c, resource, remote)
    if through is not None:  # held through the remote: every clone waits its turn
        return remote_gates.run_holding(c, resource, through, cmd, here(where), env, timeout, label, err)
    g = gates.Gate(c.store, resource)
    with Watch(f"waiting for gate '{resource}'", err) as w:
        g.acquire(timeout, say=w.say, label=label)
    try:
        outcome = run_guarded(cmd, here(where), env)
    finally:
        g.release()
    return outcome.code


def _runnable(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None or (os.sep in program and os.access(program, os.X_OK))


def trust(where: str | None) -> int:
    from . import trust as trusting

    c = open_repo(where)
    with c.store.transaction() as st:
        new = trusting.trust(c, st)
    cmds = trusting.config_commands(c)
    if not cmds:
        print("the config has no commands to trust")
    for key, items in cmds.items():
        for cmd in items:
            print(f"trusted {key}: {cmd}" + ("" if cmd in new.get(key, []) else " (unchanged)"))
    return 0


def doctor(
    where: str | None, fix: bool = False, adopt: bool = False, as_json: bool = False, stale_claims: float | None = None
) -> int:
    from . import doctor as doc

    if stale_claims is not None and not fix:
        raise UsageError("--stale-claims clears claims: it goes with --fix")
    findings = doc.doctor(open_repo(where), fix, adopt, stale_claims)
    if as_json:
        emit(
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
    if fix:  # 'wtp doctor --fix && ...': 0 once everything it found is fixed
        return ExitCode.FINDING if any(not f.fixed or f.fixed.startswith("could not fix") for f in findings) else 0
    return ExitCode.FINDING if findings else 0


def init(
    where: str | None,
    *,
    base: str | None = None,
    remote: str | None = None,
    no_remote: bool = False,
    max_active: int = 3,
    force: bool = False,
    agents: bool = False,
) -> int:
    from . import config, gitops
    from . import trust as trusting
    from .errors import Refusal
    from .repo import Ctx
    from .state import Store

    if remote and no_remote:
        raise UsageError("--remote and --no-remote exclude each other: pass one")
    repo = gitops.discover(here(where))
    target = repo.config_root / config.CONFIG_FILE
    if agents:
        from . import hooks

        for line in hooks.write_agents(repo.config_root):
            print(line)
        if target.exists() and not force:
            print(f"kept the existing {target}")
            return 0
    if target.exists() and not force:
        raise Refusal(f"{target} already exists: edit it, or pass --force to overwrite it")
    c = Ctx(repo=repo, cfg=config.Config(remote=remote or ""), store=Store(repo.common_dir))
    if remote is None:
        found = c.remotes()
        remote = "" if no_remote else ("origin" if "origin" in found or not found else found[0])
        c.cfg = config.Config(remote=remote)
    detected = base or c.detect_base()
    gate = config.detect_test_command(repo.config_root)
    mode, why = _calibrate(c, detected)
    target.write_text(config.render_default(detected, remote or "", max_active, gate, (mode, why)))
    with c.store.transaction() as st:  # init trusts what it writes
        trusting.trust(Ctx(repo=repo, cfg=config.load(repo.config_root), store=c.store), st)
    print(
        f"wrote {target} (base '{detected}', remote '{remote or 'none'}', max_active {max_active}, "
        f"land gate {gate!r} {'(detected; trusted)' if gate else '(none found: set [land] gate)'})"
    )
    print(f"co-change layer {'on (warn)' if mode == 'warn' else 'off'}: {why}")
    return 0


def _calibrate(ctx: Ctx, base: str, limit: int = 2000) -> tuple[str, str]:
    """Replay the base's merges: ("warn", figures) where the co-change layer helps, else ("off", why)."""
    from . import calibration
    from .globs import HOT_GLOBS

    tip = ctx.base_tip(base)
    if tip is None:
        return "off", f"'{base}' has no commits yet"
    cal = calibration.calibrate(ctx.root, tip, HOT_GLOBS + tuple(ctx.cfg.check_hot), limit)
    return ("warn" if cal.on else "off"), cal.why


def cochange_cmd(where: str | None, files: list[str], calibrate: bool = False, as_json: bool = False) -> int:
    """What the base's history couples: the companions of FILEs, the index, or (--calibrate)
    whether the layer helps in this repository, written to the config."""
    from . import cochange, config
    from .globs import HOT_GLOBS

    c = open_repo(where)
    base = c.detect_base()
    if calibrate:
        if files:
            raise UsageError("--calibrate replays the whole history: leave out the files")
        target = c.cfg.source or (c.repo.config_root / config.CONFIG_FILE)
        if target.name != config.CONFIG_FILE:
            raise UsageError(f"the config is {target} [tool.wtp]: set [tool.wtp.check] cochange there by hand")
        err(f"replaying the merges of '{base}' ...")
        mode, why = _calibrate(c, base)
        text = target.read_text() if target.exists() else ""
        target.write_text(config.set_cochange(text, mode, why))
        config.load(c.repo.config_root)  # still valid
        if as_json:
            emit({"mode": mode, "why": why, "config": str(target)})
        else:
            print(f"co-change layer {'on (warn)' if mode == 'warn' else 'off'}: {why}")
            print(f'wrote cochange = "{mode}" to {target}')
        return 0
    ref = c.base_tip_ref(base)
    h = cochange.load(c.root, c.store.ensure_dir(), ref, HOT_GLOBS + tuple(c.cfg.check_hot), c.base_tip(base))
    if h is None:
        raise UsageError(f"base branch '{base}' has no commits")
    if as_json:
        emit(
            {
                "base": base,
                "tip": h.tip,
                "commits": len(h.commits),
                "files": {f: [e.to_json() for e in h.companions(f)] for f in files},
            }
        )
        return 0
    if not files:
        print(
            f"the history of '{base}' at {h.tip[:12]}: {len(h.commits)} commits of at most {cochange.MAX_FILES} files"
        )
    for f in files:
        found = h.companions(f)
        if not found:
            print(f"{f}: no file usually changes with it")
        for e in found:
            print(e.describe())
    return 0


def queue(where: str | None, as_json: bool = False) -> int:
    from . import render
    from .gates import Gate
    from .land import status as queue_status
    from .land.request import QUEUE

    c = open_repo(where)
    st = c.store.read()
    status = queue_status.read(c)
    doing = queue_status.doing(c)
    rows = []
    for place, ticket in enumerate(Gate(c.store, QUEUE).tickets(), 1):
        name = str(ticket.get("label", ""))
        raw = ticket.get("data")
        data: dict[str, object] = raw if isinstance(raw, dict) else {}
        t = st.tasks.get(name)
        now = doing.get(name) if t is not None and t.phase else None
        gate = queue_status.describe(now) or "waiting"
        rows.append(
            {
                "place": place,
                "task": name,
                "mode": data.get("mode"),
                "candidate": t.candidate if t is not None else None,
                "gate": gate,
                "pid": ticket["holder"]["pid"],
                "conductor": status.get("conductor") if t is not None and t.phase else None,
            }
        )
    if as_json:
        emit({"entries": rows})
    elif not rows:
        print("the land queue is empty")
    else:
        render.table(
            ["PLACE", "TASK", "MODE", "CANDIDATE", "GATE", "PID"],
            [
                [
                    str(r["place"]),
                    str(r["task"]),
                    str(r["mode"] or "-"),
                    str(r["candidate"] or "-")[:12],
                    str(r["gate"]),
                    str(r["pid"]),
                ]
                for r in rows
            ],
        )
    return 0


SHELLS = ("bash", "zsh", "fish")


def shell_init(shell: str) -> int:
    """Print the shell function that gives 'wtp cd TASK', 'wtp start --cd' and a shell moved
    to the main worktree after 'wtp land' or 'wtp rm' removed the one it stood in."""
    if shell not in SHELLS:
        raise UsageError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
    if shell == "fish":
        print(_FISH)
    else:
        print(_POSIX)
    return 0


_POSIX = """\
# wtp shell integration: eval "$(wtp shell-init bash)" (or zsh) in your rc file.
wtp() {
  local _wtp_dir _wtp_main _wtp_rc _wtp_arg _wtp_cd=0
  case "$1" in
    cd)
      shift
      if [ $# -eq 0 ]; then _wtp_dir=$(command wtp path --main) || return
      else _wtp_dir=$(command wtp path "$1") || return; fi
      cd "$_wtp_dir" ;;
    start)
      local -a _wtp_args
      for _wtp_arg in "$@"; do
        if [ "$_wtp_arg" = "--cd" ]; then _wtp_cd=1; else _wtp_args+=("$_wtp_arg"); fi
      done
      if [ "$_wtp_cd" = 1 ]; then
        _wtp_dir=$(command wtp "${_wtp_args[@]}"); _wtp_rc=$?
        [ $_wtp_rc -eq 0 ] && [ -n "$_wtp_dir" ] && cd "$_wtp_dir"
        return $_wtp_rc
      fi
      command wtp "$@" ;;
    land|rm|abandon)
      _wtp_main=$(command wtp path --main 2>/dev/null)
      command wtp "$@"; _wtp_rc=$?
      if [ ! -d "$PWD" ] && [ -n "$_wtp_main" ]; then cd "$_wtp_main"; fi
      return $_wtp_rc ;;
    *) command wtp "$@" ;;
  esac
}"""

_FISH = """\
# wtp shell integration: wtp shell-init fish | source   (in config.fish)
function wtp
    switch $argv[1]
        case cd
            if test (count $argv) -eq 1
                set -l dir (command wtp path --main); or return
                cd $dir
            else
                set -l dir (command wtp path $argv[2]); or return
                cd $dir
            end
        case start
            if contains -- --cd $argv
                set -l dir (command wtp (string match -v -- --cd $argv)); or return $status
                test -n "$dir"; and cd $dir
            else
                command wtp $argv
            end
        case land rm abandon
            set -l main (command wtp path --main 2>/dev/null)
            command wtp $argv
            set -l rc $status
            if not test -d $PWD; and test -n "$main"
                cd $main
            end
            return $rc
        case '*'
            command wtp $argv
    end
end"""


def task_names(where: str | None) -> int:
    """The names shell completion offers (answered without typer or git beyond discovery)."""
    from .state import FINAL, LANDED

    c = open_repo(where)
    for t in sorted(c.store.read().tasks.values(), key=lambda t: t.seq):
        if t.state not in FINAL or (t.state == LANDED and t.path):
            print(t.name)
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


def share_claim(where: str | None, task: str) -> int:
    """Refresh a live task's claim on the remote (run by the agent hook in the background).
    Under a lock of the task's own, so the last to publish reads the newest recorded paths."""
    from . import sharing
    from .locks import Lock
    from .repo import validate_name
    from .state import LIVE

    validate_name(task)
    c = open_repo(where)
    if sharing.enabled(c) is None:
        return 0
    with Lock(c.store.ensure_dir() / f"share-{task}.lock", what=f"the claim of '{task}'"):
        t = c.store.read().tasks.get(task)
        if t is None or t.state not in LIVE:
            return 0
        note = sharing.publish(c, t)
    if note:
        err(note)
        return 1
    return 0


HOOK_TARGETS = ("claude", "git")


def hook_pre_edit() -> int:
    """Claude Code's PreToolUse hook.  A failure of wtp itself never blocks the edit: it is
    one line on stderr and exit 1, the protocol's non-blocking error (never a traceback)."""
    import sys

    from .errors import WtpError

    try:
        from . import hooks

        ans = hooks.pre_edit(sys.stdin.read())
    except Exception as e:  # noqa: BLE001 - see above
        why = e.message if isinstance(e, WtpError) else f"{type(e).__name__}: {e}"
        err(f"wtp hook pre-edit: {why}; the edit goes ahead unchecked")
        return 1
    sys.stdout.write(ans.out)
    sys.stderr.write(ans.err)
    return ans.code


def hook_pre_commit(where: str | None) -> int:
    """The git pre-commit hook: 1 refuses the commit.  A failure of wtp itself lets the commit
    through with a warning (a broken check must not stop all work)."""
    import sys

    from .errors import WtpError

    try:
        from . import hooks

        ans = hooks.pre_commit(here(where))
    except Exception as e:  # noqa: BLE001 - see above
        why = e.message if isinstance(e, WtpError) else f"{type(e).__name__}: {e}"
        err(f"wtp pre-commit hook: {why}; the commit was not checked")
        return 0
    sys.stderr.write(ans.err)
    return ans.code


def hook_install(where: str | None, target: str, remove: bool = False) -> int:
    from . import hooks

    if target not in HOOK_TARGETS:
        raise UsageError(f"install the hook for one of {', '.join(HOOK_TARGETS)}, not {target!r}")
    c = open_repo(where)
    if target == "claude":
        said = hooks.uninstall_claude(c) if remove else hooks.install_claude(c)
    else:
        said = hooks.uninstall_git(c) if remove else hooks.install_git(c)
    for line in said:
        print(line)
    return 0


def mcp(where: str | None) -> int:
    """Serve the MCP tools over stdio until the client closes it."""
    try:
        from . import mcp_server
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("mcp", "mcp_types"):
            raise UsageError(
                "'wtp mcp' needs the MCP SDK, an optional extra: pip install 'worktree-par[mcp]'"
            ) from None
        raise
    open_repo(where)  # a bad directory is one line now, not a tool error later
    mcp_server.serve(where)
    return 0
