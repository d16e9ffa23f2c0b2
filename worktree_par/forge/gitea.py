"""Gitea and Forgejo behind the ``Forge`` protocol, on their REST API v1 (Forgejo keeps
Gitea's API for these endpoints).

Endpoints, as documented in the API reference (https://gitea.com/api/swagger, and
https://codeberg.org/api/swagger for Forgejo):
- ``GET/POST /repos/{owner}/{repo}/pulls`` (repoListPullRequests, repoCreatePullRequest;
  409 when one is open for the same head and base), ``GET .../pulls/{index}`` (repoGetPullRequest)
- ``POST .../pulls/{index}/merge`` (repoMergePullRequest) with ``Do`` (merge, rebase,
  rebase-merge, squash, fast-forward-only), ``head_commit_id`` (the head guard) and
  ``merge_when_checks_succeed`` (auto-merge); 405 not mergeable, 409 conflict or head/base
  out of date
- ``POST /repos/{owner}/{repo}/statuses/{sha}`` (repoCreateStatus),
  ``GET .../commits/{ref}/status`` (repoGetCombinedStatusByRef)
- ``GET/DELETE /repos/{owner}/{repo}/branches/{branch}`` (repoGetBranch, repoDeleteBranch)
- ``DELETE .../pulls/{index}/merge`` (repoCancelScheduledAutoMerge: 204; 404 when none is
  scheduled), ``PATCH .../pulls/{index}`` with ``state: closed`` (repoEditPullRequest)

``rebase`` is sent as ``fast-forward-only`` (Gitea 1.21+, Forgejo 7+): wtp merges only a
candidate already on the base, so the base gets exactly the gated commits; a server that
does not know that style (422) is asked for ``rebase``, which is then a fast-forward too.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from typing import Any

from .base import (
    GATE_CONTEXT,
    EnqueueResult,
    Fields,
    Kind,
    Merged,
    MergeResult,
    Method,
    Moved,
    Queued,
    Reading,
    Refused,
    Request,
    RequestState,
    StatusState,
    checks_of,
    open_once,
)
from .errors import ForgeAuthError, ForgeConfigError, ForgeError, ForgeNotFound
from .http import Http

DO = {"rebase": "fast-forward-only", "squash": "squash", "merge": "merge"}
PAGE = 50


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


class Gitea(Reading):
    """One Gitea or Forgejo repository (``owner/name``) through ``http``."""

    kind: Kind = "gitea"

    def __init__(self, http: Http, repo: str) -> None:
        if repo.count("/") != 1:
            raise ForgeConfigError(f"[forge] repo = '{repo}' is not 'owner/name'")
        self.http = http
        self.repo = repo
        self._path = "/repos/" + urllib.parse.quote(repo)
        self.queued: set[int] = set()  # Gitea does not report a scheduled merge in the pull request

    def _request(self, data: Any, checks: bool = True) -> Request:
        f = Fields(data, "pull request", "Gitea")
        head, base = f.obj("head"), f.obj("base")
        merged = bool(f.flag("merged"))
        state: RequestState = "merged" if merged else ("open" if f.text("state") == "open" else "closed")
        head_sha = head.sha("sha")
        number = f.num("number")
        req = Request(
            number=number,
            state=state,
            head=head.text("ref"),
            head_sha=head_sha,
            base=base.text("ref"),
            url=f.opt_text("html_url") or "",
            title=f.opt_text("title") or "",
            merge_sha=f.opt_text("merged_commit_id") if merged else None,
            mergeable=f.flag("mergeable"),
            queued=state == "open" and number in self.queued,
            body=f.opt_text("body") or "",
        )
        if not checks:
            return req
        reply = self.http.call("GET", f"{self._path}/commits/{head_sha}/status", what=f"commit {head_sha[:12]}")
        statuses = Fields(reply.data, "combined status", "Gitea").data.get("statuses") or []
        state_, summary = checks_of(statuses, "Gitea", "status")
        # A scheduled merge waits for green checks: with a failing one it will not happen.
        queued = req.queued and state_ != "failure"
        return replace(req, checks=state_, checks_summary=summary, queued=queued)

    def _raw(self, number: int) -> Any:
        return self.http.call("GET", f"{self._path}/pulls/{number}", what=f"pull request #{number}").data

    def _list(self, head: str, base: str, state: str, first: bool = False) -> list[Any]:
        out = []
        for page in range(1, 21):
            query: dict[str, str | int] = {"state": state, "limit": PAGE, "page": page}
            reply = self.http.call("GET", f"{self._path}/pulls", query=query)
            if not isinstance(reply.data, list):
                raise ForgeError("Gitea answered a pull request list that is not a list: is [forge] api right?")
            for item in reply.data:
                f = Fields(item, "pull request", "Gitea")
                if f.obj("head").text("ref") == head and f.obj("base").text("ref") == base:
                    out.append(item)
                    if first:
                        return out
            if len(reply.data) < PAGE:
                break
        return out

    def branch_tip(self, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when the repository has no such branch."""
        reply = self.http.call("GET", f"{self._path}/branches/{_q(branch)}", allow=(404,))
        if reply.status == 404:
            self.http.call("GET", self._path)  # a missing repository is a ForgeNotFound, not a missing branch
            return None
        return Fields(reply.data, "branch", "Gitea").obj("commit").sha("id")

    def find_or_open(self, head: str, base: str, title: str, body: str) -> Request:
        """The open pull request from ``head`` into ``base``, opened if there is none; Gitea
        answers 409 to a second one, and a 5xx create is looked for again, so never two."""
        payload = {"head": head, "base": base, "title": title, "body": body}
        return open_once(
            lambda: self._find(head, base),
            lambda: self.http.call("POST", f"{self._path}/pulls", body=payload, allow=(409, 422)),
            self._request,
            lambda reply: (
                f"Gitea refused to open a pull request from '{head}' into '{base}' ({self.http.message(reply)}): "
                "is the branch pushed, and does it differ from the base?"
            ),
            (409, 422),
        )

    def post_status(
        self, sha: str, state: StatusState, description: str, context: str = GATE_CONTEXT, url: str = ""
    ) -> None:
        """Set the commit status ``context`` on ``sha``."""
        payload = {"state": state, "context": context, "description": description[:255]}
        if url:
            payload["target_url"] = url
        self.http.call("POST", f"{self._path}/statuses/{sha}", body=payload, what=f"commit {sha[:12]}")

    def merge(self, number: int, head_sha: str, method: Method, *, base_sha: str | None = None) -> MergeResult:
        """Merge now with ``head_commit_id`` as the guard; given ``base_sha``, only while the
        base branch is still at it."""
        before = self._check(self._raw(number), head_sha, base_sha)
        if not isinstance(before, Request):
            return before
        result = self._post_merge(number, head_sha, method, base_sha, queue=False)
        assert not isinstance(result, Queued)
        return result

    def _post_merge(
        self, number: int, head_sha: str, method: Method, base_sha: str | None, *, queue: bool
    ) -> MergeResult | Queued:
        body: dict[str, Any] = {"Do": DO[method], "head_commit_id": head_sha, "delete_branch_after_merge": False}
        if queue:
            body["merge_when_checks_succeed"] = True
        path = f"{self._path}/pulls/{number}/merge"
        what = f"pull request #{number}"
        try:
            reply = self.http.call("POST", path, body=body, allow=(405, 409, 422), what=what)
            if reply.status == 422 and body["Do"] == "fast-forward-only":
                body["Do"] = "rebase"  # a server older than fast-forward-only
                reply = self.http.call("POST", path, body=body, allow=(405, 409, 422), what=what)
        except (ForgeAuthError, ForgeNotFound, ForgeConfigError):
            raise
        except ForgeError:
            # A POST is not retried: a 5xx may come after the merge was done.  Ask before failing.
            if isinstance(now := self._check(self._raw(number), head_sha, None), Merged):
                return now
            raise
        after = self._check(self._raw(number), head_sha, base_sha if reply.status >= 300 else None)
        if reply.status < 300:
            if isinstance(after, Merged):
                return after
            if queue:
                self.queued.add(number)
                return Queued("merge when checks succeed")
            return Refused(f"Gitea accepted the merge of #{number} but did not merge it")
        said = f"Gitea answered {reply.status} to the merge of #{number}: {self.http.message(reply)}"
        if not isinstance(after, Request):
            return after if not isinstance(after, Refused) else Refused(said)
        if reply.status == 409:
            return Moved(said)
        return Refused(said)

    def enqueue(self, number: int, head_sha: str, method: Method) -> EnqueueResult:
        """Schedule the merge for when the required checks succeed (``merge_when_checks_succeed``),
        guarded by ``head_commit_id``; Gitea merges at once when they already have."""
        before = self._check(self._raw(number), head_sha, None)
        if not isinstance(before, Request):
            return before
        return self._post_merge(number, head_sha, method, None, queue=True)

    def dequeue(self, number: int) -> None:
        """Cancel the scheduled auto-merge (repoCancelScheduledAutoMerge).  Gitea does not show
        one in the pull request, so it is asked to cancel even when this client did not schedule
        it (another process may have): 404 means none is scheduled."""
        if self._request(self._raw(number), checks=False).state != "open":
            return
        self.http.call("DELETE", f"{self._path}/pulls/{number}/merge", allow=(404,), what=f"pull request #{number}")
        self.queued.discard(number)

    def close(self, number: int) -> bool:
        """Close the pull request unmerged (repoEditPullRequest with ``state: closed``)."""
        if self._request(self._raw(number), checks=False).state != "open":
            return False
        self.http.call(
            "PATCH", f"{self._path}/pulls/{number}", body={"state": "closed"}, what=f"pull request #{number}"
        )
        return True

    def close_branch(self, head: str) -> bool:
        """Delete the head branch; False when it was already gone."""
        reply = self.http.call("DELETE", f"{self._path}/branches/{_q(head)}", allow=(404,))
        return reply.status < 300


def _q(branch: str) -> str:
    return urllib.parse.quote(branch, safe="/")
