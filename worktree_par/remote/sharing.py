"""Claims shared through the remote (``share = true``): every clone publishes what its live
tasks declared (``--touch``, ``--use``, and the paths the agent hook recorded when the claim
was written) as a ref, ``refs/wtp/claims/<clone id>/<task>``, and admission in every other
clone sees them, so a task colliding with one in flight on another machine is held back
too.  A clone writes only its own refs; a claim goes when its task lands or is removed.  A
claim whose clone vanished is never cleared silently: ``wtp doctor --fix --stale-claims
DAYS`` clears the ones older than the user chooses."""

from __future__ import annotations

import functools
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from .. import claims, gitops, locks, records
from ..errors import ExitCode, RemoteTimeout, WtpError
from ..repo import Ctx
from ..state import ACTIVE, LIVE, State, Task
from . import observed
from .gates import ref_safe
from .identity import clone_id

PREFIX = "refs/wtp/claims/"
MIRROR = "refs/wtp/remote-claims/"


class ShareError(WtpError):
    exit_code = ExitCode.USAGE


def enabled(ctx: Ctx) -> str | None:
    """The remote claims are shared through, when sharing is on and there is one."""
    return ctx.remote() if ctx.cfg.share else None


def _ref(cid: str, task: str) -> str:
    return f"{PREFIX}{cid}/{ref_safe(task)}"


def publish(ctx: Ctx, t: Task) -> str | None:
    """Publish (or refresh) the claim of a live task; a note when it could not be published."""
    remote = enabled(ctx)
    if remote is None:
        return None
    record = {
        "v": 1,
        "task": t.name,
        "clone": clone_id(ctx),
        "host": socket.gethostname(),
        "base": t.base,
        "touch": t.touch,
        "use": t.use,
        "recorded": records.claimable(claims.recorded(ctx, t)),  # what readers take
        "since": t.created or time.time(),
    }
    commit = gitops.data_commit(ctx.root, json.dumps(record, sort_keys=True))
    try:
        pushed = gitops.set_ref(ctx.root, remote, _ref(clone_id(ctx), t.name), commit)
    except RemoteTimeout as e:  # the task exists already: say so, do not undo it
        return f"could not publish the claim of '{t.name}': {e.message}; other clones do not see it"
    if not pushed.updated:
        return f"could not publish the claim of '{t.name}' to '{remote}' ({pushed.reason or pushed.summary}): other clones do not see it"
    return None


def withdraw(ctx: Ctx, name: str) -> None:
    """Remove a task's claim from the remote (best effort: 'wtp doctor' finds what is left)."""
    remote = enabled(ctx)
    if remote is None:
        return
    try:
        gitops.set_ref(ctx.root, remote, _ref(clone_id(ctx), name), None)
    except WtpError:
        pass


class RemoteClaim:
    """Another clone's claim as this clone can trust it: every field checked (``check``),
    its age measured from when this clone first saw it unchanged (``seen``, our own clock)."""

    def __init__(self, ref: str, data: dict[str, Any], seen: float) -> None:
        self.ref, self.seen = ref, seen
        self.task = records.shown(records.text(data, "task"))
        self.clone = records.text(data, "clone")
        self.host = records.shown(records.text(data, "host", required=False, empty=True)) or "?"
        self.touch = records.texts(data, "touch", printable=True)
        self.use = records.texts(data, "use", printable=True)
        # The paths the agent hook recorded: any file name a task may write (a line break, a
        # non-breaking space); one not safe to compare and print is left out, not the claim.
        self.recorded = records.claimable(data.get("recorded", []))
        self.since = records.number(data, "since", 0, 1e11, default=0)  # the writer's clock: shown, never judged
        if records.integer(data, "v", 1, 1) != 1 or not ref.startswith(f"{PREFIX}{self.clone}/"):
            raise records.Malformed(f"its 'clone' ({self.clone}) is not the clone its ref names")

    def age_s(self) -> int:
        return max(0, int(time.time() - self.seen))

    def age(self) -> str:
        s = self.age_s()
        return (
            f"{s // 86400}d" if s >= 86400 else f"{s // 3600}h" if s >= 3600 else f"{s // 60}m" if s >= 60 else f"{s}s"
        )

    def as_task(self) -> Task:
        """The claim as admission sees it: a live task of another clone."""
        return Task(
            name=f"{self.task} (clone {self.clone} on {self.host}, {self.age()} old)",
            state=ACTIVE,
            branch="",
            base="",
            seq=-1,
            touch=[*self.touch, *(claims.literal_glob(p) for p in self.recorded)],
            use=self.use,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "task": self.task,
            "clone": self.clone,
            "host": self.host,
            "age_s": self.age_s(),
            "touch": self.touch,
            "use": self.use,
            "recorded": self.recorded,
        }


_reported: set[tuple[str, str]] = set()  # (ref, object id) already reported by this process


def others(ctx: Ctx, remote: str | None = None, malformed: list[tuple[str, str]] | None = None) -> list[RemoteClaim]:
    """The claims of every other clone, as ``remote`` (default: the one claims are shared
    through) has them now: one ls-remote, and one fetch of what changed.  A record that is
    not a valid claim is left out; it goes to ``malformed`` as (ref, one line), or, without
    that list, is reported once through ``locks.notify``."""
    remote = remote or enabled(ctx)
    if remote is None:
        return []
    for _ in range(5):
        found = _listed_and_fetched(ctx, remote)
        if found is not None:
            good, bad = found
            for ref, oid, why in bad:
                line = (
                    f"ignored the shared claim {ref} on '{remote}': {why}; it is not a claim wtp wrote, "
                    f"remove it with 'git push {remote} :{ref}'"
                )
                if malformed is not None:
                    malformed.append((ref, line))
                elif (ref, oid) not in _reported:
                    _reported.add((ref, oid))
                    locks.notify(f"wtp: {line}")
            return good
    raise ShareError(f"the claims on remote '{remote}' kept changing while they were read: try again")


