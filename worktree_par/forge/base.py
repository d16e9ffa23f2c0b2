"""What every forge client offers (``Forge``), the values it returns, and where a forge and
its repository are read from a remote's URL.

A land through a forge (issue 26; README, "Through a forge") needs six verbs: open or
find the request for a head branch, read it, post the gate's verdict as a commit status,
merge it with the head-SHA guard, hand it to the forge's queue, and delete its head branch.
Outcomes a lander must act on (the base moved, the forge refuses) are values, not
exceptions; exceptions are for what no retry by the lander would fix (``forge.errors``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .errors import ForgeConfigError, ForgeError

if TYPE_CHECKING:
    from .http import Reply

Kind = Literal["github", "gitlab", "gitea"]
KINDS: tuple[Kind, ...] = ("github", "gitlab", "gitea")
Method = Literal["rebase", "squash", "merge"]
RequestState = Literal["open", "merged", "closed"]
StatusState = Literal["success", "failure", "pending"]
ChecksState = Literal["success", "failure", "pending", ""]

GATE_CONTEXT = "wtp/gate"


@dataclass(frozen=True)
class Request:
    """A pull request (GitHub, Gitea) or merge request (GitLab), as the forge reports it now.

    ``head_sha`` is the head branch's commit the request holds; ``merge_sha`` the commit the
    merge put on the base (the merge commit, the squash commit, or the rebased tip), once
    merged; ``mergeable`` None while the forge has not decided; ``checks`` the combined
    commit status of the head (``checks_summary`` names the failing contexts); ``queued``
    True while the forge's queue or auto-merge holds it.
    """

    number: int
    state: RequestState
    head: str
    head_sha: str
    base: str
    url: str
    title: str = ""
    merge_sha: str | None = None
    mergeable: bool | None = None
    checks: ChecksState = ""
    checks_summary: str = ""
    queued: bool = False
    body: str = ""


@dataclass(frozen=True)
class Merged:
    """The forge merged the request; ``sha`` is the commit it put on the base."""

    sha: str


@dataclass(frozen=True)
class MergedOther:
    """The request was merged, but with a head that is not the guarded commit (another clone,
    or a person, pushed to its head branch): ``sha`` is what the base took, ``head`` what the
    request held.  Not the guarded land: landed only if that merge holds the tested tree."""

    sha: str
    head: str


@dataclass(frozen=True)
class Moved:
    """Not merged because the base moved past the candidate's parent or the head is not the
    guarded commit: rebuild the candidate and try again, as for a push that lost its race."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """Not merged for another reason the forge gave (a failing required check, a missing
    review, a closed request): the task is blocked with this reason."""

    reason: str


@dataclass(frozen=True)
class Queued:
    """The forge's queue (merge queue, merge train, auto-merge) holds the request; poll
    ``get`` until it is merged or closed, or its ``queued`` goes False."""

    how: str


MergeResult = Merged | MergedOther | Moved | Refused
EnqueueResult = Queued | Merged | MergedOther | Moved | Refused


@runtime_checkable
class Forge(Protocol):
    """One repository on one forge, as one user.  Every method makes at most a few calls,
    each under the client's deadline; errors are ``ForgeError``s (one line, exit code)."""

    kind: Kind
    repo: str

    def find_or_open(self, head: str, base: str, title: str, body: str) -> Request:
        """The open request from ``head`` into ``base``, opening it if there is none (never a second)."""
        ...

    def get(self, number: int) -> Request:
        """The request as it is now."""
        ...

    def requests(self, head: str, base: str) -> list[Request]:
        """Every request from ``head`` into ``base``, open, merged or closed (without checks)."""
        ...

    def dequeue(self, number: int) -> None:
        """Take the request out of the forge's queue or auto-merge (nothing to do when it is not
        queued); ForgeError when the forge refuses or cannot be asked."""
        ...

    def close(self, number: int) -> bool:
        """Close the request without merging it; False when it was not open."""
        ...

    def post_status(
        self, sha: str, state: StatusState, description: str, context: str = GATE_CONTEXT, url: str = ""
    ) -> None:
        """Set the commit status ``context`` on ``sha``."""
        ...

    def merge(self, number: int, head_sha: str, method: Method, *, base_sha: str | None = None) -> MergeResult:
        """Merge now, only if the head is still ``head_sha`` (and, given ``base_sha``, only
        while the base branch is still at it)."""
        ...

    def enqueue(self, number: int, head_sha: str, method: Method) -> EnqueueResult:
        """Hand the request to the forge's queue or auto-merge, guarded by ``head_sha``."""
        ...

    def branch_tip(self, branch: str) -> str | None:
        """The commit a branch points at on the forge, or None if it does not exist."""
        ...

    def close_branch(self, head: str) -> bool:
        """Delete the head branch on the forge; False when it was already gone."""
        ...


