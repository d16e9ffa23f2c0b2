"""The gate 'wtp init' proposes, checked before it is written (issue 29): a detected gate
that cannot start here (the package not importable without an install step, the tool not
on PATH, no tests collected) would block the first task that lands, as if the task were
at fault.  So init proves the gate can at least start: pytest collects (``--collect-only``),
the npm script and the tool exist, make knows the target; and when it cannot, init writes
the gate commented out and says why and what to do.

The probe runs in the main worktree, as it stands, while init calibrates co-change (both
take about as long on a Flask-sized repository), in a process group that is ended when it
answers; it writes no bytecode and no pytest cache (what the project's own conftest or
Makefile does when run is the project's)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROBE_SECONDS = 20.0
PYTEST = "python -m pytest"


def detect(root: Path) -> str:
    """The project's own test command, as a newcomer would guess it ("" when none is found)."""
    pkg = root / "package.json"
    if pkg.is_file():
        try:
            scripts = json.loads(pkg.read_text()).get("scripts", {})
        except (OSError, ValueError, AttributeError):
            scripts = {}
        if (
            isinstance(scripts, dict)
            and isinstance(scripts.get("test"), str)
            and "no test specified" not in scripts["test"]
        ):
            return "npm test"
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    if (root / "go.mod").is_file():
        return "go test ./..."
    makefile = root / "Makefile"
    if makefile.is_file() and any(
        line.startswith("test:") for line in makefile.read_text(errors="replace").splitlines()
    ):
        return "make test"
    if any((root / f).exists() for f in ("pytest.ini", "conftest.py", "tests", "test")) or "[tool.pytest" in (
        (root / "pyproject.toml").read_text(errors="replace") if (root / "pyproject.toml").is_file() else ""
    ):
        return PYTEST
    return ""


@dataclass
class Verdict:
    gate: str  # what to write as [land] gate ("" when the detected one cannot start)
    detected: str  # what was detected ("" = nothing)
    ok: bool
    note: str  # one line: what was checked, or why it cannot start and what to do


def src_packages(root: Path) -> list[str]:
    """The import packages of a src layout (``src/<name>/__init__.py``)."""
    src = root / "src"
    if not src.is_dir():
        return []
    return sorted(p.name for p in src.iterdir() if (p / "__init__.py").is_file())


class _Run:
    """A probe command in a process group of its own, its output in a temporary file (a
    child that keeps a pipe open cannot hold the answer back): ``wait()`` gives (exit code,
    output), or (None, output) past the deadline; the group is always ended afterwards, so
    nothing the command started outlives init."""

    def __init__(self, argv: list[str], root: Path) -> None:
        import tempfile

        self.out = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PY_COLORS": "0", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.deadline = time.monotonic() + PROBE_SECONDS

    def wait(self) -> tuple[int | None, str]:
        try:
            code: int | None = self.proc.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        self.stop()
        self.out.seek(0)
        text = self.out.read(1 << 20).decode(errors="replace")
        self.out.close()
        return code, text

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)  # the group, whether or not its leader is still there
        except OSError:
            pass
        self.proc.wait()


