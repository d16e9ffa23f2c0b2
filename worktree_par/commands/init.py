"""'wtp init' and 'wtp cochange': the config, and whether co-change helps here."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..exits import err, here, open_repo
from .common import emit

if TYPE_CHECKING:
    from ..repo import Ctx


def init(
    where: str | None,
    *,
    base: str | None = None,
    remote: str | None = None,
    no_remote: bool = False,
    max_active: int = 3,
    force: bool = False,
    agents: bool = False,
) -> int:
    from .. import config, gitops
    from .. import trust as trusting
    from ..errors import Refusal
    from ..repo import Ctx
    from ..state import Store

    if remote and no_remote:
        raise UsageError("--remote and --no-remote exclude each other: pass one")
    repo = gitops.discover(here(where))
    target = repo.config_root / config.CONFIG_FILE
    written: list[str] = []
    if agents:
        from ..agents import install

        for line in install.write_agents(repo.config_root):
            print(line)
        written = [n for n in install.AGENT_FILES if (repo.config_root / n).is_file()]
        if target.exists() and not force:
            print(f"kept the existing {target}")
            if advice := _commit_advice(repo.config_root, written):
                print(advice)
            return 0
    if target.exists() and not force:
        raise Refusal(f"{target} already exists: edit it, or pass --force to overwrite it")
    c = Ctx(repo=repo, cfg=config.Config(remote=remote or ""), store=Store(repo.common_dir))
    if remote is None:
        found = c.remotes()
        remote = "" if no_remote else ("origin" if "origin" in found or not found else found[0])
        c.cfg = config.Config(remote=remote)
    detected = base or c.detect_base()
    from ..gatecheck import Probe

    probe = Probe(repo.config_root)  # runs while the history is replayed
    checking = f"checking the gate ({probe.what}) and the history" if probe.what else "reading the history"
    err(f"wtp init: base '{detected}', remote '{remote or 'none'}'; {checking} ...")
    try:
        mode, why = _calibrate(c, detected, defer=True)
        gate = probe.verdict()
    finally:
        probe.stop()
    forge = _forge_of(c, remote or "")
    unverified = ("", "") if gate.ok or not gate.detected else (gate.detected, gate.note)
    target.write_text(
        config.render_default(detected, remote or "", max_active, gate.gate, (mode, why), forge, unverified)
    )
    with c.store.transaction() as st:  # init trusts what it writes
        trusting.trust(Ctx(repo=repo, cfg=config.load(repo.config_root), store=c.store), st)
    print(f"wrote {target} (base '{detected}', remote '{remote or 'none'}', max_active {max_active})")
    if gate.ok:
        print(f"land gate {gate.gate!r}: {gate.note}; trusted")
    elif gate.detected:
        print(
            f"land gate: none written: {gate.detected!r} was detected, but {gate.note}; "
            f"set [land] gate in {target.name} once it starts (it is there, commented out)"
        )
    else:
        print(f'land gate: none found: set [land] gate in {target.name} (e.g. "make test")')
    print(f"co-change layer {'on (warn)' if mode == 'warn' else 'off'}: {why}")
    if forge:
        print(f"the remote is on {forge}: if '{detected}' is protected, set [land] via = \"{forge}\" in {target.name}")
    if advice := _commit_advice(repo.config_root, [target.name, *written]):
        print(advice)
    return 0


def _commit_advice(root: Path, names: list[str]) -> str:
    """Task worktrees check out the base's commits: a config or agent file left uncommitted
    is not in them, and teammates never see it ("" when all are committed as they are)."""
    from .. import gitops

    changed = set(gitops.status_paths(root))
    names = [n for n in names if n in changed]
    if not names:
        return ""
    return (
        f"commit {' and '.join(names)} so task worktrees, agents and teammates see "
        f"{'them' if len(names) > 1 else 'it'}: git -C {shlex.quote(str(root))} add {' '.join(names)} && "
        f"git -C {shlex.quote(str(root))} commit -m 'wtp: configure'"
    )


def _forge_of(ctx: Ctx, remote: str) -> str | None:
    """The forge the remote's URL names (github, gitlab, gitea), proposed for [land] via."""
    url = ctx.git_setting(f"remote.{remote}.url") if remote else None
    if not url:
        return None
    from ..forge import from_remote_url

    try:
        return from_remote_url(url)[0]
    except Exception:  # noqa: BLE001 - a URL we cannot read proposes nothing
        return None


