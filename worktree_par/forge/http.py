"""One small JSON-over-HTTPS client on the standard library, shared by the three forges.

Every call has a deadline (``timeout``, 30 s by default) that covers its retries too.  A 5xx
is retried with exponential backoff when the method is idempotent (a POST that failed with
502 may have been done: its caller looks before it tries again); a rate limit (429, or 403
with ``X-RateLimit-Remaining: 0`` or a ``Retry-After``) is retried for every method, after
the forge's ``Retry-After`` (bounded by ``max_wait`` and by the deadline).  See GitHub's
"Rate limits for the REST API" (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api)
and GitLab's (https://docs.gitlab.com/ee/administration/settings/user_and_ip_rate_limits.html).

Failures become one-line ``ForgeError``s that quote the forge's own ``message``.  Redirects
are not followed: a token must never travel to a host the user did not configure.  The
token is held by the client, sent in a header, and removed from any text it raises.
``http://`` is accepted only for a loopback host (the test stand-in, an SSH tunnel).

Why not requests/httpx: a land makes a handful of JSON calls; ``http.client`` does them,
costs nothing to install, and imports in a few milliseconds (README, Dependencies).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Say, quiet
from .errors import ForgeAuthError, ForgeConfigError, ForgeError, ForgeNotFound, ForgeTimeout, ForgeUnreachable

LOOPBACK = ("localhost",)
USER_AGENT = "wtp-forge/1 (+https://pypi.org/project/worktree-par/)"
MAX_BODY = 16 << 20  # bytes of an answer: the largest wtp asks for (a page of requests) is far smaller


@dataclass(frozen=True)
class Reply:
    """One answer: the status, the parsed JSON body (None when empty) and the headers."""

    status: int
    data: Any
    headers: Mapping[str, str]


def check_api_url(api: str) -> urllib.parse.SplitResult:
    """The parsed API base URL; ``http://`` only for a loopback host, else a ForgeConfigError."""
    parts = urllib.parse.urlsplit(api.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ForgeConfigError(f"[forge] api = '{api}' is not an http(s) URL: set it to the forge's API base URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ForgeConfigError(
            f"[forge] api = '{api}' uses plain http:// on a host that is not loopback, which would send the "
            "token in clear: use https://"
        )
    return parts


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Http:
    """JSON calls to one forge API as one user.

    ``forge`` names the forge in messages ("GitHub"); ``token_hint`` says where a token comes
    from ("GITHUB_TOKEN (or GH_TOKEN)"); ``repo`` is the configured ``[forge] repo``.
    """

    def __init__(
        self,
        api: str,
        *,
        forge: str,
        auth: Mapping[str, str],
        secret: str,
        token_hint: str,
        repo: str,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        say: Say = quiet,
    ) -> None:
        parts = check_api_url(api)
        self.api = api.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.forge = forge
        self._auth = dict(auth)
        self._secret = secret
        self.token_hint = token_hint
        self.repo = repo
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.say = say

    def __repr__(self) -> str:  # never the headers: they hold the token
        return f"Http({self.api!r}, forge={self.forge!r})"

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int] | None = None,
        allow: tuple[int, ...] = (),
        what: str = "",
        timeout: float | None = None,
        absolute: bool = False,
    ) -> Reply:
        """Send one JSON call and return its answer; a status in ``allow`` is returned
        rather than raised.  ``what`` names the object for a 404 ("pull request #4")."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        target = path if absolute else self.prefix + path
        if query:
            target += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
        payload = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self._auth}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            reply = self._once(method, target, payload, headers, deadline, f"{method} {path}", limit)
            if 200 <= reply.status < 300 or reply.status in allow:
                return reply
            wait = self._retry_after(method, reply, attempt)
            if wait is None:
                raise self._error(method, path, reply, what)
            left = deadline - time.monotonic()
            if wait > left:
                if reply.status >= 500:
                    raise self._error(method, path, reply, what)
                raise ForgeTimeout(
                    f"{self.forge} API rate limit: {self._message(reply) or 'too many requests'}; it resets in "
                    f"{wait:.0f} s, later than this call's {limit:g} s deadline: try again later"
                )
            self.say(f"{self.forge} answered {reply.status} to {method} {path}: retrying in {wait:.1f} s")
            time.sleep(wait)

    def _once(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        deadline: float,
        call: str,
        limit: float,
    ) -> Reply:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timed_out(call, limit)
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=left, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=left)
        # The socket's timeout bounds each read; the deadline bounds the call: a forge that
        # trickles its answer a byte at a time has its connection cut when the deadline comes.
        came = threading.Event()  # the deadline came and the connection was cut
        cut = threading.Timer(left, _cut, (conn, came))
        cut.daemon = True
        cut.start()
        try:
            conn.request(method, target, body=payload, headers=headers)
            # Closed here, not by a finalizer later: a Ctrl-C that came while one ran was lost.
            with conn.getresponse() as resp:
                raw = resp.read(MAX_BODY + 1)
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                status = resp.status
        except TimeoutError:
            raise self._timed_out(call, limit) from None
        except (OSError, http.client.HTTPException) as e:
            raise (self._timed_out(call, limit) if came.is_set() else self._unreachable(e)) from None
        finally:
            cut.cancel()
            conn.close()
        if came.is_set():  # an answer read until the connection closed: cut short, not whole
            raise self._timed_out(call, limit)
        if len(raw) > MAX_BODY:
            raise ForgeError(
                f"{self.forge} API at {self.api} answered {call} with more than {MAX_BODY >> 20} MiB, "
                "which no answer wtp asks for needs: check [forge] api"
            )
        if 300 <= status < 400:
            where = hdrs.get("location", "?")
            raise ForgeConfigError(
                f"{self.forge} API at {self.api} redirected {call} to {self.clean(where)}: "
                "set [forge] api to the final address (wtp does not follow redirects with a token)"
            )
        data: Any = None
        if raw.strip():
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes
                lines = raw.decode(errors="replace").strip().splitlines()
                data = {"message": lines[0][:200]} if lines else None
        return Reply(status, data, hdrs)

    def _unreachable(self, e: BaseException) -> ForgeUnreachable:
        if isinstance(e, ssl.SSLError):
            return ForgeUnreachable(
                f"{self.forge} API at {self.api}: TLS failed ({self.clean(str(e.reason or e))}): check [forge] api"
            )
        return ForgeUnreachable(
            f"{self.forge} API at {self.api} cannot be reached ({self.clean(str(e) or type(e).__name__)}): "
            "check the network and [forge] api, then try again"
        )

    def _timed_out(self, call: str, limit: float) -> ForgeTimeout:
        return ForgeTimeout(
            f"{self.forge} API at {self.api} did not answer {call} within {limit:g} s: "
            "try again later (the forge may be slow or down)"
        )

    def _retry_after(self, method: str, reply: Reply, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the answer is final."""
        if attempt > self.retries:
            return None
        h = reply.headers
        if _rate_limited(reply):
            after = _seconds(h.get("retry-after"))
            if after is None and h.get("x-ratelimit-reset"):
                # An epoch on the forge's clock: only a hint, so bounded like Retry-After.
                reset = _seconds(h.get("x-ratelimit-reset"))
                after = None if reset is None else max(0.0, reset - time.time())
            return min(self.max_wait, after if after is not None else self.backoff * 2.0 ** (attempt - 1))
        if reply.status >= 500 and method in ("GET", "PUT", "DELETE", "HEAD"):
            return self.backoff * 2.0 ** (attempt - 1)
        return None

    def _message(self, reply: Reply) -> str:
        """The forge's own words: ``message`` (GitLab may send a list or a dict), plus the
        first of GitHub's ``errors``, on one line, without the token."""
        data = reply.data
        parts: list[str] = []
        if isinstance(data, dict):
            parts.append(_flat(data.get("message")))
            errs = data.get("errors")
            if isinstance(errs, list) and errs:
                first = errs[0]
                parts.append(_flat(first.get("message") if isinstance(first, dict) else first))
            if not any(parts):
                parts.append(_flat(data.get("error")))
        return self.clean(": ".join(p for p in parts if p))

    def clean(self, text: str) -> str:
        """One line of at most 300 characters, without the token."""
        text = " ".join(text.split())
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:300]

    def message(self, reply: Reply) -> str:
        """The forge's message of a reply, cleaned for an error line."""
        return self._message(reply)

    def _error(self, method: str, path: str, reply: Reply, what: str) -> ForgeError:
        msg = self._message(reply) or http.client.responses.get(reply.status, "")
        said = f"{self.forge} answered {reply.status} to {method} {path} ({msg})"
        if _rate_limited(reply):
            return ForgeTimeout(f"{said}: the rate limit held through {self.retries} retries; try again later")
        if reply.status == 401:
            return ForgeAuthError(f"{said}: the token was refused; set {self.token_hint} to a valid token")
        if reply.status == 403:
            return ForgeAuthError(
                f"{said}: the token may not do this on '{self.repo}'; set {self.token_hint} to a token with "
                "write access to the repository"
            )
        if reply.status == 404:
            obj = what or f"repository '{self.repo}'"
            return ForgeNotFound(
                f"{said}: {obj} not found; check [forge] repo = '{self.repo}' and [forge] api = '{self.api}', "
                f"and that the token in {self.token_hint} can see it"
            )
        if reply.status >= 500:
            return ForgeError(f"{said}: the forge failed; try again later")
        return ForgeError(said)


def _rate_limited(reply: Reply) -> bool:
    """429, or GitHub's 403 with no requests left or a Retry-After (its secondary limits)."""
    h = reply.headers
    return reply.status == 429 or (
        reply.status == 403 and (h.get("x-ratelimit-remaining") == "0" or "retry-after" in h)
    )


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flat(v) for v in value if v is not None)
    if isinstance(value, dict):
        return "; ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return str(value)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date: backoff instead (the forges send seconds)


def _cut(conn: http.client.HTTPConnection, came: threading.Event) -> None:
    """The call's deadline came: the blocked read returns at once (the caller says timed out)."""
    came.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
