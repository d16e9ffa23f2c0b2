"""The end of a command's log, as wtp shows it: a failed gate's last lines (a land's, a check
run's).  Read from the log's last TAIL_BYTES only, since a gate may write gigabytes (the whole
log read and split took ~13 times its size), and printed with control characters escaped
(an ESC in the output would drive the terminal, a CR write over what was shown), tabs kept."""

from __future__ import annotations

import os
from pathlib import Path

from . import atomic
from .records import shown

TAIL_BYTES = 64 * 1024


def last_lines(log: Path, n: int, header: int = 0) -> list[str]:
    """The last ``n`` lines of ``log`` that say something (blank ones left out); ``header``:
    the lines wtp wrote at its top, never shown.  Lines end at '\\n' only: a '\\r' inside one
    (a progress bar) stays in it, to be shown escaped."""
    try:
        with atomic.open_regular(log) as f:  # a FIFO planted there: not waited on
            start = max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES)
            f.seek(start)
            lines = [ln.removesuffix("\r") for ln in f.read().decode("utf-8", errors="replace").split("\n")]
    except OSError:
        return []
    # The header, or the line cut where the read began (kept when it is the only one: the end of
    # one long line of progress updates, its error at the end, is better than nothing).
    if start == 0:
        lines = lines[header:]
    elif any(ln.strip() for ln in lines[1:]):
        lines = lines[1:]
    return [ln for ln in lines if ln.strip()][-n:]


def shown_line(line: str) -> str:
    """A line of a command's output as it is safe to print: its control characters escaped,
    its tabs kept."""
    return "\t".join(shown(part) for part in line.split("\t"))
