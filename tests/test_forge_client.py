"""The forge clients (issue 26) against the stand-in forge (tests/shamforge.py), for GitHub,
GitLab and Gitea: real HTTP over 127.0.0.1, a real bare repository, real merges."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from worktree_par.errors import ExitCode
from worktree_par.forge import (
    Forge,
    ForgeAuthError,
    ForgeConfigError,
    ForgeError,
    ForgeNotFound,
    ForgeTimeout,
    ForgeUnreachable,
    Merged,
    MergedOther,
    Moved,
    Queued,
    Refused,
    Token,
    connect,
    find_token,
    from_remote_url,
)

from .shamforge import ShamForge, shamforge  # noqa: F401  (the fixture)

KINDS = ["github", "gitlab", "gitea"]
Make = Callable[..., ShamForge]


@pytest.fixture(params=KINDS)
def sham(request: pytest.FixtureRequest, shamforge: Make) -> ShamForge:  # noqa: F811
    return shamforge(request.param)


def client(sham: ShamForge, *, timeout: float = 10, token: str | None = None, repo: str | None = None) -> Forge:
    return connect(
        sham.kind,
        repo=sham.repo if repo is None else repo,
        api=sham.api,
        token=Token(sham.token if token is None else token, "test"),
        timeout=timeout,
        backoff=0.01,
    )


def git(cwd: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"git {' '.join(args)}: {res.stderr}"
    return res.stdout.strip()


class Work:
    """A clone of the stand-in's repository, where candidates are built and pushed."""

    def __init__(self, sham: ShamForge, path: Path) -> None:
        subprocess.run(["git", "clone", "-q", sham.url, str(path)], check=True)
        self.path = path

    def candidate(self, branch: str = "wtp/a", files: dict[str, str] | None = None, msg: str = "task a") -> str:
        """A commit on the remote's base tip, pushed to ``branch`` (force: a rebuilt candidate)."""
        git(self.path, "fetch", "-q", "origin")
        git(self.path, "checkout", "-q", "-B", "cand", "origin/main")
        for name, text in (files or {"a.txt": "a\n"}).items():
            (self.path / name).write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", msg)
        git(self.path, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def work(sham: ShamForge, tmp_path: Path) -> Work:
    return Work(sham, tmp_path / "work")


def one_line(e: ForgeError, sham: ShamForge) -> str:
    text = str(e)
    assert "\n" not in text and text.strip() == text
    assert sham.token not in text
    return text


# -- requests and statuses ------------------------------------------------------------------


def test_find_or_open_never_opens_a_second_request(sham: ShamForge, work: Work) -> None:
    cand = work.candidate()
    forge = client(sham)
    first = forge.find_or_open("wtp/a", "main", "Land a", "body")
    again = client(sham).find_or_open("wtp/a", "main", "Land a", "body")
    assert (first.number, first.state, first.head, first.head_sha, first.base) == (1, "open", "wtp/a", cand, "main")
    assert again == first and first.url
    assert len(sham.pulls) == 1
    assert len([h for h in sham.calls("POST") if h.path.endswith(("/pulls", "/merge_requests"))]) == 1
    newer = work.candidate(msg="task a, rebuilt")
    assert (
        forge.find_or_open("wtp/a", "main", "Land a", "body").head_sha == newer
    )  # the same request follows its branch


def test_a_create_answered_502_after_it_was_done_opens_no_second(sham: ShamForge, work: Work) -> None:
    work.candidate()
    sham.fail(502, match="POST", after=True)
    req = client(sham).find_or_open("wtp/a", "main", "Land a", "")
    assert (req.number, len(sham.pulls)) == (1, 1)


def test_a_merge_answered_502_after_it_was_done_is_merged(sham: ShamForge, work: Work) -> None:
    sham.gitlab_merge_method = "merge"
    base = sham.tip("main")
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    sham.fail(502, match="/merge", after=True)
    assert forge.merge(req.number, cand, "merge", base_sha=base) == Merged(sham.tip("main") or "")
    assert sham.git("rev-list", "--count", "main") == "3"  # merged once


def test_the_gate_verdict_is_posted_as_a_commit_status(sham: ShamForge, work: Work) -> None:
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    forge.post_status(cand, "pending", "gate running")
    assert forge.get(req.number).checks == "pending"
    forge.post_status(cand, "success", "gate passed in 3 s")
    assert sham.latest(cand) == {"wtp/gate": "success"}
    assert forge.get(req.number).checks == "success"
    forge.post_status(cand, "failure", "gate failed")
    got = forge.get(req.number)
    assert (got.checks, got.checks_summary) == ("failure", "failing: wtp/gate")
    assert sham.latest(cand) == {"wtp/gate": "failed" if sham.kind == "gitlab" else "failure"}


def test_a_direct_push_to_the_protected_base_is_refused(sham: ShamForge, work: Work) -> None:
    work.candidate()
    res = subprocess.run(["git", "push", "origin", "HEAD:main"], cwd=work.path, capture_output=True, text=True)
    assert res.returncode != 0 and "protected branch hook declined" in res.stderr


# -- direct merges ----------------------------------------------------------------------------

# What each forge puts on the base for each method, for a candidate already on the base:
# ff = the candidate itself; rewrite = the candidate's commit replayed by the forge;
# squash = one new commit; merge = a merge commit of the base and the candidate.
SHAPES = {
    ("github", "rebase"): "rewrite",
    ("github", "squash"): "squash",
    ("github", "merge"): "merge",
    ("gitlab", "rebase"): "ff",
    ("gitlab", "squash"): "squash",
    ("gitlab", "merge"): "merge",
    ("gitea", "rebase"): "ff",
    ("gitea", "squash"): "squash",
    ("gitea", "merge"): "merge",
}


@pytest.mark.parametrize("method", ["rebase", "squash", "merge"])
def test_a_direct_merge_puts_the_tested_tree_on_the_base(sham: ShamForge, work: Work, method: str) -> None:
    if sham.kind == "gitlab":
        sham.gitlab_merge_method = "merge" if method == "merge" else "ff"
    base = sham.tip("main")
    cand = work.candidate(files={"a.txt": "a\n", "b.txt": "b\n"})
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    result = forge.merge(req.number, cand, method, base_sha=base)  # type: ignore[arg-type]
    tip = sham.tip("main")
    assert result == Merged(tip or "")
    got = forge.get(req.number)
    assert (got.state, got.merge_sha) == ("merged", tip)
    assert sham.git("rev-parse", f"{tip}^{{tree}}") == sham.git("rev-parse", f"{cand}^{{tree}}")
    parents = sham.git("rev-list", "--parents", "-n1", tip or "").split()[1:]
    shape = SHAPES[(sham.kind, method)]
    if shape == "ff":
        assert tip == cand
    elif shape == "merge":
        assert parents == [base, cand]
    else:
        assert tip != cand and parents == [base]
        if shape == "rewrite":
            assert sham.git("log", "-1", "--format=%s|%cn", tip or "") == "task a|GitHub"
    assert forge.close_branch("wtp/a") is True
    assert sham.tip("wtp/a") is None
    assert forge.close_branch("wtp/a") is False


def test_a_head_that_is_not_the_guarded_commit_is_moved(sham: ShamForge, work: Work) -> None:
    base = sham.tip("main")
    old = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    work.candidate(msg="someone pushed to the head")
    result = forge.merge(req.number, old, "rebase", base_sha=base)
    assert isinstance(result, Moved), result
    assert sham.tip("main") == base


@pytest.mark.parametrize("guard_base", [True, False])
def test_a_base_that_moved_is_moved_and_a_rebuilt_candidate_lands(
    sham: ShamForge, work: Work, guard_base: bool
) -> None:
    base = sham.tip("main")
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    moved = sham.advance_base()
    result = forge.merge(req.number, cand, "rebase", base_sha=base if guard_base else None)
    if guard_base or sham.kind != "gitlab":
        assert isinstance(result, Moved), result
    else:
        # GitLab answers a bare "405 Method Not Allowed": without base_sha it cannot be told
        # from any other refusal.  This is why a lander passes base_sha.
        assert isinstance(result, Refused) and "405" in result.reason
    assert sham.tip("main") == moved
    rebuilt = work.candidate()
    assert isinstance(forge.merge(req.number, rebuilt, "rebase", base_sha=moved), Merged)
    assert sham.git("merge-base", "--is-ancestor", moved, "main") == ""


def test_a_failing_check_or_a_closed_request_is_refused(sham: ShamForge, work: Work) -> None:
    base = sham.tip("main")
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    sham.set_status(cand, "failed" if sham.kind == "gitlab" else "failure", "ci")
    result = forge.merge(req.number, cand, "rebase", base_sha=base)
    assert isinstance(result, Refused) and "merge of" in result.reason, result
    sham.close(req.number)
    result = forge.merge(req.number, cand, "rebase", base_sha=base)
    assert isinstance(result, Refused) and "closed" in result.reason and req.url in result.reason
    assert forge.get(req.number).state == "closed"
    assert sham.tip("main") == base


def test_an_older_gitea_without_fast_forward_only_is_asked_to_rebase(shamforge: Make, tmp_path: Path) -> None:  # noqa: F811
    sham = shamforge("gitea", gitea_fast_forward_only=False)
    cand = Work(sham, tmp_path / "w").candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    assert forge.merge(req.number, cand, "rebase") == Merged(cand)
    assert [h.body["Do"] for h in sham.calls("POST", "/merge")] == ["fast-forward-only", "rebase"]


# -- queue mode -------------------------------------------------------------------------------


def test_queue_mode_merges_when_the_forge_says(sham: ShamForge, work: Work) -> None:
    sham.required = {"ci"}
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    forge.post_status(cand, "success", "gate passed")
    assert isinstance(forge.enqueue(req.number, cand, "rebase"), Queued)
    sham.release(req.number)  # ci has not reported: the queue waits
    got = forge.get(req.number)
    assert (got.state, got.queued) == ("open", True)
    sham.set_status(cand, "success", "ci")
    sham.release(req.number)
    got = forge.get(req.number)
    assert got.state == "merged" and got.merge_sha == sham.tip("main")


def test_queue_mode_merges_at_the_next_poll(shamforge: Make, tmp_path: Path) -> None:  # noqa: F811
    for kind in KINDS:
        sham = shamforge(kind, queue_policy="on_poll", required={"ci"})
        cand = Work(sham, tmp_path / kind).candidate()
        forge = client(sham)
        req = forge.find_or_open("wtp/a", "main", "Land a", "")
        assert isinstance(forge.enqueue(req.number, cand, "squash"), Queued)
        assert forge.get(req.number).state == "open"
        sham.set_status(cand, "success", "ci")
        assert forge.get(req.number).state == "merged", kind


def test_a_queued_request_whose_check_fails_leaves_the_queue(sham: ShamForge, work: Work) -> None:
    sham.required = {"ci"}
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    assert isinstance(forge.enqueue(req.number, cand, "merge"), Queued)
    sham.set_status(cand, "failed" if sham.kind == "gitlab" else "failure", "ci")
    sham.release(req.number)
    got = forge.get(req.number)
    assert (got.state, got.queued, got.checks) == ("open", False, "failure")


def test_a_queued_request_is_taken_out_of_the_queue_and_the_queue_no_longer_merges_it(
    sham: ShamForge, work: Work
) -> None:
    sham.required = {"ci"}
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    assert isinstance(forge.enqueue(req.number, cand, "merge"), Queued)
    client(sham).dequeue(req.number)  # another process than the one that queued it (Gitea shows none)
    assert sham.pulls[req.number].queued is None
    got = client(sham).get(req.number)
    assert (got.state, got.queued) == ("open", False)
    sham.set_status(cand, "success", "ci")
    assert sham.release(req.number).state == "open"  # the queue no longer holds it
    client(sham).dequeue(req.number)  # nothing queued: nothing to do
    assert sham.tip("main") == sham.git("rev-list", "--max-parents=0", "main")


def test_a_dequeue_the_forge_refuses_is_a_forge_error(sham: ShamForge, work: Work) -> None:
    sham.required, sham.on_dequeue = {"ci"}, "refuse"
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    assert isinstance(forge.enqueue(req.number, cand, "merge"), Queued)
    with pytest.raises(ForgeError) as e:
        client(sham).dequeue(req.number)
    assert (
        one_line(e.value, sham)
        == {
            "github": "GitHub did not take pull request #1 out of the merge queue (the merge queue is locked)",
            "gitlab": "GitLab did not cancel the automatic merge of !1 (406 Not Acceptable)",
            "gitea": "Gitea answered 423 to DELETE /repos/acme/app/pulls/1/merge (the merge queue is locked)",
        }[sham.kind]
    )
    assert sham.pulls[req.number].queued is not None


def test_requests_lists_every_state_with_its_body_and_close_closes(sham: ShamForge, work: Work) -> None:
    base = sham.tip("main")
    cand = work.candidate()
    forge = client(sham)
    first = forge.find_or_open("wtp/a", "main", "Land a", "first <!-- mark 1 -->")
    assert forge.merge(first.number, cand, "merge", base_sha=base) == Merged(sham.tip("main") or "")
    cand2 = work.candidate(files={"b.txt": "b\n"}, msg="task a again")
    second = forge.find_or_open("wtp/a", "main", "Land a again", "second <!-- mark 2 -->")
    got = sorted((r.number, r.state, r.head_sha, r.body) for r in client(sham).requests("wtp/a", "main"))
    assert got == [(1, "merged", cand, "first <!-- mark 1 -->"), (2, "open", cand2, "second <!-- mark 2 -->")]
    assert client(sham).requests("wtp/b", "main") == []
    assert forge.close(second.number) is True and forge.close(second.number) is False
    assert forge.get(second.number).state == "closed"


def test_a_request_merged_with_another_head_is_merged_other(sham: ShamForge, work: Work) -> None:
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    other = sham.push_head("wtp/a")
    with sham.lock:
        assert sham.merge(sham.pulls[req.number], other, "merge")[0] == ""
    got = forge.merge(req.number, cand, "merge")
    assert got == MergedOther(sham.pulls[req.number].merge_sha or "", other)


def test_github_without_a_merge_queue_uses_auto_merge_or_merges_a_clean_request(
    shamforge: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    sham = shamforge("github", github_merge_queue=False, required={"ci"})
    work = Work(sham, tmp_path / "w")
    cand = work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "Land a", "")
    assert forge.enqueue(req.number, cand, "squash") == Queued("auto-merge")
    assert forge.get(req.number).queued is True
    sham.set_status(cand, "success", "ci")
    sham.release(req.number)
    assert forge.get(req.number).state == "merged"
    assert sham.git("rev-list", "--count", "main") == "2"  # squashed
    cand2 = work.candidate("wtp/b", {"b.txt": "b\n"}, "task b")
    sham.set_status(cand2, "success", "ci")
    req2 = forge.find_or_open("wtp/b", "main", "Land b", "")
    assert forge.enqueue(req2.number, cand2, "rebase") == Merged(sham.tip("main") or "")  # "clean status"


# -- failures: one line, the contract's exit code, never the token -----------------------------


def test_a_refused_token_is_one_line_naming_the_variable(sham: ShamForge) -> None:
    with pytest.raises(ForgeAuthError) as e:
        client(sham, token="wrong-secret-value").get(1)
    text = one_line(e.value, sham)
    assert e.value.exit_code == ExitCode.USAGE and "wrong-secret-value" not in text
    assert {"github": "GITHUB_TOKEN (or GH_TOKEN)", "gitlab": "GITLAB_TOKEN", "gitea": "GITEA_TOKEN"}[sham.kind] in text
    assert sham.unauthorized_text() in text  # the forge's own message


def test_403_404_and_5xx_are_one_line_with_their_exit_codes(sham: ShamForge, work: Work) -> None:
    work.candidate()
    forge = client(sham)
    sham.fail(403, message="Resource not accessible by integration")
    with pytest.raises(ForgeAuthError) as e403:
        forge.find_or_open("wtp/a", "main", "t", "")
    assert e403.value.exit_code == 2 and "Resource not accessible" in one_line(e403.value, sham)
    with pytest.raises(ForgeNotFound) as e404:
        client(sham, repo="acme/nope").find_or_open("wtp/a", "main", "t", "")
    assert e404.value.exit_code == 2 and "[forge] repo = 'acme/nope'" in one_line(e404.value, sham)
    with pytest.raises(ForgeNotFound) as missing:
        forge.get(99)
    assert "#99" in one_line(missing.value, sham) or "!99" in str(missing.value)
    sham.fail(500, times=50, match="GET", message=f"internal error near {sham.token}")
    with pytest.raises(ForgeError) as e500:
        forge.get(1)
    text = one_line(e500.value, sham)
    assert e500.value.exit_code == 1 and "internal error near ***" in text and "try again later" in text
    assert len(sham.calls("GET")) >= 5  # retried with backoff first


def test_5xx_and_rate_limits_are_retried_honouring_retry_after(sham: ShamForge, work: Work) -> None:
    work.candidate()
    forge = client(sham)
    req = forge.find_or_open("wtp/a", "main", "t", "")
    sham.fail(502, times=2, match="GET")
    assert forge.get(req.number).number == req.number
    sham.hits.clear()
    sham.fail(429, match="GET", headers={"Retry-After": "1"}, message="API rate limit exceeded")
    assert forge.get(req.number).number == req.number
    first, second = sham.calls("GET")[:2]
    assert second.at - first.at >= 0.9
    sham.hits.clear()
    sham.fail(403, match="GET", headers={"X-RateLimit-Remaining": "0", "Retry-After": "0"})
    assert forge.get(req.number).number == req.number
    sham.fail(429, match="GET", headers={"Retry-After": "3600"}, message="API rate limit exceeded")
    started = time.monotonic()
    with pytest.raises(ForgeTimeout) as e:
        forge.get(req.number)
    assert time.monotonic() - started < 5
    assert e.value.exit_code == 3 and "rate limit" in one_line(e.value, sham)
    sham.fail(429, times=50, match="GET", message="API rate limit exceeded")  # no Retry-After: backoff
    with pytest.raises(ForgeTimeout) as e:
        forge.get(req.number)
    assert e.value.exit_code == 3 and "rate limit held through 4 retries" in one_line(e.value, sham)


def test_a_redirect_is_not_followed_and_an_odd_answer_is_one_line(sham: ShamForge) -> None:
    forge = client(sham)
    sham.fail(301, match="GET", headers={"Location": "https://elsewhere.invalid/api"})
    with pytest.raises(ForgeConfigError) as moved:
        forge.get(1)
    assert "elsewhere.invalid" in one_line(moved.value, sham) and "[forge] api" in str(moved.value)
    assert len(sham.calls()) == 1
    sham.fail(200, match="GET", message="<html>a proxy's login page</html>")
    with pytest.raises(ForgeError) as odd:
        forge.find_or_open("wtp/a", "main", "t", "")
    assert odd.value.exit_code == 1 and "is [forge] api right?" in one_line(odd.value, sham)


def test_a_forge_that_never_answers_times_out(sham: ShamForge) -> None:
    sham.stall()
    started = time.monotonic()
    with pytest.raises(ForgeTimeout) as e:
        client(sham, timeout=1).get(1)
    assert time.monotonic() - started < 5
    assert e.value.exit_code == 3 and "did not answer" in one_line(e.value, sham)


def test_an_unreachable_forge_is_one_line(shamforge: Make) -> None:  # noqa: F811
    sham = shamforge("github")
    api = sham.api
    sham.stop()
    forge = connect("github", repo="acme/app", api=api, token=Token(sham.token, "test"), timeout=3)
    with pytest.raises(ForgeUnreachable) as e:
        forge.get(1)
    assert e.value.exit_code == 1 and "cannot be reached" in one_line(e.value, sham)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,want",
    [
        ("https://github.com/acme/app.git", ("github", "acme/app")),
        ("https://github.com/acme/app", ("github", "acme/app")),
        ("https://x-access-token:s3cret@github.com/acme/app.git", ("github", "acme/app")),
        ("git@github.com:acme/app.git", ("github", "acme/app")),
        ("ssh://git@github.com/acme/app.git", ("github", "acme/app")),
        ("ssh://git@github.example.com:2222/acme/app.git", ("github", "acme/app")),
        ("https://gitlab.com/acme/tools/app.git", ("gitlab", "acme/tools/app")),
        ("git@gitlab.com:acme/tools/deep/app.git", ("gitlab", "acme/tools/deep/app")),
        ("ssh://git@gitlab.example.org:2222/grp/sub/app.git", ("gitlab", "grp/sub/app")),
        ("https://codeberg.org/acme/app.git", ("gitea", "acme/app")),
        ("git@gitea.example.com:acme/app.git", ("gitea", "acme/app")),
        ("https://git.example.com/acme/app.git", (None, "acme/app")),
    ],
)
def test_from_remote_url(url: str, want: tuple[str | None, str]) -> None:
    assert from_remote_url(url) == want


