"""Agents (issue 18): the pre-edit hook in Claude Code's PreToolUse protocol, the recorded
paths admission and check see, the installers, the git pre-commit hook, AGENTS.md, and the
MCP server driven by the official SDK's own stdio client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Repo, wait_for


def hook(repo: Repo, data: object, cwd: Path | None = None) -> tuple[int, str, str]:
    raw = data if isinstance(data, str) else json.dumps(data)
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", "hook", "pre-edit"],
        input=raw,
        capture_output=True,
        text=True,
        cwd=cwd or repo.path,
        timeout=30,  # a hook that waited for a lock would fail the test, not hang it
    )
    return res.returncode, res.stdout, res.stderr


def edit(path: Path, tool: str = "Edit", cwd: Path | None = None) -> dict[str, object]:
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    return {
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "cwd": str(cwd or path.parent),
        "tool_name": tool,
        "tool_input": {key: str(path), "old_string": "a", "new_string": "b"},
    }


def decision(out: str) -> tuple[str, str]:
    d = json.loads(out)["hookSpecificOutput"]
    assert d["hookEventName"] == "PreToolUse"
    return d.get("permissionDecision", "warn"), d.get("permissionDecisionReason") or d["additionalContext"]


def test_an_edit_another_task_declared_changed_or_edited_is_denied_naming_it(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a", "--touch", "src/app.js").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    # declared by a
    code, out, err = hook(repo, edit(b / "src/app.js"))
    assert (code, err) == (0, "")
    verdict, reason = decision(out)
    assert verdict == "deny"
    assert reason.startswith("wtp: src/app.js is declared by task 'a' (--touch src/app.js), so task 'b' should not")
    assert "wait for it to land" in reason and "pick another file" in reason
    # the owner itself may edit its own file; nobody's file: allowed, silently, and recorded for the task
    assert hook(repo, edit(a / "src/app.js")) == (0, "", "")
    for tool in ("Write", "MultiEdit"):
        assert hook(repo, edit(a / f"src/new/{tool}.js", tool)) == (0, "", "")
    # ... so the other task is refused it before anything was written
    verdict, reason = decision(hook(repo, edit(b / "src/new/Write.js", "Write"))[1])
    assert verdict == "deny" and "src/new/Write.js was already edited by task 'a' (through the agent hook)" in reason
    # changed by a, uncommitted then committed (relative paths are taken from the hook's cwd)
    (a / "src/util.js").write_text("changed\n")
    nb = {**edit(b / "x", "NotebookEdit", cwd=b), "tool_input": {"notebook_path": "src/util.js"}}
    verdict, reason = decision(hook(repo, nb)[1])
    assert "src/util.js was changed by task 'a' (uncommitted)" in reason
    repo.git("add", "-A", cwd=a)
    repo.git("commit", "-qm", "util", cwd=a)
    assert "src/util.js was changed by task 'a' (committed)" in decision(hook(repo, nb)[1])[1]
    (a / "fresh.txt").write_text("new\n")
    assert "(untracked)" in decision(hook(repo, edit(b / "fresh.txt", "Write"))[1])[1]
    # the main worktree is refused a task's file, and allowed (silently) anything else
    assert decision(hook(repo, edit(repo.path / "src/app.js"))[1])[0] == "deny"
    assert hook(repo, edit(repo.path / "README.md")) == (0, "", "")


def test_other_tools_outside_paths_and_malformed_input(repo: Repo, tmp_path: Path) -> None:
    repo.wtp("start", "a", "--touch", "src/**")
    assert hook(repo, {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}}) == (0, "", "")
    assert hook(repo, {"tool_name": "Read", "tool_input": {"file_path": str(repo.path / "src/app.js")}}) == (0, "", "")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert hook(repo, edit(outside / "f.txt", "Write")) == (0, "", "")
    assert hook(repo, edit(repo.path / ".git/config")) == (0, "", "")  # git's own files
    for bad, why in (
        ("not json", "stdin is not JSON (Expecting value at line 1 column 1)"),
        ("[]", "stdin must be a JSON object"),
        ({"tool_input": {}}, "the input has no 'tool_name' string"),
        ({"tool_name": "Edit", "tool_input": {}}, "Edit input has no 'file_path' string"),
        ({"tool_name": "NotebookEdit", "tool_input": "x"}, "NotebookEdit input has no 'notebook_path' string"),
    ):
        code, out, err = hook(repo, bad)
        assert (code, out) == (1, ""), bad
        assert err.count("\n") == 1 and why in err and "Traceback" not in err, err


@pytest.mark.parametrize("policy", ["ask", "warn"])
def test_on_collision_ask_or_warn(repo: Repo, policy: str) -> None:
    repo.write(".wtp.toml", f'[hook]\non_collision = "{policy}"\n')
    repo.wtp("start", "a", "--touch", "src/app.js")
    b = Path(repo.wtp("start", "b").lines[-1])
    verdict, reason = decision(hook(repo, edit(b / "src/app.js"))[1])
    assert verdict == policy and "declared by task 'a'" in reason
    if policy == "warn":  # allowed: recorded for b
        assert (repo.path / ".git/wtp/touched").is_dir()
        assert "src/app.js" in "".join(p.read_text() for p in (repo.path / ".git/wtp/touched").iterdir())
    repo.write(".wtp.toml", '[hook]\non_collision = "maybe"\n')
    code, out, err = hook(repo, edit(b / "src/app.js"))
    assert (code, out) == (1, "") and "'hook.on_collision' must be one of deny, ask, warn" in err


def test_admission_and_check_see_recorded_paths_and_they_go_with_the_task(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    assert hook(repo, edit(a / "src/app.js")) == (0, "", "")
    c = repo.wtp("start", "c", "--touch", "src/app.js")
    assert c.code == 4 and "path src/app.js with task 'a'" in c.err
    report = repo.wtp("check", "--json").json()
    assert {"tasks": ["a", "c"], "kind": "declared"}.items() <= report["collisions"][0].items()
    # an edit through the hook is a declaration: not reported as undeclared
    repo.wtp("start", "a", "--touch", "README.md")
    (a / "src/app.js").write_text("x\n")
    kinds = {x["kind"] for x in repo.wtp("check", "a", "--json").json()["collisions"]}
    assert "undeclared" not in kinds
    (a / "src/app.js").write_text(repo.git("show", "HEAD:src/app.js", cwd=a) + "\n")
    repo.git("checkout", "--", "src/app.js", cwd=a)
    assert repo.wtp("rm", "a").code == 0
    assert not any((repo.path / ".git/wtp/touched").iterdir())
    assert repo.wtp("next").code == 0 and repo.wtp("path", "c").code == 0  # c is admitted now


def test_install_claude_merges_keeps_other_settings_is_idempotent_and_uninstalls_exactly(repo: Repo) -> None:
    settings = repo.path / ".claude" / "settings.json"
    settings.parent.mkdir()
    original: dict[str, Any] = {
        "model": "opus",
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]}]},
    }
    settings.write_text(json.dumps(original, indent=2))
    out = repo.wtp("hook", "install", "claude")
    assert out.code == 0 and out.lines[0].startswith("added the PreToolUse hook 'wtp hook pre-edit'")
    data = json.loads(settings.read_text())
    assert data["model"] == "opus" and data["permissions"] == original["permissions"]
    groups = data["hooks"]["PreToolUse"]
    assert groups[0] == original["hooks"]["PreToolUse"][0]
    assert groups[1]["matcher"] == "Edit|MultiEdit|Write|NotebookEdit"
    assert groups[1]["hooks"][0]["command"].endswith("hook pre-edit")
    before = settings.read_bytes()
    again = repo.wtp("hook", "install", "claude")
    assert again.code == 0 and "already" in again.out and settings.read_bytes() == before
    # a new task worktree gets the hook (the settings are not committed), ignored by git and by the guard
    p = Path(repo.wtp("start", "a").lines[-1])
    local = json.loads((p / ".claude" / "settings.local.json").read_text())
    assert local["hooks"]["PreToolUse"][0]["matcher"] == "Edit|MultiEdit|Write|NotebookEdit"
    assert repo.git("status", "--porcelain", cwd=p) == ""
    assert repo.wtp("rm", "a").code == 0  # not counted as the user's ignored files
    removed = repo.wtp("hook", "uninstall", "claude")
    assert removed.code == 0 and json.loads(settings.read_text()) == original
    assert repo.wtp("hook", "uninstall", "claude").out.startswith("no wtp hook in")
    assert repo.wtp("hook", "install", "cursor").code == 2


def test_install_claude_from_nothing_and_uninstall_leaves_nothing(repo: Repo) -> None:
    assert repo.wtp("hook", "install", "claude").code == 0
    repo.wtp("hook", "uninstall", "claude")
    assert not (repo.path / ".claude").exists()  # nothing of it is left, the folder it made included


def test_git_pre_commit_hook_refuses_a_colliding_commit_and_chains_the_existing_one(repo: Repo) -> None:
    hooks = repo.path / ".git" / "hooks"
    mine = hooks / "pre-commit"
    mine.write_text("#!/bin/sh\necho 'own hook ran' >&2\n")
    mine.chmod(0o755)
    out = repo.wtp("hook", "install", "git")
    assert out.code == 0 and "the existing pre-commit hook now runs first" in out.out
    assert repo.wtp("hook", "install", "git").out.startswith("the wtp pre-commit hook is already in")
    a = Path(repo.wtp("start", "a", "--touch", "src/app.js").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    (b / "src/app.js").write_text("b's\n")
    (b / "notes.txt").write_text("b\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["git", "commit", "-qam", "b"], cwd=b, capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert "own hook ran" in res.stderr
    assert "this commit of task 'b' touches paths another task claims" in res.stderr
    assert "src/app.js is declared by task 'a' (--touch src/app.js)" in res.stderr
    assert "--no-verify" in res.stderr
    subprocess.run(["git", "add", "notes.txt"], cwd=b, check=True)
    subprocess.run(["git", "reset", "-q", "src/app.js"], cwd=b, check=True)
    ok = subprocess.run(["git", "commit", "-qm", "notes"], cwd=b, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr  # a commit of nobody's path goes through
    forced = subprocess.run(["git", "commit", "-qam", "b", "--no-verify"], cwd=b, capture_output=True, text=True)
    assert forced.returncode == 0
    (a / "src/app.js").write_text("a's\n")
    own = subprocess.run(["git", "commit", "-qam", "a"], cwd=a, capture_output=True, text=True, env=env)
    assert own.returncode == 1 and "src/app.js was changed by task 'b' (committed)" in own.stderr
    assert repo.wtp("hook", "uninstall", "git").code == 0
    assert mine.read_text() == "#!/bin/sh\necho 'own hook ran' >&2\n"


def test_git_hook_honours_core_hookspath(repo: Repo, tmp_path: Path) -> None:
    shared = tmp_path / "shared-hooks"
    repo.git("config", "core.hooksPath", str(shared))
    out = repo.wtp("hook", "install", "git")
    assert out.code == 0
    assert "installed by wtp" in (shared / "pre-commit").read_text()
    # review 10: a folder other repositories may share is said to be one
    assert out.lines == [
        f"installed the pre-commit hook {shared / 'pre-commit'}",
        f"note: {shared} is outside this repository (core.hooksPath): every repository that uses that folder runs "
        "this hook too ('wtp hook uninstall git' removes it)",
    ]
    inside = repo.wtp("hook", "install", "git")  # already there: nothing more to say of it
    assert inside.code == 0


def test_init_agents_writes_the_section_between_markers_and_keeps_the_rest(repo: Repo) -> None:
    (repo.path / "CLAUDE.md").write_text("# Project rules\n\nUse tabs.\n")
    out = repo.wtp("init", "--agents")
    assert out.code == 0
    for name in ("AGENTS.md", "CLAUDE.md"):
        text = (repo.path / name).read_text()
        assert "<!-- wtp:begin" in text and "<!-- wtp:end -->" in text and "wtp land --detach" in text
    assert (repo.path / "CLAUDE.md").read_text().startswith("# Project rules\n\nUse tabs.\n")
    before = {n: (repo.path / n).read_text() for n in ("AGENTS.md", "CLAUDE.md")}
    again = repo.wtp("init", "--agents")
    assert again.code == 0 and "kept the existing" in again.out and "up to date" in again.out
    assert before == {n: (repo.path / n).read_text() for n in ("AGENTS.md", "CLAUDE.md")}


def test_mcp_server_lists_tools_and_answers_through_the_official_client(repo: Repo) -> None:
    pytest.importorskip("mcp")
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.types import CallToolResult, TextContent

    def text(result: CallToolResult) -> str:
        block = result.content[0]
        assert isinstance(block, TextContent), block
        return block.text

    repo.wtp("start", "a", "--touch", "src/**")
    cli = repo.wtp("list", "--json").json()

    errlog = repo.path.parent / "mcp-stderr.log"

    async def session() -> tuple[list[str], list[CallToolResult]]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "worktree_par", "-C", str(repo.path), "mcp"], cwd=str(repo.path)
        )
        with errlog.open("w") as log:
            async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                tools = sorted(t.name for t in (await s.list_tools()).tools)
                listed = await s.call_tool("list", {})
                bad = await s.call_tool("start", {"task": "bad/name"})
                started = await s.call_tool("start", {"task": "b", "touch": ["src/app.js"]})
                removed = await s.call_tool("rm", {"task": "b"})
                again = await s.call_tool("rm", {"task": "b"})
                repo.write(".wtp.toml", '[land]\ngate = "make test"\n')
                ungated = await s.call_tool("land", {"task": "a", "gate": "true", "detach": False})
                repo.wtp("trust")
                repo.write(".wtp.toml", "max_active = 3\n")  # the trusted gate taken out (review 11)
                removed_gate = await s.call_tool("land", {"task": "a", "gate": "true", "detach": False})
                repo.write(".wtp.toml", '[land]\ngate = "true"\n')  # changed, not trusted (review 12)
                changed_gate = await s.call_tool("land", {"task": "a", "gate": "true", "detach": False})
                repo.write(".wtp.toml", "[land]\nrequire_gate = true\n")  # review 13: a gate asked for, none set
                repo.wtp("trust")
                required = await s.call_tool("land", {"task": "a", "gate": "true", "detach": False})
                return tools, [listed, bad, started, removed, again, ungated, removed_gate, changed_gate, required]

    tools, (listed, bad, started, removed, again, ungated, removed_gate, changed_gate, required) = anyio.run(session)
    assert required.is_error and text(required) == (
        "Error executing tool land: [land] require_gate is true and the project sets no gate: a person sets [land] gate"
    )
    assert removed_gate.is_error and "the project's [land] gate is 'make test'" in text(removed_gate)
    assert changed_gate.is_error and "the project's [land] gate is 'true': an agent cannot" in text(changed_gate)
    # review 10: an agent could land past the team's gate with gate="true"
    assert ungated.is_error and text(ungated) == (
        "Error executing tool land: the project's [land] gate is 'make test': an agent cannot land with another "
        "gate, nor with one the user has not trusted (a person can, with 'wtp land --gate'); leave gate out"
    )
    assert {"start", "list", "check", "land", "path", "gate_status", "queue", "next", "rm"} <= set(tools)
    assert "INFO" not in errlog.read_text()  # issue 29: no SDK request logging on the agent's stderr
    assert not removed.is_error and json.loads(text(removed))["removed"] is True
    # review 10: an rm that had nothing to remove said "removed": true
    assert not again.is_error and json.loads(text(again)) == {
        "task": "b",
        "removed": False,
        "messages": ["task 'b' is already removed"],
    }
    assert not listed.is_error
    data = json.loads(text(listed))
    assert data == cli
    assert bad.is_error
    assert "invalid task name" in text(bad) or "bad/name" in text(bad)
    got = json.loads(text(started))
    assert got["name"] == "b" and got["state"] == "queued"  # collides with a's src/**


def test_mcp_without_the_sdk_says_how_to_install_it(repo: Repo, tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "mcp.py").write_text("raise ModuleNotFoundError('No module named mcp', name='mcp')\n")
    res = subprocess.run(
        [sys.executable, "-m", "worktree_par", "mcp"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(blocker)},
    )
    assert res.returncode == 2
    assert res.stderr == "wtp: 'wtp mcp' needs the MCP SDK, an optional extra: pip install 'worktree-par[mcp]'\n"


def test_the_hook_answers_while_another_process_holds_the_state_lock(repo: Repo) -> None:
    """It runs on every edit: reads never wait for the state lock."""
    import time

    from worktree_par.state import Store

    a = Path(repo.wtp("start", "a", "--touch", "src/app.js").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    with Store(repo.path / ".git").lock():
        t0 = time.monotonic()
        code, out, _ = hook(repo, edit(b / "src/app.js"))
        assert decision(out)[0] == "deny"
        assert hook(repo, edit(a / "src/new.js", "Write")) == (0, "", "")  # recorded without the lock
        assert time.monotonic() - t0 < 10


def test_the_hook_never_writes_another_tasks_index(repo: Repo) -> None:
    """Asking whether another task changed a file reads that task's worktree: git status
    would write its index back (refreshing a file whose times changed) and take its
    index.lock, racing the commit its agent may be making.  The hook's status takes no
    optional lock, so the other task's index stays byte for byte as it was."""
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    index_b = Path(repo.git("rev-parse", "--path-format=absolute", "--git-dir", cwd=b)) / "index"
    before = index_b.read_bytes()
    st = (b / "src" / "util.js").stat()
    os.utime(b / "src" / "util.js", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # times only
    assert hook(repo, edit(a / "src" / "util.js")) == (0, "", "")  # b's file is unchanged: allowed
    assert index_b.read_bytes() == before
    # plain 'git status' there would have refreshed the entry: the index was worth writing
    repo.git("status", "--porcelain", "--", "src/util.js", cwd=b)
    assert index_b.read_bytes() != before


def test_an_edit_or_a_commit_in_a_task_being_landed_is_refused_while_its_land_runs(
    project: Repo, tmp_path: Path
) -> None:
    """The gate runs in the task's worktree: a file an agent writes there meanwhile is seen by
    the gate but never published, and an edit to a file of the branch, or a commit, stops
    the land.  The hooks say so before the change, not after."""
    r = project
    p = Path(r.wtp("start", "t1").lines[-1])
    r.commit({"t1.txt": "1\n"}, "t1 work", cwd=p)
    assert r.wtp("hook", "install", "git").code == 0
    started, release = tmp_path / "started", tmp_path / "release"
    lander = r.spawn(
        "land", "t1", "--gate", f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done; ./check.sh"
    )
    try:
        wait_for(started.exists, "the gate to start")
        why = (
            "wtp: task 't1' is being landed, so an edit made in its worktree now is not part of what lands: its gate "
            "would see a new file that the base never gets, and a changed file of its branch stops the land; "
            "wait until the land ends ('wtp list' shows it), then land again what is new"
        )
        for tool, rel in (("Write", "helper.py"), ("Edit", "t1.txt")):
            code, out, err = hook(r, edit(p / rel, tool))
            assert (code, err) == (0, "")
            assert decision(out) == ("deny", why)
        (r.path / ".wtp.toml").write_text('max_active = 5\n[hook]\non_collision = "warn"\n')
        assert decision(hook(r, edit(p / "helper.py", "Write"))[1]) == (
            "warn",
            why.replace("is not part", "may not be part"),
        )
        (p / "t1.txt").write_text("2\n")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        res = subprocess.run(["git", "commit", "-qam", "more"], cwd=p, capture_output=True, text=True, env=env)
        assert res.returncode == 1
        assert res.stderr == (
            "wtp: task 't1' is being landed, so a commit on its branch now moves the branch under the land (under a "
            "running gate, that stops the land); wait until the land ends ('wtp list' shows it), then land again "
            "what is new; 'git commit --no-verify' commits anyway\n"
        )
        r.git("checkout", "-q", "t1.txt", cwd=p)  # the edit undone: the land goes on
    finally:
        release.touch()
        lander.communicate(timeout=60)
    assert lander.returncode == 0
    other = Path(r.wtp("start", "t2").lines[-1])
    assert hook(r, edit(other / "helper.py", "Write")) == (0, "", "")  # the land ended: edits are the task's again


def test_a_task_whose_land_died_is_the_agents_to_edit_again(project: Repo, tmp_path: Path) -> None:
    """Review 6: after its land was killed the hooks still said to wait for the land to end,
    which it never would: the agent was stuck."""
    r = project
    p = Path(r.wtp("start", "t1").lines[-1])
    r.commit({"t1.txt": "1\n"}, "t1 work", cwd=p)
    started = tmp_path / "started"
    lander = r.spawn("land", "t1", "--gate", f"touch {started}; sleep 60")
    wait_for(started.exists, "the gate to start")
    assert decision(hook(r, edit(p / "helper.py", "Write"))[1])[0] == "deny"  # while it runs
    lander.kill()  # the command, and with it the land it forked
    lander.wait()

    def problem() -> object:
        return r.wtp("list", "--json").json()["tasks"][0]["problem"]

    wait_for(lambda: str(problem()).startswith("interrupted while landing"), "the land to be seen dead")
    assert hook(r, edit(p / "helper.py", "Write")) == (0, "", "")


def test_an_edited_path_with_brackets_is_matched_as_written_without_a_warning(repo: Repo) -> None:
    """Review 6: a route file such as 'app/[slug]/page.tsx' edited through the hook made every
    later comparison print Python's FutureWarning (a '[' inside a regex set)."""
    a = Path(repo.wtp("start", "a").lines[-1])
    assert hook(repo, edit(a / "app/[slug]/page.tsx", "Write")) == (0, "", "")
    out = repo.wtp_proc("start", "b", "--touch", "app/**")
    assert (out.code, out.err) == (
        4,
        "task 'b' is queued (place 1): waits because path app/** ~ app/[[]slug]/page.tsx with task 'a'\n",
    )


def test_git_hook_install_refuses_a_relative_core_hookspath(repo: Repo) -> None:
    """Review 9: with husky's relative core.hooksPath the install rewrote the tracked
    .husky/pre-commit in the user's checkout alone, and no task's worktree ran it."""
    repo.commit({".husky/pre-commit": "#!/bin/sh\nnpm test\n"}, "husky")
    repo.git("config", "core.hooksPath", ".husky")
    out = repo.wtp("hook", "install", "git")
    assert (out.code, out.err.strip()) == (
        1,
        "wtp: core.hooksPath is '.husky', relative: git runs each worktree's own copy of its pre-commit, a file "
        "the repository tracks, so wtp does not install into it; add the line 'if command -v wtp >/dev/null; then "
        "wtp hook pre-commit || exit 1; fi' to .husky/pre-commit and commit it (every task's worktree then runs "
        "it), or set core.hooksPath to an absolute folder",
    )
    assert repo.git("status", "--porcelain") == ""
