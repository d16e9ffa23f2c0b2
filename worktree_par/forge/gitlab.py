"""GitLab (gitlab.com and self-managed) behind the ``Forge`` protocol, on the REST API v4.

Endpoints, as documented (https://docs.gitlab.com/ee/api/merge_requests.html):
- list, create, get merge requests: #list-project-merge-requests, #create-mr, #get-single-mr
- merge with the head guard ``sha`` and ``squash``; 405 not mergeable, 406 cannot be merged
  (conflicts), 409 ``sha`` does not match the source branch, 422 cannot be merged:
  #merge-a-merge-request; ``merge_when_pipeline_succeeds`` (``auto_merge`` since 17.x) for
  queue mode, which joins the merge train when the project has merge trains
  (https://docs.gitlab.com/ee/ci/pipelines/merge_trains.html); out of it again:
  ``POST .../merge_requests/:iid/cancel_merge_when_pipeline_succeeds`` (#cancel-merge-when-pipeline-succeeds,
  which also takes a merge request off its merge train; 406 when it is merged or closed)
- close without merging: ``PUT .../merge_requests/:iid`` with ``state_event: close`` (#update-mr)
- commit statuses: https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit
  and #list-the-statuses-of-a-commit
- branches: https://docs.gitlab.com/ee/api/branches.html#get-single-repository-branch and
  #delete-repository-branch

GitLab chooses merge commit, semi-linear or fast-forward per project, not per call: the
``method`` only says whether to squash.  The project is addressed by its URL-encoded path.
"""

from __future__ import annotations

import re
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
from .errors import ForgeError, ForgeNotFound
from .http import Http

API = "https://gitlab.com/api/v4"
STATES: dict[str, RequestState] = {"opened": "open", "merged": "merged", "closed": "closed", "locked": "closed"}
UNDECIDED = ("unchecked", "checking", "preparing", "approvals_syncing", "cannot_be_merged_recheck")
MOVED_WORDS = re.compile(r"rebase|sha does not match|not up to date|behind|cannot be merged|conflict", re.I)
STATUS = {"success": "success", "failure": "failed", "pending": "pending"}


def auth_headers(token: str) -> dict[str, str]:
    return {"PRIVATE-TOKEN": token}


