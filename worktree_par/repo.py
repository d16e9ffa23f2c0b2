"""The context every command works in: the repository, its config and its state store,
plus the few repository-wide facts (base branch, remote) derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import config, gitops
from .errors import InvalidTaskName, UsageError
from .gitops import Sha
from .state import Store

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class Ctx:
    repo: gitops.RepoInfo
    cfg: config.Config
    store: Store
    _remote: str | None = field(default=None, init=False)
    _remote_known: bool = field(default=False, init=False)

    @property
    def root(self) -> Path:
        return self.repo.main_root

    def worktree_root(self) -> Path:
        return self.cfg.worktree_root_path(self.root)

    def remote(self) -> str | None:
        """The configured remote when it exists in this clone, else None (land updates locally)."""
        if not self._remote_known:
            name = self.cfg.remote
            self._remote = name if name and name in gitops.remotes(self.root) else None
            self._remote_known = True
        return self._remote

    def branch_of(self, task: str) -> str:
        return f"{self.cfg.branch_prefix}{task}"

    def base_tip_ref(self, base: str) -> str:
        """The ref holding the newest known state of ``base``: remote-tracking when there is a remote."""
        remote = self.remote()
        if remote and gitops.ref_value(self.root, f"refs/remotes/{remote}/{base}"):
            return f"refs/remotes/{remote}/{base}"
        return f"refs/heads/{base}"

    def detect_base(self) -> str:
        if self.cfg.base:
            return self.cfg.base
        remote = self.remote()
        if remote:
            head = gitops.remote_head(self.root, remote)
            if head:
                return head
        for b in ("main", "master"):
            if gitops.ref_value(self.root, f"refs/heads/{b}") or (
                remote and gitops.ref_value(self.root, f"refs/remotes/{remote}/{b}")
            ):
                return b
        raise UsageError(
            "cannot tell the base branch (no remote HEAD, no 'main', no 'master'): "
            "set base in .wtp.toml or pass --base BRANCH"
        )

    def resolve_start(self, ref: str | None) -> tuple[str, Sha]:
        """(base branch to land onto, commit to fork from) for ``wtp start --base ref``."""
        remote = self.remote()
        if ref is None or gitops.ref_value(self.root, f"refs/heads/{ref}"):
            base = ref or self.detect_base()
            tip = gitops.rev_parse(self.root, self.base_tip_ref(base))
            if tip is None:
                raise UsageError(
                    f"base branch '{base}' does not exist (or has no commits): "
                    "create it, or set base in .wtp.toml / pass --base BRANCH"
                )
            return base, tip
        if remote and ref.startswith(remote + "/"):
            tip = gitops.rev_parse(self.root, f"refs/remotes/{ref}")
            if tip:
                return ref[len(remote) + 1 :], tip
        sha = gitops.rev_parse(self.root, ref)
        if sha is None:
            raise UsageError(f"--base {ref!r} names no branch or commit: pass a branch, tag or commit id")
        return self.detect_base(), sha


def open_ctx(cwd: Path) -> Ctx:
    repo = gitops.discover(cwd.resolve())
    cfg = config.load(repo.main_root)
    return Ctx(repo=repo, cfg=cfg, store=Store(repo.common_dir))


def shown(name: str) -> str:
    """A name as it is safe to print: control and odd characters escaped."""
    return name.encode("unicode_escape").decode("ascii")


def validate_name(name: str) -> None:
    """Contract: 1-64 of [A-Za-z0-9._-], no leading '-' or '.', no '..', not ending in '.lock'."""
    bad = None
    if not _NAME.fullmatch(name):
        if not name:
            bad = "it is empty"
        elif len(name) > 64:
            bad = f"it is {len(name)} characters long (64 at most)"
        else:
            bad = "it may only contain letters, digits, '.', '_' and '-'"
    elif name[0] in "-.":
        bad = f"it may not start with '{name[0]}'"
    elif ".." in name:
        bad = "it may not contain '..'"
    elif name.endswith(".lock"):
        bad = "it may not end in '.lock'"
    if bad:
        raise InvalidTaskName(f"invalid task name '{shown(name)}': {bad}; try something like 'fix-login'")


def validate_branch(ctx: Ctx, name: str) -> None:
    ref = f"refs/heads/{ctx.branch_of(name)}"
    if not gitops.check_ref_format(ctx.root, ref):
        raise InvalidTaskName(
            f"task name '{shown(name)}' gives the invalid branch name '{ctx.branch_of(name)}': "
            "choose another name or fix branch_prefix in .wtp.toml"
        )
