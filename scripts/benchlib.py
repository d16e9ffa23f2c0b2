"""Shared pieces of the benchmarks: repo builders, timers, and the measured parts.

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
    repo = base / f"repo{nfiles}"
    repo.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], repo)
    for i in range(nfiles):
        d = repo / "src" / f"pkg{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"mod{i % 100:03d}.py").write_text(
            f"# module {i}\n" + "".join(f"VALUE_{k} = {i * k}\n" for k in range(20))
        )
    (repo / ".gitignore").write_text("node_modules/\n")
    (repo / "package.json").write_text('{"name": "bench", "version": "1.0.0"}\n')
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "initial"], repo)
    if remote:
        bare = base / f"origin{nfiles}.git"
        sh(["git", "init", "-q", "--bare", "-b", "main", str(bare)], base)
        sh(["git", "remote", "add", "origin", str(bare)], repo)
        sh(["git", "push", "-q", "-u", "origin", "main"], repo)
        sh(["git", "remote", "set-head", "origin", "main"], repo)
    return repo


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


def _timed(args: list[str], cwd: Path, n: int) -> tuple[float, float]:
    """Median ms and max RSS MB of a command run n times."""
    times, rss = [], 0.0
    for _ in range(n):
        s, r, code = run_rss(args, cwd)
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(args)} exited {code} in {cwd}")
        times.append(s * 1000)
        rss = max(rss, r)
    return statistics.median(times), rss


def _git_seq_ms(cmds: list[tuple[list[str], Path]], n: int) -> float:
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


def part_help(res: Results, repo: Path, n: int = 9) -> None:
    wtp_ms, rss = _timed([*WTP, "--help"], repo, n)
    py_ms = median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"]), n)
    res.add(
        Row(
            "cli",
            "wtp --help",
            wtp_ms,
            None,
            None,
            rss,
            "< 80 ms",
            wtp_ms < 80,
            f"python start-up alone {py_ms:.0f} ms",
        )
    )
    # Where a command's fixed cost goes: the interpreter (and what its site hooks import),
    # then wtp's own imports for the typer-free commands, then for the typer ones.
    # Imports are timed under 'python -S' (site-packages put on sys.path by hand): site hooks
    # that import modules of their own would otherwise have paid for part of wtp's imports.
    import site

    paths = f"import sys; sys.path[1:1] = {[*site.getsitepackages(), site.getusersitepackages()]!r}"

    def bare(code: str) -> float:
        return median_ms(lambda: subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, env=ENV, check=True), n)

    bare_ms = bare(paths)
    res.add(
        Row("cli", "python start-up", py_ms, None, None, None, "", None, f"{py_ms - bare_ms:.0f} ms of it site hooks")
    )
    for what, mods in (
        ("path/start/land/list", "worktree_par.entry, worktree_par.commands, worktree_par.land, worktree_par.procs"),
        ("typer commands", "worktree_par.cli, worktree_par.land, worktree_par.overlap, worktree_par.procs"),
    ):
        imp_ms = bare(f"{paths}; import {mods}") - bare_ms
        res.add(Row("cli", f"wtp imports, {what}", imp_ms, None, None, None, "", None, "above python -S start-up"))


class TaskPool:
    """Task worktrees shared by the list, path and check parts: grown 3 -> 10 -> 30 and
    reused, instead of created afresh for every case (most of a run's time on 20,000 files).

    Task i changes ``nchanged`` files of its own, src files i*500 .. i*500+nchanged-1
    (wrapping around in a small repository), plus shared{i}.txt and shared{i-1}.txt: an
    overlap, and so a merge simulation, with each neighbour."""

    def __init__(self, repo: Path, nfiles: int) -> None:
        self.repo, self.nfiles = repo, nfiles
        self.paths: list[Path] = []
        self.changed = 0

    def _file(self, i: int, k: int) -> Path:
        j = (i * 500 + k) % self.nfiles
        return self.paths[i] / "src" / f"pkg{j // 100:04d}" / f"mod{j % 100:03d}.py"

    def touched(self, i: int, nchanged: int) -> set[int]:
        return {(i * 500 + k) % self.nfiles for k in range(nchanged)}

    def grow(self, ntasks: int) -> None:
        (self.repo / ".wtp.toml").write_text(f"max_active = {ntasks + 5}\n")
        for i in range(len(self.paths), ntasks):
            p = Path(sh([*WTP, "start", f"t{i}"], self.repo).strip().splitlines()[-1])
            self.paths.append(p)
            (p / f"shared{i}.txt").write_text(f"task {i}\n")
            if i:
                (p / f"shared{i - 1}.txt").write_text(f"task {i}\n")
            for k in range(self.changed):
                f = self._file(i, k)
                f.write_text(f.read_text() + f"# task {i}\n")

    def change(self, nchanged: int) -> None:
        """Every task changes its first nchanged files (sets are nested, so only grow)."""
        for i in range(len(self.paths)):
            for k in range(self.changed, nchanged):
                f = self._file(i, k)
                f.write_text(f.read_text() + f"# task {i}\n")
        self.changed = max(self.changed, nchanged)

    def reset(self) -> None:
        """Undo the src changes (git rewrites only the changed files)."""
        if self.changed:
            for p in self.paths:
                sh(["git", "checkout", "-q", "--", "src"], p)
            self.changed = 0

    def remove(self) -> None:
        for i in range(len(self.paths)):
            sh([*WTP, "rm", f"t{i}", "--force"], self.repo)
        self.paths = []


def part_list_path(res: Results, pool: TaskPool, n: int = 5) -> None:
    repo, nfiles, ntasks, paths = pool.repo, pool.nfiles, len(pool.paths), pool.paths
    wtp_ms, rss = _timed([*WTP, "list", "--json"], repo, n)
    git_ms = _git_seq_ms([(["git", "status", "--porcelain=v2", "-z", "--untracked-files=all"], p) for p in paths], n)
    case = f"list, {ntasks} tasks, {nfiles} files"
    if nfiles >= 20000 and ntasks == 10:
        res.add(
            Row("cli", case, wtp_ms, git_ms, wtp_ms / git_ms, rss, "<= 1.3x git status each", wtp_ms / git_ms <= 1.3)
        )
    elif nfiles < 20000:
        fixed_cost_row(res, "cli", case, wtp_ms, git_ms, rss)
    else:
        res.add(Row("cli", case, wtp_ms, git_ms, wtp_ms / git_ms, rss))
    wtp_ms, rss = _timed([*WTP, "path", "t0"], repo, n)
    git_ms = _git_seq_ms([(["git", "worktree", "list", "--porcelain"], repo)], n)
    fixed_cost_row(res, "cli", f"path, {ntasks} tasks, {nfiles} files", wtp_ms, git_ms, rss)


def part_start(res: Results, repo: Path, nfiles: int, n: int = 10) -> None:
    """wtp start against plain 'git worktree add', and against the same git work wtp does
    (a parallel checkout, checkout.workers=0), alternating who goes first.  'wtp -S' is
    the same start with the interpreter's site hooks off (wtp's fast path for a plain
    'start' needs nothing from site-packages): what the command costs where no .pth hook
    imports modules at every Python start-up.  WTP_BENCH_RAW=1 prints every sample."""
    variants: dict[str, list[str]] = {"wtp": [], "git": [], "git -c checkout.workers=0": [], "wtp -S": []}
    no_site = [sys.executable, "-S", "-c", "from worktree_par.entry import main; main()"]
    no_site_env = {**ENV, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    root = repo.parent / f"{repo.name}.worktrees"
    rss = 0.0
    # Room for every sample: past max_active a start is only queued, and would time nothing.
    (repo / ".wtp.toml").write_text("max_active = 4\n")
    # On a disk mounted with online discard (like the machine of the README's figures) the
    # first mass file creation after a mass deletion stalls for seconds; an untimed checkout
    # takes that stall so no measured command does.
    sh(["git", "worktree", "add", "-q", "--detach", str(root / "warm-up"), "main"], repo)
    for i in range(n):
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for k in order:
            settle()
            t0 = time.perf_counter()
            if k == "wtp":
                _, r, _ = run_rss([*WTP, "start", f"s{i}"], repo)
                rss = max(rss, r)
            elif k == "wtp -S":
                run_rss([*no_site, "start", f"n{i}"], repo, no_site_env)
            else:
                cfg = ["-c", "checkout.workers=0"] if "workers" in k else []
                dst = root / f"plain-{len(cfg)}-s{i}"
                sh(
                    [
                        "git",
                        *cfg,
                        "worktree",
                        "add",
                        "-q",
                        "--no-track",
                        "-b",
                        f"plain/{len(cfg)}-s{i}",
                        str(dst),
                        "main",
                    ],
                    repo,
                )
            times[k].append((time.perf_counter() - t0) * 1000)
        # Each round's worktrees go before the next (untimed), so every sample checks out
        # into the same repository: with them kept, later checkouts ran ~50% slower.
        for t in (f"s{i}", f"n{i}"):
            if not Path(sh([*WTP, "path", t], repo).strip()).is_dir():
                raise SystemExit(f"wtp start {t} made no worktree: the sample timed nothing")
            sh([*WTP, "rm", t], repo)
        for c in (0, 2):
            sh(["git", "worktree", "remove", "--force", str(root / f"plain-{c}-s{i}")], repo)
            sh(["git", "branch", "-D", f"plain/{c}-s{i}"], repo)
    sh(["git", "worktree", "remove", "--force", str(root / "warm-up")], repo)
    (repo / ".wtp.toml").unlink()
    if os.environ.get("WTP_BENCH_RAW"):
        print({k: [round(x) for x in v] for k, v in times.items()}, file=sys.stderr)
    w, g, gp, ws = (statistics.median(times[k]) for k in variants)
    case = f"start vs worktree add, {nfiles} files"
    if nfiles >= 20000:
        res.add(Row("start", case, w, g, w / g, rss, "<= 1.15x", w / g <= 1.15))
    else:
        fixed_cost_row(res, "start", case, w, g, rss)
    res.add(
        Row(
            "start",
            f"start vs parallel-checkout worktree add, {nfiles}",
            w,
            gp,
            w / gp,
            rss,
            "",
            None,
            "the same git work",
        )
    )
    res.add(
        Row("start", f"start, python -S, vs worktree add, {nfiles}", ws, g, ws / g, None, "", None, "no site hooks")
    )


def part_warm(res: Results, repo: Path, nfiles: int, n: int = 3) -> None:
    tar = make_node_modules(repo)
    cfg = repo / ".wtp.toml"
    cfg.write_text('max_active = 10\n[setup]\ncopy = ["node_modules"]\n')
    root = repo.parent / f"{repo.name}.worktrees"
    wtimes, gtimes, rss = [], [], 0.0
    for i in range(n):
        s, r, _ = run_rss([*WTP, "start", f"w{i}"], repo)
        wtimes.append(s * 1000)
        rss = max(rss, r)
        t0 = time.perf_counter()
        dst = root / f"plain-w{i}"
        sh(["git", "worktree", "add", "-q", "--no-track", "-b", f"plain/w{i}", str(dst), "main"], repo)
        with tarfile.open(tar) as t:
            t.extractall(dst, filter="tar")
        gtimes.append((time.perf_counter() - t0) * 1000)
    for i in range(n):
        sh([*WTP, "rm", f"w{i}", "--force"], repo)
        sh(["git", "worktree", "remove", "--force", str(root / f"plain-w{i}")], repo)
        sh(["git", "branch", "-D", f"plain/w{i}"], repo)
    cfg.unlink()
    shutil.rmtree(repo / "node_modules")
    w, g = statistics.median(wtimes), statistics.median(gtimes)
    res.add(
        Row(
            "start",
            f"warm start (6000-file node_modules), {nfiles}",
            w,
            g,
            w / g,
            rss,
            "",
            None,
            "vs worktree add + install from a warm cache (tar extract)",
        )
    )


def part_check(res: Results, pool: TaskPool, nchanged: int, n: int = 3) -> None:
    pool.change(nchanged)
    repo, nfiles, ntasks, paths = pool.repo, pool.nfiles, len(pool.paths), pool.paths
    touched = [pool.touched(i, nchanged) for i in range(ntasks)]
    cache = repo / ".git" / "wtp" / "check-cache.json"

    def wtp_once() -> float:
        cache.unlink(missing_ok=True)  # cold: every merge simulation runs
        s, r, _ = run_rss([*WTP, "check", "--json", "--fail-on", "never"], repo)
        nonlocal rss
        rss = max(rss, r)
        return s * 1000

    rss = 0.0
    first = wtp_once()
    if first > 5000:
        n = 1  # the heaviest cases (seconds of git work) are measured once each side
    w = statistics.median([first] + [wtp_once() for _ in range(n - 1)])

    def git_once() -> None:
        snaps = []
        for p in paths:
            subprocess.run(
                ["git", "status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"],
                cwd=p,
                env=ENV,
                capture_output=True,
            )
            idx = Path(tempfile.mkdtemp()) / "index"
            shutil.copy(repo / ".git" / "worktrees" / p.name / "index", idx)
            e = {**ENV, "GIT_INDEX_FILE": str(idx)}
            subprocess.run(["git", "add", "-A"], cwd=p, env=e, capture_output=True)
            tree = subprocess.run(["git", "write-tree"], cwd=p, env=e, capture_output=True, text=True).stdout.strip()
            c = subprocess.run(
                ["git", "commit-tree", tree, "-p", "HEAD", "-m", "s"], cwd=p, env=ENV, capture_output=True, text=True
            ).stdout.strip()
            shutil.rmtree(idx.parent)
            subprocess.run(["git", "rev-parse", f"{c}^{{tree}}"], cwd=repo, env=ENV, capture_output=True)
            mb = subprocess.run(
                ["git", "merge-base", "main", c], cwd=repo, env=ENV, capture_output=True, text=True
            ).stdout.strip()
            subprocess.run(
                ["git", "diff", "--name-status", "-z", "--no-renames", mb, c], cwd=repo, env=ENV, capture_output=True
            )
            snaps.append(c)
        for i in range(len(snaps)):  # the pairs whose changed paths intersect
            for j in range(i + 1, len(snaps)):
                if j == i + 1 or touched[i] & touched[j]:
                    subprocess.run(
                        ["git", "merge-tree", "--write-tree", "--name-only", "-z", snaps[i], snaps[j]],
                        cwd=repo,
                        env=ENV,
                        capture_output=True,
                    )

    g = median_ms(git_once, n)
    case = f"check, {ntasks} tasks x {nchanged} paths, {nfiles}"
    target = "<= 1.2x git calls" if nfiles >= 20000 else ""
    res.add(Row("check", case, w, g, w / g, rss, target, (w / g <= 1.2) if target else None))


def part_land(res: Results, repo: Path, nfiles: int, ntasks: int, concurrent: bool) -> None:
    """``repo`` has a remote; each call lands its own ``ntasks`` tasks (one repository serves both modes)."""
    tag = "c" if concurrent else "s"
    (repo / ".wtp.toml").write_text(f"max_active = {2 * ntasks + 2}\n")
    root = repo.parent / f"{repo.name}.worktrees"
    for i in range(ntasks):
        p = Path(sh([*WTP, "start", f"l{tag}{i}"], repo).strip().splitlines()[-1])
        (p / f"land{tag}{i}.txt").write_text("x\n")
        sh(["git", "add", "-A"], p)
        sh(["git", "commit", "-q", "-m", f"l{tag}{i}"], p)
        q = root / f"plain{tag}{i}"
        sh(["git", "worktree", "add", "-q", "--no-track", "-b", f"plain/{tag}{i}", str(q), "origin/main"], repo)
        (q / f"plain{tag}{i}.txt").write_text("x\n")
        sh(["git", "add", "-A"], q)
        sh(["git", "commit", "-q", "-m", f"plain{tag}{i}"], q)
    hand = (
        "cd {q} && until git fetch -q origin main && git rebase -q origin/main && git push -q origin HEAD:main 2>/dev/null; "
        "do sleep 0.05; done && cd {repo} && git worktree remove {q} && git branch -q -D plain/{i}"
    )
    rss = 0.0

    def run_batch(cmds: list[list[str]], cwd: Path) -> float:
        nonlocal rss
        settle()
        t0 = time.perf_counter()
        if concurrent:
            procs = [
                subprocess.Popen(c, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for c in cmds
            ]
            for p in procs:
                _, status, usage = os.wait4(p.pid, 0)
                rss = max(rss, usage.ru_maxrss / 1024)
                if os.waitstatus_to_exitcode(status) != 0:
                    raise SystemExit(f"land failed: {p.args}")
        else:
            for c in cmds:
                _, r, code = run_rss(c, cwd)
                rss = max(rss, r)
                if code != 0:
                    raise SystemExit(f"land failed: {c}")
        return (time.perf_counter() - t0) * 1000

    wtp_batch = [[*WTP, "land", f"l{tag}{i}"] for i in range(ntasks)]
    hand_batch = [["sh", "-c", hand.format(q=root / f"plain{tag}{i}", repo=repo, i=f"{tag}{i}")] for i in range(ntasks)]
    if concurrent:  # one batch each, the hand loop first
        g = run_batch(hand_batch, repo)
        w = run_batch(wtp_batch, repo)
    else:  # one land each in turn, who goes first alternating: each rebases onto one new commit
        w = g = 0.0
        for i in range(ntasks):
            for k in ("wtp", "hand") if i % 2 == 0 else ("hand", "wtp"):
                if k == "wtp":
                    w += run_batch(wtp_batch[i : i + 1], repo)
                else:
                    g += run_batch(hand_batch[i : i + 1], repo)
    how = "at once" if concurrent else "one by one"
    if nfiles < 20000 and not concurrent:  # one land's own cost above the hand loop's git work
        fixed_cost_row(res, "land", f"land {ntasks} tasks {how}, {nfiles}, ms per task", w / ntasks, g / ntasks, rss)
        return
    res.add(
        Row(
            "land",
            f"land {ntasks} tasks {how}, {nfiles}",
            w / ntasks,
            g / ntasks,
            w / g,
            rss,
            "<= 1.2x hand loop" if nfiles >= 20000 else "",
            (w / g <= 1.2) if nfiles >= 20000 else None,
            "ms per task",
        )
    )