class Reading:
    """What the three clients share in reading requests, each through its own ``_raw`` (one
    request's record), ``_list`` (the records from a head into a base) and ``_request`` (a
    record as a Request)."""

    OPEN = "open"  # the API's word for an open request in a list query
    NOUN = "pull request #"  # how the forge names one request, before its number

    def _raw(self, number: int) -> Any:
        raise NotImplementedError

    def _list(self, head: str, base: str, state: str, first: bool = False) -> list[Any]:
        raise NotImplementedError

    def _request(self, data: Any, checks: bool = True) -> Request:
        raise NotImplementedError

    def branch_tip(self, branch: str) -> str | None:
        raise NotImplementedError

    def get(self, number: int) -> Request:
        """The request as the forge reports it now, with its head's checks."""
        return self._request(self._raw(number))

    def _find(self, head: str, base: str) -> Request | None:
        found = self._list(head, base, self.OPEN, first=True)
        return self._request(found[0]) if found else None

    def requests(self, head: str, base: str) -> list[Request]:
        """Every request from ``head`` into ``base`` (open, merged or closed), without checks."""
        return [self._request(item, checks=False) for item in self._list(head, base, "all")]

    def _check(self, data: Any, head_sha: str, base_sha: str | None) -> Request | MergeResult:
        return mergeable_now(self._request(data, checks=False), head_sha, base_sha, self.branch_tip, self.NOUN)


# -- remote URLs ------------------------------------------------------------------------

_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!/).+)$")


@dataclass(frozen=True)
class RemoteRepo:
    """What a remote's URL says: the forge kind (None for a host wtp cannot recognise), the
    host, and the repository path (``owner/name``; GitLab: the full project path)."""

    kind: Kind | None
    host: str
    repo: str


def parse_remote_url(url: str) -> RemoteRepo:
    """Host and repository of an https, ssh or scp-like (``git@host:owner/name.git``) URL."""
    url = url.strip()
    host = path = ""
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            host, path = parts.hostname or "", parts.path
    else:
        m = _SCP.match(url)
        if m and "/" not in m.group("host") and not re.match(r"^[A-Za-z]$", m.group("host")):
            host, path = m.group("host"), m.group("path")
    path = path.strip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    segments = [s for s in path.split("/") if s]
    if not host or len(segments) < 2:
        raise ForgeConfigError(
            f"cannot read a forge repository from the remote URL '{_safe(url)}': set [forge] repo = 'owner/name'"
        )
    host = host.lower()
    kind = guess_kind(host)
    if kind != "gitlab":
        segments = segments[-2:]  # GitHub and Gitea have exactly owner/name
    return RemoteRepo(kind, host, "/".join(segments))


def from_remote_url(url: str) -> tuple[Kind | None, str]:
    """(kind, owner/name) from a remote's URL: github.com, gitlab.com (nested groups kept)
    and self-hosted hosts whose name says which forge they run (``kind`` None otherwise)."""
    found = parse_remote_url(url)
    return found.kind, found.repo


def guess_kind(host: str) -> Kind | None:
    """The forge a host most likely runs, by its name; None when the name does not say."""
    h = host.lower()
    if h == "github.com" or h.endswith(".github.com") or h.endswith(".ghe.com") or "github" in h:
        return "github"
    if "gitlab" in h:
        return "gitlab"
    if any(word in h for word in ("gitea", "forgejo", "codeberg")):
        return "gitea"
    return None


def default_api(kind: Kind, host: str) -> str:
    """The API base URL of a forge host (``[forge] api`` when it is left empty)."""
    if kind == "github":
        return "https://api.github.com" if host in ("github.com", "api.github.com") else f"https://{host}/api/v3"
    if kind == "gitlab":
        return f"https://{host}/api/v4"
    return f"https://{host}/api/v1"


def _safe(url: str) -> str:
    """A URL without its credentials, for messages (https://user:token@host/...)."""
    parts = urllib.parse.urlsplit(url) if "://" in url else None
    if parts and parts.password:
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


# -- reading answers --------------------------------------------------------------------
# Every record read from the forge is checked field by field before use (STYLE.md, "One
# network boundary"): a proxy's HTML page or an API change is one clear line, not a KeyError.


