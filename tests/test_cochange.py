"""Co-change (issue 20): files that changed together in the base's history are reported at
start and by check (kind 'likely'), held in 'hold' mode, cached and mined incrementally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Repo, make_repo


@pytest.fixture
def coupled(tmp_path: Path) -> Repo:
    """A history where src/feed.py and config/routes.yml changed together in 5 of feed's 6 commits."""
    r = make_repo(tmp_path, fixture=None)
    r.commit({"src/feed.py": "v0\n", "config/routes.yml": "v0\n", "src/other.py": "v0\n", "CHANGELOG.md": "v0\n"})
    for i in range(1, 5):
        r.commit({"src/feed.py": f"v{i}\n", "config/routes.yml": f"v{i}\n", "CHANGELOG.md": f"v{i}\n"}, f"feed {i}")
    r.commit({"src/feed.py": "v5\n"}, "feed alone")
    for i in range(3):
        r.commit({"src/other.py": f"o{i}\n"}, f"other {i}")
    return r


def test_start_names_the_usual_companions_and_touch_suggested_takes_them(coupled: Repo) -> None:
    out = coupled.wtp("start", "a", "--touch", "src/feed.py")
    assert out.code == 0
    assert "config/routes.yml usually changes with src/feed.py: 5 of 6 commits" in out.err
    assert "CHANGELOG.md" not in out.err  # hot files are left out of mining
    assert "--touch-suggested" in out.err
    taken = coupled.wtp("start", "b", "--touch", "src/other.py", "--touch", "src/feed.py", "--touch-suggested")
    assert "also declares 1 file that" in taken.err
    task = next(t for t in coupled.state()["tasks"] if t["name"] == "b")
    assert task["touch"] == ["config/routes.yml", "src/feed.py", "src/other.py"]


def test_a_task_on_a_companion_file_is_warned_or_held_and_an_unrelated_one_hears_nothing(coupled: Repo) -> None:
    coupled.wtp("start", "a", "--touch", "src/feed.py")
    b = coupled.wtp("start", "b", "--touch", "config/routes.yml")
    assert b.code == 0
    assert (
        "warning: task 'b' likely collides with task 'a': src/feed.py usually changes with config/routes.yml: "
        "5 of 5 commits"
    ) in b.err
    c = coupled.wtp("start", "c", "--touch", "src/other.py")
    assert (c.code, c.err) == (0, "")
    full = coupled.wtp("start", "d", "--touch", "config/routes.yml")  # no slot left: queued, and says only that
    assert full.code == 4
    assert full.err.splitlines() == [
        "src/feed.py usually changes with config/routes.yml: 5 of 5 commits",
        "declare them too with 'wtp start d --touch-suggested ...' if the task will write them",
        "warning: task 'd' likely collides with task 'a': src/feed.py usually changes with config/routes.yml: "
        '5 of 5 commits ([check] cochange = "warn": it does not hold the task back)',
        "task 'd' is queued (place 1): waits because no slot is free: 3 of 3 taken; path config/routes.yml with task 'b'",
    ]
    coupled.wtp("rm", "d")
    coupled.wtp("rm", "b")
    coupled.write(".wtp.toml", '[check]\ncochange = "hold"\n')
    held = coupled.wtp("start", "b", "--touch", "config/routes.yml")
    assert held.code == 4 and held.out == ""
    assert "likely collides with task 'a'" in held.err and "held until it lands" in held.err
    assert "files that usually change together with task 'a'" in held.err
    assert coupled.wtp("rm", "a").code == 0
    assert next(t for t in coupled.state()["tasks"] if t["name"] == "b")["state"] == "active"  # started when a went
    coupled.write(".wtp.toml", '[check]\ncochange = "off"\n')
    assert coupled.wtp("start", "d", "--touch", "src/feed.py").err == ""