@pytest.mark.parametrize("url", ["/srv/git/app.git", "file:///srv/app.git", "https://github.com/app", "C:/repo"])
def test_a_remote_url_without_a_repository_names_the_setting(url: str) -> None:
    with pytest.raises(ForgeConfigError) as e:
        from_remote_url(url)
    assert e.value.exit_code == 2 and "[forge] repo" in str(e.value)


def test_remote_url_credentials_never_reach_a_message() -> None:
    with pytest.raises(ForgeConfigError) as e:
        from_remote_url("https://user:s3cret@example.com/")
    assert "s3cret" not in str(e.value)


@pytest.mark.parametrize("api", ["http://example.com", "http://10.0.0.1:8080/api/v4", "ftp://example.com"])
def test_plain_http_is_refused_unless_loopback(api: str) -> None:
    with pytest.raises(ForgeConfigError) as e:
        connect("gitlab", repo="a/b", api=api, token=Token("t", "test"))
    assert e.value.exit_code == 2


@pytest.mark.parametrize("api", ["http://127.0.0.1:9", "http://localhost:9/api/v1", "http://[::1]:9"])
def test_plain_http_is_accepted_on_loopback(api: str) -> None:
    assert connect("gitea", repo="a/b", api=api, token=Token("t", "test")).repo == "a/b"


