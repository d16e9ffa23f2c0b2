"""Random faults (issue 14): start, land (every strategy), rm --force and check are
SIGKILLed at random moments; afterwards one invariant must hold: every commit and every
uncommitted or untracked file that existed before is still reachable from a ref or on
disk (or in an archive), and 'wtp doctor --fix' brings the repository back to healthy.
Bounded in rounds and time; seeded, so a failure can be replayed (WTP_FAULT_SEED)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Repo, make_repo

ROUNDS = 24


def _reachable(r: Repo, sha: str) -> bool:
    refs = subprocess.run(["git", "for-each-ref", "--contains", sha], cwd=r.path, capture_output=True, text=True)
    return bool(refs.stdout.strip())


def _on_base(r: Repo, path: str, text: str) -> bool:
    shown = subprocess.run(["git", "show", f"origin/main:{path}"], cwd=r.path, capture_output=True, text=True)
    return shown.returncode == 0 and shown.stdout == text


def _archived_blobs(r: Repo) -> set[str]:
    out = r.git("for-each-ref", "--format=%(objectname)", "refs/wtp/")
    blobs: set[str] = set()
    for tip in out.split():
        listing = r.git("ls-tree", "-r", tip)
        blobs.update(line.split()[2] for line in listing.splitlines())
    return blobs


def _blob(r: Repo, text: str) -> str:
    return subprocess.run(
        ["git", "hash-object", "--stdin"], cwd=r.path, input=text, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.stress
def test_random_kills_lose_nothing_and_doctor_heals(tmp_path: Path) -> None:
    seed = int(os.environ.get("WTP_FAULT_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    r = make_repo(tmp_path, remote=True)
    r.write(".wtp.toml", "max_active = 4\n")
    commits: dict[str, tuple[str, str]] = {}  # commit -> the file it added and its text
    files: dict[Path, tuple[str, str]] = {}  # uncommitted work: where it is -> (its path in the task, content)
    n = 0
    deadline = time.monotonic() + 150
    for round_no in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        live = [t["name"] for t in r.wtp("list", "--json").json()["tasks"] if t["state"] in ("active", "blocked")]
        op = rng.choice(["start", "land", "land", "rm", "check"] if live else ["start"])
        if op == "start" or not live:
            n += 1
            args = ["start", f"t{n}"]
        else:
            name = rng.choice(live)
            p = Path(r.wtp("path", name).out.strip())
            # give the task something to lose: a commit, and for rm some uncommitted work
            path, text = f"{name}-{round_no}.txt", f"{name} {round_no} {seed}\n"
            commits[r.commit({path: text}, f"{name} round {round_no}", cwd=p)] = (path, text)
            if op == "rm":
                text = f"uncommitted {name} {round_no} {seed}\n"
                f = r.write(f"wip-{round_no}.txt", text, cwd=p)
                files[f] = (f"wip-{round_no}.txt", text)  # a later commit in the task may take it along
                args = ["rm", name, "--force"]
            elif op == "land":
                args = ["land", name, "--strategy", rng.choice(["rebase", "squash", "merge"])]
            else:
                args = ["check"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "worktree_par", *args],
            cwd=r.path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.0, 0.35))
        proc.kill()  # SIGKILL, by pid: only the wtp process we started
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, (seed, args, err)
        time.sleep(0.1)  # git children of the killed process finish their own step
        for _ in range(3):
            fix = r.wtp_proc("doctor", "--fix")
            assert "Traceback" not in fix.err, (seed, args, fix.err)
            if r.wtp_proc("doctor").code == 0:
                break
        healthy = r.wtp_proc("doctor")
        assert healthy.code == 0, (seed, round_no, args, healthy.out)
        r.git("fetch", "-q", "origin")
        # A landed commit may have been rebased or squashed: then its change is on the base.
        lost = [c for c, (path, text) in commits.items() if not _reachable(r, c) and not _on_base(r, path, text)]
        assert lost == [], (seed, round_no, args, lost)
        archived = _archived_blobs(r)
        gone = [
            str(f)
            for f, (rel, text) in files.items()
            if not (f.is_file() and f.read_text() == text)
            and _blob(r, text) not in archived
            and not _on_base(r, rel, text)
        ]
        assert gone == [], (seed, round_no, args, gone)
