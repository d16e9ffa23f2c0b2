"""Remotes: fetching the base, asking the remote what it holds, and the compare-and-swap push.
Every call here talks to a remote, so each runs under the network deadline (core.run_network)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import GitError, RemoteFailed
from .core import Result, run_network
from .parse import PushResult, parse_push

# --- remotes ----------------------------------------------------------------------


def fetch_branch(cwd: Path, remote: str, branch: str, dest_ref: str) -> None:
    """Fetch ``branch`` from ``remote`` into ``dest_ref``; retried, because a fetch racing
    pushes (and the repacks they trigger) into the same remote can fail once with 'did not
    send all necessary objects'."""
    args = ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{dest_ref}"]
    for attempt in range(3):
        res = run_network(args, cwd, remote, f"fetching '{branch}'")  # a timeout is not retried
        if res.code == 0:
            return
        if "couldn't find remote ref" in res.err.lower():
            raise RemoteFailed(
                f"remote '{remote}' has no branch '{branch}': push it first ('git push {remote} {branch}'), "
                "or land onto a branch it has"
            )
        time.sleep(0.2 * (attempt + 1))
    raise failed(remote, f"fetching '{branch}'", res.err)


# git's hint under a failed connection: not the reason, which is on the line before it
_BOILERPLATE = ("could not read from remote repository", "please make sure you have", "and the repository exists")


def failed(remote: str, what: str, err: str) -> RemoteFailed:
    """The one line for a network call the remote refused or could not be reached for: git's
    own reason (an 'ssh:' or 'fatal:' line, without the hint of several lines that follows it)
    and what the server said ('remote: ...'), then what to check."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    said = [line[len("remote: ") :].strip() for line in lines if line.startswith("remote: ")]
    own = [line for line in lines if not line.startswith("remote: ")]
    told = [line for line in own if not any(b in line.lower() for b in _BOILERPLATE)] or own
    reason = next((line for line in told if line.startswith(("fatal:", "error:"))), told[0] if told else "")
    reason = reason.removeprefix("fatal:").removeprefix("error:").strip().rstrip(".") or "no reason given"
    server = f" (the remote said: {said[0].rstrip('.')})" if said else ""
    return RemoteFailed(
        f"{what} failed on remote '{remote}': {reason}{server}; check the network, your access and the remote's "
        "URL ('git remote -v'), then try again"
    )


def fetch_commits(cwd: Path, source: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Fetch commits (by id) from another repository into refs here: [(commit, ref), ...]."""
    if pairs:
        args = ["fetch", "--quiet", "--no-tags", source, *(f"+{c}:{r}" for c, r in pairs)]
        _checked(args, cwd, run_network(args, cwd, source, "fetching commits"))


def push_cas(cwd: Path, remote: str, ref: str, new: str, expected: str) -> PushResult:
    """Push ``new`` to ``ref`` on ``remote`` only if the remote still holds ``expected``."""
    args = ["push", "--porcelain", f"--force-with-lease={ref}:{expected}", remote, f"{new}:{ref}"]
    res = run_network(args, cwd, remote, f"pushing {ref}")
    result = parse_push(res.out, res.err, ref)
    if not result.flag and res.code != 0:  # no report for the ref: the push never reached it
        raise failed(remote, f"pushing {ref}", res.err)
    return result


def _checked(args: list[str], cwd: Path, res: Result) -> Result:
    if res.code != 0:
        raise GitError(args, res.code, res.out, res.err, str(cwd))
    return res


# --- refs kept on the remote for coordination (remote gates, shared claims) ----------------

UNREACHABLE = (
    "could not read from remote",
    "unable to access",
    "does not appear to be a git repository",
    "connection refused",
    "could not resolve host",
    "unable to connect",
    "no such remote",
    "timed out",
)


def remote_unreachable(err: str) -> bool:
    low = err.lower()
    return any(s in low for s in UNREACHABLE)


def ls_remote(cwd: Path, remote: str, patterns: Sequence[str]) -> dict[str, str] | None:
    """The remote's refs matching ``patterns`` (ref -> id), or None when it cannot be reached."""
    res = run_network(["ls-remote", "--refs", remote, *patterns], cwd, remote, "listing its refs")
    if res.code != 0:
        if remote_unreachable(res.err) or res.code == 128:
            return None
        raise GitError(["ls-remote", remote], res.code, res.out, res.err, str(cwd))
    out = {}
    for line in res.out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            out[ref] = sha
    return out


def fetch_refs(cwd: Path, remote: str, pairs: Sequence[tuple[str, str]]) -> bool:
    """Fetch remote refs into local ones ([(remote ref, local ref)]); False when the remote
    cannot be reached or no longer has one of them."""
    if not pairs:
        return True
    args = ["fetch", "--quiet", "--no-tags", remote, *(f"+{r}:{dest}" for r, dest in pairs)]
    res = run_network(args, cwd, remote, f"fetching {pairs[0][0]}{' and more' if len(pairs) > 1 else ''}")
    return res.code == 0


def push_ref(cwd: Path, remote: str, ref: str, new: str | None, expected: str | None) -> PushResult:
    """Set (``new``) or delete (None) ``ref`` on the remote only if it still holds ``expected``
    (None: only if it does not exist)."""
    spec = f"{new}:{ref}" if new else f":{ref}"
    args = ["push", "--porcelain", "--no-verify", f"--force-with-lease={ref}:{expected or ''}", remote, spec]
    res = run_network(args, cwd, remote, f"pushing {ref}")
    return parse_push(res.out, res.err, ref)


def set_ref(cwd: Path, remote: str, ref: str, new: str | None) -> PushResult:
    """Set (``new``) or delete (None) a ref on the remote that only this clone writes."""
    spec = f"+{new}:{ref}" if new else f":{ref}"
    res = run_network(["push", "--porcelain", "--no-verify", remote, spec], cwd, remote, f"pushing {ref}")
    return parse_push(res.out, res.err, ref)
