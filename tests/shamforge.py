"""A stand-in forge for tests, in the spirit of git-spice's ShamHub: an HTTP server on
127.0.0.1 that speaks the documented request and response shapes of the endpoints wtp
uses, for GitHub, GitLab and Gitea/Forgejo, over a REAL bare repository.

- GitHub REST (https://docs.github.com/en/rest/pulls/pulls, .../commits/statuses,
  .../branches/branches#get-a-branch, .../git/refs#delete-a-reference) and the GraphQL
  mutations ``enqueuePullRequest`` / ``enablePullRequestAutoMerge``
  (https://docs.github.com/en/graphql/reference/mutations).
- GitLab REST v4 (https://docs.gitlab.com/ee/api/merge_requests.html, .../api/commits.html
  #set-the-pipeline-status-of-a-commit, .../api/branches.html); the project is addressed by
  its URL-encoded path; its merge method (merge, rebase_merge, ff) is a project setting.
- Gitea/Forgejo REST v1 (https://gitea.com/api/swagger: repoCreatePullRequest,
  repoMergePullRequest with ``Do``/``head_commit_id``/``merge_when_checks_succeed``,
  repoCreateStatus, repoGetCombinedStatusByRef, repoGetBranch, repoDeleteBranch).

The base branch is protected the strict way ("require branches to be up to date"): the
bare repository's ``pre-receive`` hook refuses any push to it unless the server itself
pushes (an env var holding a nonce only the server knows), and a merge is refused (405/409)
unless the base is an ancestor of the head and the head is the guarded SHA.  Merges are
real git objects made with plumbing (``commit-tree``), published by a compare-and-swap push.

Taking a request out of the queue, as documented: GitHub's ``dequeuePullRequest`` and
``disablePullRequestAutoMerge`` mutations, GitLab's ``POST .../cancel_merge_when_pipeline_succeeds``
(406 once merged or closed), Gitea's ``DELETE .../pulls/{index}/merge``
(repoCancelScheduledAutoMerge: 404 when none is scheduled); closing one unmerged: GitHub and
Gitea ``PATCH .../pulls/{n}`` ``state: closed``, GitLab ``PUT .../merge_requests/{iid}``
``state_event: close``.

Controls for tests: ``fail`` (answer a status, with headers such as Retry-After), ``stall``
(never answer), ``set_status`` (a check), ``close``, ``advance_base`` (another merge moves
the base), ``queue_policy`` ("manual": merged by ``release``, also after wtp gave up on it,
if it is still queued; "on_poll": at the next read), ``on_dequeue`` ("": taken out;
"merge": the queue merges it just before the dequeue arrives; "refuse": the forge refuses
to take it out), ``push_head`` (someone else pushes to a head branch).
Use the ``shamforge`` fixture, a factory: ``sham = shamforge("github")``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import Repo, git

BOT = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}
IDENT = {  # the forge's own commits do not depend on the caller's git identity
    "GIT_AUTHOR_NAME": "Someone Else",
    "GIT_AUTHOR_EMAIL": "else@sham.invalid",
    "GIT_COMMITTER_NAME": "Someone Else",
    "GIT_COMMITTER_EMAIL": "else@sham.invalid",
}


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"  # open | closed | merged
    merge_sha: str | None = None
    merged_head: str | None = None
    queued: dict[str, str] | None = None  # {"sha", "style", "how"} while the queue holds it
    dequeued: str = ""
    last_head: str = ""
    merged_style: str = ""
    squash_sha: str | None = None

    def head_sha(self, sham: ShamForge) -> str:
        tip = sham.tip(self.head) if self.state == "open" else None
        self.last_head = tip or self.merged_head or self.last_head
        return self.last_head


@dataclass
class Hit:
    method: str
    path: str
    body: Any
    at: float


@dataclass
class Fault:
    status: int
    match: str
    times: int
    headers: dict[str, str]
    message: str
    stall: bool = False
    after: bool = False  # do the call, then answer the fault (a 502 from a proxy after the work was done)


@dataclass
class ShamForge:
    root: Path
    kind: str
    repo: str = ""
    base: str = "main"
    queue_policy: str = "manual"  # manual | on_poll
    queue_method: str = "merge"  # how GitHub's merge queue merges (a ruleset setting)
    gitlab_merge_method: str = "ff"  # merge | rebase_merge | ff (a GitLab project setting)
    github_merge_queue: bool = True
    gitea_fast_forward_only: bool = True  # False: a server older than Gitea 1.21 / Forgejo 7
    required: set[str] = field(default_factory=set)  # contexts that must be green to merge
    on_dequeue: str = ""  # "" | "merge" | "refuse": what a request to leave the queue meets
    token: str = field(default_factory=lambda: "sham-" + secrets.token_hex(16))
    pulls: dict[int, Pull] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # sha -> newest first
    hits: list[Hit] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Set: the call that puts a request in the queue is answered only once this is set (a forge
    # that queued the request and is slow to say so).
    hold_queueing: threading.Event | None = None

    def __post_init__(self) -> None:
        self.repo = self.repo or ("acme/tools/app" if self.kind == "gitlab" else "acme/app")
        self.bare = self.root / f"sham-{self.kind}.git"
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self._nonce = secrets.token_hex(8)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._init_repo()

    # -- the repository ------------------------------------------------------------------

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        res = subprocess.run(
            ["git", "-C", str(self.bare), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"sham git {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout.strip()

    def _init_repo(self) -> None:
        subprocess.run(["git", "init", "-q", "--bare", "-b", self.base, str(self.bare)], check=True)
        hook = self.bare / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\n"
            "while read old new ref; do\n"
            f'  if [ "$ref" = "refs/heads/{self.base}" ] && [ "$SHAM_FORGE_ALLOW" != "{self._nonce}" ]; then\n'
            f'    echo "protected branch hook declined: {self.base} takes changes through pull requests" >&2\n'
            "    exit 1\n"
            "  fi\n"
            "done\n"
        )
        hook.chmod(0o755)
        blob = subprocess.run(
            ["git", "-C", str(self.bare), "hash-object", "-w", "--stdin"],
            input="sham\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tree = subprocess.run(
            ["git", "-C", str(self.bare), "mktree"],
            input=f"100644 blob {blob}\tREADME.md\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        first = self.git("commit-tree", tree, "-m", "initial", env=IDENT)
        self.publish(first, None)

    @property
    def url(self) -> str:
        """Where git pushes and fetches (a path: the hook runs as for any remote)."""
        return str(self.bare)

    def tip(self, branch: str) -> str | None:
        return self.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}", check=False) or None

    def publish(self, new: str, old: str | None) -> bool:
        """Move the base as the forge does: a push the hook lets through, compare-and-swap."""
        lease = f"--force-with-lease=refs/heads/{self.base}:{old or ''}"
        res = subprocess.run(
            ["git", "-C", str(self.bare), "push", "-q", lease, str(self.bare), f"{new}:refs/heads/{self.base}"],
            capture_output=True,
            text=True,
            env={**os.environ, "SHAM_FORGE_ALLOW": self._nonce},
        )
        return res.returncode == 0

    def _with_file(self, parent: str, name: str, text: str, message: str) -> str:
        """A commit on ``parent`` that adds ``name`` with ``text``, made in the bare repository
        (through an index of its own); its id.  Called with the lock held."""
        blob = subprocess.run(
            ["git", "-C", str(self.bare), "hash-object", "-w", "--stdin"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        idx = self.root / f"sham-{self.kind}.index"
        env = {"GIT_INDEX_FILE": str(idx)}
        self.git("read-tree", parent, env=env)
        self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
        tree = self.git("write-tree", env=env)
        idx.unlink()
        return self.git("commit-tree", tree, "-p", parent, "-m", message, env=IDENT)

    def advance_base(self, name: str = "other.txt", text: str = "another change\n") -> str:
        """Another merge lands on the base (a file added by a commit on it); its new tip."""
        with self.lock:
            old = self.tip(self.base) or ""
            new = self._with_file(old, name, text, f"add {name}")
            assert self.publish(new, old)
            return new

    def mergeable(self, pr: Pull) -> tuple[str, str]:
        """('', '') when ``pr`` may merge now, else (kind, what): head | behind | checks | closed."""
        if pr.state != "open":
            return "closed", f"the request is {pr.state}"
        head, base = self.tip(pr.head), self.tip(pr.base)
        if head is None or base is None:
            return "closed", "the head branch is gone"
        if not self._is_ancestor(base, head):
            return "behind", "the head is not up to date with the base"
        for ctx in sorted(self.required | {c for c, s in self.latest(head).items() if s in ("failure", "failed")}):
            state = self.latest(head).get(ctx, "")
            if state not in ("success",):
                return "checks", f'Required status check "{ctx}" is {state or "expected"}.'
        return "", ""

    def _is_ancestor(self, a: str, b: str) -> bool:
        return subprocess.run(["git", "-C", str(self.bare), "merge-base", "--is-ancestor", a, b]).returncode == 0

    def latest(self, sha: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in self.statuses.get(sha, []):
            out.setdefault(s["context"], s["state"])
        return out

    def merge(self, pr: Pull, guard: str | None, style: str) -> tuple[str, str]:
        """Merge ``pr`` with ``style`` (merge | squash | rebase | ff); ('', sha) when merged,
        else the refusal as ``mergeable`` gives it."""
        head = self.tip(pr.head)
        if guard and head != guard:
            return "head", f"the head is {head}, not {guard}"
        why = self.mergeable(pr)
        if why[0]:
            return why
        base = self.tip(pr.base) or ""
        assert head
        tree = f"{head}^{{tree}}"
        bot = {
            **IDENT,
            "GIT_COMMITTER_NAME": BOT[self.kind],
            "GIT_COMMITTER_EMAIL": "noreply@sham.invalid",
            "GIT_COMMITTER_DATE": "2026-02-02T00:00:00Z",
        }
        if style == "ff":
            new = head
        elif style == "squash+merge":  # GitLab: a squash commit, then the merge commit of the project
            squashed = pr.squash_sha = self.git("commit-tree", tree, "-p", base, "-m", pr.title, env=bot)
            new = self.git("commit-tree", tree, "-p", base, "-p", squashed, "-m", f"Merge branch '{pr.head}'", env=bot)
        elif style == "squash":
            new = self.git("commit-tree", tree, "-p", base, "-m", f"{pr.title} (#{pr.number})", env=bot)
        elif style == "merge":
            msg = f"Merge pull request #{pr.number} from {pr.head}"
            new = self.git("commit-tree", tree, "-p", base, "-p", head, "-m", msg, env=bot)
        else:  # rebase: replay each commit with the forge as committer (new ids, as GitHub does)
            new = base
            for c in self.git("rev-list", "--reverse", "--topo-order", f"{base}..{head}").split():
                if len(self.git("rev-list", "--parents", "-n1", c).split()) > 2:
                    return "behind", "merge commits cannot be rebased"
                info = self.git("log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", c).split("\x00", 3)
                author = {"GIT_AUTHOR_NAME": info[0], "GIT_AUTHOR_EMAIL": info[1], "GIT_AUTHOR_DATE": info[2]}
                new = self.git("commit-tree", f"{c}^{{tree}}", "-p", new, "-m", info[3], env={**bot, **author})
        if not self.publish(new, base):
            return "behind", "the base moved during the merge"
        pr.state, pr.merge_sha, pr.merged_head, pr.queued, pr.merged_style = "merged", new, head, None, style
        if style == "squash":
            pr.squash_sha = new
        return "", new

    def run_queue(self, pr: Pull) -> None:
        """The forge's queue takes ``pr`` up: merged if it may be, else dropped from the queue."""
        q = pr.queued
        if q is None or pr.state != "open":
            return
        head = self.tip(pr.head) or ""
        failing = any(st in ("failure", "failed", "error") for st in self.latest(head).values())
        if self.mergeable(pr)[0] == "checks" and not failing:
            return  # checks still pending: the queue waits for them
        why, what = self.merge(pr, q["sha"], q["style"])
        if why:
            pr.queued, pr.dequeued = None, what

    # -- controls for tests ---------------------------------------------------------------

    def release(self, number: int) -> Pull:
        """The queue merges request ``number`` now (queue_policy "manual")."""
        with self.lock:
            pr = self.pulls[number]
            self.run_queue(pr)
            return pr

    def dequeue(self, pr: Pull) -> str:
        """A request to take ``pr`` out of the queue: '' when done (or nothing was queued),
        else why not (``on_dequeue`` "refuse"); with "merge" the queue merges it first."""
        if self.on_dequeue == "merge":
            self.run_queue(pr)
        if self.on_dequeue == "refuse" and pr.queued is not None:
            return "the merge queue is locked"
        pr.queued = None
        return ""

    def push_head(self, branch: str, name: str = "other.txt", text: str = "someone else's\n") -> str:
        """Someone else (a person, an older wtp) force-pushes a commit of their own to ``branch``:
        the base plus one file.  Its id."""
        with self.lock:
            base = self.tip(self.base) or ""
            new = self._with_file(base, name, text, f"someone else's {name}")
            self.git("update-ref", f"refs/heads/{branch}", new)
            return new

    def set_status(self, sha: str, state: str, context: str = "ci", description: str = "") -> None:
        with self.lock:
            self.statuses.setdefault(sha, []).insert(
                0, {"state": state, "context": context, "description": description}
            )

    def close(self, number: int) -> None:
        with self.lock:
            self.pulls[number].state = "closed"
            self.pulls[number].queued = None

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        match: str = "",
        headers: dict[str, str] | None = None,
        message: str = "",
        after: bool = False,
    ) -> None:
        """Answer the next ``times`` calls whose 'METHOD path' contains ``match`` with ``status``
        (with ``after``, once the call has done its work)."""
        with self.lock:
            fault = Fault(status, match, times, dict(headers or {}), message or f"sham fault {status}", after=after)
            self.faults.append(fault)

    def stall(self, *, times: int = 1, match: str = "") -> None:
        """Never answer the next ``times`` matching calls (until the server stops)."""
        with self.lock:
            self.faults.append(Fault(0, match, times, {}, "", stall=True))

    def env(self) -> dict[str, str]:
        """The token variable a wtp process reads for this forge, set to the stand-in's token."""
        return {{"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN", "gitea": "GITEA_TOKEN"}[self.kind]: self.token}

    def wtp_toml(self, merge: str = "direct", method: str = "") -> str:
        """The ``[land]`` and ``[forge]`` sections that make wtp land through this stand-in."""
        return (
            f'[land]\nvia = "{self.kind}"\n\n[forge]\napi = "{self.api}"\nrepo = "{self.repo}"\n'
            f'merge = "{merge}"\nmethod = "{method}"\n'
        )

    def calls(self, method: str = "", contains: str = "") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if (not method or h.method == method) and contains in h.path]

    # -- the server ----------------------------------------------------------------------

    @property
    def api(self) -> str:
        assert self._server is not None, "start the sham first"
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        return base + {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}[self.kind]

    def start(self) -> ShamForge:
        sham = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                sham.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # Its loop looks at stop() only between two accepts: an accept never blocks for good (a
        # connection gone from the backlog after select saw it left stop() waiting for ever).
        self._server.socket.settimeout(0.5)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sham-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.hits.append(Hit(h.command, h.path, body, time.monotonic()))
            fault = next((f for f in self.faults if f.times > 0 and f.match in f"{h.command} {h.path}"), None)
            if fault:
                fault.times -= 1
        if fault and fault.stall:
            self.stopping.wait(60)
            h.close_connection = True
            return
        if fault and not fault.after:
            status, data, headers = fault.status, self.error_body(fault.message), fault.headers
        elif not self.authorized(h):
            status, data, headers = 401, self.error_body(self.unauthorized_text()), {}
        else:
            parts = urllib.parse.urlsplit(h.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
            with self.lock:
                was = {n: p.queued for n, p in self.pulls.items()}
                status, data = route(self, h.command, parts.path, query, body)
                queueing = any(p.queued and not was.get(n) for n, p in self.pulls.items())
            if queueing and self.hold_queueing is not None:
                self.hold_queueing.wait(60)
            headers = {}
            if fault:
                status, data, headers = fault.status, self.error_body(fault.message), fault.headers
        payload = b"" if data is None else json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)

    def authorized(self, h: BaseHTTPRequestHandler) -> bool:
        if self.kind == "gitlab":
            return (
                h.headers.get("PRIVATE-TOKEN") == self.token or h.headers.get("Authorization") == f"Bearer {self.token}"
            )
        scheme = "Bearer" if self.kind == "github" else "token"
        return h.headers.get("Authorization") in (f"{scheme} {self.token}", f"token {self.token}")

    def unauthorized_text(self) -> str:
        return {"github": "Bad credentials", "gitlab": "401 Unauthorized", "gitea": "token is required"}[self.kind]

    def error_body(self, message: Any) -> dict[str, Any]:
        if self.kind == "github":
            return {"message": message, "documentation_url": "https://docs.github.com/rest"}
        if self.kind == "gitea":
            return {"message": message, "url": "https://gitea.com/api/swagger"}
        return {"message": message}


