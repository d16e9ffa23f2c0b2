"""What the base's history says about a task being started: the files that usually change
with its declarations, and the live tasks it likely collides with (the co-change layer at
admission; 'wtp check' applies the same rule to live tasks)."""

from __future__ import annotations

import os
from pathlib import Path

from . import claims
from .errors import count
from .repo import Ctx
from .state import LIVE

SUGGESTED_SHOWN = 5


def advise(ctx: Ctx, name: str, base: str, globs: list[str], take: bool) -> tuple[list[str], list[str], list[str]]:
    """What the base's history says about a new task's declarations: the files that usually
    change with them (taken into the declaration with --touch-suggested), and the live tasks
    it likely collides with (one-sided: its expansion hits their declared, recorded or
    changed files, or theirs hits its declared ones).  (globs, tasks to hold it behind under
    'hold', messages.)"""
    from . import cochange
    from .globs import HOT_GLOBS

    ref = ctx.base_tip_ref(base)
    tip = ctx.base_tip(base)
    h = cochange.load(ctx.root, ctx.store.ensure_dir(), ref, HOT_GLOBS + tuple(ctx.cfg.check_hot), tip)
    if h is None:
        return globs, [], []
    said: list[str] = []
    suggested = h.expand(globs)  # without --touch-suggested, also the expansion the rule below uses
    if suggested:
        said += [e.describe() for e in suggested[:SUGGESTED_SHOWN]]
        if len(suggested) > SUGGESTED_SHOWN:
            said.append(f"... and {len(suggested) - SUGGESTED_SHOWN} more files that usually change with these")
        if take:
            globs = sorted(set(globs) | {claims.literal_glob(e.file) for e in suggested})
            said.append(
                f"--touch-suggested: '{name}' also declares {count(len(suggested), 'file')} that usually change with its own"
            )
        else:
            said.append(f"declare them too with 'wtp start {name} --touch-suggested ...' if the task will write them")
    st = ctx.store.read()
    others = [o for o in st.tasks.values() if o.state in LIVE and o.name != name]
    if not others:
        return globs, [], said
    recorded = claims.declarations(ctx, st)
    mine = cochange.Claimant(name, globs, expansion=None if take else suggested)  # the same globs: expanded once
    asked = [e.file for e in mine.expansion(h)]
    with_tree = [o for o in others if o.path and os.path.isdir(o.path)]
    changed: dict[str, list[str]] = {o.name: [] for o in others}
    from .gitops.index_paths import changed_among  # here: only a start with co-change needs it

    for o, found in zip(
        with_tree,
        changed_among(ctx.root, [(Path(str(o.path)), ref, f"refs/heads/{o.branch}") for o in with_tree], asked),
        strict=True,
    ):
        changed[o.name] = list(found)
    held = []
    for o in others:
        hit = cochange.likely(
            h, mine, cochange.Claimant(o.name, [*o.touch, *recorded.get(o.name, ())], changed[o.name])
        )
        if hit is None:
            continue
        held.append(o.name)
        if ctx.cfg.check_cochange == "hold":
            said.append(f'{hit.describe()}: held until it lands ([check] cochange = "hold"; --force starts anyway)')
        else:
            said.append(f'warning: {hit.describe()} ([check] cochange = "warn": it does not hold the task back)')
    return globs, held if ctx.cfg.check_cochange == "hold" else [], said
