"""WTP_TRACE also shows the git calls started side by side (gitops.spawn): 'wtp list' asks
about each task with four at once, and each prints the same line a 'gitops.run' call does,
when it ends."""

from __future__ import annotations

from pathlib import Path

from .conftest import Repo


def test_wtp_trace_prints_each_git_call_run_side_by_side(repo: Repo) -> None:
    wt = Path(repo.wtp("start", "a").lines[-1])
    out = repo.wtp_proc("list", env={"WTP_TRACE": "1"})
    assert out.code == 0, out.err
    traced = [line for line in out.err.splitlines() if line.startswith("wtp trace: git ")]
    spawned = {
        "rev-list --left-right --count refs/heads/main...refs/heads/wtp/a --": repo.path,
        "diff --name-only -z --no-renames refs/heads/main...refs/heads/wtp/a --": repo.path,
        "log -1 --format=%ct%x00%s refs/heads/wtp/a --": repo.path,
        "--no-optional-locks status --porcelain=v2 -z": wt,
    }
    for args, where in spawned.items():
        hits = [line for line in traced if line.startswith(f"wtp trace: git {args}")]
        assert len(hits) == 1, (args, traced)
        assert f"  [in {where}] -> 0 (" in hits[0] and hits[0].endswith(" ms)"), hits[0]
