"""The benchmarks' harness: the repository builder, timers, results and their table (the measured
parts are in benchparts.py).

Every figure is a median over repeated runs, measured in the same run as the plain
git commands doing the same work, and reported as a ratio to them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repos  # noqa: E402  (the repository builder tests, benchmarks and the demo share)

ROOT = Path(__file__).resolve().parent.parent
# The console script users run; 'python -m' pays ~40 ms more for runpy and the package lookup.
_SCRIPT = Path(sys.executable).parent / "wtp"
WTP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "worktree_par"]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass
class Row:
    part: str
    case: str
    wtp_ms: float
    git_ms: float | None
    ratio: float | None
    rss_mb: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Results:
    machine: str = field(
        default_factory=lambda: (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}"
        )
    )
    rows: list[Row] = field(default_factory=list)
    workdir: str = ""  # where the repositories were built

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(fmt_row(row), flush=True)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"machine": self.machine, "workdir": self.workdir, "rows": [asdict(r) for r in self.rows]}, indent=1
            )
        )


def fmt_row(r: Row) -> str:
    git = f"{r.git_ms:8.1f}" if r.git_ms is not None else "       -"
    ratio = f"{r.ratio:5.2f}x" if r.ratio is not None else "     -"
    rss = f"{r.rss_mb:6.1f}" if r.rss_mb is not None else "     -"
    met = "" if r.met is None else ("met" if r.met else "MISSED")
    return f"{r.part:8} {r.case:38} {r.wtp_ms:8.1f} {git} {ratio} {rss}  {r.target:22} {met} {r.note}"


HEADER = f"{'part':8} {'case':38} {'wtp ms':>8} {'git ms':>8} {'ratio':>6} {'RSS MB':>6}  {'target':22} result"


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    res = subprocess.run(args, cwd=cwd, env=env or ENV, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}: {res.stderr}")
    return res.stdout


@contextmanager
def phase(what: str) -> Iterator[None]:
    """Say on stderr how long a part of the run took (where a run's minutes go)."""
    t0 = time.perf_counter()
    yield
    print(f"  [{what}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)


def settle() -> None:
    """Flush dirty pages before a sample, so it does not pay for the writeback of what ran before."""
    os.sync()


def run_rss(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run a command; (seconds, peak RSS in MB, exit code)."""
    settle()
    t0 = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, p.returncode


def median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        settle()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def make_repo(base: Path, nfiles: int, remote: bool = False) -> Path:
    """A repository of ``nfiles`` small files in 100-file directories, one commit."""

    def fill(repo: Path) -> None:
        for i in range(nfiles):
            d = repo / "src" / f"pkg{i // 100:04d}"
            if i % 100 == 0:
                d.mkdir(parents=True)
            (d / f"mod{i % 100:03d}.py").write_text(
                f"# module {i}\n" + "".join(f"VALUE_{k} = {i * k}\n" for k in range(20))
            )

    files = {".gitignore": "node_modules/\n", "package.json": '{"name": "bench", "version": "1.0.0"}\n'}
    origin = base / f"origin{nfiles}.git" if remote else None
    return repos.build(base / f"repo{nfiles}", files=files, fill=fill, origin=origin)


def make_node_modules(repo: Path, npkg: int = 300, files: int = 20) -> Path:
    """A synthetic node_modules (npkg packages of small files, with .bin symlinks) and a
    tarball of it: extracting the tarball stands in for a fresh install from a warm cache."""
    nm = repo / "node_modules"
    (nm / ".bin").mkdir(parents=True)
    for p in range(npkg):
        d = nm / f"pkg-{p}" / "lib"
        d.mkdir(parents=True)
        for f in range(files):
            (d / f"f{f}.js").write_text(f"module.exports = {p * f};\n" * 20)
        (nm / ".bin" / f"pkg-{p}").symlink_to(f"../pkg-{p}/lib/f0.js")
    tar = repo.parent / "node_modules.tar"
    with tarfile.open(tar, "w") as t:
        t.add(nm, arcname="node_modules")
    return tar


def run_alone(part: Callable[[Results, Path], None]) -> None:
    """Run one part of the suite on its own, in a temporary folder (the bench_*.py scripts)."""
    res = Results()
    print(f"machine: {res.machine}\n{HEADER}")
    base = tmpdir()
    try:
        part(res, base)
    finally:
        cleanup(base)


def tmpdir(where: Path | None = None, need_gb: float = 6.0) -> Path:
    """The run's working folder: under ``where`` if given, else in /dev/shm when memory has
    room for it (``need_gb`` in the tmpfs and twice that available), else the system temp.

    In memory, every figure is the CPU work of wtp and git alone: on a virtual disk (with
    online discard, say) creating and deleting tens of thousands of files stalls for
    seconds at random, and those stalls, not the commands, would decide the ratios.  It is
    also the strict setting for wtp, since its fixed costs weigh more against faster git."""
    if where is None:
        need = int(need_gb * 2**30)
        try:
            avail = next(int(ln.split()[1]) * 1024 for ln in open("/proc/meminfo") if ln.startswith("MemAvailable:"))
            if shutil.disk_usage("/dev/shm").free > need and avail > 2 * need:
                where = Path("/dev/shm")
        except (OSError, StopIteration):
            pass
    return Path(tempfile.mkdtemp(prefix="wtp-bench-", dir=where))


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- parts -----------------------------------------------------------------------------


def timed(args: list[str], cwd: Path, n: int) -> tuple[float, float]:
    """Median ms and max RSS MB of a command run n times."""
    times, rss = [], 0.0
    for _ in range(n):
        s, r, code = run_rss(args, cwd)
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(args)} exited {code} in {cwd}")
        times.append(s * 1000)
        rss = max(rss, r)
    return statistics.median(times), rss


def git_seq_ms(cmds: list[tuple[list[str], Path]], n: int) -> float:
    def run_all() -> None:
        for args, cwd in cmds:
            subprocess.run(args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return median_ms(run_all, n)


def fixed_cost_row(res: Results, part: str, case: str, wtp_ms: float, git_ms: float, rss: float) -> None:
    cost = wtp_ms - git_ms
    res.add(
        Row(
            part,
            case,
            wtp_ms,
            git_ms,
            wtp_ms / git_ms,
            rss,
            "fixed cost <= 150 ms",
            cost <= 150,
            f"fixed {cost:.0f} ms",
        )
    )


# --- the same wtp from elsewhere, and what a careful script does by hand ------------------


def hook_event(wt: Path, rel: str) -> str:
    """The JSON an agent (Claude Code's PreToolUse) feeds 'wtp hook pre-edit' for an edit of ``rel``."""
    return json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "cwd": str(wt),
            "tool_name": "Edit",
            "tool_input": {"file_path": str(wt / rel), "old_string": "a", "new_string": "b"},
        }
    )


def wtp_from(root: Path) -> list[str]:
    """wtp as its console script runs it, but from the package under ``root`` (a copy of
    another commit): what an A/B comparison in one run starts, for both sides alike."""
    code = f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv[0] = 'wtp'; from worktree_par.entry import main; main()"
    return [sys.executable, "-c", code]


def export_package(rev: str, dest: Path, compile_it: bool = True) -> Path:
    """The package as of ``rev`` of this project, copied out of git into ``dest`` (nothing
    is written into the project), byte-compiled there unless ``compile_it`` is false."""
    dest.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(["git", "archive", rev, "worktree_par"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    if compile_it:
        import compileall

        compileall.compile_dir(str(dest / "worktree_par"), quiet=1)
    return dest


def careful_snapshot(wt: Path, base: str, repo: Path) -> tuple[str, list[str]]:
    """What a careful script does to compare one worktree's live work: one status, the paths
    it names staged into a copy of the index, a tree, a commit, its fork point and what it
    changed since.  (commit, changed paths)."""
    st = subprocess.run(
        ["git", "status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames", "--branch"],
        cwd=wt,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = []
    fields = st.split("\0")
    i = 0
    while i < len(fields):
        f = fields[i]
        i += 1
        if f.startswith("1 "):
            paths.append(f.split(" ", 8)[8])
        elif f.startswith("u "):
            paths.append(f.split(" ", 10)[10])
        elif f.startswith("? "):
            paths.append(f[2:])
    gd = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=wt, env=ENV, capture_output=True, text=True).stdout
    tmp = Path(tempfile.mkdtemp())
    idx = tmp / "index"
    shutil.copy(Path(wt, gd.strip(), "index"), idx)
    e = {**ENV, "GIT_INDEX_FILE": str(idx)}
    if paths:
        subprocess.run(
            ["git", "update-index", "--add", "--remove", "-z", "--stdin"],
            cwd=wt,
            env=e,
            input="\0".join(p.rstrip("/") for p in paths) + "\0",
            text=True,
            check=True,
        )
    tree = subprocess.run(["git", "write-tree"], cwd=wt, env=e, capture_output=True, text=True).stdout.strip()
    shutil.rmtree(tmp)
    c = subprocess.run(
        ["git", "commit-tree", tree, "-p", "HEAD", "-m", "s"], cwd=wt, env=ENV, capture_output=True, text=True
    ).stdout.strip()
    mb = subprocess.run(
        ["git", "merge-base", base, c], cwd=repo, env=ENV, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        ["git", "diff", "--name-only", "-z", "--no-renames", mb, c], cwd=repo, env=ENV, capture_output=True, text=True
    ).stdout
    return c, [p for p in out.split("\0") if p]


def careful_check(worktrees: list[Path], base: str, repo: Path) -> None:
    """A careful script's 'wtp check': each worktree's live work as a commit, one after another,
    then a merge simulation for each pair whose changed paths meet."""
    snaps = [careful_snapshot(wt, base, repo) for wt in worktrees]
    for i, (a, pa) in enumerate(snaps):
        for b, pb in snaps[i + 1 :]:
            if set(pa) & set(pb):
                subprocess.run(
                    ["git", "merge-tree", "--write-tree", "--name-only", "-z", a, b],
                    cwd=repo,
                    env=ENV,
                    capture_output=True,
                )
