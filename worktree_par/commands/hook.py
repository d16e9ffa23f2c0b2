"""The agents' commands: the pre-edit and pre-commit hooks, installing them, the claim
refresh the hook runs in the background, and 'wtp mcp'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..exits import err, here, open_repo

if TYPE_CHECKING:
    pass


def share_claim(where: str | None, task: str) -> int:
    """Refresh a live task's claim on the remote (run by the agent hook in the background).
    Under a lock of the task's own, so the last to publish reads the newest recorded paths."""
    from ..locks import Lock
    from ..remote import sharing
    from ..repo import validate_name
    from ..state import LIVE

    validate_name(task)
    c = open_repo(where)
    if sharing.enabled(c) is None:
        return 0
    with Lock(c.store.ensure_dir() / f"share-{task}.lock", what=f"the claim of '{task}'"):
        t = c.store.read().tasks.get(task)
        if t is None or t.state not in LIVE:
            return 0
        note = sharing.publish(c, t)
    if note:
        err(note)
        return 1
    return 0


HOOK_TARGETS = ("claude", "git")


def hook_pre_edit() -> int:
    """Claude Code's PreToolUse hook.  A failure of wtp itself never blocks the edit: it is
    one line on stderr and exit 1, the protocol's non-blocking error (never a traceback)."""
    import sys

    from ..errors import WtpError

    try:
        from ..agents import hooks

        # The protocol's JSON is UTF-8 whatever the locale (a latin-1 one read 'café' as 'cafÃ©')
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        ans = hooks.pre_edit(raw.decode("utf-8-sig", "surrogateescape"))  # -sig: a byte-order mark is no JSON
    except Exception as e:  # noqa: BLE001 - see above
        why = e.message if isinstance(e, WtpError) else f"{type(e).__name__}: {e}"
        err(f"wtp hook pre-edit: {why}; the edit goes ahead unchecked")
        return 1
    sys.stdout.write(ans.out)
    sys.stderr.write(ans.err)
    return ans.code


def hook_pre_commit(where: str | None) -> int:
    """The git pre-commit hook: 1 refuses the commit.  A failure of wtp itself lets the commit
    through with a warning (a broken check must not stop all work)."""
    import sys

    from ..errors import WtpError

    try:
        from ..agents import hooks

        ans = hooks.pre_commit(here(where))
    except Exception as e:  # noqa: BLE001 - see above
        why = e.message if isinstance(e, WtpError) else f"{type(e).__name__}: {e}"
        err(f"wtp pre-commit hook: {why}; the commit was not checked")
        return 0
    sys.stderr.write(ans.err)
    return ans.code


def hook_install(where: str | None, target: str, remove: bool = False) -> int:
    from ..agents import install

    if target not in HOOK_TARGETS:
        raise UsageError(f"install the hook for one of {', '.join(HOOK_TARGETS)}, not {target!r}")
    c = open_repo(where)
    if target == "claude":
        said = install.uninstall_claude(c) if remove else install.install_claude(c)
    else:
        said = install.uninstall_git(c) if remove else install.install_git(c)
    for line in said:
        print(line)
    return 0


def mcp(where: str | None) -> int:
    """Serve the MCP tools over stdio until the client closes it."""
    try:
        from ..agents import mcp_server
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("mcp", "mcp_types"):
            raise UsageError(
                "'wtp mcp' needs the MCP SDK, an optional extra: pip install 'worktree-par[mcp]'"
            ) from None
        raise
    open_repo(where)  # a bad directory is one line now, not a tool error later
    mcp_server.serve(where)
    return 0
