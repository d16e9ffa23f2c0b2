"""The second publisher behind the one publication point: through a forge's pull or merge
request ([land] via = github | gitlab | gitea), for teams whose base is protected.

The candidate was built and gated locally exactly as for a push.  Publishing it: push it to
the task's branch on the remote (compare-and-swap against what the forge has), open the
request (or find the one open for that head: never a second), record its number, post the
local verdict as the commit status ``wtp/gate``, then merge it through the API with the
head-SHA guard while the base is still the candidate's parent (``merge = "direct"``), or
hand it to the forge's queue and wait (``merge = "queue"``).  A moved base is a lost race:
the conductor rebuilds on the new base (and a tree that passed is not gated again).  Once
merged, the base is fetched and its tree compared with the tested one, and the head
branch is deleted on the forge.

Crash safety: the request's number is recorded before anything is merged; recovery asks
the forge (``landed_commit``): merged means landed, open means roll back and land again
(which finds the same request), closed means blocked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from .. import crashpoints, gitops
from ..errors import LandBlocked, Say
from ..gitops import Sha
from ..repo import Ctx
from ..state import Task
from .entry import Entry

if TYPE_CHECKING:
    from ..forge import Forge, Merged, Method, Refused, Request

POLL = 2.0  # seconds between looks at a request the forge's queue holds


def enabled(ctx: Ctx) -> bool:
    return ctx.cfg.land_via != "push"


def connect(ctx: Ctx, say: Say) -> Forge:
    """The forge client for [land] via and [forge]; one line (exit 2) when the token or the
    repository cannot be found."""
    from .. import forge

    remote = ctx.remote()
    url = ctx.git_setting(f"remote.{remote}.url") or "" if remote else ""
    return forge.connect(
        ctx.cfg.land_via,
        repo=ctx.cfg.forge_repo,
        api=ctx.cfg.forge_api,
        remote_url=url,
        timeout=ctx.cfg.remote_timeout,
        say=say,
    )


def suggestion(ctx: Ctx, remote: str) -> str:
    """For a push the remote refused: the [land] via that lands through its forge, if the
    remote's URL names one ('' otherwise)."""
    from ..forge import from_remote_url

    try:
        kind, _ = from_remote_url(ctx.git_setting(f"remote.{remote}.url") or "")
    except Exception:  # noqa: BLE001 - a URL we cannot read: no suggestion
        return ""
    return f'; if the branch is protected, land through its pull requests: set [land] via = "{kind}"' if kind else ""


def publish(ctx: Ctx, e: Entry, base_tip: Sha, remote: str, say: Say) -> Sha | None:
    """Publish ``e`` through the forge: the commit the base took, or None when the base moved
    (rebuild).  LandBlocked when the forge refuses (closed, a failing required check)."""
    from ..forge import Merged, Moved, Queued, Refused

    f = connect(ctx, say)
    t, cand = e.task, e.published_commit
    head = t.branch
    old = f.branch_tip(head)
    pushed = gitops.push_ref(ctx.root, remote, f"refs/heads/{head}", cand, old)
    if not pushed.updated:
        raise LandBlocked(
            f"could not push the candidate of '{t.name}' to '{head}' on {remote} "
            f"({pushed.reason or pushed.summary}): run 'wtp land {t.name}' again"
        )
    title, body = _describe(ctx, e, base_tip)
    req = f.find_or_open(head, t.base, title, body)
    ctx.store.update(t, request=req.number)  # before anything is merged: recovery asks the forge
    crashpoints.step("land:forge-opened")
    e.messages.append(f"through {f.kind} request #{req.number}: {req.url}")
    if e.gate:
        f.post_status(cand, "success", _short(f"wtp gate passed: {e.gate}"))
    method = cast("Method", ctx.cfg.forge_method or e.strategy)  # both validated: rebase | squash | merge
    if ctx.cfg.forge_merge == "queue":
        result = f.enqueue(req.number, cand, method)
        if isinstance(result, Queued):
            say(f"'{t.name}': request #{req.number} is in {f.kind}'s queue ({result.how}); waiting for it")
            result = _wait(ctx, f, req)
    else:
        result = f.merge(req.number, cand, method, base_sha=base_tip)
    crashpoints.step("land:forge-merged")
    if isinstance(result, Moved):
        return None
    if isinstance(result, Refused):
        raise LandBlocked(
            f"{f.kind} did not merge request #{req.number} of '{t.name}' ({result.reason}): {req.url}; "
            f"'{t.base}' is untouched; fix that on the forge, then run 'wtp land {t.name}' again"
        )
    assert isinstance(result, Merged)
    merged = Sha(result.sha)
    _check_tree(ctx, e, merged, remote)
    f.close_branch(head)
    return merged


