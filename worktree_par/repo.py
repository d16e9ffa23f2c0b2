"""The context every command works in: the repository, its config and its state store,
plus the few repository-wide facts (base branch, remote) derived from them."""

from __future__ import annotations

import os
from pathlib import Path

from . import config, gitops
from .errors import InvalidTaskName, UsageError
from .gitops import Sha
from .state import Store, shown, validate_name

__all__ = ["Ctx", "few", "open_ctx", "shown", "validate_branch", "validate_name"]


class Ctx:
    """What one command works in: the repository (``repo``: where the command runs, the
    main worktree, the common git dir), its config and its state ``Store``.  Built once
    per command by ``open_ctx`` (``wtp init`` builds its own before a config exists) and
    passed down whole, never kept past the command: it caches what a command may read once
    (the git settings wtp uses, the refs base detection looks at), so a second command
    needs a fresh one.  Refs a command moves are read fresh through gitops, never from
    this cache; the state is read through ``store``, never kept here."""

    def __init__(self, repo: gitops.RepoInfo, cfg: config.Config, store: Store) -> None:
        self.repo, self.cfg, self.store = repo, cfg, store
        self._git_config: list[tuple[str, str]] | None = None
        self._refs: dict[str, gitops.RefInfo | None] = {}

    @property
    def root(self) -> Path:
        return self.repo.main_root

    def worktree_root(self) -> Path:
        return self.cfg.worktree_root_path(self.root)

    def worktrees(self) -> list[gitops.Worktree]:
        """git's worktree list, with the main worktree's real path (git 2.39 names the git
        dir itself for a checkout made with 'git init --separate-git-dir')."""
        found = gitops.worktrees(self.root)
        if found and not self.repo.bare and found[0].path == self.repo.common_dir != self.root:
            found[0] = found[0]._replace(path=self.root)
        return found

    def task_worktree(self, name: str, path: str | None) -> Path | None:
        """A task's recorded worktree folder, as the guard acts on it (None when there is none):
        never the main worktree or a folder in it, whatever a damaged record says (the guard
        would mend it as a worktree of its own, then delete it)."""
        if not path or not Path(path).is_dir():
            return None
        main = None if self.repo.bare else os.path.normpath(self.root)
        if main is not None and (os.path.normpath(path) + "/").startswith(main + "/"):
            raise UsageError(
                f"task '{name}' is recorded with its worktree at {path}, in the main worktree: its record is "
                f"damaged, and nothing was touched; 'wtp doctor --fix' sets the record aside (the folder and the branch stay)"
            )
        return Path(path)

    @property
    def worktree_lock(self) -> Path:
        """The repo-wide lock every 'git worktree add/remove/prune' is run under."""
        return self.store.ensure_dir() / "worktrees.lock"

    @property
    def parallel_checkout(self) -> bool:
        """Ask git for a parallel checkout unless the user chose checkout.workers themselves."""
        return self.git_setting("checkout.workers") is None

    def git_config(self) -> list[tuple[str, str]]:
        """The git settings wtp reads (remotes, checkout.workers), in one call per command."""
        if self._git_config is None:
            self._git_config = gitops.config_values(self.root, r"^(remote\.|checkout\.workers$)")
        return self._git_config

    def git_setting(self, key: str) -> str | None:
        return next((v for k, v in self.git_config() if k == key), None)

    def remotes(self) -> list[str]:
        names = [k[len("remote.") : k.rindex(".")] for k, _ in self.git_config() if k.startswith("remote.")]
        return list(dict.fromkeys(names))

    def remote(self) -> str | None:
        """The configured remote when it exists in this clone, else None (land updates locally)."""
        name = self.cfg.remote
        return name if name and name in self.remotes() else None

    def _ref(self, name: str) -> gitops.RefInfo | None:
        """A ref as it was when this command first asked (base detection only: refs that a
        command moves are read fresh).  The refs base detection may need come in the same call."""
        if name not in self._refs:
            wanted = [n for n in dict.fromkeys([name, *self._base_candidates()]) if n not in self._refs]
            found = gitops.refs(self.root, wanted)
            for n in wanted:
                self._refs[n] = found.get(n)
        return self._refs[name]

    def _base_candidates(self) -> list[str]:
        remote = self.remote()
        names = [b for b in (self.cfg.base, "main", "master") if b]
        out = [f"refs/heads/{b}" for b in names]
        if remote:
            out += [f"refs/remotes/{remote}/HEAD", *(f"refs/remotes/{remote}/{b}" for b in names)]
        return out

    def branch_of(self, task: str) -> str:
        return f"{self.cfg.branch_prefix}{task}"

    def base_tip_ref(self, base: str) -> str:
        """The ref holding the newest known state of ``base``: remote-tracking when there is a remote."""
        remote = self.remote()
        if remote and self._ref(f"refs/remotes/{remote}/{base}"):
            return f"refs/remotes/{remote}/{base}"
        return f"refs/heads/{base}"

    def detect_base(self) -> str:
        if self.cfg.base:
            return self.cfg.base
        remote = self.remote()
        if remote:
            head = self._ref(f"refs/remotes/{remote}/HEAD")
            if head and head.symref.startswith(f"refs/remotes/{remote}/"):
                return head.symref[len(f"refs/remotes/{remote}/") :]
        for b in ("main", "master"):
            if self._ref(f"refs/heads/{b}") or (remote and self._ref(f"refs/remotes/{remote}/{b}")):
                return b
        if gitops.head(self.root)[0] is None:  # an unborn HEAD: 'git init' and nothing committed yet
            raise UsageError("this repository has no commit yet: commit something first (a task starts from a commit)")
        raise UsageError(
            "cannot tell the base branch (no remote HEAD, no 'main', no 'master'): "
            "set base in .wtp.toml or pass --base BRANCH"
        )

    def base_tip(self, base: str) -> Sha | None:
        """The commit a new task on ``base`` forks from."""
        info = self._ref(self.base_tip_ref(base))
        return info.commit if info else None

    def resolve_start(self, ref: str | None) -> tuple[str, Sha]:
        """(base branch to land onto, commit to fork from) for ``wtp start --base ref``."""
        remote = self.remote()
        if ref is None or self._ref(f"refs/heads/{ref}"):
            base = ref or self.detect_base()
            tip = self.base_tip(base)
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
    store = Store(repo.common_dir)
    cfg = config.load(repo.config_root, store.dir / config.CACHE_FILE)
    gitops.set_network_timeout(cfg.remote_timeout)  # this command's network deadline (README)
    return Ctx(repo=repo, cfg=cfg, store=store)


