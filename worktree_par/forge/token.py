"""Where a forge token comes from: the environment, else the forge's own CLI when it is
installed and logged in.  Never from wtp's config file (which is committed and shared),
never printed: a ``Token`` shows where it came from, not what it is.

- GitHub: ``GITHUB_TOKEN``, then ``GH_TOKEN``, then ``gh auth token --hostname HOST``
  (https://cli.github.com/manual/gh_auth_token).
- GitLab: ``GITLAB_TOKEN``, then ``glab config get token --host HOST``
  (https://gitlab.com/gitlab-org/cli/-/blob/main/docs/source/config/get.md).
- Gitea/Forgejo: ``GITEA_TOKEN``, then the login for that host in tea's config file
  (``$XDG_CONFIG_HOME/tea/config.yml``; tea has no command that prints a token).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ForgeAuthError

ENV: dict[str, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN", "GH_TOKEN"),
    "gitlab": ("GITLAB_TOKEN",),
    "gitea": ("GITEA_TOKEN",),
}
LOGIN = {"github": "gh auth login", "gitlab": "glab auth login", "gitea": "tea login add"}


@dataclass(frozen=True)
class Token:
    """A secret and where it came from; its repr and str never show the secret."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<token from {self.source}>"


def hint(kind: str) -> str:
    """The variable(s) to set, for messages: 'GITHUB_TOKEN (or GH_TOKEN)'."""
    names = ENV[kind]
    return names[0] + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "")


def find_token(
    kind: str, host: str = "", *, env: Mapping[str, str] | None = None, timeout: float = 5.0, use_cli: bool = True
) -> Token:
    """The token for a forge of ``kind`` on ``host`` (the API's host), or ForgeAuthError naming
    the variable to set."""
    env = os.environ if env is None else env
    for name in ENV[kind]:
        value = env.get(name, "").strip()
        if value:
            return Token(value, name)
    if use_cli:
        found = _from_cli(kind, host, timeout, env)
        if found:
            return found
    raise ForgeAuthError(f"no {kind} token: set {hint(kind)}, or log in with '{LOGIN[kind]}'")


def _from_cli(kind: str, host: str, timeout: float, env: Mapping[str, str]) -> Token | None:
    if kind == "github":
        argv = ["gh", "auth", "token"] + (["--hostname", _web_host(host, "api.")] if host else [])
        return _run(argv, timeout, "gh auth token")
    if kind == "gitlab":
        argv = ["glab", "config", "get", "token"] + (["--host", host] if host else [])
        return _run(argv, timeout, "glab config get token")
    return _from_tea(host, env)


def _web_host(host: str, strip: str) -> str:
    # gh knows github.com, not api.github.com; an Enterprise host is the same for both.
    return host[len(strip) :] if host.startswith(strip) else host


def _run(argv: list[str], timeout: float, source: str) -> Token | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = res.stdout.strip()
    if res.returncode != 0 or not value or len(value.split()) != 1:
        return None
    return Token(value, source)


def _from_tea(host: str, env: Mapping[str, str]) -> Token | None:
    """The token of tea's login for ``host``, read from its YAML config with a line reader
    small enough for the few keys tea writes (no YAML dependency for one value)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    path = Path(base) / "tea" / "config.yml"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    logins: list[dict[str, str]] = []
    for line in lines:
        text = line.strip()
        if text.startswith("- "):
            logins.append({})
            text = text[2:].strip()
        key, sep, value = text.partition(":")
        if sep and logins:
            logins[-1][key.strip()] = value.strip().strip("'\"")
    for login in logins:
        url_host = urllib.parse.urlsplit(login.get("url", "")).hostname or ""
        if login.get("token") and (not host or url_host == host):
            return Token(login["token"], f"tea login '{login.get('name', url_host)}'")
    return None
