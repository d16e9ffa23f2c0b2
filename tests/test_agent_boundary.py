"""The agent boundary (issue 24, D and the Claude-settings item of C): the pre-edit hook
judges the file that will be written (symlinks resolved), 'hook install claude' through a
symlinked settings file, the Claude settings parsed defensively (and 'wtp start' never
failing because of them), and the MCP server answering while a land waits in the queue."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import Repo, wait_for
from .test_agents import decision, edit, hook


def _touched(repo: Repo) -> str:
    d = repo.path / ".git" / "wtp" / "touched"
    return "".join(p.read_text() for p in d.iterdir()) if d.is_dir() else ""


# --- 1. the pre-edit hook judges the file that will be written --------------------------


def test_a_tracked_symlink_is_judged_as_the_file_it_points_to(repo: Repo, tmp_path: Path) -> None:
    os.symlink("src/app.js", repo.path / "app-link.js")
    os.symlink("src", repo.path / "code")
    repo.git("add", "app-link.js", "code")
    repo.git("commit", "-qm", "links")
    repo.wtp("start", "a", "--touch", "src/app.js")
    b = Path(repo.wtp("start", "b").lines[-1])
    for named in (b / "app-link.js", b / "code" / "app.js"):
        code, out, err = hook(repo, edit(named))
        assert (code, err) == (0, "")
        verdict, reason = decision(out)
        assert verdict == "deny", named
        assert reason.startswith("wtp: src/app.js is declared by task 'a' (--touch src/app.js), so task 'b'"), reason
    # a worktree reached through a link is still the worktree the agent works in
    os.symlink(b, tmp_path / "current")
    verdict, reason = decision(hook(repo, edit(tmp_path / "current" / "code" / "app.js"))[1])
    assert verdict == "deny" and "src/app.js is declared by task 'a'" in reason and "so task 'b'" in reason
    # a relative cwd is taken from the hook's own working folder
    rel = {**edit(b / "code" / "app.js"), "cwd": "code", "tool_input": {"file_path": "app.js"}}
    assert decision(hook(repo, rel, cwd=b)[1])[0] == "deny"
    # b's own file through a link: allowed, and recorded under the name of the file written
    assert hook(repo, edit(b / "code" / "util.js")) == (0, "", "")
    assert _touched(repo) == "src/util.js\n"


@pytest.mark.parametrize("policy", ["deny", "ask", "warn"])
def test_a_folder_symlink_into_another_tasks_worktree_is_an_edit_of_that_tasks_file(repo: Repo, policy: str) -> None:
    repo.write(".wtp.toml", f'[hook]\non_collision = "{policy}"\n')
    a = Path(repo.wtp("start", "a").lines[-1])
    b = Path(repo.wtp("start", "b").lines[-1])
    os.symlink(a / "src", b / "peek")  # untracked, absolute: a's files seen from b
    os.symlink(a / "src" / "util.js", repo.path / "util-of-a.js")  # ... and from the main worktree
    for named, who in ((b / "peek" / "app.js", "task 'b'"), (repo.path / "util-of-a.js", "the main worktree")):
        code, out, err = hook(repo, edit(named, "Write"))
        assert (code, err) == (0, "")
        verdict, reason = decision(out)
        assert verdict == policy
        rel = "src/app.js" if who == "task 'b'" else "src/util.js"
        said = "may collide with it" if policy == "warn" else "should not edit it now"
        assert reason.startswith(f"wtp: {named} resolves to {a / rel}, in the worktree of task 'a', so {who} {said}: ")
    assert _touched(repo) == ""  # nothing recorded for a (it did not edit) nor for b (not its file)


def test_a_symlink_out_of_a_tasks_worktree_is_refused_and_the_main_worktrees_is_not(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    b = Path(repo.wtp("start", "b").lines[-1])
    os.symlink(outside / "notes.txt", b / "notes.txt")
    verdict, reason = decision(hook(repo, edit(b / "notes.txt", "Write"))[1])
    assert verdict == "deny"
    assert reason.startswith(
        f"wtp: {b / 'notes.txt'} resolves to {outside / 'notes.txt'}, outside the worktree of task 'b', "
        "so the edit would not be part of its work and no other task would see it:"
    ), reason
    os.symlink(outside / "notes.txt", repo.path / "notes.txt")
    assert hook(repo, edit(repo.path / "notes.txt", "Write")) == (0, "", "")  # not a task's edit: not wtp's business
    assert hook(repo, edit(outside / "plain.txt", "Write")) == (0, "", "")
    assert _touched(repo) == ""


# --- 2. 'hook install claude' through a symlinked settings file ---------------------------

ORIGINAL = (
    '{\n    "model": "opus",\n    "permissions": {"allow": ["Bash(npm test)"]}\n}'  # the user's layout, no newline
)


def test_install_claude_edits_the_file_a_symlinked_settings_file_points_to_and_uninstall_restores_it(
    repo: Repo,
) -> None:
    shared = repo.write("config/claude.json", ORIGINAL)
    settings = repo.path / ".claude" / "settings.json"
    settings.parent.mkdir()
    os.symlink("../config/claude.json", settings)
    out = repo.wtp("hook", "install", "claude")
    assert out.code == 0, out.err
    assert out.lines[0] == (
        f"added the PreToolUse hook 'wtp hook pre-edit' for Edit|MultiEdit|Write|NotebookEdit to {shared} "
        f"(the file {settings} links to)"
    )
    assert os.readlink(settings) == "../config/claude.json"  # still the user's link
    data = json.loads(shared.read_text())
    assert data["model"] == "opus" and data["hooks"]["PreToolUse"][0]["hooks"][0]["command"].endswith("pre-edit")
    assert repo.wtp("hook", "install", "claude").out.startswith("the wtp hook is already in")
    out = repo.wtp("hook", "uninstall", "claude")
    assert (out.code, out.out) == (0, f"removed the wtp hook from {shared} (the file {settings} links to)\n")
    assert os.readlink(settings) == "../config/claude.json"
    assert shared.read_text() == ORIGINAL  # byte for byte, the user's layout included


def test_install_claude_refuses_a_settings_link_out_of_the_repository(repo: Repo, tmp_path: Path) -> None:
    dotfile = tmp_path / "dotfiles" / "claude.json"
    dotfile.parent.mkdir()
    dotfile.write_text(ORIGINAL)
    settings = repo.path / ".claude" / "settings.json"
    settings.parent.mkdir()
    os.symlink(dotfile, settings)
    for verb in ("install", "uninstall"):
        out = repo.wtp("hook", verb, "claude")
        assert (out.code, out.out) == (1, "")
        assert out.err == (
            f"wtp: {settings} links to {dotfile}, outside the repository, which other projects may share: "
            "add the hook there yourself, or replace the link with a file of this repository\n"
        )
    assert os.readlink(settings) == str(dotfile) and dotfile.read_text() == ORIGINAL


def test_uninstall_claude_restores_a_plain_settings_file_byte_for_byte(repo: Repo) -> None:
    settings = repo.write(".claude/settings.json", ORIGINAL)
    assert repo.wtp("hook", "install", "claude").code == 0
    assert repo.wtp("hook", "uninstall", "claude").code == 0
    assert settings.read_text() == ORIGINAL
    # edited since the install: the hook alone is taken out, the edit kept
    assert repo.wtp("hook", "install", "claude").code == 0
    data = json.loads(settings.read_text())
    settings.write_text(json.dumps({**data, "model": "sonnet"}))
    assert repo.wtp("hook", "uninstall", "claude").code == 0
    assert json.loads(settings.read_text()) == {**json.loads(ORIGINAL), "model": "sonnet"}


# --- 4. the Claude settings parsed defensively ------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
HOOKED = {
    "hooks": {"PreToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "wtp hook pre-edit"}]}]}
}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"hooks": null}', "has 'hooks' that is null, not an object"),
        ('{"hooks": {"PreToolUse": {"matcher": "Edit"}}}', "has 'hooks.PreToolUse' that is an object, not a list"),
        ('{"hooks": {"PreToolUse": [{"hooks": null}, {"hooks": 5}, 7]}}', None),  # not ours: kept as they are
        ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", "is nested too deeply"),
        (DEEP, "is nested too deeply"),
    ],
)
def test_install_claude_on_a_wrongly_typed_or_deep_settings_file_refuses_in_one_line(
    repo: Repo, text: str, why: str | None
) -> None:
    settings = repo.write(".claude/settings.json", text)
    out = repo.wtp("hook", "install", "claude")
    if why is None:
        assert out.code == 0, out.err
        groups = json.loads(settings.read_text())["hooks"]["PreToolUse"]
        assert groups[:3] == [{"hooks": None}, {"hooks": 5}, 7]
        assert repo.wtp("hook", "uninstall", "claude").code == 0 and settings.read_text() == text
        return
    assert (out.code, out.out) == (1, "")
    assert out.err.startswith(f"wtp: {settings} ") and why in out.err and out.err.count("\n") == 1, out.err
    assert settings.read_text() == text
    assert repo.wtp("hook", "uninstall", "claude").code in (0, 1)  # one line either way, never a traceback


@pytest.mark.parametrize("broken", ['{"hooks": null}', DEEP, '{"hooks": {"PreToolUse": [{"hooks": null}]}}'])
def test_start_never_fails_because_of_a_settings_file_and_keeps_its_registry_entry(repo: Repo, broken: str) -> None:
    usable = "PreToolUse" in broken  # a group wtp does not know is kept, and the hook added beside it
    # committed as other tools left it; the main worktree has the wtp hook, not committed yet
    repo.commit({".claude/settings.json": broken}, "other tools' settings")
    repo.write(".claude/settings.json", json.dumps(HOOKED))
    out = repo.wtp("start", "a")
    assert out.code == 0, out.err
    a = Path(out.lines[-1])
    assert repo.wtp("list", "--json").json()["tasks"][0]["path"] == str(a)
    said = f"the agent hook is in {a}/.claude" if usable else f"the agent hook was not added to task worktree {a}: "
    assert out.err.startswith(said), out.err
    # and the other way round: the main worktree's settings are broken, the task's fine
    repo.write(".claude/settings.json", broken)
    out = repo.wtp("start", "b")
    assert out.code == 0 and "agent hook" not in out.err, out.err
    assert [t["name"] for t in repo.wtp("list", "--json").json()["tasks"]] == ["a", "b"]


def test_rm_judges_a_deep_local_settings_file_as_the_users_own(repo: Repo) -> None:
    a = Path(repo.wtp("start", "a").lines[-1])
    with (repo.path / ".git" / "info" / "exclude").open("a") as f:
        f.write("/.claude/settings.local.json\n")
    repo.write(".claude/settings.local.json", DEEP, cwd=a)
    out = repo.wtp("rm", "a")
    assert out.code == 1 and ".claude/settings.local.json" in out.err and "Traceback" not in out.err, out.err
    assert (a / ".claude" / "settings.local.json").read_text() == DEEP


def test_an_interrupted_start_never_leaves_a_worktree_without_its_registry_entry(repo: Repo) -> None:
    out = repo.wtp_proc("start", "a", env={"WTP_TEST_INT_AT": "start:before-setup"})
    assert out.code == 130, out.err
    trees = [x for x in repo.git("worktree", "list", "--porcelain").splitlines() if x.startswith("worktree ")]
    registered = [t["path"] for t in repo.wtp("list", "--all", "--json").json()["tasks"] if t["path"]]
    assert len(trees) - 1 == len(registered)  # each task worktree has its entry (or neither is there)
    done = repo.wtp("start", "a")  # and the next start completes it
    assert done.code == 0, done.err
    assert repo.wtp("list", "--json").json()["tasks"][0]["state"] == "active"


# --- 3. the MCP server answers while a land waits in the queue --------------------------


@contextmanager
def a_holds_the_queue(repo: Repo, tmp_path: Path) -> Iterator[Path]:
    """Tasks a and b with a commit each; a lands, its gate waiting for the 'go' file
    yielded; the lander is ended (by 'go') and must have landed a.  Serial mode: a's lander
    takes only a, so a land of b waits for the queue itself."""
    repo.write(".wtp.toml", '[land]\nmode = "serial"\n')
    for name in ("a", "b"):
        wt = Path(repo.wtp("start", name).lines[-1])
        repo.commit({f"{name}.txt": f"{name}\n"}, f"{name} work", cwd=wt)
    started, go = tmp_path / "started", tmp_path / "go"
    lander = repo.spawn("land", "a", "--gate", f"touch {started}; while [ ! -f {go} ]; do sleep 0.05; done")
    try:

        def gating() -> bool:
            assert lander.poll() is None, lander.communicate()
            return started.exists()

        wait_for(gating, "a's gate to start")
        yield go
    finally:
        go.touch()
        out = lander.communicate(timeout=120)
    assert lander.returncode == 0, out


def mcp_session(repo: Repo, sigint_ignored: bool = False) -> Any:
    """A client session with 'wtp mcp'; ``sigint_ignored``: the server started with SIGINT
    ignored, as a script's 'wtp mcp &' starts it."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        argv = [sys.executable, "-m", "worktree_par", "-C", str(repo.path), "mcp"]
        if sigint_ignored:
            argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
        params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=str(repo.path))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s

    return session()


