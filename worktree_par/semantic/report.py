"""What 'wtp check --test' prints below the collision table."""

from __future__ import annotations

from ..logtail import shown_line
from ..records import shown
from .result import Result
from .runs import label


def _output(lines: list[str]) -> None:
    """A failing run's last lines, as the gate wrote them but for its control characters."""
    for line in lines:
        print(f"  | {shown_line(line)}")


def show(res: Result) -> None:
    """What 'wtp check --test' adds below the collision table: the verdict on the merge,
    each semantic collision with its failing output, tasks failing alone, and the cost."""
    together = " + ".join(res.tasks)
    for name, why in res.skipped.items():
        print(f"not gated: {name} {shown(why)} (a textual conflict: resolve it first)")
    w = res.whole
    if w is None:
        print("semantic: nothing to test together (fewer than two tasks merge cleanly)")
    elif w.verdict == "pass":
        how = f", verdict reused from {'check --test' if w.cached == 'check' else w.cached}" if w.cached else ""
        print(f"semantic: the merge of {together} passes '{res.gate}'{how}")
    for s in res.semantic:
        o = res.outcomes[s]
        print(f"SEMANTIC: {' + '.join(s)} fail together (each passes alone); log: {o.log}")
        _output(o.tail)
    for name in res.alone:
        o = res.outcomes[(name,)]
        print(f"{name} fails '{res.gate}' alone, merged with no other task (not a collision); log: {o.log}")
        _output(o.tail)
    if res.base_red:
        o = res.base_red
        print(
            f"semantic: '{res.gate}' fails on '{res.base}' itself, with no task merged: the tasks are not at fault; "
            f"fix the gate or the base; log: {o.log}"
        )
        _output(o.tail)
    for f in res.flaky_sets:
        if len(f) > 1:
            what, blame = f"the merge of {' + '.join(f)}", "a collision"
        elif f:
            what, blame = f"{f[0]} alone", "failing alone"
        else:
            what, blame = label(f, res.base), "the base's failure"
        print(f"semantic: {what} failed once and passed when run again: a flaky gate? not reported as {blame}")
    if w is not None and w.verdict == "fail" and not (res.semantic or res.alone or res.base_red or res.timed_out):
        print(f"semantic: the merge of {together} failed, but no smaller set does; log: {w.log}")
    for s in res.timed_out:
        o = res.outcomes[s]
        print(f"timed out: the gate on {label(s, res.base)} (no verdict; raise --timeout); log: {o.log}")
    print(
        f"gate runs: {res.runs} (at most {res.peak} at once, budget {res.budget})"
        + (f", verdicts reused: {res.reused}" if res.reused else "")
    )
