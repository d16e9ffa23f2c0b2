"""The second publisher behind the one publication point: through a forge's pull or merge
request ([land] via = github | gitlab | gitea), for teams whose base is protected.

The candidate was built and gated locally exactly as for a push.  Publishing it: push it to
the task's branch on the remote (compare-and-swap against what the forge has, and only when
that branch is this land's own or a leftover the forge keeps: see below), open the request
(or find the one open for that head: never a second), record its number, post the local
verdict as the commit status ``wtp/gate``, then merge it through the API with the head-SHA
guard while the base is still the candidate's parent (``merge = "direct"``), or hand it to
the forge's queue and wait (``merge = "queue"``).  A moved base is a lost race: the
conductor rebuilds on the new base (and a tree that passed is not gated again).  Once
merged, the base is fetched and its tree compared with the tested one, and the head branch
is deleted on the forge.

Whose head branch: the head branch is one per task name on the forge, and two clones may
land a task of the same name.  The request's body names the land (this clone's id, the
task's name and seq).  An open request without that mark is another clone's: the land is
blocked, nothing pushed.  A head branch with no open request is pushed over only when it is
the head of a request merged or closed (the forge keeps that commit).  A request merged with
a head that is not this land's candidate is not its land (unless that merge holds the tested
tree): blocked, the task keeps its branch and worktree.

Giving up on a queued request (``[land] timeout``, Ctrl-C, SIGTERM, a failing call) takes it
out of the forge's queue first, then asks it once more: merged meanwhile is landed; out of the
queue is not landed; still queued, or not askable, is not known (PublishUnknown), never "not
landed" unasked.

Crash safety: the request's number is recorded before anything is merged; recovery asks
the forge (``landed_commit``, which first takes a queued request out of the queue): merged
with the candidate means landed, open means roll back and land again (which finds the same
request), closed, or merged with another head, means blocked.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, cast

from .. import crashpoints, gitops, interrupts
from ..errors import LandBlocked, Refusal, Say, WtpError
from ..gitops import Sha
from ..repo import Ctx
from ..state import Task
from .entry import Entry

if TYPE_CHECKING:
    from ..forge import Forge, Merged, MergedOther, Method, Refused, Request

POLL = 2.0  # seconds between looks at a request the forge's queue holds
PUSHED = "refs/wtp/forge-pushed/"  # <head branch>/<candidate>: what this clone pushed there (whose is a leftover)


def enabled(ctx: Ctx) -> bool:
    return ctx.cfg.land_via != "push"


def connect(ctx: Ctx, say: Say) -> Forge:
    """The forge client for [land] via and [forge]; one line (exit 2) when the token or the
    repository cannot be found."""
    from .. import forge

    remote = ctx.remote()
    url = ctx.git_setting(f"remote.{remote}.url") or "" if remote else ""
    _trusted_api(ctx, url)
    return forge.connect(
        ctx.cfg.land_via,
        repo=ctx.cfg.forge_repo,
        api=ctx.cfg.forge_api,
        remote_url=url,
        timeout=ctx.cfg.remote_timeout,
        say=say,
    )


def _trusted_api(ctx: Ctx, remote_url: str) -> None:
    """The committed ``[forge] api`` receives the token: on the remote's own host (or its
    ``api.`` host; loopback for a remote on this machine, as the tests' stand-in) it is the
    forge's; on any other host it must be trusted first, as a committed command must ('wtp trust')."""
    from .. import trust
    from ..forge import ForgeConfigError, parse_remote_url
    from ..forge.http import is_loopback

    api_host = (urllib.parse.urlsplit(ctx.cfg.forge_api.strip()).hostname or "").lower()
    try:
        host = parse_remote_url(remote_url).host
    except ForgeConfigError:  # a path, or a URL without a repository: a remote on this machine
        host = ""
    if not api_host or (host and api_host in (host, f"api.{host}")):
        return
    if is_loopback(api_host) and (not host or is_loopback(host)):
        return
    if trust.untrusted(ctx, ctx.store.read(), "forge.api"):
        raise Refusal(
            f"[forge] api in {ctx.cfg.source} sends your forge token to {api_host}, which is not the host of the "
            f"remote ({host or 'none'}): review it, then run 'wtp trust'"
        )


