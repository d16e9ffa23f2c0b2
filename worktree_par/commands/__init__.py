"""One body per command, free of typer.  Both front doors call these: ``cli`` (typer)
after parsing, and ``entry``'s fast path for the commands agents run most.  Each takes
the parsed arguments (``where``: the -C directory), prints what the command prints, and
returns its exit code; errors are raised and turned into one line by ``exits``.  One
module per command, or per small family of them."""
