"""A conductor's rebase that finds the task worktree's index locked by another git ('git
status' from 'wtp list', an editor) tries again instead of blocking the task (found by
scripts/bench_queue.py: detached lands while 'wtp list' polled blocked two tasks)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .conftest import Repo
from .test_queue import _first_parents_pass, _tasks


def test_a_rebase_that_finds_the_index_locked_tries_again(project: Repo) -> None:
    _tasks(project, 1)
    project.commit({"base.txt": "moved\n"}, "the base moved")  # so the land has to rebase
    project.git("push", "-q", "origin", "main")
    wt = Path(project.wtp("path", "t1").lines[-1])
    lock = Path(project.git("rev-parse", "--path-format=absolute", "--git-path", "index.lock", cwd=wt))
    lock.write_text("")  # another git holds the worktree's index
    proc = project.spawn("land", "t1", "--gate", "./check.sh", env={**os.environ, "WTP_TRACE": "1"})
    assert proc.stderr is not None
    rebases, said = [], []
    for line in proc.stderr:
        said.append(line)
        if line.startswith("wtp trace: git rebase "):
            rebases.append(re.search(r"-> (\d+)", line).group(1))  # type: ignore[union-attr]
            if lock.exists():
                lock.unlink()  # the other git is done
    proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(said)
    assert rebases[0] != "0" and rebases[-1] == "0", rebases  # refused while locked, then done
    assert _first_parents_pass(project)[:2] == ["t1 work", "the base moved"]