def publish(ctx: Ctx, e: Entry, base_tip: Sha, remote: str, say: Say) -> Sha | None:
    """Publish ``e`` through the forge: the commit the base took, or None when the base moved
    (rebuild).  LandBlocked when the forge refuses (closed, a failing required check), when
    another clone lands a task of the same name through the same head branch, or when the
    request was merged with a head that is not this land's candidate."""
    from ..forge import Merged, MergedOther, Moved, Queued, Refused

    f = connect(ctx, say)
    t, cand = e.task, e.published_commit
    head = t.branch
    mark = _mark(ctx, t)
    old = _replaceable(ctx, f, t, head, mark, remote)
    gitops.update_ref(ctx.root, f"{PUSHED}{head}/{cand}", cand, None, "a candidate pushed to the forge")  # ours
    pushed = gitops.push_ref(ctx.root, remote, f"refs/heads/{head}", cand, old)
    if not pushed.updated:
        raise LandBlocked(
            f"could not push the candidate of '{t.name}' to '{head}' on {remote} "
            f"({pushed.reason or pushed.summary}; another clone may have pushed to it meanwhile): "
            f"'{t.base}' is untouched; run 'wtp land {t.name}' again"
        )
    title, body = _describe(ctx, e, base_tip, mark)
    req = f.find_or_open(head, t.base, title, body)
    if mark not in req.body:  # opened by another clone between our look and our push
        raise LandBlocked(_another(t, head, req, f.kind))
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
            result = _wait(ctx, f, req, cand, e)
            # Dropped by the queue after the base moved: a lost race, rebuilt; twice only, since a
            # queue that keeps dropping it may have a reason of its own (said when it blocks).
            if isinstance(result, Refused) and e.races < 2 and _moved(ctx, remote, t.base, base_tip):
                result = Moved(f"the forge's queue dropped it after '{t.base}' moved ({result.reason})")
    else:
        result = f.merge(req.number, cand, method, base_sha=base_tip)
    crashpoints.step("land:forge-merged")
    if isinstance(result, Moved):
        return None
    if isinstance(result, Refused):
        timed_out = "([land] timeout)" in result.reason
        todo = "raise [land] timeout, or" if timed_out else "fix that on the forge, then"
        raise LandBlocked(
            f"{f.kind} did not merge request #{req.number} of '{t.name}' ({result.reason}): {req.url}; "
            f"'{t.base}' is untouched; {todo} run 'wtp land {t.name}' again"
        )
    if isinstance(result, MergedOther):
        if not _holds(ctx, e.task.base, result.sha, cand, remote):
            raise LandBlocked(
                f"{f.kind} merged request #{req.number} of '{t.name}' with the head {result.head[:12]}, not with "
                f"the candidate wtp gated ({cand[:12]}): someone else pushed to its head branch '{head}' "
                f"(another clone landing a task of the same name?), so '{t.name}' is not landed; its branch "
                f"and worktree are kept: see {req.url}, then run 'wtp land {t.name}' again"
            )
        e.messages.append(f"request #{req.number} was merged with another head, but with the tree wtp tested")
        result = Merged(result.sha)
    assert isinstance(result, Merged)
    merged = Sha(result.sha)
    _check_tree(ctx, e, merged, remote, f.kind, req.number)
    f.close_branch(head)
    _forget_tracking(ctx, remote, head)
    return merged


def _moved(ctx: Ctx, remote: str, base: str, base_tip: Sha) -> bool:
    """The base moved past the candidate's parent (fetched now): a request a queue dropped
    then lost a race, and is rebuilt rather than blocked (a forge whose queue needs requests
    up to date drops the ones behind)."""
    try:
        gitops.fetch_branch(ctx.root, remote, base, f"refs/remotes/{remote}/{base}")
    except WtpError:
        return False  # cannot tell: blocked with the forge's reason, as before
    return gitops.ref_value(ctx.root, f"refs/remotes/{remote}/{base}") != base_tip


