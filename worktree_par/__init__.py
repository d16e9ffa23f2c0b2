"""wtp: run several development tasks in parallel on one git repository, safely."""

import sys

__version__ = "0.1.0"

if sys.dont_write_bytecode:  # keep wtp's own bytecode where Python will not (see bytecode.py)
    from . import bytecode

    bytecode.install()