def test_check_reports_the_pair_as_likely_with_its_evidence(coupled: Repo) -> None:
    coupled.wtp("start", "a", "--touch", "src/feed.py")
    coupled.wtp("start", "b", "--touch", "config/routes.yml")
    coupled.wtp("start", "c", "--touch", "src/other.py")
    report = coupled.wtp("check", "--json", "--fail-on", "never").json()
    likely = [c for c in report["collisions"] if c["kind"] == "likely"]
    assert len(likely) == 1
    assert sorted(likely[0]["tasks"]) == ["a", "b"]
    ev = likely[0]["evidence"][0]
    assert (
        ev["shared"] == 5
        and ev["confidence"] >= 0.2
        and {ev["file"], ev["with"]}
        == {
            "src/feed.py",
            "config/routes.yml",
        }
    )
    assert coupled.wtp("check", "--fail-on", "likely").code == 1
    assert coupled.wtp("check", "--fail-on", "overlap").code == 0
    text = coupled.wtp("check", "--fail-on", "never").out
    assert "likely" in text and "usually with" in text


def test_changed_files_count_too(coupled: Repo) -> None:
    """A task that declared nothing but changed src/feed.py collides likely with one on the routes."""
    p = Path(coupled.wtp("start", "a").lines[-1])
    (p / "src/feed.py").write_text("edited\n")
    coupled.wtp("start", "b", "--touch", "config/routes.yml")
    kinds = {c["kind"] for c in coupled.wtp("check", "--json", "--fail-on", "never").json()["collisions"]}
    assert "likely" in kinds