def few(items: list[str], n: int = 3) -> str:
    """The first ``n`` items, printable, and how many more."""
    out = ", ".join(shown(i) for i in items[:n])
    return out + (f", and {len(items) - n} more" if len(items) > n else "")


# The names git gives refs of its own, in .git: a branch of one of them is shadowed by it.
_GITS_OWN = frozenset(
    {"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD"}
    | {"BISECT_HEAD", "AUTO_MERGE"}
)


def validate_branch(ctx: Ctx, name: str, base: str = "") -> None:
    ref = f"refs/heads/{ctx.branch_of(name)}"
    # '-x': an option to git; 'HEAD', 'FETCH_HEAD', 'ORIG_HEAD'... (an empty branch_prefix): names
    # git gives refs of its own, which a branch of that name would shadow
    if (
        ctx.branch_of(name).startswith("-")
        or ctx.branch_of(name) in _GITS_OWN
        or not gitops.check_ref_format(ctx.root, ref)
    ):
        raise InvalidTaskName(
            f"task name '{shown(name)}' gives the invalid branch name '{ctx.branch_of(name)}': "
            "choose another name or fix branch_prefix in .wtp.toml"
        )
    if ctx.branch_of(name) in {base, ctx.cfg.base} - {""}:
        raise InvalidTaskName(
            f"task name '{shown(name)}' gives the branch '{ctx.branch_of(name)}', which is the base branch: "
            "a task never works on the base itself; choose another name or set branch_prefix in .wtp.toml"
        )
