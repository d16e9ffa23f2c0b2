"""Records from other machines (issue 24, C): shared claims and remote gate tickets are
checked field by field, and a bad one is named in one line and otherwise ignored; a clone
copied with 'cp -a' is a clone of its own; a claim's age is this clone's observation, not
its writer's clock.  Hostile records are written into the bare remote with plain git."""

from __future__ import annotations

import subprocess

from .conftest import Repo, git


def _share(*repos: Repo) -> None:
    for r in repos:
        r.write(".wtp.toml", "share = true\n")


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
