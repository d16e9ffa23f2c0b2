"""The options 'wtp check --test' adds (issue 27), kept here so cli.py stays one screen a
command: --test, --budget, --all-pairs and --timeout."""

from typing import Optional

import typer

FAIL_ON = typer.Option(
    "overlap",
    "--fail-on",
    help="Exit 1 at or above this level.",
    metavar="semantic|conflict|overlap|likely|declared|never",
)
TEST = typer.Option(
    False, "--test", help="Also run the gate on the merge of the live tasks (uncommitted work included): semantic."
)
BUDGET: Optional[int] = typer.Option(
    None, "--budget", help="With --test: gate runs at once (default: max_active).", metavar="N"
)
ALL_PAIRS = typer.Option(False, "--all-pairs", help="With --test: gate pairs independent by path too.")
TIMEOUT: Optional[float] = typer.Option(
    None, "--timeout", help="With --test: seconds each gate run may take (default: [land] timeout).", metavar="S"
)