def _traced(r: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """wtp run with every git call it makes printed on stderr."""
    env = {**os.environ, "WTP_TRACE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "worktree_par", *args], cwd=r.path, capture_output=True, text=True, env=env
    )


def test_the_index_is_cached_and_mined_incrementally(coupled: Repo) -> None:
    coupled.wtp("start", "a", "--touch", "src/feed.py")
    cache = coupled.path / ".git" / "wtp" / "cochange-refs_heads_main.json"
    first = json.loads(cache.read_text())
    assert first["tip"] == coupled.git("rev-parse", "main") and len(first["commits"]) == 10
    coupled.commit({"src/feed.py": "v6\n", "config/routes.yml": "v6\n"}, "feed 6")
    trace = _traced(coupled, "start", "b", "--touch", "src/feed.py")
    assert trace.returncode == 4, trace.stderr  # queued behind 'a' (same file): it was still told
    logs = [line for line in trace.stderr.splitlines() if " log -z " in line]
    assert len(logs) == 1 and f"{first['tip']}.." in logs[0], logs  # only the new commit was mined
    second = json.loads(cache.read_text())
    assert second["commits"][:10] == first["commits"] and len(second["commits"]) == 11
    assert "6 of 7 commits" in trace.stderr
    again = _traced(coupled, "start", "c", "--touch", "src/feed.py")
    assert not [line for line in again.stderr.splitlines() if " log -z " in line]  # warm: no mining at all


def test_renames_are_followed(tmp_path: Path) -> None:
    from worktree_par import cochange

    r = make_repo(tmp_path, fixture=None)
    for i in range(3):
        r.commit({"old/feed.py": f"v{i}\n", "config/routes.yml": f"v{i}\n"}, f"feed {i}")
    (r.path / "src").mkdir()
    r.git("mv", "old/feed.py", "src/feed.py")
    r.git("commit", "-qm", "move")
    r.commit({"src/feed.py": "v9\n", "config/routes.yml": "v9\n"}, "feed again")
    h = cochange.mine(r.path, r.git("rev-parse", "HEAD"))
    ev = h.companions("src/feed.py")
    assert [(e.file, e.shared) for e in ev] == [("config/routes.yml", 4)]


def _merges(r: Repo, coupled: int, apart: int) -> None:
    """History: feed.py and routes.yml change together; then merges of two sides each, where
    ``coupled`` pairs declare feed.py / routes.yml and really overlap (both change routes.yml),
    and ``apart`` pairs work on files of their own."""
    for i in range(4):
        r.commit({"src/feed.py": f"h{i}\n", "config/routes.yml": f"h{i}\n"}, f"history {i}")
    n = 0
    for kind in ["coupled"] * coupled + ["apart"] * apart:
        n += 1
        base = r.git("rev-parse", "HEAD")
        r.git("checkout", "-q", "-b", f"side{n}", base)
        if kind == "coupled":
            r.commit({"config/routes.yml": f"b{n}\nshared\n"}, f"b{n}")
        else:
            r.commit({f"src/b{n}.py": "b\n"}, f"b{n}")
        r.git("checkout", "-q", "main")
        if kind == "coupled":
            r.commit({"src/feed.py": f"a{n}\n"}, f"a{n}")
            r.commit({"config/routes.yml": f"a{n}\nshared\n", "src/feed.py": f"a{n}!\n"}, f"a{n} routes")
        else:
            r.commit({f"src/a{n}.py": "a\n"}, f"a{n}")
        r.git("merge", "-q", "--no-edit", "-s", "ours", f"side{n}")


def test_calibration_turns_the_layer_on_only_where_the_history_says_it_helps(tmp_path: Path) -> None:
    (tmp_path / "few").mkdir()
    few = make_repo(tmp_path / "few", fixture=None)
    off = few.wtp("cochange", "--calibrate")
    assert off.code == 0 and "co-change layer off: too few merges to tell (0 usable pairs; 20 needed)" in off.out
    again = few.wtp("cochange", "--calibrate")
    text = (few.path / ".wtp.toml").read_text()
    assert again.code == 0 and text.count("cochange = ") == 1 and "# co-change calibration: too few merges" in text
    from worktree_par.config import load

    assert load(few.path).check_cochange == "off"
    (tmp_path / "many").mkdir()
    many = make_repo(tmp_path / "many", fixture=None)
    _merges(many, coupled=12, apart=14)
    on = many.wtp("cochange", "--calibrate", "--json")
    assert on.code == 0, on.err
    data = on.json()
    assert data["mode"] == "warn", data
    assert load(many.path).check_cochange == "warn"
    assert "lift" in data["why"] and "on 26 merges" in data["why"]


def test_a_shallow_history_is_mined_again_once_deepened_and_its_boundary_is_no_co_change(tmp_path: Path) -> None:
    """Review 36: the index of a shallow clone stayed shallow after 'git fetch --unshallow' (the
    cache was keyed by the tip alone), and the commit the history stops at counted as one that
    changed every file."""
    src = make_repo(tmp_path, fixture=None, name="src")
    for i in range(6):
        src.commit({"a.txt": f"{i}\n", "b.txt": f"{i}\n"}, f"ab {i}")
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{src.path}", str(tmp_path / "clone")],
        check=True,
        capture_output=True,
    )
    clone = Repo(tmp_path / "clone")
    boundary = (clone.path / ".git" / "shallow").read_text().split()
    assert boundary == [clone.git("rev-parse", "HEAD")]
    shallow = clone.wtp("cochange", "--json", "a.txt")
    assert shallow.json()["commits"] == 0 and shallow.json()["files"] == {"a.txt": []}  # the boundary is no evidence
    cache = clone.path / ".git" / "wtp" / "cochange-refs_remotes_origin_main.json"
    assert json.loads(cache.read_text())["shallow"] == boundary
    clone.git("fetch", "-q", "--unshallow")
    whole = clone.wtp("cochange", "a.txt")
    assert (whole.code, whole.lines) == (0, ["b.txt usually changes with a.txt: 6 of 6 commits"])
    assert json.loads(cache.read_text())["shallow"] == []
    src.commit({"a.txt": "7\n", "b.txt": "7\n"}, "ab 7")
    clone.git("fetch", "-q")
    moved = clone.wtp("cochange", "a.txt")
    assert (moved.code, moved.lines) == (0, ["b.txt usually changes with a.txt: 7 of 7 commits"])
