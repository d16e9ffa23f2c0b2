"""Configuration: ``.wtp.toml`` at the repository root, or ``[tool.wtp]`` in pyproject.toml.

Every key has a default (README, Configuration).  Unknown keys, wrong types, broken TOML and
absurd values are ConfigError (exit 2) naming the file and the key.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from . import atomic, disposable
from .errors import ConfigError

CONFIG_FILE = ".wtp.toml"
STRATEGIES = ("rebase", "squash", "merge")
MODES = ("speculative", "batch", "serial")  # how the land queue gates its candidates (how many: land_depth)
ON_COLLISION = ("deny", "ask", "warn")  # what the agent hook answers to an edit another task claims
COCHANGE = ("warn", "hold", "off")  # what a likely collision (files that changed together) does at start
VIA = ("push", "github", "gitlab", "gitea")  # how land publishes: a push, or a forge's pull/merge requests
FORGE_MERGE = ("direct", "queue")


class Config(NamedTuple):
    base: str = ""
    remote: str = "origin"
    max_active: int = 3
    worktree_root: str = "../{repo}.worktrees"
    branch_prefix: str = "wtp/"
    port_base: int = 4100
    share: bool = False  # publish task claims to the remote so other clones see them
    setup_copy: tuple[str, ...] = ()
    setup_run: tuple[str, ...] = ()
    land_strategy: str = "rebase"
    land_gate: str = ""
    land_timeout: float = 1800
    land_mode: str = "speculative"
    land_require_gate: bool = False
    land_depth: int = 0  # candidates in flight (speculative) or per batch; 0 = adaptive, up to max_active
    land_confirm_red: int = 1  # re-runs that must also fail before a red gate blocks a task (flaky gates)
    land_vouch: bool = False  # a pass above a red being confirmed may land it without its re-run
    check_hot: tuple[str, ...] = ()
    rm_disposable: tuple[str, ...] = ()  # more globs of ignored build outputs ([rm] disposable)
    check_cochange: str = "warn"
    check_test: str = ""  # "" = the land gate; a command for 'check --test'; "auto" = the land gate, in the background
    hook_on_collision: str = "deny"
    hook_on_missing: str = "deny"  # what the Claude hook answers when no wtp can be found
    gate_remote: tuple[str, ...] = ()  # globs of gate names always held through the remote
    gate_lease: float = 30
    remote_timeout: float = 30  # seconds any one git network call may take ([remote] timeout)
    land_via: str = "push"  # push | github | gitlab | gitea
    forge_api: str = ""  # the forge's API base URL; "" = its public default
    forge_repo: str = ""  # owner/name (GitLab: the project path); "" = from the remote's URL
    forge_merge: str = "direct"  # direct (wtp merges with the head-SHA guard) | queue (the forge's queue)
    forge_method: str = ""  # rebase | squash | merge; "" = land_strategy
    source: Path | None = None  # the file it came from

    def worktree_root_path(self, main_root: Path) -> Path:
        rel = os.path.expanduser(self.worktree_root.replace("{repo}", main_root.name.removesuffix(".git")))
        root = Path(main_root, rel).resolve()  # relative to the main checkout, wherever wtp runs
        if root == root.parent:
            raise ConfigError(
                f"{self.source or CONFIG_FILE}: 'worktree_root' must name a folder for the task worktrees, not '{root}'"
            )
        return root


# key -> (type, attribute) for each table; "" is the top level
_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], str]]] = {
    "": {
        "base": (str, "base"),
        "remote": (str, "remote"),
        "max_active": (int, "max_active"),
        "worktree_root": (str, "worktree_root"),
        "branch_prefix": (str, "branch_prefix"),
        "port_base": (int, "port_base"),
        "share": (bool, "share"),
    },
    "setup": {"copy": (list, "setup_copy"), "run": (list, "setup_run")},
    "land": {
        "strategy": (str, "land_strategy"),
        "gate": (str, "land_gate"),
        "timeout": ((int, float), "land_timeout"),
        "mode": (str, "land_mode"),
        "depth": (int, "land_depth"),
        "confirm_red": (int, "land_confirm_red"),
        "vouch": (bool, "land_vouch"),
        "require_gate": (bool, "land_require_gate"),
        "via": (str, "land_via"),
    },
    "forge": {
        "api": (str, "forge_api"),
        "repo": (str, "forge_repo"),
        "merge": (str, "forge_merge"),
        "method": (str, "forge_method"),
    },
    "check": {"hot": (list, "check_hot"), "cochange": (str, "check_cochange"), "test": (str, "check_test")},
    "rm": {"disposable": (list, "rm_disposable")},
    "hook": {"on_collision": (str, "hook_on_collision"), "on_missing": (str, "hook_on_missing")},
    "gate": {"remote": (list, "gate_remote"), "lease": ((int, float), "gate_lease")},
    # TOML cannot hold both 'remote = "origin"' and a [remote] table, so the table names the
    # remote itself too: [remote] name = "origin", timeout = 30.
    "remote": {"name": (str, "remote"), "timeout": ((int, float), "remote_timeout")},
}
_MAX_TASK_PORTS = 1000  # port_base + this must stay a valid port


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {str: "a string", int: "a whole number", list: "a list of strings", bool: "true or false"}[t]


def _parse(data: dict[str, Any], where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, val in data.items():
        if key in _SCHEMA[""] and not (key in _SCHEMA and isinstance(val, dict)):
            tables = {"": {key: val}}
        elif key in _SCHEMA and key != "":
            if not isinstance(val, dict):
                raise ConfigError(f"{where}: '{key}' must be a table ([{key}])")
            tables = {key: val}
        else:
            raise ConfigError(f"{where}: unknown key '{key}': see 'wtp init' for the keys wtp reads")
        for table, items in tables.items():
            for k, v in items.items():
                name = f"{table}.{k}" if table else k
                if k not in _SCHEMA[table]:
                    raise ConfigError(f"{where}: unknown key '{name}': see 'wtp init' for the keys wtp reads")
                typ, attr = _SCHEMA[table][k]
                if (isinstance(v, bool) and typ is not bool) or not isinstance(v, typ):
                    raise ConfigError(f"{where}: '{name}' must be {_type_name(typ)}, not {v!r}")
                if isinstance(v, float) and not math.isfinite(v):  # TOML has nan and inf
                    raise ConfigError(f"{where}: '{name}' must be a finite number, not {v!r}")
                if isinstance(v, list):
                    if not all(isinstance(x, str) and x for x in v):
                        raise ConfigError(f"{where}: '{name}' must be a list of non-empty strings")
                    v = tuple(v)
                values[attr] = v
    return values


def _validate(cfg: Config, where: str) -> None:
    if cfg.max_active < 1:
        raise ConfigError(f"{where}: 'max_active' must be 1 or more, not {cfg.max_active}")
    if not 1024 <= cfg.port_base <= 65535 - _MAX_TASK_PORTS:
        raise ConfigError(
            f"{where}: 'port_base' must be between 1024 and {65535 - _MAX_TASK_PORTS} "
            f"so that task ports stay valid, not {cfg.port_base}"
        )
    if cfg.land_strategy not in STRATEGIES:
        raise ConfigError(f"{where}: 'land.strategy' must be one of {', '.join(STRATEGIES)}, not {cfg.land_strategy!r}")
    if cfg.land_mode not in MODES:
        raise ConfigError(f"{where}: 'land.mode' must be one of {', '.join(MODES)}, not {cfg.land_mode!r}")
    if cfg.check_cochange not in COCHANGE:
        raise ConfigError(f"{where}: 'check.cochange' must be one of {', '.join(COCHANGE)}, not {cfg.check_cochange!r}")
    if cfg.hook_on_collision not in ON_COLLISION:
        raise ConfigError(
            f"{where}: 'hook.on_collision' must be one of {', '.join(ON_COLLISION)}, not {cfg.hook_on_collision!r}"
        )
    if cfg.hook_on_missing not in ("deny", "allow"):
        raise ConfigError(f"{where}: 'hook.on_missing' must be one of deny, allow, not {cfg.hook_on_missing!r}")
    if not 3 <= cfg.gate_lease <= 3600:
        raise ConfigError(f"{where}: 'gate.lease' must be between 3 and 3600 seconds, not {cfg.gate_lease}")
    if not 1 <= cfg.remote_timeout <= 3600:
        raise ConfigError(f"{where}: 'remote.timeout' must be between 1 and 3600 seconds, not {cfg.remote_timeout}")
    if cfg.land_via not in VIA:
        raise ConfigError(f"{where}: 'land.via' must be one of {', '.join(VIA)}, not {cfg.land_via!r}")
    if cfg.forge_merge not in FORGE_MERGE:
        raise ConfigError(f"{where}: 'forge.merge' must be one of {', '.join(FORGE_MERGE)}, not {cfg.forge_merge!r}")
    if cfg.forge_method and cfg.forge_method not in STRATEGIES:
        raise ConfigError(
            f"{where}: 'forge.method' must be one of {', '.join(STRATEGIES)} (or \"\"), not {cfg.forge_method!r}"
        )
    if cfg.land_depth < 0:
        raise ConfigError(f"{where}: 'land.depth' must be 0 (= adaptive) or more, not {cfg.land_depth}")
    if not 0 <= cfg.land_confirm_red <= 5:
        raise ConfigError(
            f"{where}: 'land.confirm_red' must be 0 (block on the first red) to 5 re-runs, not {cfg.land_confirm_red}"
        )
    if cfg.land_timeout <= 0:
        raise ConfigError(f"{where}: 'land.timeout' must be a positive number of seconds, not {cfg.land_timeout}")
    if not cfg.worktree_root.strip():
        raise ConfigError(f"{where}: 'worktree_root' must not be empty")
    if "{" in cfg.worktree_root.replace("{repo}", "") or "}" in cfg.worktree_root.replace("{repo}", ""):
        raise ConfigError(f"{where}: 'worktree_root' = {cfg.worktree_root!r}: the only placeholder is {{repo}}")
    for g in cfg.rm_disposable:
        why = disposable.bad_pattern(g)
        if why:
            raise ConfigError(f"{where}: 'rm.disposable' entry {g!r} {why}")
    for s in cfg.setup_copy:
        p = Path(s)
        if p.is_absolute() or ".." in p.parts:
            raise ConfigError(f"{where}: 'setup.copy' entry {s!r} must be a path inside the repository")


CACHE_FILE = "config-cache.json"  # in the state dir: the last config file read, as parsed
_CACHE_FORMAT = (
    f"1 python {sys.version_info[0]}.{sys.version_info[1]}"  # (another Python's tomllib may read it otherwise)
)


def load(main_root: Path, cache: Path | None = None) -> Config:
    """Read the config of the repository whose main worktree is ``main_root`` (``cache``: where
    the file's parsed form is kept, for the next command to use while the file is unchanged)."""
    try:
        return _load(main_root, cache)
    except ConfigError:
        if cache is None:
            raise
        return _load(main_root, cache, fresh=True)  # said of the file as it reads, not of what a cache held


def _load(main_root: Path, cache: Path | None, fresh: bool = False) -> Config:
    path = main_root / CONFIG_FILE
    data: dict[str, Any] | None = None
    if path.is_file():
        data = _read_toml(path, cache, fresh)
        where = str(path)
    else:
        py = main_root / "pyproject.toml"
        if py.is_file():
            tool = _read_toml(py, cache, fresh).get("tool", {})
            if isinstance(tool, dict) and "wtp" in tool:
                data = tool["wtp"]
                where = f"{py} [tool.wtp]"
                if not isinstance(data, dict):
                    raise ConfigError(f"{where}: must be a table")
    if data is None:
        return Config()
    return parse(data, where, path if path.is_file() else main_root / "pyproject.toml")


def parse(data: dict[str, Any], where: str, source: Path | None = None) -> Config:
    """The config a parsed TOML document holds (ConfigError naming ``where`` when it is not one)."""
    cfg = Config(**_parse(data, where), source=source)
    _validate(cfg, where)
    return cfg


def _read_toml(path: Path, cache: Path | None = None, fresh: bool = False) -> dict[str, Any]:
    """The file's TOML; with ``cache``, as parsed by an earlier command when its text is the same
    byte for byte (tomllib's import and parse are ~4 ms of every command: README, Performance),
    unless ``fresh`` (then parsed, and kept there)."""
    try:
        with path.open("rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from e
    key = [_CACHE_FORMAT, str(path), raw.decode("utf-8", "surrogateescape")]
    if cache is not None and not fresh:
        try:
            kept = json.loads(atomic.read_regular(cache))
            if isinstance(kept, dict) and kept.get("key") == key and isinstance(kept.get("data"), dict):
                return dict(kept["data"])
        except (OSError, ValueError, RecursionError):  # none yet, or not one wtp wrote: read the file
            pass
    import tomllib  # paid only by repositories that have a config file, when it changed

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        bom = " (it starts with a byte-order mark: save it as UTF-8 without one)" if raw[:3] == b"\xef\xbb\xbf" else ""
        raise ConfigError(f"{path}: not valid TOML ({e}){bom}: fix the file or move it aside") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from e
    except (RecursionError, ValueError) as e:  # nested past Python's depth; an integer past its digits
        raise ConfigError(f"{path}: not valid TOML ({e}): fix the file or move it aside") from None
    if cache is not None and cache.parent.is_dir() and not cache.parent.is_symlink():  # (the state dir's rule)
        try:
            atomic.replace(cache, json.dumps({"key": key, "data": data}).encode(), durable=False)
        except (OSError, TypeError, ValueError):  # a read-only .git; a TOML date, which JSON cannot hold
            pass
    return data


COCHANGE_NOTE = "# co-change calibration: "
COCHANGE_ABOUT = "# Files that usually changed together in this repository's history: warn | hold | off."


def cochange_lines(mode: str, why: str) -> str:
    """The [check] cochange setting with the figures that chose it, as 'wtp init' and
    'wtp cochange --calibrate' write them."""
    return f"{COCHANGE_ABOUT}\n{COCHANGE_NOTE}{_printable(why)}\ncochange = {json.dumps(mode)}\n"


def _printable(text: str) -> str:
    return "".join(c for c in text if c.isprintable())  # a TOML comment holds no control characters


def render_default(
    base: str,
    remote: str,
    max_active: int,
    gate: str = "",
    cochange: tuple[str, str] = ("warn", "not calibrated"),
    forge: str | None = None,
    unverified: tuple[str, str] = ("", ""),
) -> str:
    """The commented ``.wtp.toml`` that ``wtp init`` writes (``forge``: the forge the
    remote's URL names, proposed for [land] via; ``unverified``: a detected gate that could
    not start, and why, written commented out)."""
    tried, why = unverified
    why = _printable(why)
    unverified_note = f"# Detected {json.dumps(tried)}, but {why}:\n# gate = {json.dumps(tried)}\n" if tried else ""
    via_note = (
        f'# The remote is on {forge}: via = "{forge}" lands through its pull/merge requests (needed\n'
        f"# when the base branch is protected; the token comes from the environment, see README).\n"
        if forge
        else ""
    )
    return f"""\
# wtp configuration: committed and shared by the team.  Every key is optional.

# Branch tasks fork from and land onto ("" = detect: the remote's HEAD, else main, else master).
base = {json.dumps(base)}
# Active tasks at once (a task landing takes no slot); more are queued until a slot frees.
max_active = {max_active}
# Where task worktrees go, relative to the repository root ({{repo}} = its folder name).
worktree_root = "../{{repo}}.worktrees"
# Task branches are <branch_prefix><task>.
branch_prefix = "wtp/"
# PORT for tasks: port_base, port_base+1, ... unique among live tasks.
port_base = 4100
# true: publish each task's declarations to the remote, so other clones' admission sees them.
share = false

[remote]
# Remote that landing publishes to ("" = none: landing moves the local base branch).  (A
# top-level 'remote = "..."' works too, without this table: TOML cannot hold both.)
name = {json.dumps(remote)}
# Seconds any one git network call (fetch, ls-remote, push) may take before it is stopped.
timeout = 30

[setup]
# Gitignored paths copied (copy-on-write where possible) from the main worktree, e.g. ["node_modules", ".env"].
copy = []
# Commands run in each new worktree with the task's environment (need 'wtp trust'), e.g. ["npm ci --prefer-offline"].
run = []

[land]
# rebase | squash | merge
strategy = "rebase"
# Command that must pass on the candidate before it is published (needs 'wtp trust'), e.g. "make test".
gate = {json.dumps(gate)}
{unverified_note}# true: refuse to land without a gate (without one, land warns that nothing was tested).
require_gate = false
# Seconds the gate may run.
timeout = 1800
# speculative | batch | serial: speculative gates the next candidates side by side, each
# built on the one before it; batch gates the top of the stack once and bisects on failure.
mode = "speculative"
# Candidates in flight (speculative) or per batch; 0 = adaptive: one more after each green,
# half after a red, never more than max_active or the machine's cores.  N fixes it at N.
depth = 0
# Re-runs of a red gate that must also fail before the task is blocked (a pass on re-run is
# recorded as flaky: 'wtp queue --flaky'); 0 blocks on the first red.
confirm_red = 1
# true: a candidate above a red being confirmed that passes lands it at once, without waiting
# for its re-run (faster; a task above that fixes it passes too, and its red commit lands).
vouch = false
# push: publish by a compare-and-swap push | github | gitlab | gitea: through the forge's
# pull/merge requests, with [forge] below.
{via_note}via = "push"

[forge]
# API base URL; "" = the forge's public one (GitHub Enterprise, self-hosted GitLab/Gitea: set it).
api = ""
# owner/name (GitLab: the project path); "" = read from the remote's URL.
repo = ""
# direct: wtp merges with the head-SHA guard | queue: the forge's merge queue, train or auto-merge.
merge = "direct"
# rebase | squash | merge; "" = [land] strategy.
method = ""

[check]
# Extra hot-file globs, added to the built-in list (lockfiles, changelogs, version files, migrations).
hot = []
{cochange_lines(*cochange)}# What 'wtp check --test' runs on the merge of the live tasks: "" = the land gate; a
# command (a faster subset of it); "auto" = the land gate, re-run in the background when a
# task commits, so 'wtp list' shows semantic collisions without anyone asking.
test = ""

[rm]
# Extra globs of ignored build outputs that land and rm delete with a worktree, added to the
# built-in list (dist/, build/, target/, node_modules/, .venv/, coverage and docs builds...),
# e.g. ["out/", "generated/**"].  Any other ignored file (.env, local settings, data) is kept.
disposable = []

[gate]
# Globs of gate names held through the remote, so clones on other machines wait too, e.g. ["deploy*"].
remote = []
# Seconds a remote gate's holder keeps it without renewing (it renews about every third of it).
lease = 30

[hook]
# What the agent hook answers when the wtp it runs is gone and none is on PATH: deny (every
# edit, saying how to fix it) | allow (unchecked). Written into the hook by 'wtp hook install'.
on_missing = "deny"
# What the agent hook ('wtp hook install claude') answers to an edit of a file another task
# declared, changed or edited: deny | ask (the user decides) | warn (allowed, the agent is told).
on_collision = "deny"
"""
