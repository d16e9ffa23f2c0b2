"""Waiting for a queued task to start (``wtp start --wait``)."""

from __future__ import annotations

import time

from . import config
from .errors import Refusal, Say, WaitTimeout, quiet
from .gates import OnChange
from .repo import Ctx
from .state import FINAL, LIVE, QUEUED, Task
from .tasks import CANNOT_START, promote


def wait_active(ctx: Ctx, name: str, timeout: float | None, say: Say = quiet) -> Task:
    """Block until a queued task is admitted and ready (``wtp start --wait``).

    Whatever frees a slot or a collision (a land, 'wtp rm') starts the queued tasks itself,
    so the waiter only has to see its task become active: it looks at the registry with a
    stat every LOOK seconds and reads it when it changed; it runs the promotion itself only
    then (at least every PROMOTE_EVERY seconds, for a start that died half-way).  A changed
    .wtp.toml (max_active raised, say) is read again and promotes at once: it writes nothing
    to the registry."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    changed = OnChange(ctx.store.file, lambda: object(), every=PROMOTE_EVERY)  # a new value: it changed
    edited = OnChange(ctx.repo.config_root / config.CONFIG_FILE, lambda: object(), every=PROMOTE_EVERY)
    seen, cfg_seen = None, None  # read again at once too: it may have changed since the command read it
    told: set[str] = set()

    def once(m: str) -> None:  # promote is run again and again: what it says is said once
        if m not in told:
            told.add(m)
            say(m)

    while True:
        now = changed()
        if edited() is not cfg_seen:
            cfg_seen = edited()
            ctx.cfg = config.load(ctx.repo.config_root)
            now = object()
        if now is not seen:
            seen = now
            promote(ctx, once)
            t = ctx.store.read().task(name)
            if t.state in LIVE and not t.phase:
                return t
            if t.state in FINAL:
                raise Refusal(f"task '{name}' was {t.state} while waiting")
            if t.state == QUEUED and t.note.startswith(CANNOT_START):  # its turn came, and its start failed
                raise Refusal(f"task '{name}' {t.note}")
            msg = (
                f"waiting for a slot for '{name}': {t.note}"
                if t.state == QUEUED
                else f"waiting for '{name}' to be set up"
            )
            if msg != last:
                say(msg)
                last = msg
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s; task '{name}' stays queued ({t.note})")
        time.sleep(LOOK if deadline is None else max(0.005, min(LOOK, deadline - time.monotonic())))


LOOK = 0.02  # seconds between two looks (a stat) at the registry while waiting for a slot
PROMOTE_EVERY = 1.0
