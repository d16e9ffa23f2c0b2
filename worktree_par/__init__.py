"""wtp: run several development tasks in parallel on one git repository, safely."""

__version__ = "0.1.0"