LONG_HISTORY = 50_000  # commits; init defers calibration beyond it


def _calibrate(ctx: Ctx, base: str, limit: int = 2000, *, defer: bool = False) -> tuple[str, str]:
    """Replay the base's merges: ("warn", figures) where the co-change layer helps, else ("off", why)."""
    from .. import calibration
    from ..globs import HOT_GLOBS
    from ..progress import Watch

    tip = ctx.base_tip(base)
    if tip is None:
        return "off", f"'{base}' has no commits yet"
    from .. import gitops

    if defer and (n := gitops.commit_count(ctx.root, tip)) > LONG_HISTORY:
        # The replay reads the whole history (about 3 s for Flask's 5,500 commits): on a
        # history this long it would keep init from returning for minutes, so init leaves
        # the layer off and says how to calibrate it when convenient.
        return "off", (
            f"not calibrated yet: {n:,} commits is a long history to replay now; "
            f"run 'wtp cochange --calibrate' when convenient (it turns the layer on if it helps here)"
        )
    done = [0, 0]

    def seen(n: int, total: int) -> None:
        done[:] = [n, total]

    with Watch(
        "calibrating co-change",
        err,
        detail=lambda: f"{done[0]}/{done[1]} merges replayed" if done[1] else "reading history",
    ):
        shallow = gitops.shallow_boundary(ctx.repo.common_dir)
        cal = calibration.calibrate(ctx.root, tip, HOT_GLOBS + tuple(ctx.cfg.check_hot), limit, seen, shallow)
    return ("warn" if cal.on else "off"), cal.why


def cochange_cmd(where: str | None, files: list[str], calibrate: bool = False, as_json: bool = False) -> int:
    """What the base's history couples: the companions of FILEs, the index, or (--calibrate)
    whether the layer helps in this repository, written to the config."""
    from .. import cochange, config
    from ..globs import HOT_GLOBS

    c = open_repo(where)
    base = c.detect_base()
    if calibrate:
        if files:
            raise UsageError("--calibrate replays the whole history: leave out the files")
        target = c.cfg.source or (c.repo.config_root / config.CONFIG_FILE)
        if target.name != config.CONFIG_FILE:
            raise UsageError(f"the config is {target} [tool.wtp]: set [tool.wtp.check] cochange there by hand")
        err(f"replaying the merges of '{base}' ...")
        mode, why = _calibrate(c, base)
        from .. import configedit

        configedit.write_cochange(target, mode, why)  # checked to load as this config before it is written
        if as_json:
            emit({"mode": mode, "why": why, "config": str(target)})
        else:
            print(f"co-change layer {'on (warn)' if mode == 'warn' else 'off'}: {why}")
            print(f'wrote cochange = "{mode}" to {target}')
        return 0
    ref = c.base_tip_ref(base)
    h = cochange.load(c.root, c.store.ensure_dir(), ref, HOT_GLOBS + tuple(c.cfg.check_hot), c.base_tip(base))
    if h is None:
        raise UsageError(f"base branch '{base}' has no commits")
    if as_json:
        emit(
            {
                "base": base,
                "tip": h.tip,
                "commits": len(h.commits),
                "files": {f: [e.to_json() for e in h.companions(f)] for f in files},
            }
        )
        return 0
    if not files:
        print(
            f"the history of '{base}' at {h.tip[:12]}: {len(h.commits)} commits of at most {cochange.MAX_FILES} files"
        )
    for f in files:
        found = h.companions(f)
        if not found:
            print(f"{f}: no file usually changes with it")
        for e in found:
            print(e.describe())
    return 0
