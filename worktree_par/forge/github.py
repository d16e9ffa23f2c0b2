"""GitHub (and GitHub Enterprise Server) behind the ``Forge`` protocol, on the REST API
(version 2022-11-28) and two GraphQL mutations for the merge queue.

Endpoints, as documented:
- list/create/get pull requests: https://docs.github.com/en/rest/pulls/pulls#list-pull-requests,
  #create-a-pull-request, #get-a-pull-request
- merge with the head guard (``sha``) and ``merge_method``; 405 not mergeable, 409 head
  modified, 422 invalid: https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request
- commit statuses: https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
  and #get-the-combined-status-for-a-specific-reference
- branches and refs: https://docs.github.com/en/rest/branches/branches#get-a-branch,
  https://docs.github.com/en/rest/git/refs#delete-a-reference
- merge queue and auto-merge: https://docs.github.com/en/graphql/reference/mutations#enqueuepullrequest
  (``expectedHeadOid``) and #enablepullrequestautomerge; out of them again: #dequeuepullrequest
  (``id``) and #disablepullrequestautomerge (``pullRequestId``)
- close without merging: https://docs.github.com/en/rest/pulls/pulls#update-a-pull-request
  (``state: closed``)
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
from .errors import ForgeConfigError, ForgeError, ForgeNotFound
from .http import Http

API = "https://api.github.com"
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# 405/422 texts that mean "rebuild on the new base", not "a person must act".
MOVED_WORDS = re.compile(r"modified|out of date|not up to date|up-to-date|behind|expected head", re.I)

ENQUEUE = """mutation($id: ID!, $oid: GitObjectID) {
  enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $oid}) { mergeQueueEntry { id state } }
}"""
QUEUE_STATE = """query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) { pullRequest(number: $number) { isInMergeQueue autoMergeRequest { enabledAt } } }
}"""
AUTO_MERGE = """mutation($id: ID!, $oid: GitObjectID, $method: PullRequestMergeMethod) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, expectedHeadOid: $oid, mergeMethod: $method}) {
    pullRequest { number }
  }
}"""
DEQUEUE = """mutation($id: ID!) { dequeuePullRequest(input: {id: $id}) { mergeQueueEntry { id } } }"""
NO_AUTO_MERGE = """mutation($id: ID!) {
  disablePullRequestAutoMerge(input: {pullRequestId: $id}) { pullRequest { number } }
}"""


def auth_headers(token: str) -> dict[str, str]:
    return {**HEADERS, "Authorization": f"Bearer {token}"}


class GitHub(Reading):
    """One GitHub repository (``owner/name``) through ``http``."""

    kind: Kind = "github"

    def __init__(self, http: Http, repo: str) -> None:
        if repo.count("/") != 1:
            raise ForgeConfigError(f"[forge] repo = '{repo}' is not 'owner/name'")
        self.http = http
        self.repo = repo
        self.owner = repo.split("/")[0]
        self._path = "/repos/" + urllib.parse.quote(repo)

    # -- reading ----------------------------------------------------------------------

    def _request(self, data: Any, checks: bool = True) -> Request:
        f = Fields(data, "pull request", "GitHub")
        head, base = f.obj("head"), f.obj("base")
        merged = bool(f.flag("merged")) or bool(f.opt_text("merged_at"))
        state: RequestState = "merged" if merged else ("open" if f.text("state") == "open" else "closed")
        head_sha = head.sha("sha")
        req = Request(
            number=f.num("number"),
            state=state,
            head=head.text("ref"),
            head_sha=head_sha,
            base=base.text("ref"),
            url=f.opt_text("html_url") or "",
            title=f.opt_text("title") or "",
            merge_sha=f.opt_text("merge_commit_sha") if merged else None,
            mergeable=f.flag("mergeable"),
            queued=data.get("auto_merge") is not None,
            body=f.opt_text("body") or "",
        )
        if not checks:
            return req
        reply = self.http.call("GET", f"{self._path}/commits/{head_sha}/status", what=f"commit {head_sha[:12]}")
        combined = Fields(reply.data, "combined status", "GitHub")
        state_, summary = checks_of(combined.data.get("statuses", []), "GitHub")
        return replace(req, checks=state_, checks_summary=summary)

    def _raw(self, number: int) -> Any:
        return self.http.call("GET", f"{self._path}/pulls/{number}", what=f"pull request #{number}").data

    def get(self, number: int) -> Request:
        """The pull request as GitHub reports it now, with its head's combined status; while it
        is open, ``queued`` also says whether it is in the merge queue (which REST does not show)."""
        req = self._request(self._raw(number))
        if req.state != "open" or req.queued:
            return req
        owner, name = self.repo.split("/")
        data, errors = self._graphql(QUEUE_STATE, {"owner": owner, "name": name, "number": number})
        if errors:  # a server without merge queues (older Enterprise): auto-merge from REST is all there is
            return req
        pr = data.get("repository", {}).get("pullRequest") if isinstance(data.get("repository"), dict) else None
        if isinstance(pr, dict) and (pr.get("isInMergeQueue") is True or pr.get("autoMergeRequest")):
            return replace(req, queued=True)
        return req

    def _list(self, head: str, base: str, state: str, first: bool = False) -> list[Any]:
        query: dict[str, str | int] = {"state": state, "head": f"{self.owner}:{head}", "base": base, "per_page": 100}
        reply = self.http.call("GET", f"{self._path}/pulls", query=query)
        if not isinstance(reply.data, list):
            raise ForgeError("GitHub answered a pull request list that is not a list: is [forge] api right?")
        out = []
        for item in reply.data:
            f = Fields(item, "pull request", "GitHub")
            if f.obj("head").text("ref") == head and f.obj("base").text("ref") == base:
                out.append(item)
        return out

    def branch_tip(self, branch: str) -> str | None:
        """The commit ``branch`` points at on GitHub, or None when it does not exist."""
        reply = self.http.call("GET", f"{self._path}/branches/{_q(branch)}", allow=(404,))
        if reply.status == 404:
            if "branch not found" not in self.http.message(reply).lower():
                raise ForgeNotFound(
                    f"GitHub answered 404 for repository '{self.repo}' ({self.http.message(reply)}): check "
                    f"[forge] repo and that the token in {self.http.token_hint} can see it"
                )
            return None
        return Fields(reply.data, "branch", "GitHub").obj("commit").sha("sha")

    # -- writing ----------------------------------------------------------------------

    def find_or_open(self, head: str, base: str, title: str, body: str) -> Request:
        """The open pull request from ``head`` into ``base``, opened if there is none.

        Looks first, and looks again after a refused or failed create (GitHub answers 422
        "A pull request already exists"; a 5xx may have created it), so it never opens two."""
        payload = {"title": title, "head": head, "base": base, "body": body}
        return open_once(
            lambda: self._find(head, base),
            lambda: self.http.call("POST", f"{self._path}/pulls", body=payload, allow=(422,)),
            self._request,
            lambda reply: (
                f"GitHub refused to open a pull request from '{head}' into '{base}' ({self.http.message(reply)}): "
                "is the branch pushed, and does it differ from the base?"
            ),
            (422,),
        )

    def post_status(
        self, sha: str, state: StatusState, description: str, context: str = GATE_CONTEXT, url: str = ""
    ) -> None:
        """Set the commit status ``context`` on ``sha`` (GitHub keeps the newest per context)."""
        payload: dict[str, str] = {"state": state, "description": description[:140], "context": context}
        if url:
            payload["target_url"] = url
        self.http.call("POST", f"{self._path}/statuses/{sha}", body=payload, what=f"commit {sha[:12]}")

    def merge(self, number: int, head_sha: str, method: Method, *, base_sha: str | None = None) -> MergeResult:
        """Merge now with GitHub's head guard (``sha``); given ``base_sha``, only while the
        base branch is still at it.  Moved: rebuild; Refused: blocked, with GitHub's reason."""
        before = self._check(self._raw(number), head_sha, base_sha)
        if not isinstance(before, Request):
            return before
        reply = self.http.call(
            "PUT",
            f"{self._path}/pulls/{number}/merge",
            body={"sha": head_sha, "merge_method": method},
            allow=(405, 409, 422),
            what=f"pull request #{number}",
        )
        if reply.status < 300:
            return Merged(Fields(reply.data, "merge result", "GitHub").sha("sha"))
        said = f"GitHub answered {reply.status} to the merge of #{number}: {self.http.message(reply)}"
        after = self._check(self._raw(number), head_sha, base_sha)
        if not isinstance(after, Request):
            return after if not isinstance(after, Refused) else Refused(said)
        if reply.status == 409 or MOVED_WORDS.search(self.http.message(reply)):
            return Moved(said)
        return Refused(said)

    def enqueue(self, number: int, head_sha: str, method: Method) -> EnqueueResult:
        """Add the request to the merge queue (``enqueuePullRequest`` with ``expectedHeadOid``);
        where the base has no queue, enable auto-merge; where GitHub says the request is
        already mergeable ("clean status"), merge it now with the guard."""
        data = self._raw(number)
        now = self._check(data, head_sha, None)
        if not isinstance(now, Request):
            return now
        node = Fields(data, "pull request", "GitHub").text("node_id")
        errors = self._graphql(ENQUEUE, {"id": node, "oid": head_sha})[1]
        if not errors:
            return Queued("merge queue")
        errors2 = self._graphql(AUTO_MERGE, {"id": node, "oid": head_sha, "method": method.upper()})[1]
        if not errors2:
            return Queued("auto-merge")
        if "clean status" in errors2.lower():
            return self.merge(number, head_sha, method)
        if MOVED_WORDS.search(errors2) or "head" in errors2.lower():
            return Moved(f"GitHub refused to queue #{number}: {errors2}")
        raise ForgeConfigError(
            f"GitHub can neither queue nor auto-merge #{number} ({errors}; {errors2}): enable the merge queue "
            'or auto-merge for the base branch, or set [forge] merge = "direct"'
        )

    def _graphql(self, query: str, variables: dict[str, str | int]) -> tuple[dict[str, Any], str]:
        """Run one GraphQL query: its ``data`` and its errors joined on one line ('' when none)."""
        prefix = self.http.prefix  # Enterprise: /api/v3 for REST, /api/graphql for GraphQL
        gql = prefix[: -len("/v3")] + "/graphql" if prefix.endswith("/api/v3") else prefix + "/graphql"
        reply = self.http.call("POST", gql, body={"query": query, "variables": variables}, absolute=True)
        body = Fields(reply.data, "GraphQL answer", "GitHub")
        data = body.data.get("data")
        data = data if isinstance(data, dict) else {}
        errs = body.data.get("errors")
        if not errs:
            return data, ""
        items = errs if isinstance(errs, list) else [errs]
        texts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in items]
        return data, self.http.clean("; ".join(texts))

    def dequeue(self, number: int) -> None:
        """Out of the merge queue (``dequeuePullRequest``) and auto-merge off
        (``disablePullRequestAutoMerge``), for whichever holds the request."""
        data = self._raw(number)
        req = self._request(data, checks=False)
        if req.state != "open":
            return
        node = Fields(data, "pull request", "GitHub").text("node_id")
        owner, name = self.repo.split("/")
        state = self._graphql(QUEUE_STATE, {"owner": owner, "name": name, "number": number})[0]
        repo = state.get("repository")
        pr = repo.get("pullRequest") if isinstance(repo, dict) else None
        pr = pr if isinstance(pr, dict) else {}
        if pr.get("isInMergeQueue") is True:
            said = self._graphql(DEQUEUE, {"id": node})[1]
            if said:
                raise ForgeError(f"GitHub did not take pull request #{number} out of the merge queue ({said})")
        if req.queued or pr.get("autoMergeRequest"):
            said = self._graphql(NO_AUTO_MERGE, {"id": node})[1]
            if said:
                raise ForgeError(f"GitHub did not turn auto-merge off for pull request #{number} ({said})")

    def close(self, number: int) -> bool:
        """Close the pull request unmerged (``PATCH .../pulls/{number}`` with ``state: closed``)."""
        if self._request(self._raw(number), checks=False).state != "open":
            return False
        self.http.call(
            "PATCH", f"{self._path}/pulls/{number}", body={"state": "closed"}, what=f"pull request #{number}"
        )
        return True

    def close_branch(self, head: str) -> bool:
        """Delete the head branch (``DELETE .../git/refs/heads/{head}``); False if already gone."""
        reply = self.http.call("DELETE", f"{self._path}/git/refs/heads/{_q(head)}", allow=(404, 422))
        return reply.status < 300


def _q(branch: str) -> str:
    return urllib.parse.quote(branch, safe="/")