def test_the_token_comes_from_the_environment_then_the_forge_cli(tmp_path: Path) -> None:
    assert find_token("github", env={"GH_TOKEN": "b", "GITHUB_TOKEN": "a"}).source == "GITHUB_TOKEN"
    assert find_token("github", env={"GH_TOKEN": "b"}).value == "b"
    token = find_token("gitlab", env={"GITLAB_TOKEN": "glpat-x"})
    assert "glpat-x" not in repr(token) and "glpat-x" not in str(token)
    with pytest.raises(ForgeAuthError) as e:
        find_token("gitea", env={}, use_cli=False)
    assert e.value.exit_code == 2 and "GITEA_TOKEN" in str(e.value)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text('#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo gho_fromcli\n')
    gh.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}:{old}"
    try:
        assert find_token("github", "api.github.com", env={}) == Token("gho_fromcli", "gh auth token")
    finally:
        os.environ["PATH"] = old
    (tmp_path / "tea").mkdir()
    (tmp_path / "tea" / "config.yml").write_text(
        "logins:\n- name: work\n  url: https://git.example.com\n  token: tea-secret\n  default: true\n"
    )
    found = find_token("gitea", "git.example.com", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert found.value == "tea-secret"


def test_an_unknown_forge_kind_is_a_config_error() -> None:
    with pytest.raises(ForgeConfigError):
        connect("bitbucket", repo="a/b", api="https://example.com", token=Token("t", "test"))


# -- a forge that answers badly, byte by byte (review 30) ------------------------------------


Answer = Callable[[socket.socket, threading.Event], None]


class RawForge:
    """A server on 127.0.0.1 that answers every connection with ``answer(sock, closed)``: raw
    bytes, as slowly or as oddly as a test wants, until ``closed`` is set (the test is over)."""

    def __init__(self, answer: Answer) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.api = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.answer = answer
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                self.answer(conn, self.closed)
            except OSError:
                pass  # the client hung up: what a cut connection does

    def client(self, timeout: float = 10) -> Forge:
        return connect(
            "github", repo="acme/app", api=self.api, token=Token("raw-token", "test"), timeout=timeout, backoff=0.01
        )

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Answer], RawForge]]:
    made: list[RawForge] = []

    def make(answer: Answer) -> RawForge:
        made.append(RawForge(answer))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _dripping(head: bool) -> Answer:
    """An answer a byte (or a header line) every 0.2 s, for a minute or until the test is over:
    each read gets something.  The pace is the point: this forge is slow on purpose."""

    def answer(conn: socket.socket, closed: threading.Event) -> None:
        n = 0
        if head:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while n < 300 and not closed.wait(0.2):
                conn.sendall(f"X-Drip-{n}: 1\r\n".encode())
                n += 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        while n < 600 and not closed.wait(0.2):
            conn.sendall(b" ")
            n += 1

    return answer


