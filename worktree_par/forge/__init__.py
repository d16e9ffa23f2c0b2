"""Landing through a forge (issue 26): one small client per forge behind one protocol.

``connect`` builds the client for ``[land] via`` and the ``[forge]`` keys; the land wing's
publisher calls the ``Forge`` verbs (find_or_open, post_status, merge, enqueue, get,
close_branch) and acts on their typed outcomes (``Merged``, ``Moved``, ``Refused``,
``Queued``).  Errors are ``ForgeError``s: one line, the contract's exit code, no token.

A publisher, in outline (the candidate is already pushed to ``head`` with a
compare-and-swap push, and the request's number is recorded before anything is merged)::

    f = connect(via, repo=cfg_repo, api=cfg_api, remote_url=url, timeout=remote_timeout)
    req = f.find_or_open(head, base, title, body)          # record req.number now
    f.post_status(candidate, "success", "wtp gate passed")
    result = f.merge(req.number, candidate, method, base_sha=parent)   # merge = "direct"
    # Merged(sha): fetch, check the base is sha with the tested tree; Moved: rebuild;
    # Refused(reason): blocked, with reason and req.url.
    # merge = "queue": f.enqueue(...) then poll f.get(number) until merged, closed, or
    # open with queued False (the queue dropped it: checks_summary says why).
    f.close_branch(head)

A resumed land asks ``get(recorded number)``; ``find_or_open`` finds only open requests.
Import this package only when ``[land] via`` names a forge: it brings in ``http.client``.
"""

from __future__ import annotations

import urllib.parse

from ..errors import Say, quiet
from .base import (
    GATE_CONTEXT,
    KINDS,
    EnqueueResult,
    Forge,
    Kind,
    Merged,
    MergedOther,
    MergeResult,
    Method,
    Moved,
    Queued,
    Refused,
    RemoteRepo,
    Request,
    StatusState,
    default_api,
    from_remote_url,
    guess_kind,
    parse_remote_url,
)
from .errors import ForgeAuthError, ForgeConfigError, ForgeError, ForgeNotFound, ForgeTimeout, ForgeUnreachable
from .http import Http
from .token import Token, find_token, hint

__all__ = [
    "GATE_CONTEXT",
    "KINDS",
    "EnqueueResult",
    "Forge",
    "ForgeAuthError",
    "ForgeConfigError",
    "ForgeError",
    "ForgeNotFound",
    "ForgeTimeout",
    "ForgeUnreachable",
    "Kind",
    "Merged",
    "MergedOther",
    "MergeResult",
    "Method",
    "Moved",
    "Queued",
    "Refused",
    "RemoteRepo",
    "Request",
    "StatusState",
    "Token",
    "connect",
    "default_api",
    "find_token",
    "from_remote_url",
    "guess_kind",
    "parse_remote_url",
]

NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}
PUBLIC_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}


def connect(
    kind: str,
    *,
    repo: str,
    api: str = "",
    remote_url: str = "",
    token: Token | None = None,
    timeout: float = 30.0,
    retries: int = 4,
    backoff: float = 0.5,
    say: Say = quiet,
) -> Forge:
    """The client for ``[land] via = kind``.

    ``repo`` and ``api`` are the ``[forge]`` keys; when empty they are read from
    ``remote_url`` (the remote's URL) or default to the forge's public service.  The token
    is looked up with ``find_token`` unless given.  ``timeout`` is each call's deadline,
    retries included."""
    if kind not in KINDS:
        raise ForgeConfigError(f"[land] via = '{kind}' is not a forge: use one of {', '.join(KINDS)} (or 'push')")
    k: Kind = kind
    host = ""
    if remote_url and (not repo or not api):
        found = parse_remote_url(remote_url)
        repo = repo or found.repo
        host = found.host
    if not api:
        if host:
            api = default_api(k, host)
        elif k in PUBLIC_API:
            api = PUBLIC_API[k]
        else:
            raise ForgeConfigError(
                "[forge] api is empty and Gitea has no public default: set it, e.g. 'https://git.example.com/api/v1'"
            )
    if not repo:
        raise ForgeConfigError(
            "[forge] repo is empty and the remote's URL does not name one: set [forge] repo = 'owner/name'"
        )
    api_host = urllib.parse.urlsplit(api).hostname or ""
    token = token or find_token(k, api_host)

    def http(auth: dict[str, str]) -> Http:
        return Http(
            api,
            forge=NAMES[k],
            auth=auth,
            secret=token.value,
            token_hint=hint(k),
            repo=repo,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            say=say,
        )

    if k == "github":
        from . import github

        return github.GitHub(http(github.auth_headers(token.value)), repo)
    if k == "gitlab":
        from . import gitlab

        return gitlab.GitLab(http(gitlab.auth_headers(token.value)), repo)
    from . import gitea

    return gitea.Gitea(http(gitea.auth_headers(token.value)), repo)
