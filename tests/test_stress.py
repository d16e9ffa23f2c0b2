"""Stress (issue 6): many start, land, gate and rm processes at once against one repo,
while clones land through a loopback git daemon; then every invariant must hold.
Run alone with: python3 -m pytest -m stress"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import git, git_daemon, make_repo

WTP = f"{sys.executable} -m worktree_par"


def _script(i: int, finish: str) -> str:
    return (
        f"set -e; p=$({WTP} start s{i} --wait --timeout 120 --touch 'dir{i}/**'); cd \"$p\"; "
        f"mkdir dir{i}; echo {i} > dir{i}/f.txt; git add -A; git commit -qm 's{i}: work'; "
        + (
            f"{WTP} land s{i} --timeout 120"
            if finish == "land"
            else f'echo wip > dir{i}/wip.txt; cd /; {WTP} -C "$p" rm s{i} --force'
        )
    )


@pytest.mark.stress
def test_many_processes_at_once_keep_every_invariant(tmp_path: Path) -> None:
    r = make_repo(tmp_path, remote=True)
    r.write(".wtp.toml", "max_active = 4\n")
    with git_daemon(tmp_path) as base_url:
        url = f"{base_url}/origin.git"
        clones = []
        for i in range(3):
            c = tmp_path / f"clone{i}"
            git(tmp_path, "clone", "-q", url, str(c))
            clones.append(c)
        finishes = ["land", "land", "rm", "land", "land", "rm", "land", "land", "land", "rm"]
        procs = [
            subprocess.Popen(
                ["sh", "-c", _script(i, f)], cwd=r.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for i, f in enumerate(finishes)
        ]
        gates = [
            subprocess.Popen(
                [
                    "sh",
                    "-c",
                    f"{WTP} gate deploy:prod --timeout 120 -- sh -c 'echo in >> {tmp_path}/gate.log; sleep 0.1; echo out >> {tmp_path}/gate.log'",
                ],
                cwd=r.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        clone_procs = [
            subprocess.Popen(
                ["sh", "-c", _script(100 + i, "land")], cwd=c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for i, c in enumerate(clones)
        ]
        for p in procs + gates + clone_procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    # each landed commit is on the base exactly once, in linear history
    r.git("fetch", "-q", "origin")
    subjects = r.git("log", "--format=%s", "origin/main").splitlines()
    landed = [f"s{i}: work" for i, f in enumerate(finishes) if f == "land"] + [f"s{100 + i}: work" for i in range(3)]
    assert sorted(subjects) == sorted(landed + ["initial"])
    assert r.git("rev-list", "--merges", "origin/main") == ""
    # removed tasks' work is kept under their archive refs, uncommitted files included
    for i, f in enumerate(finishes):
        if f == "rm":
            assert r.git("show", f"refs/wtp/archive/s{i}:dir{i}/wip.txt") == "wip"
            assert r.git("show", f"refs/wtp/archive/s{i}:dir{i}/f.txt") == str(i)
    # registry agrees with git worktree list; nothing left held
    tasks = json.loads(r.wtp_proc("list", "--json", "--all").out)["tasks"]
    assert {t["state"] for t in tasks} <= {"landed", "abandoned"}
    assert len(r.git("worktree", "list").splitlines()) == 1
    assert r.wtp_proc("doctor").out == "healthy: nothing to fix\n"
    for d in (r.path / ".git" / "wtp" / "gates").glob("*"):
        assert json.loads((d / "tickets.json").read_text())["tickets"] == []
    # the gate never had two holders inside at once
    lines = (tmp_path / "gate.log").read_text().split()
    assert lines == ["in", "out"] * 6