def _forget_tracking(ctx: Ctx, remote: str | None, head: str) -> None:
    """The head branch is gone on the forge: so go its remote-tracking ref here, which only
    wtp's own push of a candidate made, and the records of the candidates pushed there."""
    refs = (
        {f"refs/remotes/{remote}/{head}": gitops.ref_value(ctx.root, f"refs/remotes/{remote}/{head}")} if remote else {}
    )
    for ref, tip in {**refs, **gitops.refs_under(ctx.root, f"{PUSHED}{head}/")}.items():
        if tip is not None:
            gitops.delete_ref(ctx.root, ref, tip)


def tidy_landed(ctx: Ctx, t: Task) -> None:
    """(recovery) A killed land the forge merged: its head branch deleted, as the land would
    have; best effort, since the task is landed whatever happens here."""
    try:
        f = connect(ctx, lambda _m: None)
        req = f.get(t.request) if t.request is not None else None
        if req is not None and f.branch_tip(req.head) == req.head_sha and f.close_branch(req.head):
            _forget_tracking(ctx, ctx.remote(), req.head)
    except Exception:  # noqa: BLE001 - a leftover head branch loses nothing: the next land pushes over it
        pass


def _mark(ctx: Ctx, t: Task) -> str:
    """What the request's body says of whose land it is: this clone's id and the task (its
    name and seq).  A head branch whose open request lacks it is another clone's."""
    from ..remote.identity import clone_id

    return f"wtp-land: clone {clone_id(ctx)}, task '{t.name}' seq {t.seq}"


def _another(t: Task, head: str, req: Request, kind: str) -> str:
    return (
        f"another clone lands a task named '{t.name}' through the same head branch '{head}' "
        f"({kind} request #{req.number}: {req.url}); '{t.base}' is untouched by this land and "
        f"'{t.name}' keeps its branch and worktree: run 'wtp land {t.name}' again once that request "
        f"is merged or closed, or start this work under another task name"
    )


def _replaceable(ctx: Ctx, f: Forge, t: Task, head: str, mark: str, remote: str) -> str | None:
    """What the head branch holds on the forge, when this land may push over it (the push
    compares and swaps against it): nothing, this land's own open request from an earlier
    attempt (its body carries ``mark``), the head of a request that is merged or closed
    (the forge keeps that), or a candidate this clone pushed there in an earlier attempt
    whose request was never opened (recorded under PUSHED before the push).  LandBlocked
    when the branch is another clone's."""
    tip = f.branch_tip(head)
    found = f.requests(head, t.base)
    opened = [r for r in found if r.state == "open"]
    for r in opened:
        if mark not in r.body:
            raise LandBlocked(_another(t, head, r, f.kind))
    if opened or tip is None or any(r.head_sha == tip for r in found):
        return tip
    if gitops.ref_value(ctx.root, f"{PUSHED}{head}/{tip}") == tip:
        return tip
    raise LandBlocked(
        f"the head branch '{head}' on {f.kind} holds {tip[:12]}, which no request names: another clone may "
        f"be about to open one for its own task '{t.name}'; '{t.base}' is untouched and '{t.name}' keeps its "
        f"branch and worktree; if that branch is a leftover, delete it ('git push {remote} --delete {head}'), "
        f"then run 'wtp land {t.name}' again"
    )


def _holds(ctx: Ctx, base: str, merged: str, cand: str, remote: str | None) -> bool:
    """Whether the base's commit ``merged`` holds exactly the tree of ``cand`` (the base fetched
    from ``remote`` first; None: already fetched)."""
    if remote:
        gitops.fetch_branch(ctx.root, remote, base, f"refs/remotes/{remote}/{base}")
    if not merged or gitops.rev_parse(ctx.root, merged) is None or gitops.rev_parse(ctx.root, cand) is None:
        return False
    return gitops.tree_of(ctx.root, merged) == gitops.tree_of(ctx.root, cand)


def _merged(now: Request, cand: str) -> Merged | MergedOther:
    from ..forge import Merged, MergedOther

    sha = now.merge_sha or ""
    return Merged(sha) if now.head_sha == cand else MergedOther(sha, now.head_sha)