# -- the three APIs ------------------------------------------------------------------------

Answer = tuple[int, Any]
WHEN = "2026-02-02T00:00:00Z"


def route(s: ShamForge, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
    """The answer of the ``s.kind`` API to one call (the lock is held)."""
    return {"github": _github, "gitlab": _gitlab, "gitea": _gitea}[s.kind](s, method, path, query, body or {})


def _open(s: ShamForge, head: str, base: str) -> Pull | None:
    return next((p for p in s.pulls.values() if p.state == "open" and p.head == head and p.base == base), None)


def _new_pull(s: ShamForge, head: str, base: str, title: str, body: str) -> Pull:
    pr = Pull(len(s.pulls) + 1, head, base, title, body)
    s.pulls[pr.number] = pr
    return pr


def _pull(s: ShamForge, number: str) -> Pull | None:
    pr = s.pulls.get(int(number))
    if pr is not None and s.queue_policy == "on_poll":
        s.run_queue(pr)
    return pr


def _combined(s: ShamForge, sha: str, key: str) -> dict[str, Any]:
    latest = s.latest(sha)
    state = "pending"
    if latest and all(v == "success" for v in latest.values()):
        state = "success"
    if any(v in ("failure", "failed", "error") for v in latest.values()):
        state = "failure"
    items = [{key: v, "context": c, "description": ""} for c, v in latest.items()]
    return {"state": state, "sha": sha, "statuses": items, "total_count": len(items)}


def _commit(s: ShamForge, ref: str) -> str | None:
    return s.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False) or None


