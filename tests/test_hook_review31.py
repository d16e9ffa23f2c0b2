"""The agent hook after review 31: the editor is the task whose worktree holds the hook's
``cwd`` (Claude Code names every file by absolute path), two tasks asking for one file at
once are not both allowed, a path with a line break is one claim, and deep JSON or an
over-long path is one short line.  All through the real 'wtp hook pre-edit'."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo
from .test_agents import decision, edit, hook

WHAT_TO_DO = "wait for it to land ('wtp list' shows it), pick another file, or coordinate with that task"


def _touched(repo: Repo) -> dict[str, list[str]]:
    """The paths recorded per task file (touched/<task>-<seq>), as the hook wrote them."""
    d = repo.path / ".git" / "wtp" / "touched"
    return {p.name.rsplit("-", 1)[0]: p.read_text().splitlines() for p in d.iterdir()} if d.is_dir() else {}


def _from(cwd: Path, path: Path | str, tool: str = "Edit") -> dict[str, object]:
    """The hook input of an agent working in ``cwd`` that names ``path`` (absolute or relative)."""
    return {**edit(Path(path), tool, cwd=cwd), "tool_input": {"file_path": str(path), "old_string": "a"}}


# --- 1. the editor is the task whose worktree holds cwd --------------------------------


@pytest.mark.parametrize("policy", ["deny", "ask", "warn"])
def test_a_tasks_edit_of_another_worktree_named_by_absolute_path_is_judged_as_the_relative_spelling(
    repo: Repo, policy: str
) -> None:
    repo.write(".wtp.toml", f'[hook]\non_collision = "{policy}"\n')
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    (a / "src/app.js").write_text("a's change\n")
    said = "may collide with it" if policy == "warn" else "should not edit it now"
    for target, tool in ((a / "new.txt", "Write"), (a / "src/app.js", "Edit")):
        absolute = hook(repo, _from(b, target, tool))
        relative = hook(repo, _from(b, os.path.relpath(target, b), tool))
        assert absolute == relative, target
        code, out, err = absolute
        assert (code, err) == (0, "")
        assert decision(out) == (
            policy,
            f"wtp: {target} is in the worktree of task 'a', so task 'b' {said}: {WHAT_TO_DO}",
        )
    main_file = repo.path / "README.md"
    absolute = hook(repo, _from(b, main_file))
    assert absolute == hook(repo, _from(b, os.path.relpath(main_file, b)))
    assert decision(absolute[1]) == (
        policy,
        f"wtp: {main_file} is outside the worktree of task 'b', so the edit would not be part of its work and "
        "no other task would see it: edit a file inside the worktree",
    )
    assert _touched(repo) == {}  # not a's claim (a did not edit), nor b's (not its file)
    # a's own agent may edit a's new file, and b's its own by absolute path: recorded for each
    assert hook(repo, _from(a, a / "new.txt", "Write")) == (0, "", "")
    assert hook(repo, _from(b, b / "src/util.js")) == (0, "", "")
    assert _touched(repo) == {"a": ["new.txt"], "b": ["src/util.js"]}


def test_without_a_tasks_cwd_the_editor_is_the_worktree_the_path_is_named_in(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    no_cwd = {k: v for k, v in _from(b, b / "new.txt", "Write").items() if k != "cwd"}
    assert hook(repo, no_cwd, cwd=a) == (0, "", "")  # the hook's own folder is not the agent's
    assert hook(repo, _from(repo.path, a / "mine.txt", "Write")) == (0, "", "")  # from the main worktree
    assert _touched(repo) == {"a": ["mine.txt"], "b": ["new.txt"]}
    # ... and b's file is then refused to a's agent, by either spelling
    for named in (b / "new.txt", "../b/new.txt"):
        assert decision(hook(repo, _from(a, named, "Write"))[1])[0] == "deny"


def test_a_cwd_spelled_through_another_worktree_and_dot_dot_is_where_it_leads(repo: Repo) -> None:
    """Review 31's nit: a cwd of '<a>/../b' (b's worktree, spelled through a's) made the agent
    a's, as the first worktree the walk entered."""
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    through_a = Path(f"{a}/../{b.name}")
    assert hook(repo, _from(through_a, b / "mine.txt", "Write")) == (0, "", "")
    assert _touched(repo) == {"b": ["mine.txt"]}  # b's agent wrote its own file
    assert decision(hook(repo, _from(through_a, a / "theirs.txt", "Write"))[1])[0] == "deny"


