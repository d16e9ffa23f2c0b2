"""Processes: whether one runs, when it started, whether it is stopped or dying (how lock
holders are judged, locks.py), and which live processes work inside a worktree (commands
wtp runs itself are guarded: see guarded.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import NamedTuple


def process_start(pid: int) -> int:
    """When the process started, in clock ticks since boot; 0 when there is none.  Linux
    reads /proc without importing psutil; elsewhere psutil's creation time (in ms)."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return int(f.read().rsplit(b")", 1)[1].split()[19])
        except (OSError, ValueError, IndexError):
            return 0
    return _psutil_start(pid)


def _psutil_start(pid: int) -> int:
    import psutil

    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except psutil.Error:
        return 0


def process_stopped(pid: int) -> bool:
    """True when the process is stopped (SIGSTOP, Ctrl-Z) or traced."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t")
    except (OSError, IndexError):
        return False


def descendants_in_group(pid: int) -> list[int]:
    """The live processes descended from ``pid`` (its children, theirs, ...) that are in its
    process group, traced ones left out (a debugger's to continue): what a process continued
    alone continues in turn.  Never another process of its group (another land's, which would
    send it back), nor one in a group of its own (a gate's, whose stopped process was stopped
    on purpose: review 48)."""
    group = os.getpgid(pid)
    if not os.path.isdir("/proc/self"):
        import psutil

        try:
            kids = psutil.Process(pid).children(recursive=True)
            return [c.pid for c in kids if _pgid(c.pid) == group]
        except psutil.Error:
            return []
    children: dict[int, list[int]] = {}
    grouped: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] not in (b"t", b"Z", b"X", b"x"):
            children.setdefault(int(fields[1]), []).append(int(name))
            if int(fields[2]) == group:
                grouped.add(int(name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += [k for k in kids if k in grouped]
        todo += kids
    return found


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PF_EXITING = 0x4  # the kernel's task flag for a process in its exit


def dying(pid: int) -> bool:
    """True for a process that holds nothing any more though its pid still stands: a zombie
    (not yet reaped: an init that reaps late keeps one for seconds), one already exiting, or
    one with SIGKILL pending: the child of a killed 'wtp land', which PR_SET_PDEATHSIG kills
    (land/handoff.py), is judged dead from the moment its parent died."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X", b"x") or int(fields[6]) & _PF_EXITING:
            return True
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except (OSError, ValueError, IndexError):
        return False  # no /proc: judged by its start time alone
    kill = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & kill:
            return True
    return False


class Proc(NamedTuple):
    pid: int
    name: str


def command_of(pid: int) -> list[str]:
    """The argv a process runs ([] when it cannot be read: gone, or not ours)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return []
    except OSError:
        return []
    import psutil

    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []


def processes_in(paths: list[Path]) -> dict[Path, list[Proc]]:
    """Live processes whose working directory lies inside each path (one scan for all),
    not counting this process and its ancestors.  A cwd is matched by device and inode,
    walking up from /proc/<pid>/cwd, wherever its path cannot be read as ours: longer than
    PATH_MAX, or seen through another mount namespace (a container's bind mount)."""
    found: dict[Path, list[Proc]] = {p: [] for p in paths}
    if not paths:
        return found
    roots = [(str(p.resolve()), p) for p in paths]
    ids: dict[tuple[int, int], Path] = {}
    for p in paths:
        try:
            st = os.stat(p)
            ids[(st.st_dev, st.st_ino)] = p
        except OSError:
            pass
    # Ourselves and the shells that started us (an agent running 'wtp land' from inside the
    # worktree) do not hold the worktree: they are the ones asking to remove it.
    mine = _ancestors()
    for pid, name, cwd in _cwds():
        if pid in mine:
            continue
        hit = next((p for root, p in roots if cwd == root or cwd.startswith(root + os.sep)), None) if cwd else None
        if hit is None and (not cwd or not _same_dir(pid, cwd)):
            hit = _inside_by_inode(pid, ids)
        if hit is not None:
            found[hit].append(Proc(pid, name))
    return found


def _same_dir(pid: int, cwd: str) -> bool:
    """Whether the path /proc/<pid>/cwd names is that directory as this process sees it."""
    try:
        a, b = os.stat(cwd), os.stat(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _inside_by_inode(pid: int, ids: dict[tuple[int, int], Path]) -> Path | None:
    try:
        fd = os.open(f"/proc/{pid}/cwd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for _ in range(4096):
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in ids:
                return ids[(st.st_dev, st.st_ino)]
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            top = os.fstat(up)
            os.close(fd)
            fd = up
            if (top.st_dev, top.st_ino) == (st.st_dev, st.st_ino):
                return None  # reached /
    except OSError:
        return None
    finally:
        os.close(fd)
    return None


def _ancestors() -> set[int]:
    pids = {os.getpid()}
    if os.path.isdir("/proc/self"):
        pid = os.getpid()
        while pid > 1:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    pid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
            pids.add(pid)
        return pids
    import psutil

    return pids | {p.pid for p in psutil.Process().parents()}


def _cwds() -> list[tuple[int, str, str]]:
    """(pid, name, cwd; "" when unreadable) of every process we may inspect.  On Linux read /proc directly:
    a third of the time of psutil's scan, without its import."""
    out = []
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue  # gone, or not ours to inspect
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                cwd = ""  # a path longer than PATH_MAX, say: matched by inode instead
            out.append((int(entry), name, cwd))
        return out
    import psutil

    for proc in psutil.process_iter(["pid", "name", "cwd"]):
        if proc.info.get("cwd"):
            out.append((proc.info["pid"], proc.info["name"] or "?", proc.info["cwd"]))
    return out