def _listed_and_fetched(ctx: Ctx, remote: str) -> tuple[list[RemoteClaim], list[tuple[str, str, str]]] | None:
    """(valid claims, [(ref, object id, why)] for the others); None when a claim went away
    between listing and fetching (look again)."""
    found = gitops.ls_remote(ctx.root, remote, [f"{PREFIX}*"])
    if found is None:
        raise ShareError(
            f"cannot reach remote '{remote}' to read the other clones' claims (share = true): check the network, "
            "or set share = false in .wtp.toml to work without them"
        )
    mine = f"{PREFIX}{clone_id(ctx)}/"
    wanted = {ref: sha for ref, sha in found.items() if not ref.startswith(mine)}
    mirror = {ref: MIRROR + ref[len(PREFIX) :] for ref in wanted}  # where each is fetched to
    have = gitops.refs(ctx.root, list(mirror.values()))
    fetch = [
        (ref, mirror[ref]) for ref, sha in wanted.items() if mirror[ref] not in have or have[mirror[ref]].commit != sha
    ]
    if fetch and not gitops.fetch_refs(ctx.root, remote, fetch):
        return None
    fetched = gitops.refs(ctx.root, list(mirror.values())) if fetch else have
    # What was fetched, which may be newer than what ls-remote listed.
    now: dict[str, str] = {
        ref: got.commit for ref in wanted if (got := fetched.get(mirror[ref])) is not None and got.commit
    }
    seen = observed.first_seen(ctx, remote, now)
    good: list[RemoteClaim] = []
    bad: list[tuple[str, str, str]] = []
    for ref in sorted(set(wanted) - set(now)):  # fetched, but not a commit (a blob, a tree): said, as others are
        if (got := fetched.get(mirror[ref])) is not None:
            bad.append((ref, wanted[ref], "it is not a commit"))
    for ref in sorted(now):
        try:
            data = records.parse_object(gitops.commit_message(ctx.root, now[ref]))
            good.append(RemoteClaim(ref, data, seen[ref]))
        except records.Malformed as e:
            bad.append((ref, now[ref], str(e)))
        except WtpError:
            bad.append((ref, now[ref], "it is not a commit"))
    return good, bad


# --- what doctor finds among the claims ----------------------------------------------------

Found = tuple[str, Callable[[], str] | None]  # a problem, and the fix (what it did) or None


def _found(problem: str, fix: Callable[[], str] | None = None) -> Found:
    return (problem, fix)


STALE_CLAIM_DAYS = 7  # other clones' claims older than this are reported


def findings(ctx: Ctx, st: State, stale_days: float | None) -> tuple[list[Found], bool]:
    """Shared claims on the remote: this clone's claims of tasks that are no longer live
    (withdrawn), and other clones' old ones (cleared only with --stale-claims DAYS), for
    doctor: (problem, the fix or None); and False when the remote did not answer (doctor
    then asks it nothing more: a hung remote costs one [remote] timeout, not two)."""
    remote = ctx.remote()
    if remote is None or not (ctx.cfg.share or stale_days is not None):
        return [], True
    try:
        return _claims_on(ctx, st, remote, stale_days)
    except RemoteTimeout as e:  # one finding, and doctor goes on with the rest
        return [_found(f"shared claims not checked: {e.message}")], False


def _claims_on(ctx: Ctx, st: State, remote: str, stale_days: float | None) -> tuple[list[Found], bool]:

    found = gitops.ls_remote(ctx.root, remote, [f"{PREFIX}*"])
    if found is None:
        return [_found(f"cannot reach remote '{remote}' to check the shared claims")], False
    out: list[Found] = []
    mine = f"{PREFIX}{clone_id(ctx)}/"
    live = {ref_safe(t.name) for t in st.tasks.values() if t.state in LIVE}
    for ref in sorted(found):
        if ref.startswith(mine) and ref[len(mine) :] not in live:
            out.append(
                _found(
                    f"the shared claim {ref} is of a task this clone no longer runs",
                    functools.partial(_clear_claim, ctx, remote, ref),
                )
            )
    limit = (stale_days if stale_days is not None else STALE_CLAIM_DAYS) * 86400
    malformed: list[tuple[str, str]] = []
    for c in others(ctx, remote, malformed):
        if c.age_s() <= limit:  # since this clone first saw it unchanged: its writer's clock is not asked
            continue
        what = f"the shared claim of task '{c.task}' (clone {c.clone} on {c.host}) is {c.age()} old"
        if stale_days is None:
            out.append(
                _found(f"{what}: if that clone is gone, 'wtp doctor --fix --stale-claims {STALE_CLAIM_DAYS}' clears it")
            )
        else:
            out.append(_found(what, functools.partial(_clear_claim, ctx, remote, c.ref)))
    out += [_found(line) for _, line in malformed]
    return out, True


def _clear_claim(ctx: Ctx, remote: str, ref: str) -> str:
    pushed = gitops.set_ref(ctx.root, remote, ref, None)
    return f"cleared {ref} on '{remote}'" if pushed.updated else f"could not fix: {pushed.reason or pushed.summary}"
