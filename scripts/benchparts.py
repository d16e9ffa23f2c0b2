"""The benchmark's parts: each measures one command against plain git doing the same work
(scripts/bench.py runs them all; bench_check, bench_land and bench_warm one each)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    ENV,
    ROOT,
    WTP,
    Results,
    Row,
    fixed_cost_row,
    git_seq_ms,
    make_node_modules,
    median_ms,
    run_rss,
    settle,
    sh,
    timed,
)


def part_help(res: Results, repo: Path, n: int = 9) -> None:
    wtp_ms, rss = timed([*WTP, "--help"], repo, n)
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
    wtp_ms, rss = timed([*WTP, "list", "--json"], repo, n)
    git_ms = git_seq_ms([(["git", "status", "--porcelain=v2", "-z", "--untracked-files=all"], p) for p in paths], n)
    case = f"list, {ntasks} tasks, {nfiles} files"
    if nfiles >= 20000 and ntasks == 10:
        res.add(
            Row("cli", case, wtp_ms, git_ms, wtp_ms / git_ms, rss, "<= 1.3x git status each", wtp_ms / git_ms <= 1.3)
        )
    elif nfiles < 20000:
        fixed_cost_row(res, "cli", case, wtp_ms, git_ms, rss)
    else:
        res.add(Row("cli", case, wtp_ms, git_ms, wtp_ms / git_ms, rss))
    wtp_ms, rss = timed([*WTP, "path", "t0"], repo, n)
    git_ms = git_seq_ms([(["git", "worktree", "list", "--porcelain"], repo)], n)
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

    rss = 0.0

    def wtp_once() -> float:
        cache.unlink(missing_ok=True)  # cold: every merge simulation runs
        s, r, _ = run_rss([*WTP, "check", "--json", "--fail-on", "never"], repo)
        nonlocal rss
        rss = max(rss, r)
        return s * 1000

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
                    raise SystemExit(f"land failed: {p.args!r}")
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
