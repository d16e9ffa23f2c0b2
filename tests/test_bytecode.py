"""wtp's own bytecode where PYTHONDONTWRITEBYTECODE stops Python writing it (bytecode.py):
an editable install then has none, and every command compiled every module from source.
Each test runs a fresh copy of the package (no __pycache__ anywhere) as wtp runs."""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
from importlib.util import MAGIC_NUMBER, cache_from_source
from pathlib import Path

from tests.conftest import ROOT


def _copy(tmp: Path) -> Path:
    pkg = tmp / "site" / "worktree_par"
    shutil.copytree(ROOT / "worktree_par", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _wtp(pkg: Path, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(pkg.parent), "XDG_CACHE_HOME": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "worktree_par", *args], cwd=cache.parent, env=full, capture_output=True, text=True
    )


def _private(cache: Path, source: Path) -> Path:
    tag = sys.implementation.cache_tag
    return cache / "wtp" / "bytecode" / tag / (str(source.resolve()).lstrip(os.sep) + "c")


def _pycache_files(pkg: Path) -> list[Path]:
    return sorted(pkg.rglob("*.pyc"))


def test_the_copy_is_written_outside_the_sources_and_is_what_loads(tmp_path: Path) -> None:
    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    first = _wtp(pkg, cache, "--version")
    assert (first.returncode, first.stderr) == (0, "")
    entry = _private(cache, pkg / "entry.py")
    assert entry.read_bytes()[:4] == MAGIC_NUMBER
    assert _pycache_files(pkg) == []  # nothing next to any source: the user's setting holds there
    # The next command loads the copy: swapped for code of our own, that code runs.
    code = compile("import sys\nsys.stdout.write('from the cache\\n')\ndef main(): sys.exit(0)\n", "entry", "exec")
    entry.write_bytes(entry.read_bytes()[:16] + marshal.dumps(code))
    assert _wtp(pkg, cache, "--version").stdout == "from the cache\n"
    # A source edited since is compiled again, not taken from a stale copy.
    with (pkg / "entry.py").open("a") as f:
        f.write("# edited\n")
    again = _wtp(pkg, cache, "--version")
    assert (again.returncode, again.stdout) == (0, first.stdout)
    assert entry.read_bytes()[16:] != marshal.dumps(code)


def test_a_command_that_imports_much_is_cached_whole(tmp_path: Path) -> None:
    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    out = _wtp(pkg, cache, "-C", str(tmp_path), "path", "nosuch")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr  # not a repository: one line
    cached = {p.name for p in (_private(cache, pkg / "entry.py")).parent.rglob("*.pyc")}
    assert {"entry.pyc", "exits.pyc", "errors.pyc", "repo.pyc", "run.pyc"} <= cached, cached
    assert _private(cache, pkg / "commands" / "__init__.py").exists()
    # the package's own __init__ runs before the finder is in place (it is a few lines)
    assert not _private(cache, pkg / "__init__.py").exists()
    assert _pycache_files(pkg) == []


def test_turned_off_or_unwritable_it_writes_nothing_and_wtp_still_works(tmp_path: Path) -> None:
    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    off = _wtp(pkg, cache, "--version", WTP_BYTECODE_CACHE="0")
    assert (off.returncode, off.stderr) == (0, "")
    assert not cache.exists()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder\n")
    out = _wtp(pkg, blocked, "--version")
    assert (out.returncode, out.stdout, out.stderr) == (0, off.stdout, "")


def test_without_the_setting_python_keeps_its_own_bytecode(tmp_path: Path) -> None:
    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(pkg.parent), XDG_CACHE_HOME=str(cache))
    probe = "import sys, worktree_par; print(any(type(f).__name__ == 'Finder' for f in sys.meta_path))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "False\n")
    assert not cache.exists()


def test_a_package_with_its_own_bytecode_is_left_to_python(tmp_path: Path) -> None:
    """An installed wheel (or a compiled checkout) has its bytecode next to the sources:
    Python's own loader reads it, and no copy is made."""
    import compileall

    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    assert compileall.compile_dir(str(pkg), quiet=1)
    out = _wtp(pkg, cache, "--version")
    assert (out.returncode, out.stderr) == (0, "")
    assert not cache.exists()
    with (pkg / "entry.py").open("a") as f:
        f.write("# edited since: its bytecode is stale, so the copy is made again\n")
    assert _wtp(pkg, cache, "--version").returncode == 0
    assert _private(cache, pkg / "entry.py").exists()


def test_a_module_edited_since_the_package_was_compiled_is_not_compiled_on_every_command(tmp_path: Path) -> None:
    """A checkout whose __pycache__ was written once (a run without the setting), then edited:
    the edited module's copy is kept, the others are read where Python wrote them."""
    import compileall

    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    assert compileall.compile_dir(str(pkg), quiet=1)
    with (pkg / "streams.py").open("a") as f:
        f.write("# edited since the package was compiled\n")
    assert _wtp(pkg, cache, "--version").returncode == 0
    kept = {p.name for p in cache.rglob("*.pyc")}
    assert kept == {"streams.pyc"}, kept
    assert _wtp(pkg, cache, "--version").returncode == 0
    assert {p.name for p in cache.rglob("*.pyc")} == {"streams.pyc"}


def test_a_moved_checkout_names_its_sources_where_they_are_now(tmp_path: Path) -> None:
    """Bytecode records the path it was compiled from; Python's loader sets it to where the
    source is now, and so does wtp's (review 53: a moved checkout's crash logs named the old one)."""
    import compileall

    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    assert compileall.compile_dir(str(pkg), quiet=1)
    moved = tmp_path / "moved" / "worktree_par"
    moved.parent.mkdir()
    pkg.rename(moved)
    probe = "import worktree_par.entry as e; print(e.main.__code__.co_filename)"
    env = {**os.environ, "PYTHONPATH": str(moved.parent), "XDG_CACHE_HOME": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, f"{moved / 'entry.py'}\n"), out.stderr


def test_bytecode_whose_body_is_not_code_is_compiled_again(tmp_path: Path) -> None:
    """A .pyc whose header matches the source but whose body is some other object: the
    module is compiled from source, as if there were none (review 53: an internal error)."""
    import compileall

    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    assert compileall.compile_dir(str(pkg), quiet=1)
    pyc = Path(cache_from_source(str(pkg / "streams.py")))
    pyc.write_bytes(pyc.read_bytes()[:16] + marshal.dumps(42))
    out = _wtp(pkg, cache, "--version")
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


def test_a_relative_xdg_cache_home_is_ignored_and_nothing_lands_where_the_command_runs(tmp_path: Path) -> None:
    """Found by review: XDG_CACHE_HOME=.cache put the copy in the current folder (a user's
    repository); the XDG spec says a relative value is invalid and ignored."""
    pkg, cache = _copy(tmp_path), tmp_path / "cache"
    home = tmp_path / "home"
    out = _wtp(pkg, cache, "--version", XDG_CACHE_HOME=".cache", HOME=str(home))
    assert out.returncode == 0, out.stderr
    assert not (cache.parent / ".cache").exists()  # the folder the command ran in
    assert _private(home / ".cache", pkg / "entry.py").is_file()