# --- 2. two tasks asking for one file at once -------------------------------------------


def test_tasks_asking_for_the_same_file_at_the_same_moment_are_not_all_allowed(repo: Repo) -> None:
    repo.write(".wtp.toml", "max_active = 5\n")
    trees = [Path(repo.wtp("start", name).lines[-1]) for name in ("a", "b", "c", "d")]
    for n in range(6):
        name = f"race-{n}.txt"
        # every hook started first, then all given their input at once: they ask together
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "worktree_par", "hook", "pre-edit"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=wt,
            )
            for wt in trees
        ]
        for wt, p in zip(trees, procs, strict=True):
            assert p.stdin is not None
            p.stdin.write(json.dumps(_from(wt, wt / name, "Write")))
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        answers = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        allowed = [wt.name for wt, ans in zip(trees, answers, strict=True) if ans == (0, "", "")]
        assert len(allowed) == 1, answers
        refused = [decision(out) for code, out, err in answers if out]
        assert len(refused) == 3 and all(v == "deny" for v, _ in refused), answers
        assert all(f"{name} was already edited by task '{allowed[0]}'" in why for _, why in refused), answers
        assert [t for t, paths in _touched(repo).items() if name in paths] == [allowed[0]]


def test_a_hook_that_cannot_have_the_record_lock_answers_in_one_line_and_records_nothing(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    lock = repo.path / ".git" / "wtp" / "touched.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held, as by a hook stopped with the lock in hand
        code, out, err = hook(repo, _from(a, a / "new.txt", "Write"))
    finally:
        os.close(fd)
    assert (code, out) == (1, "")
    assert err == (
        f"wtp hook pre-edit: timed out after 1s waiting for the record of the agents' edits ({lock}); "
        "the edit goes ahead unchecked\n"
    )
    assert _touched(repo) == {}
    assert hook(repo, _from(a, a / "new.txt", "Write")) == (0, "", "")  # the lock let go: recorded
    assert _touched(repo) == {"a": ["new.txt"]}


# --- 3. a path with a line break is one claim -------------------------------------------


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n"])
def test_a_path_with_a_line_break_is_recorded_as_one_claim_not_two(repo: Repo, brk: str) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    assert hook(repo, _from(a, a / f"nl{brk}README.md", "Write")) == (0, "", "")
    # a claimed neither README.md nor a file 'nl': admission and the hook see no such claim
    out = repo.wtp_proc("start", "c", "--touch", "README.md", "--touch", "nl")
    assert out.code == 0, out.err
    c = Path(out.lines[-1])
    assert hook(repo, _from(c, c / "README.md")) == (0, "", "")
    assert hook(repo, _from(c, c / "nl", "Write")) == (0, "", "")
    # ... and b is refused the file a did claim
    verdict, reason = decision(hook(repo, _from(b, b / f"nl{brk}README.md", "Write"))[1])
    assert verdict == "deny" and reason.startswith(f"wtp: nl{brk}README.md was already edited by task 'a'"), reason


# --- 4. hostile input is one short line --------------------------------------------------


LONG = "a/" * 3000 + "x"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("[" * 100_000 + "]" * 100_000, "stdin is nested too deeply to be Claude Code's PreToolUse JSON"),
        (None, f"the path is too long for this system ({len(LONG)} characters)"),
    ],
)
def test_deeply_nested_json_and_an_over_long_path_are_one_short_line(repo: Repo, raw: str | None, why: str) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    raw = raw or json.dumps(_from(a, LONG, "Write"))
    assert hook(repo, raw) == (1, "", f"wtp hook pre-edit: {why}; the edit goes ahead unchecked\n")