class Probe:
    """``Probe(root)`` detects the gate and starts checking it; ``verdict()`` waits for the
    answer.  A src layout is tried as ``PYTHONPATH=src python -m pytest`` first: a task's
    gate must import the task's own code, not a copy installed from the main worktree.
    Checking runs the project's code (pytest imports the tests and their conftest; make
    expands the Makefile): init says so before it starts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.detected = detect(root)
        self.tries: list[str] = []
        if self.detected == PYTEST:
            self.tries = ([f"PYTHONPATH=src {PYTEST}"] if src_packages(root) else []) + [PYTEST]
        self.run: _Run | None = None
        self._start()

    @property
    def what(self) -> str:
        """What the check runs, for init's first line."""
        if self.tries:
            return f"'{PYTEST} --collect-only', which imports the tests"
        if self.detected == "make test":
            return "'make -n test', which expands the Makefile"
        return f"'{self.detected.split()[0]}' on PATH" if self.detected else ""

    def _start(self) -> None:
        if self.tries:
            cmd = f"{self.tries[0]} --collect-only -q -p no:cacheprovider --color=no"
            self.run = _Run(["/bin/sh", "-c", cmd], self.root)
        elif self.detected == "make test" and shutil.which("make") is not None:
            self.run = _Run(["make", "-n", "test"], self.root)

    def stop(self) -> None:
        """End the probe's process group (init interrupted)."""
        if self.run is not None:
            self.run.stop()

    def verdict(self) -> Verdict:
        d = self.detected
        if not d:
            return Verdict("", "", False, "none found")
        tool = {"npm test": "npm", "cargo test": "cargo", "go test ./...": "go", "make test": "make"}.get(d)
        if tool is not None:
            return self._tool(d, tool)
        first: tuple[int | None, str] | None = None
        while self.run is not None:
            code, out = self.run.wait()
            if code == 0:
                gate = self.tries[0]
                return Verdict(gate, d, True, f"{_collected(out)} here (checked)" + self._src_warning(gate))
            first = first or (code, out)
            self.tries.pop(0)
            self.run = None
            self._start()
        assert first is not None
        return Verdict("", d, False, _pytest_fix(self.root, *first))

    def _src_warning(self, gate: str) -> str:
        if gate == PYTEST and src_packages(self.root):
            return (
                "; note: with a src layout it may test a copy installed from the main worktree, "
                "not the task's code ('PYTHONPATH=src' did not start)"
            )
        return ""

    def _tool(self, d: str, tool: str) -> Verdict:
        if shutil.which(tool) is None:
            return Verdict("", d, False, f"'{tool}' is not on PATH here: install it")
        if tool == "make" and self.run is not None:
            code, out = self.run.wait()
            self.run = None
            if code is None:
                return Verdict("", d, False, f"'make -n test' took over {PROBE_SECONDS:g}s")
            if code != 0:
                why = _plain(out).strip().splitlines()[-1:] or ["no reason given"]
                return Verdict(
                    "", d, False, f"'make -n test' fails here ({why[0][:160]}): fix the Makefile's test target"
                )
            return Verdict(d, d, True, "the Makefile has a test target (checked)")
        if tool == "npm" and not (self.root / "node_modules").is_dir():
            return Verdict(
                d,
                d,
                True,
                "npm is here, but there is no node_modules yet: install it (npm ci), and give task worktrees theirs "
                'with [setup] copy = ["node_modules"] or run = ["npm ci --prefer-offline"]',
            )
        return Verdict(d, d, True, f"'{tool}' is on PATH (checked)")


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def _plain(text: str) -> str:
    """Output fit for one line of a message and a TOML comment: no colour codes, no control
    characters (a tool that colours its output anyway must not break the config)."""
    return _CONTROL.sub("", text)


def _collected(out: str) -> str:
    m = re.search(r"(\d+) tests? collected", out)
    if not m:
        return "collects its tests"
    n = int(m.group(1))
    return f"collects {n} test{'s' if n != 1 else ''}"


_MISSING = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([^'.]+)")


def _pytest_fix(root: Path, code: int | None, out: str) -> str:
    """Why the detected pytest gate cannot start here, and what to do, in one line."""
    lines = [ln.strip() for ln in _plain(out).splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    head = "it cannot start here"
    if code is None:
        return f"{head}: collecting the tests took over {PROBE_SECONDS:g}s"
    if code == 127 or ("not found" in last and "python" in last):
        return f"{head}: 'python' is not on PATH (a virtualenv not activated?)"
    if code == 5:
        return f"{head}: it collects no tests"
    m = _MISSING.search(_plain(out))
    if m and m.group(1) == "pytest":
        return f"{head}: pytest is not installed for the 'python' on PATH: python -m pip install pytest"
    if m:
        mod = m.group(1)
        own = (root / mod / "__init__.py").is_file() or any(root.glob(f"*/{mod}/__init__.py"))
        if own:
            return (
                f"{head}: No module named '{mod}' (the project's own package): install the project for the 'python' "
                f"on PATH (python -m pip install -e .), or put its folder on PYTHONPATH in the gate"
            )
        return (
            f"{head}: No module named '{mod}': install the project's test dependencies for the 'python' on PATH "
            f"(e.g. python -m pip install -e '.[test]'), or set [setup] run to install them in each worktree"
        )
    return f"{head} (exit {code}: {last[:160]})"