def data(result: Any) -> dict:
    assert not result.is_error, result.content[0].text
    loaded = json.loads(result.content[0].text)
    assert isinstance(loaded, dict), loaded
    return loaded


async def wait_for_queue(s: Any, tasks: list[str]) -> None:
    import anyio

    with anyio.fail_after(60):
        while [e["task"] for e in data(await s.call_tool("queue", {}))["entries"]] != tasks:
            await anyio.sleep(0.05)


def test_mcp_answers_list_queue_check_and_gate_status_while_a_land_waits_in_the_queue(
    repo: Repo, tmp_path: Path
) -> None:
    pytest.importorskip("mcp")
    import anyio

    with a_holds_the_queue(repo, tmp_path) as go:

        async def talk() -> tuple[dict, dict, dict, dict, dict]:
            async with mcp_session(repo) as s:
                landed: dict = {}

                async def land_b() -> None:
                    landed.update(data(await s.call_tool("land", {"task": "b", "detach": False, "gate": "true"})))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(land_b)
                    await wait_for_queue(s, ["a", "b"])  # b joins the queue behind a, and waits there
                    with anyio.fail_after(30):  # ... while the other tools keep answering
                        listed = data(await s.call_tool("list", {}))
                        checked = data(await s.call_tool("check", {}))
                        gates = data(await s.call_tool("gate_status", {"name": "deploy"}))
                        queue = data(await s.call_tool("queue", {}))
                    assert not landed  # b is still waiting behind a
                    go.touch()
                    with anyio.fail_after(120):
                        while not landed:
                            await anyio.sleep(0.05)
                return listed, checked, gates, queue, landed

        listed, checked, gates, queue, landed = anyio.run(talk)
    assert {t["name"]: t["state"] for t in listed["tasks"]} == {"a": "landing", "b": "landing"}
    assert {"tasks", "collisions"} <= checked.keys()
    assert gates == {"gate": "deploy", "tickets": []}
    assert [e["task"] for e in queue["entries"]] == ["a", "b"]
    assert (landed["task"], landed["state"]) == ("b", "landed")
    assert repo.git("log", "--format=%s", "main").splitlines()[:2] == ["b work", "a work"]


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["server", "server-started-with-sigint-ignored"])
def test_a_cancelled_mcp_land_leaves_the_queue_as_ctrl_c_would(
    repo: Repo, tmp_path: Path, sigint_ignored: bool
) -> None:
    """Review 36: a server started with SIGINT ignored ('wtp mcp &' in a script) passed that on
    to its calls' processes, so a cancelled land went on in the queue for a minute, until its
    SIGKILL."""
    pytest.importorskip("mcp")
    import anyio

    with a_holds_the_queue(repo, tmp_path):

        async def talk() -> None:
            async with mcp_session(repo, sigint_ignored) as s:
                async with anyio.create_task_group() as tg:

                    async def land_b() -> None:
                        await s.call_tool("land", {"task": "b", "detach": False, "gate": "true"})

                    tg.start_soon(land_b)
                    await wait_for_queue(s, ["a", "b"])
                    tg.cancel_scope.cancel()  # the client gives up on the call
                with anyio.fail_after(30):  # far below the minute before a SIGKILL
                    await wait_for_queue(s, ["a"])  # its land left the queue (SIGINT: it cleans up, then exits)
                states = {t["name"]: t["state"] for t in data(await s.call_tool("list", {}))["tasks"]}
                assert states == {"a": "landing", "b": "active"}

        anyio.run(talk)
    assert repo.wtp("list", "--json").json()["tasks"][0]["state"] == "active"  # a landed, b is back, not landed
    assert repo.git("log", "--format=%s", "main").splitlines()[0] == "a work"