def _edit_state(p: Pull, state: Any) -> None:
    if state == "closed" and p.state == "open":
        p.state, p.queued = "closed", None


def _delete_branch(s: ShamForge, branch: str) -> bool:
    if branch == s.base or s.tip(branch) is None:
        return False
    s.git("update-ref", "-d", f"refs/heads/{branch}")
    return True


def _github(s: ShamForge, m: str, path: str, q: dict[str, str], body: Any) -> Answer:
    if m == "POST" and path == "/graphql":
        return _graphql(s, body)
    prefix = f"/repos/{s.repo}"
    if not path.startswith(prefix + "/"):
        return 404, s.error_body("Not Found")
    rest = urllib.parse.unquote(path[len(prefix) :])
    owner = s.repo.split("/")[0]

    def pull(p: Pull) -> dict[str, Any]:
        head = p.head_sha(s)
        why = s.mergeable(p)[0] if p.state == "open" else "closed"
        auto = p.queued is not None and p.queued.get("how") == "auto-merge"
        return {
            "id": 5000 + p.number,
            "node_id": f"PR_{p.number}",
            "number": p.number,
            "state": "open" if p.state == "open" else "closed",
            "title": p.title,
            "body": p.body,
            "html_url": f"https://github.invalid/{s.repo}/pull/{p.number}",
            "merged": p.state == "merged",
            "merged_at": WHEN if p.state == "merged" else None,
            "merge_commit_sha": p.merge_sha,
            "mergeable": None if p.state != "open" else why in ("", "checks"),
            "mergeable_state": {"": "clean", "behind": "behind", "checks": "blocked"}.get(why, "unknown"),
            "auto_merge": {"merge_method": p.queued["style"]} if auto and p.queued else None,
            "head": {"ref": p.head, "sha": head, "label": f"{owner}:{p.head}"},
            "base": {"ref": p.base, "sha": s.tip(p.base), "label": f"{owner}:{p.base}"},
        }

    if rest == "/pulls" and m == "GET":
        want, head = q.get("state", "open"), q.get("head", "").split(":", 1)[-1]
        found = [
            p
            for p in s.pulls.values()
            if (want == "all" or want == ("open" if p.state == "open" else "closed"))
            and (not head or p.head == head)
            and (not q.get("base") or p.base == q["base"])
        ]
        return 200, [pull(p) for p in found]
    if rest == "/pulls" and m == "POST":
        head, base = body.get("head", ""), body.get("base", "")
        if not body.get("title") or s.tip(head) is None or s.tip(base) is None:
            return 422, {
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
            }
        if _open(s, head, base):
            return 422, {
                "message": "Validation Failed",
                "errors": [{"message": f"A pull request already exists for {owner}:{head}."}],
            }
        return 201, pull(_new_pull(s, head, base, body["title"], body.get("body", "")))
    if mt := re.fullmatch(r"/pulls/(\d+)", rest):
        p = _pull(s, mt[1])
        if p and m == "PATCH":
            _edit_state(p, body.get("state"))
        return (200, pull(p)) if p else (404, s.error_body("Not Found"))
    if (mt := re.fullmatch(r"/pulls/(\d+)/merge", rest)) and m == "PUT":
        p = s.pulls.get(int(mt[1]))
        if p is None:
            return 404, s.error_body("Not Found")
        style = body.get("merge_method", "merge")
        if style not in ("merge", "squash", "rebase"):
            return 422, s.error_body("Invalid merge_method")
        why, what = s.merge(p, body.get("sha"), style)
        if not why:
            return 200, {"sha": what, "merged": True, "message": "Pull Request successfully merged"}
        if why == "head":
            return 409, s.error_body("Head branch was modified. Review and try the merge again.")
        if why == "behind":
            return 405, s.error_body("Head branch is not up to date with the base branch")
        return 405, s.error_body(what if why == "checks" else "Pull Request is not mergeable")
    if (mt := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and m == "POST":
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return 422, {"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]}
        if _commit(s, mt[1]) is None:
            return 422, s.error_body(f"No commit found for SHA: {mt[1]}")
        s.set_status(mt[1], body["state"], body.get("context", "default"), body.get("description", ""))
        return 201, {"id": 1, "state": body["state"], "context": body.get("context", "default")}
    if mt := re.fullmatch(r"/commits/(.+)/status", rest):
        sha = _commit(s, mt[1])
        return (200, _combined(s, sha, "state")) if sha else (422, s.error_body(f"No commit found for SHA: {mt[1]}"))
    if mt := re.fullmatch(r"/branches/(.+)", rest):
        tip = s.tip(mt[1])
        if tip is None:
            return 404, s.error_body("Branch not found")
        return 200, {"name": mt[1], "commit": {"sha": tip}, "protected": mt[1] == s.base}
    if (mt := re.fullmatch(r"/git/refs/heads/(.+)", rest)) and m == "DELETE":
        return (204, None) if _delete_branch(s, mt[1]) else (422, s.error_body("Reference does not exist"))
    return 404, s.error_body("Not Found")


def _graphql(s: ShamForge, body: Any) -> Answer:
    query, var = body.get("query", ""), body.get("variables") or {}
    if "isInMergeQueue" in query:
        if f"{var.get('owner')}/{var.get('name')}" != s.repo or int(var.get("number", 0)) not in s.pulls:
            return 200, {
                "data": {"repository": None},
                "errors": [{"type": "NOT_FOUND", "message": "Could not resolve"}],
            }
        q = s.pulls[int(var["number"])].queued
        state = {
            "isInMergeQueue": q is not None and q["how"] == "merge-queue",
            "autoMergeRequest": {"enabledAt": WHEN} if q is not None and q["how"] == "auto-merge" else None,
        }
        return 200, {"data": {"repository": {"pullRequest": state}}}
    mt = re.fullmatch(r"PR_(\d+)", str(var.get("id", "")))
    p = s.pulls.get(int(mt[1])) if mt else None

    def error(kind: str, message: str) -> Answer:
        return 200, {"data": None, "errors": [{"type": kind, "message": message}]}

    if p is None:
        return error("NOT_FOUND", f"Could not resolve to a node with the global id of '{var.get('id')}'")
    if "dequeuePullRequest" in query or "disablePullRequestAutoMerge" in query:
        how = "merge-queue" if "dequeuePullRequest" in query else "auto-merge"
        if p.queued is not None and p.queued["how"] == how:
            if why := s.dequeue(p):
                return error("UNPROCESSABLE", why)
        if p.state != "open":
            return error("UNPROCESSABLE", f"Pull request is {p.state}")
        name = "dequeuePullRequest" if how == "merge-queue" else "disablePullRequestAutoMerge"
        out = (
            {"mergeQueueEntry": {"id": f"MQE_{p.number}"}}
            if how == "merge-queue"
            else {"pullRequest": {"number": p.number}}
        )
        return 200, {"data": {name: out}}
    if var.get("oid") and p.head_sha(s) != var["oid"]:
        return error("UNPROCESSABLE", "The expected head oid does not match the pull request's head")
    if p.state != "open":
        return error("UNPROCESSABLE", "Pull request is closed")
    if "enqueuePullRequest" in query:
        if not s.github_merge_queue:
            return error("UNPROCESSABLE", "The base branch does not have a merge queue")
        p.queued = {"sha": p.head_sha(s), "style": s.queue_method, "how": "merge-queue"}
        return 200, {"data": {"enqueuePullRequest": {"mergeQueueEntry": {"id": f"MQE_{p.number}", "state": "QUEUED"}}}}
    if "enablePullRequestAutoMerge" in query:
        if not s.mergeable(p)[0]:
            return error("UNPROCESSABLE", "Pull request is in clean status")
        p.queued = {"sha": p.head_sha(s), "style": str(var.get("method") or "MERGE").lower(), "how": "auto-merge"}
        return 200, {"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": p.number}}}}
    return error("UNPROCESSABLE", "unknown mutation")