def _wait(ctx: Ctx, f: Forge, req: Request, cand: str, e: Entry) -> Merged | MergedOther | Refused:
    """Poll a queued request until the forge merged, closed or dropped it (bounded by the
    gate's timeout).  Given up on (the timeout, Ctrl-C, SIGTERM, a failing call), the request
    is taken out of the forge's queue first, so that it does not merge after wtp said it did not."""
    from ..forge import Refused

    try:
        deadline = time.monotonic() + ctx.cfg.land_timeout
        looks = 0
        while time.monotonic() < deadline:
            interrupts.check()  # a Ctrl-C a finalizer swallowed, in the call that queued it or since
            now = f.get(req.number)
            if now.state == "merged" and now.merge_sha:
                return _merged(now, cand)
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
    except BaseException:
        with interrupts.finishing():  # a second Ctrl-C must not cut this short
            try:
                f.dequeue(req.number)
            except Exception:  # noqa: BLE001 - asked again (landed_commit): still queued is 'unknown'
                pass
        raise
    return _give_up(f, req, cand, e, f"still in the forge's queue after {ctx.cfg.land_timeout:g}s ([land] timeout)")


def _give_up(f: Forge, req: Request, cand: str, e: Entry, why: str) -> Merged | MergedOther | Refused:
    """Take the request out of the queue, then ask it once more: merged meanwhile (landed),
    out of the queue (not landed), or a ForgeError when whether it may still merge is not known."""
    from ..forge import ForgeError, Refused

    failed: Exception | None = None
    try:
        f.dequeue(req.number)
    except ForgeError as err:
        failed = err
    now = f.get(req.number)
    if now.state == "merged" and now.merge_sha:
        e.messages.append(f"{why}, but {f.kind} merged request #{req.number} while wtp took it out of the queue")
        return _merged(now, cand)
    if now.state == "closed":
        return Refused(f"{why}; the request was closed")
    if failed is not None or now.queued:
        raise ForgeError(
            f"{why}, and it could not be taken out of it ({failed or 'it is still queued'}): {f.kind} may still "
            f"merge request #{req.number} ({req.url})"
        )
    return Refused(f"{why}: taken out of the queue")


def _on_base(ctx: Ctx, merged: str, remote: str, base: str) -> bool:
    """The fetched base holds the commit the forge says it merged as."""
    tracking = f"refs/remotes/{remote}/{base}"
    return gitops.rev_parse(ctx.root, merged) is not None and gitops.is_ancestor(ctx.root, merged, tracking)


def _not_on_base(kind: str, number: int, merged: str, remote: str, t: Task) -> str:
    """The forge says it merged, the fetched base does not hold it: not landed (a forge that
    says merged wrongly, or a base rewritten since): the task is blocked, its work kept."""
    return (
        f"{kind} says it merged request #{number} of '{t.name}' as {merged[:12]}, but {remote}/{t.base} does not "
        f"hold that commit after a fetch: '{t.name}' is not landed; its branch and worktree are kept: check "
        f"'{t.base}' on the forge, then run 'wtp land {t.name}' again (a new request) or 'wtp rm {t.name}'"
    )


def _check_tree(ctx: Ctx, e: Entry, merged: Sha, remote: str, kind: str, number: int) -> None:
    """The base now holds ``merged``: fetched, and its tree compared with the tested one;
    LandBlocked when the base does not hold it (a forge that says merged, wrongly or too early)."""
    base = e.task.base
    gitops.fetch_branch(ctx.root, remote, base, f"refs/remotes/{remote}/{base}")
    if not _on_base(ctx, merged, remote, base):
        raise LandBlocked(_not_on_base(kind, number, merged, remote, e.task))
    if gitops.tree_of(ctx.root, merged) != gitops.tree_of(ctx.root, e.published_commit):
        e.messages.append(
            f"WARNING: the forge's merge {merged[:12]} does not hold the tree wtp tested for '{e.name}' "
            f"(the forge changed the content while merging): check '{base}' now"
        )