class Fields:
    """Typed reads of one JSON object from the forge, naming it in any error."""

    def __init__(self, data: Any, what: str, forge: str) -> None:
        if not isinstance(data, dict):
            raise ForgeError(f"{forge} answered an unexpected {what} (not a JSON object): is [forge] api right?")
        self.data: dict[str, Any] = data
        self.what = what
        self.forge = forge

    def _bad(self, key: str, want: str) -> ForgeError:
        return ForgeError(f"{self.forge} answered a {self.what} whose '{key}' is not {want}: is [forge] api right?")

    def text(self, key: str) -> str:
        v = self.data.get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a string")
        return v

    def opt_text(self, key: str) -> str | None:
        v = self.data.get(key)
        if v is not None and not isinstance(v, str):
            raise self._bad(key, "a string")
        return v or None

    def num(self, key: str) -> int:
        v = self.data.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise self._bad(key, "a number")
        return v

    def flag(self, key: str) -> bool | None:
        v = self.data.get(key)
        if v is not None and not isinstance(v, bool):
            raise self._bad(key, "true or false")
        return v

    def obj(self, key: str) -> Fields:
        return Fields(self.data.get(key), f"{self.what}'s '{key}'", self.forge)

    def sha(self, key: str) -> str:
        v = self.text(key)
        if not re.fullmatch(r"[0-9a-f]{40}(?:[0-9a-f]{24})?", v):
            raise self._bad(key, "a commit id")
        return v


def checks_of(statuses: Any, forge: str, state_key: str = "state") -> tuple[ChecksState, str]:
    """The combined state of a list of commit statuses (newest first, as the forges list
    them: the first of each context counts) and a summary naming what is not green."""
    if not isinstance(statuses, list):
        raise ForgeError(f"{forge} answered a commit status list that is not a list: is [forge] api right?")
    latest: dict[str, str] = {}
    for s in statuses:
        f = Fields(s, "commit status", forge)
        ctx = f.opt_text("context") or f.opt_text("name") or "?"
        st = f.opt_text(state_key) or f.opt_text("status") or ""
        latest.setdefault(ctx, st)
    if not latest:
        return "", ""
    bad = sorted(c for c, s in latest.items() if s in ("failure", "failed", "error", "canceled"))
    waiting = sorted(c for c, s in latest.items() if s not in ("success", "failure", "failed", "error", "canceled"))
    if bad:
        return "failure", "failing: " + ", ".join(bad)
    if waiting:
        return "pending", "pending: " + ", ".join(waiting)
    return "success", f"{len(latest)} green"


def open_once(
    find: Callable[[], Request | None],
    create: Callable[[], Reply],
    parse: Callable[[Any], Request],
    refused: Callable[[Reply], str],
    conflict: tuple[int, ...],
) -> Request:
    """find_or_open's one rule for every forge: look first, and look again after a create the
    forge refused (``conflict``: "one already exists") or failed (a 5xx may have created it),
    so it never opens two.  ``refused(reply)``: the one-line error when none is found then."""
    found = find()
    if found:
        return found
    try:
        reply = create()
    except ForgeError:
        found = find()
        if found:
            return found
        raise
    if reply.status in conflict:
        found = find()
        if found:
            return found
        raise ForgeError(refused(reply))
    return parse(reply.data)


def mergeable_now(
    req: Request, head_sha: str, base_sha: str | None, tip_of: Callable[[str], str | None], noun: str
) -> Request | MergeResult:
    """Merged (with the guarded head; MergedOther with another), Refused (closed) or Moved
    (head or base not the guarded ones) as the request is now; the request itself when a
    guarded merge may be tried.  ``noun``: how the forge names a request ('pull request #',
    'merge request !')."""
    if req.state == "merged":
        if req.head_sha != head_sha:  # merged, but not the guarded commit: not this land's merge
            return MergedOther(req.merge_sha or "", req.head_sha)
        return Merged(req.merge_sha or "")
    if req.state == "closed":
        return Refused(f"{noun}{req.number} is closed: {req.url}")
    if req.head_sha != head_sha:
        return Moved(f"{noun}{req.number}'s head is {req.head_sha[:12]}, not {head_sha[:12]}")
    if base_sha is not None:
        tip = tip_of(req.base)
        if tip != base_sha:
            return Moved(f"'{req.base}' moved to {(tip or 'nothing')[:12]} since {base_sha[:12]}")
    return req
