"""The agents wing: what coding agents talk to.  ``hooks`` (the pre-edit hook, Claude Code's
PreToolUse protocol, and the git pre-commit hook), ``install`` (installing and removing
them, and the AGENTS.md/CLAUDE.md text) and ``mcp_server`` (the MCP server; each tool call
runs the CLI as its own process).  Nothing below the front doors and their command
bodies imports this wing; what the core needs to know of agent files (their format, and
giving a new task worktree the hook) is ``agentfiles``, below it.
"""
