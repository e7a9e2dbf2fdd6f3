"""Programs the protected settings name: read-only inside too.

The agent's settings (``settings.json`` in the config dir and in the project) and a project's
``.mcp.json`` are read-only inside, but what they name runs outside as well: a hook's
``command``, the status line's, a credential helper, an MCP server's program and the script
it is given. Where such a file is somewhere code inside could write (a ``scripts/`` folder of
the project, ``~/.claude/statusline-command.sh``), the next session outside would run what was
written. So every path a command of those files names, when it is a file that is there, is
read-only inside as well.

Commands are split as a shell would (:func:`shlex.split`); each word that is a path (it holds
a ``/`` or starts with ``~``) is read: ``~`` is the home, ``$CLAUDE_PROJECT_DIR`` the
workspace, a relative path is under the workspace (where hooks and project servers start).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from airlock.sandbox.paths import Kind, Mount, mount

COMMAND_KEYS = ("apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper")
"""Top-level settings whose value is a command the agent runs."""

NAMED_PROGRAMS = 100
"""At most this many paths are made read-only (the rest are said)."""

WHY = "a program the agent's protected settings or .mcp.json name: runs outside later"


def commands(settings: Mapping[str, Any]) -> Iterator[str]:
    """The commands one settings file names: its hooks', its status line's, its helpers'."""
    for key in COMMAND_KEYS:
        if isinstance(settings.get(key), str):
            yield settings[key]
    status = settings.get("statusLine")
    if isinstance(status, Mapping) and isinstance(status.get("command"), str):
        yield status["command"]
    hooks = settings.get("hooks")
    if not isinstance(hooks, Mapping):
        return
    for groups in hooks.values():
        for group in groups if isinstance(groups, list) else ():
            inner = group.get("hooks") if isinstance(group, Mapping) else None
            for hook in inner if isinstance(inner, list) else ():
                if isinstance(hook, Mapping) and isinstance(hook.get("command"), str):
                    yield hook["command"]


def server_commands(mcp: Mapping[str, Any]) -> Iterator[str]:
    """The command lines of a ``.mcp.json``'s servers (``command`` and ``args``)."""
    servers = mcp.get("mcpServers")
    if not isinstance(servers, Mapping):
        return
    for server in servers.values():
        if not isinstance(server, Mapping) or not isinstance(server.get("command"), str):
            continue
        args = server.get("args")
        words = [str(word) for word in args] if isinstance(args, list) else []
        yield shlex.join([server["command"], *words])


def _words(line: str, depth: int = 0) -> Iterator[str]:
    """The words of a command line, and those of each word that is itself a command line
    (``sh -c "scripts/x.sh --fix"``), two levels deep."""
    try:
        words = shlex.split(line)
    except ValueError:
        return
    for word in words:
        yield word
        if depth < 2 and " " in word:
            yield from _words(word, depth + 1)


def named_paths(lines: Iterable[str], home: Path, workspace: Path) -> list[Path]:
    """The files that these command lines name (each once, in order): a word that is a path
    (``~/…``, ``$HOME/…``, ``$CLAUDE_PROJECT_DIR/…``, absolute, or holding a ``/``), and a
    bare name that is a file in the workspace (``bash check.sh``, ``node server.js``); a
    path with a ``/`` that is missing too (a placeholder keeps it from being made)."""
    found: dict[Path, None] = {}
    for line in lines:
        for word in _words(line):
            for name in ("${CLAUDE_PROJECT_DIR}", "$CLAUDE_PROJECT_DIR"):
                word = word.replace(name, str(workspace))
            for name in ("${HOME}", "$HOME"):
                word = word.replace(name, str(home))
            if "=" in word or " " in word or not word or word.startswith("-"):
                continue
            if word == "~" or word.startswith("~/"):
                path = home / word[2:]
            elif word.startswith("/"):
                path = Path(word)
            else:
                path = workspace / word
            if path.is_file() or ("/" in word and not path.exists() and path.parent.is_dir()):
                found.setdefault(path, None)
    return list(found)


def program_rules(
    layers: Iterable[Mapping[str, Any]],
    home: Path,
    workspace: Path,
    opened: Iterable[Path] = (),
) -> tuple[list[Mount], int]:
    """Read-only rules for the files the settings ``layers`` and the workspace's ``.mcp.json``
    name (at most :data:`NAMED_PROGRAMS`), and how many more were left without one. One the
    user's own ``--rw`` names (``opened``: a server being worked on) keeps no rule."""
    lines = [line for settings in layers for line in commands(settings)]
    try:
        mcp = json.loads((workspace / ".mcp.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        mcp = None
    if isinstance(mcp, Mapping):
        lines += server_commands(mcp)
    keep = {Path(os.path.realpath(path)) for path in opened}
    paths = [
        path
        for path in named_paths(lines, home, workspace)
        if Path(os.path.realpath(path)) not in keep
    ]
    rules = [mount(Kind.READ, path, WHY) for path in paths[:NAMED_PROGRAMS]]
    return rules, max(0, len(paths) - NAMED_PROGRAMS)