def _describe(ctx: Ctx, e: Entry, base_tip: Sha, mark: str) -> tuple[str, str]:
    msgs, _ = gitops.log_messages(ctx.root, base_tip, e.published_commit)
    first = next((line for line in msgs.splitlines() if line.strip()), e.name)
    title = first if msgs.count("\n\n") == 0 and "\n" not in msgs.strip() else f"{e.name}: {first}"
    body = (
        f"Landed by wtp: task '{e.name}', candidate {e.published_commit}, gated by {e.gate or 'no gate'}.\n\n"
        f"{msgs}\n\n<!-- {mark} -->\n"
    )
    return _short(title, 200), body


def _short(text: str, n: int = 140) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def landed_commit(ctx: Ctx, t: Task) -> tuple[str, str | None]:
    """What the forge says of the task's recorded request: ("merged", sha) when merged with
    the land's candidate (or with another head whose merge holds the candidate's tree);
    ("taken", None) when merged with another head (someone else's work); ("lacking", None) when
    merged as a commit the fetched base does not hold; ("open", None),
    ("closed", None), or ("none", None) when no request was recorded.

    In queue mode an open request is first taken out of the forge's queue, so that "open"
    stays true: one still queued (or that cannot be taken out) raises ForgeError, as a forge
    that cannot be asked does: whether it lands is not known yet."""
    from ..forge import ForgeError

    if t.request is None:
        return "none", None
    f = connect(ctx, lambda _m: None)
    req = f.get(t.request)
    if req.state == "open" and ctx.cfg.forge_merge == "queue":
        f.dequeue(req.number)
        req = f.get(t.request)
        if req.state == "open" and req.queued:
            raise ForgeError(f"{f.kind} request #{req.number} of '{t.name}' is still in the forge's queue")
    if req.state != "merged" or not req.merge_sha:
        return req.state, None
    remote = ctx.remote()
    if remote:  # the merge commit must be on the base before anything is judged by it
        gitops.fetch_branch(ctx.root, remote, t.base, f"refs/remotes/{remote}/{t.base}")
        if not _on_base(ctx, req.merge_sha, remote, t.base):
            return "lacking", None
    if t.candidate and req.head_sha != t.candidate and not _holds(ctx, t.base, req.merge_sha, t.candidate, None):
        return "taken", None
    return req.state, req.merge_sha


def abandoned(ctx: Ctx, t: Task) -> list[str]:
    """``t`` was removed ('wtp rm'): its request, if still open and this clone's land of it
    (the mark), is closed unmerged and its head branch deleted on the forge (the closed request
    keeps the commit there), so no one merges it later; what was done, or what is left and why."""
    if t.request is None or not enabled(ctx):
        return []
    kind = ctx.cfg.land_via
    try:
        f = connect(ctx, lambda _m: None)
        req = f.get(t.request)
        if req.state != "open":
            return []
        if _mark(ctx, t) not in req.body:
            return [f"{kind} request #{req.number} ({req.url}) is not this clone's land of '{t.name}': left open"]
        if req.queued or ctx.cfg.forge_merge == "queue":
            f.dequeue(req.number)
        f.close(req.number)
        gone = f.branch_tip(req.head) == req.head_sha and f.close_branch(req.head)
        if gone:
            _forget_tracking(ctx, ctx.remote(), req.head)
    except Exception as e:  # noqa: BLE001 - the task is removed all the same: say what is left
        return [
            f"{kind} request #{t.request} of '{t.name}' could not be closed ({str(e).split(': ', 1)[0]}): "
            "close it on the forge, or it may still be merged"
        ]
    branch = f" and deleted its head branch '{req.head}'" if gone else ""
    return [f"closed {kind} request #{req.number} ({req.url}){branch}"]


def left_open(ctx: Ctx, t: Task) -> str:
    """For a land given back (Ctrl-C, withdrawn): where its request stays open ('' when none)."""
    if t.request is None or not enabled(ctx):
        return ""
    try:
        req = connect(ctx, lambda _m: None).get(t.request)
    except Exception:  # noqa: BLE001 - only a hint: the task is given back all the same
        return ""
    if req.state != "open":
        return ""
    return (
        f"its {ctx.cfg.land_via} request #{req.number} stays open ({req.url}): 'wtp land {t.name}' takes it "
        f"up again, 'wtp rm {t.name}' closes it"
    )
