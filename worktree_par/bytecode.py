"""wtp's own bytecode, kept where Python will not keep it.

With PYTHONDONTWRITEBYTECODE set (common in sandboxes, containers and CI) Python writes no
``__pycache__``; an installed wheel has its bytecode from the installer, but an editable
install (``pip install -e``) has none, so every wtp command compiled every module it
imports from source, 3-4x the start-up of a command such as ``wtp path``.

Here wtp's modules, and nothing else, are loaded through a loader that reads the usual
``__pycache__`` file when it is there and valid, and otherwise a copy of its own under
``$XDG_CACHE_HOME/wtp/bytecode`` (``~/.cache`` by default), written there when missing or
stale (checked as Python does, by the source's mtime and size).  The setting is still
honoured where it matters to the user: nothing is written next to any source, and no
other module's loading changes.  ``WTP_BYTECODE_CACHE=0`` turns the copy off; a cache
folder that cannot be written only means compiling again next time.
"""

from __future__ import annotations

import _imp
import marshal
import os
import sys
from importlib._bootstrap_external import MAGIC_NUMBER, cache_from_source  # importlib.util costs ~2 ms
from importlib.machinery import PathFinder, SourceFileLoader

TYPE_CHECKING = False  # typing's own costs this module's callers ~2 ms; mypy reads the name
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import CodeType, ModuleType

PACKAGE = "worktree_par"
_CODE = type(compile("", "", "exec"))  # types.CodeType, without importing types


def cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wtp", "bytecode", sys.implementation.cache_tag or "python")


def private_path(root: str, source: str) -> str:
    """Where the copy of ``source``'s bytecode lives: its absolute path under ``root``
    (cache_root(); two checkouts of wtp never share a file)."""
    return os.path.join(root, os.path.abspath(source).lstrip(os.sep)) + "c"


def _header(source: str) -> bytes:
    st = os.stat(source)
    mtime, size = int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF
    return MAGIC_NUMBER + b"\0\0\0\0" + mtime.to_bytes(4, "little") + size.to_bytes(4, "little")


class CachingLoader(SourceFileLoader):
    """A source loader whose bytecode falls back to the private copy under ``root``."""

    def __init__(self, name: str, path: str, root: str) -> None:
        super().__init__(name, path)
        self.root = root

    def get_code(self, fullname: str) -> CodeType | None:
        source = self.get_filename(fullname)
        try:
            header = _header(source)
        except OSError:
            return super().get_code(fullname)
        mine = private_path(self.root, source)
        for pyc in (cache_from_source(source), mine):
            try:
                with open(pyc, "rb") as f:
                    data = f.read()
                if data[:16] == header:
                    code = marshal.loads(data[16:])
                    if type(code) is not _CODE:
                        continue  # a header that matches over a body that is not code: compiled again
                    _imp._fix_co_filename(code, source)  # type: ignore[attr-defined]  # (as Python's loader: a moved checkout)
                    return code
            except (OSError, ValueError, EOFError, TypeError):
                continue
        code = self.source_to_code(self.get_data(source), source)
        try:
            os.makedirs(os.path.dirname(mine), exist_ok=True)
            tmp = f"{mine}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(header + marshal.dumps(code))
            os.replace(tmp, mine)  # concurrent commands: each file is whole or absent
        except OSError:
            pass
        return code


class Finder:
    """Finds wtp's own modules as the path finder does, with CachingLoader as their loader."""

    def __init__(self, root: str) -> None:
        self.root = root

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(PACKAGE + "."):
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            spec.loader = CachingLoader(spec.loader.name, spec.loader.path, self.root)
        return spec


def install() -> None:
    """Put the finder first, once, when Python writes no bytecode and the copy is wanted.
    Where the package has bytecode of its own (an installed wheel) the loader reads that,
    as Python's would, for the same cost; a module edited since (a checkout whose
    ``__pycache__`` was written once, by a run without the setting) is no longer compiled
    on every command: its copy is kept instead."""
    if not sys.dont_write_bytecode or os.environ.get("WTP_BYTECODE_CACHE") == "0":
        return
    if not any(isinstance(f, Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, Finder(cache_root()))
