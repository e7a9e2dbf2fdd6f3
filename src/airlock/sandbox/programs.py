"""Programs the protected settings name: read-only inside too.

The agent's settings (``settings.json`` in the config dir and in the project) and a project's
``.mcp.json`` are read-only inside, but what they name runs outside as well: a hook's
``command``, the status line's, a credential helper, an MCP server's program and the script
it is given. So does what the agents' other files name (:data:`OTHER_CONFIG`): the MCP
servers of the agent's state file (``~/.claude.json``, the user's and each project's), Codex's
``notify`` program (run after every turn), MCP servers and hooks, Gemini's MCP servers and
hooks, in the home and in the workspace. Those files are writable or put back after the run
(:mod:`airlock.sandbox.agent_state`), but not what they name. Where such a file is somewhere code inside could write (a ``scripts/`` folder of
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

from airlock.sandbox.files import regular_bytes
from airlock.sandbox.paths import Kind, Mount, mount

COMMAND_KEYS = ("apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper")
"""Top-level settings whose value is a command the agent runs."""

NAMED_PROGRAMS = 100
"""At most this many paths are made read-only (the rest are said)."""

WHY = "a program the agents' settings, state or .mcp.json name: runs outside later"

OTHER_CONFIG = (".codex/config.toml", ".codex/hooks.json", ".gemini/settings.json")
"""The other agents' files, in the home and in the workspace, whose commands run outside later
(:func:`named_commands` reads them)."""

COMMAND_WORDS = ("command", "notify", "discoveryCommand", "callCommand")
"""The keys whose value, anywhere in one of :data:`OTHER_CONFIG`, is a command line or the
words of one."""

CONFIG_BYTES = 16 * 1024 * 1024
"""A file larger than this is not read for the commands it names (no agent writes one)."""

WALK_NODES = 100_000
"""At most this many values of one file are looked at by :func:`named_commands`."""


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


def state_commands(state: Mapping[str, Any], workspace: Path) -> Iterator[tuple[str, Path]]:
    """The MCP servers of the agent's state file (``~/.claude.json``): the user's, each with the
    workspace as the folder its relative paths are read from, and each project's, with the
    project's folder."""
    for line in server_commands(state):
        yield line, workspace
    projects = state.get("projects")
    for folder, entry in projects.items() if isinstance(projects, Mapping) else ():
        if isinstance(entry, Mapping) and Path(folder).is_absolute():
            for line in server_commands(entry):
                yield line, Path(folder)


def named_commands(data: object) -> Iterator[str]:
    """Every command line a configuration names, whatever its layout (Codex's and Gemini's
    differ, and change): a ``command`` that is a line, or a program given its ``args``, or a
    list of words; Codex's ``notify``, a list of words; Gemini's tool discovery and call
    commands. At most :data:`WALK_NODES` values."""
    stack, seen = [data], 0
    while stack and seen < WALK_NODES:
        value = stack.pop()
        seen += 1
        if isinstance(value, list):
            stack.extend(value)
            continue
        if not isinstance(value, Mapping):
            continue
        for key in COMMAND_WORDS:
            words = value.get(key)
            args = value.get("args")
            if isinstance(words, str):
                yield shlex.join([words, *map(str, args)]) if isinstance(args, list) else words
            elif isinstance(words, list) and words and all(isinstance(w, str) for w in words):
                yield shlex.join(words)
        stack.extend(value.values())


def _config(path: Path) -> object:
    """A JSON or TOML file's content, or ``None`` when missing, no regular file, too large or
    broken (the agent then starts nothing from it either)."""
    raw = regular_bytes(path, CONFIG_BYTES + 1)  # a FIFO made there is passed over
    if raw is None or len(raw) > CONFIG_BYTES:
        return None
    try:
        if path.suffix == ".toml":
            import tomllib  # only where a TOML file is there: its import is most of its cost

            return tomllib.loads(raw.decode("utf-8"))
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def other_lines(
    home: Path, workspace: Path, state_files: Iterable[Path]
) -> Iterator[tuple[str, Path]]:
    """The command lines the agents' other files name (:data:`OTHER_CONFIG` in the home and in
    the workspace, the MCP servers of the ``state_files``), each with the folder its relative
    paths are read from."""
    for path in state_files:
        state = _config(path)
        if isinstance(state, Mapping):
            yield from state_commands(state, workspace)
    for folder in (home, workspace):
        for name in OTHER_CONFIG:
            for line in named_commands(_config(folder / name)):
                yield line, workspace


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
    state_files: Iterable[Path] = (),
) -> tuple[list[Mount], int]:
    """Read-only rules for the files the settings ``layers``, the workspace's ``.mcp.json``,
    the ``state_files``' MCP servers and the other agents' files (:func:`other_lines`) name (at
    most :data:`NAMED_PROGRAMS`), and how many more were left without one. One the user's own
    ``--rw`` names (``opened``: a server being worked on) keeps no rule."""
    lines = [line for settings in layers for line in commands(settings)]
    mcp = _config(workspace / ".mcp.json")
    if isinstance(mcp, Mapping):
        lines += server_commands(mcp)
    found = named_paths(lines, home, workspace)
    by_folder: dict[Path, list[str]] = {}
    for line, folder in other_lines(home, workspace, state_files):
        by_folder.setdefault(folder, []).append(line)
    for folder, more in by_folder.items():
        found += named_paths(more, home, folder)
    keep = {Path(os.path.realpath(path)) for path in opened}
    paths = [path for path in dict.fromkeys(found) if Path(os.path.realpath(path)) not in keep]
    rules = [mount(Kind.READ, path, WHY) for path in paths[:NAMED_PROGRAMS]]
    return rules, max(0, len(paths) - NAMED_PROGRAMS)
