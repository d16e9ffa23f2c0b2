"""The house's shape, checked (issue 25): no import cycle between the package's modules
(imports inside functions count: a lazy import hides a cycle, it does not remove it), no
module over 450 lines, and one way to write a file whole (``atomic.replace``).  All fail CI
when broken."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PKG = ROOT / "worktree_par"
MAX_LINES = 450


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports, anywhere in it but under TYPE_CHECKING."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    # A module with a __getattr__ (gitops) imports what its TYPE_CHECKING block names when first
    # asked for: those imports run, later, and count.
    lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    for node in ast.walk(tree):
        if (
            not lazy
            and isinstance(node, ast.If)
            and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        ):
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            if not target:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in modules else target)
    return {m for m in found if m in modules and m != me}


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph = {m: _imports(p, modules) for m, p in files.items()}
    # A package's __init__ runs before its modules: importing a.b imports a too.
    for m in list(graph):
        graph[m] = {x for x in graph[m]}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a made-up graph with a cycle is reported."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_package_module_is_over_450_lines() -> None:
    big = {
        p.relative_to(ROOT).as_posix(): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


# Renames of a file written aside that are not atomic.replace's: bytecode.py runs before the
# package's imports (it makes their bytecode) and keeps to the standard library.
OWN_RENAMES = {"worktree_par/atomic.py", "worktree_par/bytecode.py"}


def _renames_of_a_written_file(path: Path) -> list[int]:
    """Lines of ``path`` that rename a file the module wrote itself ('os.replace(tmp, ...)'):
    a name made from the pid, opened as it is (a FIFO planted there hangs the command, a
    symlink is followed), where atomic.replace creates its file exclusively."""
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("replace", "rename")
        and isinstance(node.func.value, ast.Name)
        and (
            (
                node.func.value.id == "os"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and "tmp" in node.args[0].id
            )
            or ("tmp" in node.func.value.id and len(node.args) == 1)  # a Path's: 'tmp.replace(at)'
        )
    ]


def test_records_are_written_whole_by_atomic_replace_alone() -> None:
    found = {
        rel: lines
        for p in PKG.rglob("*.py")
        if (rel := p.relative_to(ROOT).as_posix()) not in OWN_RENAMES and (lines := _renames_of_a_written_file(p))
    }
    assert found == {}


def test_the_rename_check_finds_a_hand_made_write(tmp_path: Path) -> None:
    made = tmp_path / "m.py"
    made.write_text(
        "import os\ntmp = 'x.tmp'\nopen(tmp, 'w').write('{}')\nos.replace(tmp, 'x')\n"
        "from pathlib import Path\ntmp2 = Path('y.tmp')\ntmp2.write_text('{}')\ntmp2.replace(Path('y'))\n"
    )
    assert _renames_of_a_written_file(made) == [4, 8]


def _lazy_block() -> dict[str, set[str]]:
    """What gitops/__init__.py imports under TYPE_CHECKING (what mypy reads), by module."""
    tree = ast.parse((PKG / "gitops" / "__init__.py").read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1 and imp.module
                found.setdefault(imp.module, set()).update(a.name for a in imp.names)
    return found


def test_what_gitops_imports_when_first_used_is_what_mypy_reads() -> None:
    """gitops imports most of its modules when a name of theirs is first asked for (wtp path and
    list need none of them): _LAZY must name exactly what the TYPE_CHECKING block imports, and
    every name gitops exports must come out as itself, asked before or after its module was
    imported some other way (a submodule called as a name shadows it: gitops.refs)."""
    import subprocess
    import sys

    from worktree_par import gitops

    lazy = {module: set(names) for module, names in gitops._LAZY.items()}
    assert lazy == _lazy_block()
    assert lazy, "nothing is imported lazily: this test checks nothing"
    modules = sorted(p.stem for p in (PKG / "gitops").glob("*.py") if p.stem != "__init__")
    probe = """
import sys, types
sys.path.insert(0, {root!r})
first = {first!r}
for m in first:
    __import__("worktree_par.gitops." + m)
from worktree_par import gitops
bad = [n for n in gitops.__all__ if isinstance(getattr(gitops, n), types.ModuleType)]
print(bad)
"""
    for first in ([], modules):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(root=str(ROOT), first=first)], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]", f"{out.stdout} (submodules imported first: {first})"