@pytest.mark.parametrize("head", [False, True], ids=["body", "headers"])
def test_a_forge_that_trickles_its_answer_times_out_at_the_deadline(raw: Any, head: bool) -> None:
    """The socket's timeout bounded each read, not the call: a byte a second kept wtp waiting
    for as long as the forge liked."""
    started = time.monotonic()
    with pytest.raises(ForgeTimeout) as e:
        raw(_dripping(head)).client(timeout=1).get(1)
    assert time.monotonic() - started < 15  # one deadline, not 300 reads' worth of them
    assert e.value.exit_code == 3 and "did not answer GET" in str(e.value)


def _answer(status: int, body: bytes) -> Answer:
    def answer(conn: socket.socket, closed: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    return answer


@pytest.mark.parametrize(
    "status,body",
    [(200, b"[" * 200_000), (200, b"\x1c"), (500, b"\xc2\x85"), (200, b" " + b"x" * (17 << 20))],
    ids=["nested", "separator", "unicode-break", "huge"],
)
def test_an_answer_no_parser_takes_is_one_line(raw: Any, status: int, body: bytes) -> None:
    """JSON nested past the parser's depth (RecursionError), a body that is only a Unicode
    line break (IndexError), and 17 MiB: each was an internal error or took the memory."""
    with pytest.raises(ForgeError) as e:
        raw(_answer(status, body)).client().find_or_open("wtp/a", "main", "t", "")
    said = str(e.value)
    assert "\n" not in said and len(said) < 400 and e.value.exit_code == 1, said
