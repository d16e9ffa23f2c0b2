"""'wtp init' on a first run: it checks the gate it detects before writing it, says which
files to commit, and replays the history for the co-change layer (issue 29)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from worktree_par import config

from .conftest import Repo, make_repo


@pytest.fixture
def python_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'python' on PATH is the interpreter running the tests (it has pytest)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _python_repo(tmp_path: Path, files: dict[str, str]) -> Repo:
    r = make_repo(tmp_path, fixture=None, name="py")
    r.commit(files, "python project")
    return r


def test_init_writes_a_pytest_gate_that_collects_and_prefers_the_src_layout(
    tmp_path: Path, python_on_path: None
) -> None:
    r = _python_repo(
        tmp_path,
        {
            "src/mypkg/__init__.py": "def greet():\n    return 'hi'\n",
            "tests/test_greet.py": "from mypkg import greet\n\n\ndef test_greet():\n    assert greet() == 'hi'\n",
        },
    )
    out = r.wtp("init", "--no-remote")
    assert out.code == 0, out.err
    assert out.lines[:2] == [
        f"wrote {r.path / '.wtp.toml'} (base 'main', remote 'none', max_active 3)",
        "land gate 'PYTHONPATH=src python -m pytest': collects 1 test here (checked); trusted",
    ]
    assert config.load(r.path).land_gate == "PYTHONPATH=src python -m pytest"
    # the gate it wrote passes on a land
    p = Path(r.wtp("start", "t").lines[-1])
    r.commit({"src/mypkg/more.py": "X = 1\n"}, cwd=p)
    r.commit({".wtp.toml": (r.path / ".wtp.toml").read_text()}, "config")
    landed = r.wtp("land", "t")
    assert landed.code == 0, landed.err


def test_a_gate_that_cannot_start_is_written_commented_out_with_the_reason(
    tmp_path: Path, python_on_path: None
) -> None:
    r = _python_repo(tmp_path, {"tests/test_dep.py": "import not_installed_anywhere\n\n\ndef test_x():\n    pass\n"})
    out = r.wtp("init", "--no-remote")
    assert out.code == 0, out.err
    assert out.lines[1] == (
        "land gate: none written: 'python -m pytest' was detected, but it cannot start here: No module named "
        "'not_installed_anywhere': install the project's test dependencies for the 'python' on PATH (e.g. python -m "
        "pip install -e '.[test]'), or set [setup] run to install them in each worktree; set [land] gate in "
        ".wtp.toml once it starts (it is there, commented out)"
    )
    text = (r.path / ".wtp.toml").read_text()
    assert 'gate = ""\n# Detected "python -m pytest", but it cannot start here: No module named' in text
    assert '\n# gate = "python -m pytest"\n' in text
    assert config.load(r.path).land_gate == ""


def test_a_project_not_importable_without_an_install_is_told_to_install_it(
    tmp_path: Path, python_on_path: None
) -> None:
    # the package lives in a folder pytest does not put on sys.path
    r = _python_repo(
        tmp_path,
        {"lib/ownpkg/__init__.py": "", "tests/test_own.py": "import ownpkg\n\n\ndef test_x():\n    pass\n"},
    )
    out = r.wtp("init", "--no-remote")
    assert out.code == 0
    assert out.lines[1] == (
        "land gate: none written: 'python -m pytest' was detected, but it cannot start here: No module named "
        "'ownpkg' (the project's own package): install the project for the 'python' on PATH (python -m pip "
        "install -e .), or put its folder on PYTHONPATH in the gate; set [land] gate in .wtp.toml once it starts "
        "(it is there, commented out)"
    )
    assert config.load(r.path).land_gate == ""


def test_a_tool_that_is_not_on_path_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = make_repo(tmp_path, fixture=None, name="rs")
    r.commit({"Cargo.toml": "[package]\nname = 'x'\n"}, "rust")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no cargo there
    if any((Path(d) / "cargo").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("cargo is installed system-wide here")
    out = r.wtp("init", "--no-remote")
    assert out.lines[1] == (
        "land gate: none written: 'cargo test' was detected, but 'cargo' is not on PATH here: install it; "
        "set [land] gate in .wtp.toml once it starts (it is there, commented out)"
    )


def test_init_says_which_files_to_commit(repo: Repo) -> None:
    out = repo.wtp("init", "--agents")
    assert out.code == 0
    root = repo.path
    assert out.lines[-1] == (
        f"commit .wtp.toml and AGENTS.md and CLAUDE.md so task worktrees, agents and teammates see them: "
        f"git -C {root} add .wtp.toml AGENTS.md CLAUDE.md && git -C {root} commit -m 'wtp: configure'"
    )
    repo.git("add", ".wtp.toml", "AGENTS.md", "CLAUDE.md")
    repo.git("commit", "-q", "-m", "wtp: configure")
    again = repo.wtp("init", "--agents")
    assert again.code == 0 and "commit " not in again.out  # nothing left to commit


def test_init_shows_what_it_does_at_once(remote_repo: Repo) -> None:
    out = remote_repo.wtp("init")
    assert out.err.splitlines()[0] == (
        "wtp init: base 'main', remote 'origin'; checking the gate ('npm' on PATH) and the history ..."
    )


def test_a_long_history_is_calibrated_later_on_request(remote_repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from worktree_par.commands import init

    monkeypatch.setattr(init, "LONG_HISTORY", 0)  # this one-commit history counts as long
    out = remote_repo.wtp("init")
    assert out.code == 0
    assert out.lines[2] == (
        "co-change layer off: not calibrated yet: 1 commits is a long history to replay now; run 'wtp cochange "
        "--calibrate' when convenient (it turns the layer on if it helps here)"
    )
    assert config.load(remote_repo.path).check_cochange == "off"
    calibrated = remote_repo.wtp("cochange", "--calibrate")  # on request, whatever the length
    assert calibrated.code == 0 and "too few merges to tell" in calibrated.out


def test_a_probe_that_colours_hangs_or_leaves_children_gives_one_line_and_valid_toml(
    tmp_path: Path, python_on_path: None
) -> None:
    """Found by review: pytest's colour codes went into the config's comment (invalid TOML),
    a child holding the output pipe made init wait out the deadline and call a working gate
    slow, and what the probe started outlived it."""
    import signal

    pids = tmp_path / "pids"
    r = _python_repo(
        tmp_path,
        {
            "pytest.ini": "[pytest]\naddopts = --color=yes\n",
            # a child that outlives collection and holds the output open
            "tests/conftest.py": (
                "import os, subprocess, sys\n"
                f"p = subprocess.Popen(['sleep', '300'], stdout=sys.stdout, stderr=sys.stderr)\n"
                f"open({str(pids)!r}, 'a').write(str(p.pid) + '\\n')\n"
            ),
            "tests/test_broken.py": "raise RuntimeError('boom at import')\n",
        },
    )
    out = r.wtp("init", "--no-remote")
    assert out.code == 0, out.err
    assert out.lines[1].startswith("land gate: none written: 'python -m pytest' was detected, but it cannot start here")
    assert "\x1b" not in out.out
    assert config.load(r.path).land_gate == ""  # the config is valid TOML
    children = [int(x) for x in pids.read_text().split()]
    for pid in children:  # ended with the probe's group
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, FileNotFoundError):
            continue
        if state != "Z":
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the probe's child {pid} outlived init")


def test_make_that_takes_too_long_to_expand_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worktree_par import gatecheck

    monkeypatch.setattr(gatecheck, "PROBE_SECONDS", 0.5)
    r = make_repo(tmp_path, fixture=None, name="mk")
    r.commit({"Makefile": "X := $(shell sleep 30)\ntest:\n\ttrue\n"}, "make")
    out = r.wtp("init", "--no-remote")
    assert out.code == 0, out.err
    assert out.lines[1] == (
        "land gate: none written: 'make test' was detected, but 'make -n test' took over 0.5s; set [land] gate in "
        ".wtp.toml once it starts (it is there, commented out)"
    )
