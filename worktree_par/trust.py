"""Trust for commands from the committed config (``setup.run``, ``land.gate``, ``check.test``, and
``forge.api`` on another host than the remote's, where a land sends the forge token): they run
only once the user has trusted them as they are (``wtp trust``), and a change to them
is refused, naming the commands, until trusted again; so is a trusted land gate taken out
of the config (a land would then go untested)."""

from __future__ import annotations

from .errors import Refusal
from .repo import Ctx
from .state import State


def config_commands(ctx: Ctx) -> dict[str, list[str]]:
    cmds = {}
    if ctx.cfg.setup_run:
        cmds["setup.run"] = list(ctx.cfg.setup_run)
    if ctx.cfg.land_gate:
        cmds["land.gate"] = [ctx.cfg.land_gate]
    if ctx.cfg.check_test.strip() not in ("", "auto"):
        cmds["check.test"] = [ctx.cfg.check_test]
    if ctx.cfg.forge_api and ctx.cfg.land_via != "push":  # where the forge token goes (trusted when it is
        cmds["forge.api"] = [ctx.cfg.forge_api]  # not the remote's own host: land/forge_lane.py)
    return cmds


def untrusted(ctx: Ctx, state: State, key: str) -> list[str]:
    """The config commands under ``key`` that the user has not trusted yet."""
    cmds = config_commands(ctx).get(key, [])
    trusted = state.extra.get("trusted", {}).get(key, [])
    return [c for c in cmds if c not in trusted]


def require_trust(ctx: Ctx, state: State, key: str) -> None:
    new = untrusted(ctx, state, key)
    if new:
        raise Refusal(
            f"{key} in {ctx.cfg.source} runs commands you have not trusted yet "
            f"({'; '.join(new)}): review them, then run 'wtp trust'"
        )


def trust(ctx: Ctx, state: State) -> dict[str, list[str]]:
    """Record the current config commands as trusted; return what is newly trusted."""
    cmds = config_commands(ctx)
    before = state.extra.get("trusted", {})
    state.extra["trusted"] = cmds
    return {k: [c for c in v if c not in before.get(k, [])] for k, v in cmds.items() if v}


def require_kept(ctx: Ctx, state: State, key: str) -> None:
    """The commands the user trusted under ``key`` are still in the config: taking the land
    gate out (a config change that landed, an agent's say) would let lands go untested, and
    needs the user's say as much as changing it."""
    gone = [c for c in state.extra.get("trusted", {}).get(key, []) if c not in config_commands(ctx).get(key, [])]
    if gone:
        raise Refusal(
            f"{key} in {ctx.cfg.source} no longer has the command you trusted ({'; '.join(gone)}), so nothing "
            f"would test the land: review that change, then run 'wtp trust' (or pass --gate CMD)"
        )