def test_mcp_land_takes_several_tasks_as_the_refusal_for_a_stacked_task_advises(repo: Repo, tmp_path: Path) -> None:
    """b was started on a's work while a's first land waited; a's land was given back. The
    refusal of b alone says 'wtp land a b' lands both: an agent can do just that through MCP
    (also=[...]), whatever the order, and gets one document per task."""
    pytest.importorskip("mcp")
    import anyio

    wt_a = Path(repo.wtp("start", "a", "--touch", "shared.txt").lines[-1])
    repo.commit({"shared.txt": "a\n"}, "a work", cwd=wt_a)
    assert repo.wtp("start", "b", "--touch", "shared.txt").code == 4
    release = tmp_path / "release"
    lander = repo.spawn("land", "a", "--gate", f"while [ ! -e {release} ]; do sleep 0.05; done; false")
    wait_for(lambda: any(t["name"] == "b" and t["state"] == "active" for t in repo.state()["tasks"]), "b to start")
    release.touch()
    lander.communicate(timeout=60)  # a's gate failed: a is blocked, b waits for it
    wt_b = Path(next(t["path"] for t in repo.state()["tasks"] if t["name"] == "b"))
    repo.commit({"shared.txt": "a\nb\n"}, "b work", cwd=wt_b)

    async def talk() -> tuple[str, dict]:
        async with mcp_session(repo) as s:
            alone = await s.call_tool("land", {"task": "b", "detach": False, "gate": "true"})
            assert alone.is_error
            both = await s.call_tool("land", {"task": "b", "also": ["a"], "detach": False, "gate": "true"})
            return alone.content[0].text, data(both)

    refused, landed = anyio.run(talk)
    assert "'wtp land a b' lands both" in refused, refused
    assert [(d["task"], d["state"]) for d in landed["tasks"]] == [("b", "landed"), ("a", "landed")]
    assert repo.git("log", "--format=%s", "main").splitlines()[:2] == ["b work", "a work"]
