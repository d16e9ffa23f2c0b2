"""'wtp doctor' and 'wtp trust'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from ..exits import open_repo
from .common import emit

if TYPE_CHECKING:
    pass


def doctor(
    where: str | None, fix: bool = False, adopt: bool = False, as_json: bool = False, stale_claims: float | None = None
) -> int:
    from .. import doctor as doc

    if stale_claims is not None and not fix:
        raise UsageError("--stale-claims clears claims: it goes with --fix")
    if stale_claims is not None and not 0 <= stale_claims < float("inf"):  # nan and inf pass typer's min=0
        raise UsageError(f"--stale-claims must be a number of days (0 or more), not {stale_claims:g}")
    findings = doc.doctor(open_repo(where), fix, adopt, stale_claims)
    if as_json:
        emit(
            {"healthy": not findings, "findings": [{"problem": f.problem, "fixed": f.fixed or None} for f in findings]}
        )
    elif not findings:
        print("healthy: nothing to fix")
    for f in findings if not as_json else []:
        print(f"problem: {f.problem}")
        if f.fixed.startswith("could not fix"):  # said as it is, not as 'fixed: could not fix'
            print(f"  {f.fixed}")
        elif f.fixed:
            print(f"  fixed: {f.fixed}")
        elif fix:
            print("  not fixed automatically: see above")
    if not fix and any(f.fix for f in findings) and not as_json:
        print("run 'wtp doctor --fix' to repair")
    if fix:  # 'wtp doctor --fix && ...': 0 once everything it found is fixed
        return ExitCode.FINDING if any(not f.fixed or f.fixed.startswith("could not fix") for f in findings) else 0
    return ExitCode.FINDING if findings else 0


def trust(where: str | None) -> int:
    from .. import trust as trusting

    c = open_repo(where)
    with c.store.transaction() as st:
        before = dict(st.extra.get("trusted", {}))
        new = trusting.trust(c, st)
    cmds = trusting.config_commands(c)
    for key, items in before.items():  # taken out of the config since: no longer trusted
        for cmd in items:
            if cmd not in cmds.get(key, []):
                print(f"no longer trusted {key}: {cmd} (not in the config any more)")
    if not cmds:
        print("the config has no commands to trust")
    for key, items in cmds.items():
        for cmd in items:
            print(f"trusted {key}: {cmd}" + ("" if cmd in new.get(key, []) else " (unchanged)"))
    return 0
