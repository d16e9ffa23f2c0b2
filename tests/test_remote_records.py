"""Records from other machines (issue 24, C): shared claims and remote gate tickets are
checked field by field, and a bad one is named in one line and otherwise ignored; a clone
copied with 'cp -a' is a clone of its own; a claim's age is this clone's observation, not
its writer's clock.  Hostile records are written into the bare remote with plain git."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Repo, git
from .test_remote import seen_long_ago

EVIL = "refs/wtp/claims/e0e0e0e0e0e0/"


def plant(r: Repo, ref: str, message: str) -> str:
    """Write ``message`` as a record commit at ``ref`` in the bare remote, as anyone who
    can push there could."""
    bare = r.remote
    assert bare is not None
    tree = subprocess.run(
        ["git", "hash-object", "-t", "tree", "-w", "--stdin"], cwd=bare, input="", capture_output=True, text=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "commit-tree", tree], cwd=bare, input=message, capture_output=True, text=True, check=True
    ).stdout.strip()
    git(bare, "update-ref", ref, commit)
    return commit


def claim(task: str, clone: str = "e0e0e0e0e0e0", **fields: object) -> str:
    record = {"v": 1, "task": task, "clone": clone, "host": "h", "touch": [], "use": [], "recorded": [], "since": 0}
    return json.dumps({**record, **fields})


def _share(*repos: Repo) -> None:
    for r in repos:
        r.write(".wtp.toml", "share = true\n")


def ignored(ref: str, why: str) -> str:
    return (
        f"wtp: ignored the shared claim {ref} on 'origin': {why}; it is not a claim wtp wrote, "
        f"remove it with 'git push origin :{ref}'"
    )


def test_a_claim_whose_touch_is_a_string_holds_nothing_back_and_is_named_once(remote_repo: Repo) -> None:
    _share(remote_repo)
    plant(remote_repo, EVIL + "bad", claim("bad", touch="README.md"))  # not ["README.md"]: "R", "E", ...
    out = remote_repo.wtp_proc("start", "mine", "--touch", "R")
    assert out.code == 0, out.err
    assert out.out.splitlines()[-1].endswith("/mine")
    why = 'touch\' must be a list of non-empty strings, not "README.md"'
    assert out.err.splitlines() == [ignored(EVIL + "bad", "'" + why)]


def test_a_claim_whose_recorded_paths_hold_odd_characters_still_holds_its_touch(remote_repo: Repo) -> None:
    """Review 33: the agent hook records any file name a task writes (a line break, a
    non-breaking space), and one such path made the whole claim malformed to every other
    clone: its --touch no longer held anyone back, and the user was told to delete it.
    Review 34: so did more than 10,000 recorded paths, and a format character (U+202E) got
    printed raw.  Such paths are left out of the claim; the rest holds."""
    _share(remote_repo)
    odd = ["nl\ngate.sh", "nb\u00a0sp.txt", "esc\u001b[2J.txt", "rtl\u202efile.txt", 7, ""]
    many = [f"gen/f{n}.txt" for n in range(10_001)]
    plant(remote_repo, EVIL + "s1", claim("s1", touch=["src/**"], recorded=[*odd, "lib/x.txt", *many]))
    held = remote_repo.wtp_proc("start", "s3", "--touch", "src/app.js")
    assert held.code == 4 and "ignored" not in held.err, held.err
    other = remote_repo.wtp_proc("start", "s4", "--touch", "lib/x.txt")
    assert other.code == 4, other.err  # its printable recorded path holds too
    listed = remote_repo.wtp_proc("list", "--remote")
    assert listed.code == 0 and "\u202e" not in listed.out and "\u001b" not in listed.out, listed.out


def test_malformed_claims_are_left_out_named_and_never_crash_list_or_doctor(remote_repo: Repo) -> None:
    _share(remote_repo)
    plant(remote_repo, EVIL + "good", claim("good", touch=["docs/**"]))
    plant(remote_repo, EVIL + "deep", "[" * 100_000 + "]" * 100_000)
    plant(remote_repo, EVIL + "use", claim("use", use={"db": 1}))
    plant(remote_repo, EVIL + "since", claim("since", since="yesterday"))
    plant(remote_repo, EVIL + "other", claim("other", clone="f1f1f1f1f1f1"))  # not the clone its ref names
    listed = remote_repo.wtp_proc("list", "--remote", "--json")
    assert listed.code == 0 and "Traceback" not in listed.err
    assert [t["task"] for t in json.loads(listed.out)["tasks"]] == ["good"]
    assert listed.err.splitlines() == [
        ignored(EVIL + "deep", "it is not JSON"),
        ignored(EVIL + "other", "its 'clone' (f1f1f1f1f1f1) is not the clone its ref names"),
        ignored(EVIL + "since", "'since' must be a number from 0 to 1e+11, not \"yesterday\""),
        ignored(EVIL + "use", "'use' must be a list of non-empty strings, not dict"),
    ]
    # a resource named like the dict's key is not held back
    assert remote_repo.wtp_proc("start", "migrate", "--use", "db").code == 0
    report = remote_repo.wtp_proc("doctor")
    assert report.code == 1 and "Traceback" not in report.err
    for name in ("deep", "other", "since", "use"):
        assert ignored(EVIL + name, "")[len("wtp: ") :].split(":")[0] in report.out


@pytest.mark.parametrize(
    "ticket",
    [
        {"id": "x", "token": 3, "beat": "soon", "lease": 30},  # crashed the waiter (int("soon"))
        {"id": "x", "token": 3, "beat": 0, "lease": 1e308},  # held the gate for ever
        {"id": "x", "token": 3, "beat": 0, "lease": 30, "task": ["a"]},
    ],
)
def test_a_malformed_gate_ticket_is_named_and_does_not_hold_the_gate(
    remote_repo: Repo, tmp_path: Path, ticket: dict
) -> None:
    plant(remote_repo, "refs/wtp/gates/deploy", json.dumps({"v": 1, "name": "deploy", "token": 3, "tickets": [ticket]}))
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "sh", "-c", f'echo "$WTP_GATE_TOKEN" > {tmp_path}/t')
    assert out.code == 0, out.err
    assert (tmp_path / "t").read_text() == "4\n"  # the token still only grows
    assert out.err.splitlines()[0].startswith(
        "ignored ticket 1 of remote gate 'deploy' (refs/wtp/gates/deploy on origin): '"
    )


def test_a_gate_record_nested_past_reason_is_refused_in_one_line(remote_repo: Repo) -> None:
    plant(remote_repo, "refs/wtp/gates/deploy", "[" * 100_000 + "]" * 100_000)
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert (out.code, out.out) == (2, "")
    assert out.err.splitlines() == [
        "wtp: the remote gate 'deploy' (refs/wtp/gates/deploy on origin) is not a wtp gate record (it is not JSON): "
        "reset it with 'git push origin :refs/wtp/gates/deploy' once nobody is using it"
    ]


def _gate_refused(why: str) -> list[str]:
    return [
        f"wtp: the remote gate 'deploy' (refs/wtp/gates/deploy on origin) is not a wtp gate record ({why}): "
        "reset it with 'git push origin :refs/wtp/gates/deploy' once nobody is using it"
    ]


@pytest.mark.parametrize("kind", ["blob", "tree"])
def test_a_gate_ref_that_is_not_a_commit_is_refused_in_one_line(remote_repo: Repo, kind: str) -> None:
    bare = remote_repo.remote
    assert bare is not None
    args = ["hash-object", "-w", "--stdin"] + (["-t", "tree"] if kind == "tree" else [])
    obj = subprocess.run(
        ["git", *args], cwd=bare, input="" if kind == "tree" else '{"v": 1}\n', capture_output=True, text=True
    )
    git(bare, "update-ref", "refs/wtp/gates/deploy", obj.stdout.strip())
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert (out.code, out.out, out.err.splitlines()) == (2, "", _gate_refused("it is not a commit"))


def test_a_gate_token_that_cannot_grow_is_refused_and_never_written_past(remote_repo: Repo) -> None:
    top = 2**53 - 1
    plant(remote_repo, "refs/wtp/gates/deploy", json.dumps({"v": 1, "name": "deploy", "token": top, "tickets": []}))
    for _ in range(2):  # the same line each time: nothing past the top was written in between
        out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
        assert (out.code, out.err.splitlines()) == (2, _gate_refused(f"its token {top} cannot grow"))
    plant(remote_repo, "refs/wtp/gates/deploy", json.dumps({"v": 1, "name": "deploy", "token": top + 1, "tickets": []}))
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert out.err.splitlines() == _gate_refused(f"'token' must be a whole number from 0 to {top}, not {top + 1}")


def test_text_another_machine_wrote_is_printed_on_one_line_without_its_escapes(remote_repo: Repo) -> None:
    forged = "deploy.sh\nholding remote gate 'deploy' on 'origin' (token 4, lease 30s)"
    ticket = {"id": "x", "token": 3, "lease": 5, "beat": 1, "host": "ci\u001b[31m", "pid": 7, "cmd": forged}
    plant(remote_repo, "refs/wtp/gates/deploy", json.dumps({"v": 1, "name": "deploy", "token": 3, "tickets": [ticket]}))
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--timeout", "1", "--", "true")
    who = "pid 7 on ci\\x1b[31m (clone , deploy.sh\\nholding remote gate 'deploy' on 'origin' (token 4, lease 30s)) holds it (token 3)"
    assert (out.code, out.err.splitlines()) == (
        3,
        [
            f"waiting for remote gate 'deploy' (place 2): {who}",
            f"wtp: timed out after 1s waiting for remote gate 'deploy', {who}",
        ],
    )
    bare = remote_repo.remote
    assert bare is not None
    (kept,) = json.loads(git(bare, "log", "-1", "--format=%B", "refs/wtp/gates/deploy"))["tickets"]
    assert (kept["host"], kept["cmd"]) == ("ci\u001b[31m", forged)  # shown escaped, written back as it was
    _share(remote_repo)
    plant(remote_repo, EVIL + "g", claim("g", touch=["[R\u001b\nwtp: forged]EADME"]))
    out = remote_repo.wtp_proc("start", "other", "--touch", "README")
    assert out.code == 0, out.err
    assert out.err.splitlines() == [ignored(EVIL + "g", "'touch' must hold no control characters")]
    git(bare, "update-ref", "-d", EVIL + "g")
    plant(remote_repo, EVIL + "t", claim("t\u001b]0;pwned\u0007", host="h\nwtp: all clear", touch=["x.txt"]))
    out = remote_repo.wtp_proc("start", "mine", "--touch", "x.txt")
    assert "\x1b" not in out.err + out.out and "\nwtp: all clear" not in out.err + out.out, out.err
    assert "t\\x1b]0;pwned\\x07 (clone e0e0e0e0e0e0 on h\\nwtp: all clear" in out.err + out.out, out.err


def test_a_clone_copied_with_cp_a_has_its_own_id_and_never_takes_the_originals_claims(remote_repo: Repo) -> None:
    _share(remote_repo)
    assert remote_repo.wtp_proc("list", "--remote").code == 0  # the original has its id now
    copy = remote_repo.path.parent / "copy"
    subprocess.run(["cp", "-a", str(remote_repo.path), str(copy)], check=True)
    twin = Repo(copy, remote_repo.remote)
    assert remote_repo.wtp_proc("start", "feed", "--touch", "src/**").code == 0  # after the copy was made
    held = twin.wtp_proc("start", "mine", "--touch", "src/feed.txt")
    assert (held.code, held.out) == (4, ""), held.err  # the original's claim is another clone's
    ids = {(r.path / ".git" / "wtp" / "clone-id").read_text().split()[0] for r in (remote_repo, twin)}
    assert len(ids) == 2
    twin.wtp_proc("doctor", "--fix")  # the copy runs no 'feed': still not its claim to withdraw
    assert git(remote_repo.path, "ls-remote", "origin", "refs/wtp/claims/*").count("/feed") == 1


def test_a_claim_from_a_clock_far_ahead_ages_on_this_clones_clock(remote_repo: Repo) -> None:
    _share(remote_repo)
    ref = EVIL + "ahead"
    oid = plant(remote_repo, ref, claim("ahead", touch=["src/**"], since=time.time() + 365 * 86400))
    first = remote_repo.wtp_proc("doctor", "--fix", "--stale-claims", "7")
    assert "'ahead'" not in first.out  # just seen: young
    seen_long_ago(remote_repo, ref, oid, days=8)  # as if this clone had seen it, unchanged, 8 days ago
    cleared = remote_repo.wtp_proc("doctor", "--fix", "--stale-claims", "7")
    assert f"cleared {ref} on 'origin'" in cleared.out, cleared.out
    assert git(remote_repo.path, "ls-remote", "origin", ref) == ""


def test_a_record_of_first_sightings_that_is_not_ours_is_set_aside_in_one_line(remote_repo: Repo) -> None:
    _share(remote_repo)
    plant(remote_repo, EVIL + "good", claim("good", touch=["docs/**"]))
    seen = remote_repo.path / ".git" / "wtp" / "remote-seen.json"
    seen.parent.mkdir(exist_ok=True)
    seen.write_text('{"version": 1, "seen": {"origin x": {"id": "a", "first": "long ago"}}}')
    out = remote_repo.wtp_proc("list", "--remote", "--json")
    assert out.code == 0 and [t["task"] for t in json.loads(out.out)["tasks"]] == ["good"]
    [line] = out.err.splitlines()
    assert line.startswith(
        f"wtp: the record of remote sightings {seen} is not one wtp wrote (set aside as {seen.name}.bad-"
    )
    assert line.endswith("): ages of remote records start from now")
    assert json.loads(seen.read_text())["seen"][f"origin {EVIL}good"]["first"] <= time.time()


def test_doctor_does_not_say_a_task_another_clones_claim_holds_back_can_start(remote_repo: Repo) -> None:
    """Review 31: with share = true, 'wtp doctor' said 'queued task(s) c2 can start now' (exit 1)
    for a task another clone's claim held back, which 'wtp next' rightly did not start."""
    _share(remote_repo)
    plant(remote_repo, EVIL + "x4", claim("x4", touch=["README.md"]))
    assert remote_repo.wtp_proc("start", "c2", "--touch", "README.md").code == 4
    out = remote_repo.wtp_proc("doctor")
    assert "can start now" not in out.out, out.out