def _gitlab(s: ShamForge, m: str, path: str, q: dict[str, str], body: Any) -> Answer:
    mt = re.fullmatch(r"/api/v4/projects/([^/]+)(/.*)?", path)
    if not mt or urllib.parse.unquote(mt[1]) != s.repo:
        return 404, {"message": "404 Project Not Found"}
    rest = mt[2] or ""
    states = {"open": "opened", "closed": "closed", "merged": "merged"}

    def mr(p: Pull) -> dict[str, Any]:
        head = p.head_sha(s)
        why = s.mergeable(p)[0] if p.state == "open" else "closed"
        by_commit = p.state == "merged" and p.merged_style in ("merge", "squash+merge")
        return {
            "id": 9000 + p.number,
            "iid": p.number,
            "project_id": 42,
            "title": p.title,
            "description": p.body,
            "state": states[p.state],
            "source_branch": p.head,
            "target_branch": p.base,
            "sha": head,
            "merge_commit_sha": p.merge_sha if by_commit else None,
            "squash_commit_sha": p.squash_sha,
            "web_url": f"https://gitlab.invalid/{s.repo}/-/merge_requests/{p.number}",
            "merge_when_pipeline_succeeds": p.queued is not None,
            "detailed_merge_status": {"": "mergeable", "behind": "need_rebase", "checks": "ci_must_pass"}.get(
                why, "not_open"
            ),
        }

    if rest == "/merge_requests" and m == "GET":
        want = q.get("state", "all")
        found = [
            p
            for p in s.pulls.values()
            if (want == "all" or states[p.state] == want)
            and q.get("source_branch", p.head) == p.head
            and q.get("target_branch", p.base) == p.base
        ]
        return 200, [mr(p) for p in found]
    if rest == "/merge_requests" and m == "POST":
        head, base = body.get("source_branch", ""), body.get("target_branch", "")
        if not body.get("title"):
            return 400, {"error": "title is missing"}
        if s.tip(head) is None or s.tip(base) is None:
            return 422, {"message": [f'Source branch "{head}" does not exist']}
        if o := _open(s, head, base):
            return 409, {"message": [f"Another open merge request already exists for this source branch: !{o.number}"]}
        return 201, mr(_new_pull(s, head, base, body["title"], body.get("description", "")))
    if mt := re.fullmatch(r"/merge_requests/(\d+)", rest):
        p = _pull(s, mt[1])
        if p and m == "PUT" and body.get("state_event") == "close":
            _edit_state(p, "closed")
        return (200, mr(p)) if p else (404, {"message": "404 Not found"})
    if (mt := re.fullmatch(r"/merge_requests/(\d+)/cancel_merge_when_pipeline_succeeds", rest)) and m == "POST":
        p = s.pulls.get(int(mt[1]))
        if p is None:
            return 404, {"message": "404 Not found"}
        why = s.dequeue(p)
        if why or p.state != "open":
            return 406, {"message": "406 Not Acceptable"}
        return 201, mr(p)
    if (mt := re.fullmatch(r"/merge_requests/(\d+)/merge", rest)) and m == "PUT":
        p = s.pulls.get(int(mt[1]))
        if p is None:
            return 404, {"message": "404 Not found"}
        if p.state != "open":
            return 405, {"message": "405 Method Not Allowed"}
        if body.get("sha") and body["sha"] != p.head_sha(s):
            return 409, {"message": f"SHA does not match HEAD of source branch: {p.head_sha(s)}"}
        squash = bool(body.get("squash"))
        method = s.gitlab_merge_method
        style = ("squash" if squash else "ff") if method == "ff" else ("squash+merge" if squash else "merge")
        if body.get("merge_when_pipeline_succeeds") or body.get("auto_merge"):
            p.queued = {"sha": body.get("sha") or p.head_sha(s), "style": style, "how": "merge when pipeline succeeds"}
            return 200, mr(p)
        why, what = s.merge(p, body.get("sha"), style)
        if why == "head":
            return 409, {"message": f"SHA does not match HEAD of source branch: {p.head_sha(s)}"}
        return (200, mr(p)) if not why else (405, {"message": "405 Method Not Allowed"})
    if (mt := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and m == "POST":
        if body.get("state") not in ("pending", "running", "success", "failed", "canceled"):
            return 400, {"message": "state does not have a valid value"}
        if _commit(s, mt[1]) is None:
            return 404, {"message": "404 Commit Not Found"}
        name = body.get("name") or body.get("context") or "default"
        s.set_status(mt[1], body["state"], name, body.get("description", ""))
        return 201, {"id": 1, "sha": mt[1], "status": body["state"], "name": name}
    if mt := re.fullmatch(r"/repository/commits/([0-9a-f]{40})/statuses", rest):
        return 200, [{"sha": mt[1], "status": st, "name": c} for c, st in s.latest(mt[1]).items()]
    if mt := re.fullmatch(r"/repository/branches/([^/]+)", rest):
        branch = urllib.parse.unquote(mt[1])
        if m == "DELETE":
            return (204, None) if _delete_branch(s, branch) else (404, {"message": "404 Branch Not Found"})
        tip = s.tip(branch)
        return (200, {"name": branch, "commit": {"id": tip}}) if tip else (404, {"message": "404 Branch Not Found"})
    return 404, {"message": "404 Not Found"}


def _gitea(s: ShamForge, m: str, path: str, q: dict[str, str], body: Any) -> Answer:
    prefix = f"/api/v1/repos/{s.repo}"
    if not (path == prefix or path.startswith(prefix + "/")):
        return 404, s.error_body("The target couldn't be found.")
    rest = urllib.parse.unquote(path[len(prefix) :])

    def pull(p: Pull) -> dict[str, Any]:
        why = s.mergeable(p)[0] if p.state == "open" else "closed"
        return {
            "id": 300 + p.number,
            "number": p.number,
            "title": p.title,
            "body": p.body,
            "state": "open" if p.state == "open" else "closed",
            "merged": p.state == "merged",
            "merged_commit_id": p.merge_sha,
            "mergeable": why in ("", "checks"),
            "html_url": f"https://gitea.invalid/{s.repo}/pulls/{p.number}",
            "head": {"ref": p.head, "sha": p.head_sha(s), "label": p.head},
            "base": {"ref": p.base, "sha": s.tip(p.base), "label": p.base},
        }

    if rest == "" and m == "GET":
        return 200, {"full_name": s.repo, "default_branch": s.base}
    if rest == "/pulls" and m == "GET":
        want = q.get("state", "open")
        found = [p for p in s.pulls.values() if want == "all" or want == ("open" if p.state == "open" else "closed")]
        limit, page = int(q.get("limit", 30)), int(q.get("page", 1))
        return 200, [pull(p) for p in found[(page - 1) * limit : page * limit]]
    if rest == "/pulls" and m == "POST":
        head, base = body.get("head", ""), body.get("base", "")
        if s.tip(head) is None or s.tip(base) is None:
            return 404, s.error_body("The target couldn't be found.")
        if o := _open(s, head, base):
            return 409, s.error_body(
                f"pull request already exists for these targets [id: {o.number}, head_branch: {head}, base_branch: {base}]"
            )
        return 201, pull(_new_pull(s, head, base, body.get("title", ""), body.get("body", "")))
    if mt := re.fullmatch(r"/pulls/(\d+)", rest):
        p = _pull(s, mt[1])
        if p and m == "PATCH":
            _edit_state(p, body.get("state"))
        return (200, pull(p)) if p else (404, s.error_body("The target couldn't be found."))
    if (mt := re.fullmatch(r"/pulls/(\d+)/merge", rest)) and m == "DELETE":
        p = s.pulls.get(int(mt[1]))
        if p is None or p.queued is None:
            return 404, s.error_body("The target couldn't be found.")
        if why := s.dequeue(p):
            return 423, s.error_body(why)
        return 204, None
    if (mt := re.fullmatch(r"/pulls/(\d+)/merge", rest)) and m == "POST":
        p = s.pulls.get(int(mt[1]))
        if p is None:
            return 404, s.error_body("The target couldn't be found.")
        styles = {
            "merge": "merge",
            "rebase": "ff",
            "rebase-merge": "merge",
            "squash": "squash",
            "fast-forward-only": "ff",
        }
        if body.get("Do") not in styles or (body["Do"] == "fast-forward-only" and not s.gitea_fast_forward_only):
            return 422, [{"fieldNames": ["Do"], "classification": "InvalidValue", "message": "In"}]
        if p.state != "open":
            return 405, s.error_body("The PR is already merged" if p.state == "merged" else "The PR is closed")
        if body.get("head_commit_id") and body["head_commit_id"] != p.head_sha(s):
            return 409, s.error_body("head out of date")
        style = styles[body["Do"]]
        if body.get("merge_when_checks_succeed") and s.mergeable(p)[0] == "checks":
            p.queued = {"sha": p.head_sha(s), "style": style, "how": "merge when checks succeed"}
            return 201, None
        why, what = s.merge(p, body.get("head_commit_id"), style)
        if not why:
            return 200, None
        if why in ("behind", "head"):
            return 409, s.error_body("Merge DivergingFastForwardOnly: the base branch has moved")
        return 405, s.error_body("Not all required status checks successful" if why == "checks" else what)
    if (mt := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and m == "POST":
        if body.get("state") not in ("pending", "success", "error", "failure", "warning"):
            return 422, [{"fieldNames": ["State"], "classification": "InvalidValue", "message": "In"}]
        s.set_status(mt[1], body["state"], body.get("context", "default"), body.get("description", ""))
        return 201, {"id": 1, "status": body["state"], "context": body.get("context", "default")}
    if mt := re.fullmatch(r"/commits/(.+)/status", rest):
        sha = _commit(s, mt[1])
        return (200, _combined(s, sha, "status")) if sha else (404, s.error_body("The target couldn't be found."))
    if mt := re.fullmatch(r"/branches/(.+)", rest):
        if m == "DELETE":
            return (204, None) if _delete_branch(s, mt[1]) else (404, s.error_body("The target couldn't be found."))
        tip = s.tip(mt[1])
        return (200, {"name": mt[1], "commit": {"id": tip}}) if tip else (404, s.error_body("branch does not exist"))
    return 404, s.error_body("The target couldn't be found.")


@pytest.fixture
def shamforge(tmp_path: Path) -> Iterator[Callable[..., ShamForge]]:
    """A factory of started stand-in forges (``shamforge("github")``), all stopped at the end."""
    started: list[ShamForge] = []

    def make(kind: str, **kw: Any) -> ShamForge:
        root = tmp_path / f"sham{len(started)}"
        root.mkdir()
        sham = ShamForge(root, kind, **kw).start()
        started.append(sham)
        return sham

    yield make
    for sham in started:
        sham.stop()


URL1 = {  # where the stand-in says request 1 is, by kind
    "github": "https://github.invalid/acme/app/pull/1",
    "gitlab": "https://gitlab.invalid/acme/tools/app/-/merge_requests/1",
    "gitea": "https://gitea.invalid/acme/app/pulls/1",
}


def clone_of(sham: ShamForge, path: Path, monkeypatch: pytest.MonkeyPatch | None = None, wtp_toml: str = "") -> Repo:
    """A clone of the forge's repository at ``path`` that lands through it (``wtp_toml``: the
    [land]/[forge] part, the forge's own by default), up to five tasks at once; with
    ``monkeypatch``, the forge's token in the environment."""
    git(path.parent, "clone", "-q", sham.url, str(path))
    r = Repo(path, Path(sham.url))
    r.write(".wtp.toml", "max_active = 5\n" + (wtp_toml or sham.wtp_toml()))
    r.write(".git/info/exclude", ".wtp.toml\n")
    if monkeypatch is not None:
        for k, v in sham.env().items():
            monkeypatch.setenv(k, v)
    return r