def _wait(ctx: Ctx, f: Forge, req: Request) -> Merged | Refused:
    """Poll a queued request until the forge merged, closed or dropped it (bounded by the gate's timeout)."""
    from ..forge import Merged, Refused

    deadline = time.monotonic() + ctx.cfg.land_timeout
    looks = 0
    while time.monotonic() < deadline:
        now = f.get(req.number)
        if now.state == "merged" and now.merge_sha:
            return Merged(now.merge_sha)
        if now.state == "closed":
            return Refused("the request was closed")
        if not now.queued:
            # Out of the queue: merged or closed in between two of get's calls, or dropped;
            # one more look tells which.
            looks += 1
            if looks > 1:
                return Refused(f"the forge's queue dropped it ({now.checks_summary or 'no reason given'})")
            continue
        looks = 0
        time.sleep(POLL)
    return Refused(f"still in the forge's queue after {ctx.cfg.land_timeout:g}s ([land] timeout)")


def _check_tree(ctx: Ctx, e: Entry, merged: Sha, remote: str) -> None:
    """The base now holds ``merged``: fetched, and its tree compared with the tested one."""
    base = e.task.base
    gitops.fetch_branch(ctx.root, remote, base, f"refs/remotes/{remote}/{base}")
    if gitops.rev_parse(ctx.root, merged) is None:
        e.messages.append(f"warning: the forge's merge {merged[:12]} is not on {remote}/{base} after a fetch")
        return
    if gitops.tree_of(ctx.root, merged) != gitops.tree_of(ctx.root, e.published_commit):
        e.messages.append(
            f"WARNING: the forge's merge {merged[:12]} does not hold the tree wtp tested for '{e.name}' "
            f"(the forge changed the content while merging): check '{base}' now"
        )


def _describe(ctx: Ctx, e: Entry, base_tip: Sha) -> tuple[str, str]:
    msgs, _ = gitops.log_messages(ctx.root, base_tip, e.published_commit)
    first = next((line for line in msgs.splitlines() if line.strip()), e.name)
    title = first if msgs.count("\n\n") == 0 and "\n" not in msgs.strip() else f"{e.name}: {first}"
    body = f"Landed by wtp: task '{e.name}', candidate {e.published_commit}, gated by {e.gate or 'no gate'}.\n\n{msgs}"
    return _short(title, 200), body


def _short(text: str, n: int = 140) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def landed_commit(ctx: Ctx, t: Task) -> tuple[str, str | None]:
    """What the forge says of the task's recorded request: ("merged", sha), ("open", None),
    ("closed", None), or ("none", None) when no request was recorded."""
    if t.request is None:
        return "none", None
    req = connect(ctx, lambda _m: None).get(t.request)
    if req.state != "merged" or not req.merge_sha:
        return req.state, None
    remote = ctx.remote()
    if remote:  # the merge commit must be here before anything is judged by it
        gitops.fetch_branch(ctx.root, remote, t.base, f"refs/remotes/{remote}/{t.base}")
    return req.state, req.merge_sha