class GitLab(Reading):
    """One GitLab project (its path, nested groups included) through ``http``."""

    OPEN, NOUN = "opened", "merge request !"
    kind: Kind = "gitlab"

    def __init__(self, http: Http, repo: str) -> None:
        self.http = http
        self.repo = repo
        self._path = "/projects/" + urllib.parse.quote(repo, safe="")

    def _request(self, data: Any, checks: bool = True) -> Request:
        f = Fields(data, "merge request", "GitLab")
        state = STATES.get(f.text("state"), "closed")
        detailed = f.opt_text("detailed_merge_status") or f.opt_text("merge_status") or ""
        mergeable = None if detailed in UNDECIDED else detailed in ("mergeable", "can_be_merged")
        head_sha = f.sha("sha")
        merged_sha = f.opt_text("merge_commit_sha") or f.opt_text("squash_commit_sha") or head_sha
        req = Request(
            number=f.num("iid"),
            state=state,
            head=f.text("source_branch"),
            head_sha=head_sha,
            base=f.text("target_branch"),
            url=f.opt_text("web_url") or "",
            title=f.opt_text("title") or "",
            merge_sha=merged_sha if state == "merged" else None,
            mergeable=mergeable,
            queued=bool(f.flag("merge_when_pipeline_succeeds")),
            body=f.opt_text("description") or "",
        )
        if not checks:
            return req
        reply = self.http.call("GET", f"{self._path}/repository/commits/{head_sha}/statuses", query={"per_page": 100})
        state_, summary = checks_of(reply.data, "GitLab", "status")
        return replace(req, checks=state_, checks_summary=summary)

    def _raw(self, number: int) -> Any:
        return self.http.call("GET", f"{self._path}/merge_requests/{number}", what=f"merge request !{number}").data

    def _list(self, head: str, base: str, state: str, first: bool = False) -> list[Any]:
        query: dict[str, str | int] = {"state": state, "source_branch": head, "target_branch": base, "per_page": 100}
        reply = self.http.call("GET", f"{self._path}/merge_requests", query=query)
        if not isinstance(reply.data, list):
            raise ForgeError("GitLab answered a merge request list that is not a list: is [forge] api right?")
        out = []
        for item in reply.data:
            f = Fields(item, "merge request", "GitLab")
            if f.text("source_branch") == head and f.text("target_branch") == base:
                out.append(item)
        return out

    def branch_tip(self, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when GitLab has no such branch."""
        reply = self.http.call("GET", f"{self._path}/repository/branches/{_q(branch)}", allow=(404,))
        if reply.status == 404:
            if "branch" not in self.http.message(reply).lower():
                raise ForgeNotFound(
                    f"GitLab answered 404 for project '{self.repo}' ({self.http.message(reply)}): check "
                    f"[forge] repo and that the token in {self.http.token_hint} can see it"
                )
            return None
        return Fields(reply.data, "branch", "GitLab").obj("commit").sha("id")

    def find_or_open(self, head: str, base: str, title: str, body: str) -> Request:
        """The open merge request from ``head`` into ``base``, opened if there is none; GitLab
        answers 409 to a second one, and a 5xx create is looked for again, so never two."""
        payload = {"source_branch": head, "target_branch": base, "title": title, "description": body}
        return open_once(
            lambda: self._find(head, base),
            lambda: self.http.call("POST", f"{self._path}/merge_requests", body=payload, allow=(409, 422)),
            self._request,
            lambda reply: (
                f"GitLab refused to open a merge request from '{head}' into '{base}' ({self.http.message(reply)}): "
                "is the branch pushed, and does it differ from the target?"
            ),
            (409, 422),
        )

    def post_status(
        self, sha: str, state: StatusState, description: str, context: str = GATE_CONTEXT, url: str = ""
    ) -> None:
        """Set the external commit status ``context`` (GitLab: ``name``) on ``sha``."""
        payload = {"state": STATUS[state], "name": context, "description": description[:255]}
        if url:
            payload["target_url"] = url
        self.http.call("POST", f"{self._path}/statuses/{sha}", body=payload, what=f"commit {sha[:12]}")

    def merge(self, number: int, head_sha: str, method: Method, *, base_sha: str | None = None) -> MergeResult:
        """Merge now with the ``sha`` guard (squash when ``method`` is squash); given
        ``base_sha``, only while the target branch is still at it."""
        before = self._check(self._raw(number), head_sha, base_sha)
        if not isinstance(before, Request):
            return before
        result = self._accept(number, head_sha, method, base_sha, queue=False)
        assert not isinstance(result, Queued), "a direct merge is never queued"
        return result

    def _accept(
        self, number: int, head_sha: str, method: Method, base_sha: str | None, *, queue: bool
    ) -> MergeResult | Queued:
        body: dict[str, Any] = {"sha": head_sha, "squash": method == "squash", "should_remove_source_branch": False}
        if queue:
            body.update(merge_when_pipeline_succeeds=True, auto_merge=True)
        reply = self.http.call(
            "PUT",
            f"{self._path}/merge_requests/{number}/merge",
            body=body,
            allow=(405, 406, 409, 422),
            what=f"merge request !{number}",
        )
        if reply.status < 300:
            req = self._request(reply.data, checks=False)
            if req.state == "merged":
                return Merged(req.merge_sha or "")
            if queue:
                return Queued("merge when pipeline succeeds")
            req = self._request(self._raw(number), checks=False)  # merged in the background
            return (
                Merged(req.merge_sha or "") if req.state == "merged" else Refused("GitLab accepted but did not merge")
            )
        said = f"GitLab answered {reply.status} to the merge of !{number}: {self.http.message(reply)}"
        after = self._check(self._raw(number), head_sha, base_sha)
        if not isinstance(after, Request):
            return after if not isinstance(after, Refused) else Refused(said)
        if queue and reply.status == 405:
            # No pipeline to wait for (GitLab answers 405 then): merge now, guarded.
            return self._accept(number, head_sha, method, base_sha, queue=False)
        if reply.status in (406, 409) or MOVED_WORDS.search(self.http.message(reply)):
            return Moved(said)
        return Refused(said)

    def enqueue(self, number: int, head_sha: str, method: Method) -> EnqueueResult:
        """Merge when the pipeline succeeds (the merge train, where the project has one),
        guarded by ``sha``; with no pipeline to wait for, merge now."""
        before = self._check(self._raw(number), head_sha, None)
        if not isinstance(before, Request):
            return before
        return self._accept(number, head_sha, method, None, queue=True)

    def dequeue(self, number: int) -> None:
        """Cancel merge when pipeline succeeds (auto-merge), which also takes the merge request
        off its merge train; nothing to do when it is not set."""
        if not self._request(self._raw(number), checks=False).queued:
            return
        path = f"{self._path}/merge_requests/{number}/cancel_merge_when_pipeline_succeeds"
        reply = self.http.call("POST", path, allow=(406,), what=f"merge request !{number}")
        if reply.status == 406 and self._request(self._raw(number), checks=False).state == "open":
            raise ForgeError(f"GitLab did not cancel the automatic merge of !{number} ({self.http.message(reply)})")

    def close(self, number: int) -> bool:
        """Close the merge request unmerged (``state_event: close``)."""
        if self._request(self._raw(number), checks=False).state != "open":
            return False
        path = f"{self._path}/merge_requests/{number}"
        self.http.call("PUT", path, body={"state_event": "close"}, what=f"merge request !{number}")
        return True

    def close_branch(self, head: str) -> bool:
        """Delete the source branch; False when it was already gone."""
        reply = self.http.call("DELETE", f"{self._path}/repository/branches/{_q(head)}", allow=(404,))
        return reply.status < 300


def _q(branch: str) -> str:
    return urllib.parse.quote(branch, safe="")