def test_a_claim_ref_that_is_not_a_commit_is_named_not_ignored_silently(remote_repo: Repo) -> None:
    """Review 31: a blob pushed at refs/wtp/claims/... was left out without a word."""
    _share(remote_repo)
    bare = remote_repo.remote
    assert bare is not None
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=bare, input="not a claim", capture_output=True, text=True
    ).stdout.strip()
    git(bare, "update-ref", EVIL + "blob", blob)
    out = remote_repo.wtp_proc("start", "mine")
    assert out.code == 0, out.err
    assert out.err.splitlines() == [ignored(EVIL + "blob", "it is not a commit")]


def test_a_claim_past_the_limit_of_one_command_argument_is_published_and_read(remote_repo: Repo) -> None:
    """Review 34: a claim's record travelled as 'git commit-tree -m RECORD', and one past the
    kernel's 128 KiB limit for one argument could not be published ("Argument list too long
    (git): free space or fix the permissions"): other clones did not see the task at all."""
    from .test_remote import clone

    other = clone(remote_repo, "other")
    _share(remote_repo, other)
    globs = [f"--touch=src/module_{i:05d}/a/rather/long/path/name/*.py" for i in range(4000)]
    assert sum(len(g) for g in globs) > 160_000
    out = remote_repo.wtp_proc("start", "big", *globs)
    assert out.code == 0 and "could not publish" not in out.err, out.err[-500:]
    seen = other.wtp("list", "--remote", "--json").json()["tasks"]
    assert [(t["task"], len(t["touch"])) for t in seen] == [("big", 4000)]
