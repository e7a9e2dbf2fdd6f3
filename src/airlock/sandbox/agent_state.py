"""The agent's state file, writable inside, with the part of it that runs code kept as it was.

Theory of operation
-------------------
The reference agent writes ``~/.claude.json`` all the time (its user state), so the file is
writable inside the sandbox. It also holds the user's MCP servers (``mcpServers``, at its top
and under each project in ``projects``): commands the agent starts outside later. So
:func:`read` keeps the file's bytes before the run, and :func:`keep_servers` reads the servers
of both after it, when the file changed at all: when they differ,
the file is rewritten (atomically, its mode kept) with the servers as they were and the rest
as the run left it; the file as the run left it is kept beside the other things set aside, so
nothing is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airlock._atomic import replace_file
from airlock.sandbox.files import NotRegular, move_entry_aside, read_regular

KEY = "mcpServers"
CONFIG_FILES = (
    ".codex/config.toml",
    ".codex/.env",
    ".codex/AGENTS.md",
    ".codex/AGENTS.override.md",
    ".codex/hooks.json",
    ".gemini/settings.json",
    ".gemini/.env",
    ".gemini/GEMINI.md",
)
"""Other agents' configuration in the home, writable with their state (``~/.codex``,
``~/.gemini``) but naming what runs outside later (Codex's ``notify``, ``mcp_servers`` and
``hooks.json``, put back rather than read-only: Codex warns at every start over an empty
placeholder there; Gemini's ``mcpServers``; the variables each loads from its ``.env``:
``BASH_ENV``, an API base URL) or what every later session of the agent is told (their global instructions, as
``~/.claude/CLAUDE.md`` is read-only): :func:`keep_file` puts each back as it was after the
run."""

PROJECT_KEYS: dict[str, Any] = {
    KEY: {},
    "enabledMcpjsonServers": [],
    "disabledMcpjsonServers": [],
    "enableAllProjectMcpServers": False,
    "hasTrustDialogAccepted": False,
    "allowedTools": [],
}
"""What a project's entry in the state file says about what runs for it, each with the value
the agent writes for a new project (which counts as none): its MCP servers, which of a
project's ``.mcp.json`` servers are approved, whether the project is trusted (its own
settings' hooks then run), and the tools it may use without asking."""

Guarded = dict[str, dict[str, Any]]
"""``{"": {"mcpServers": …}, PROJECT: {key of PROJECT_KEYS: value}}``, the values that say
something (not the new project's defaults) only."""


def state_files(home: Path, config_dir: Path) -> list[Path]:
    """``~/.claude.json``, and ``<config dir>/.claude.json`` when the config dir is elsewhere."""
    files = [home / ".claude.json"]
    if config_dir.resolve() != (home / ".claude").resolve():
        files.append(config_dir / ".claude.json")
    return files


def read(path: Path) -> bytes | None:
    """The file's bytes before the run (``None`` when missing or not a regular file): parsed
    only if it changed."""
    try:
        return read_regular(path)
    except NotRegular:
        return None


def guarded(text: bytes | None) -> Guarded | None:
    """What a state file's ``text`` says runs (:data:`Guarded`); ``None`` when missing or not
    a JSON object."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return _guarded(data) if isinstance(data, dict) else None


def _guarded(data: dict[str, Any]) -> Guarded:
    found: Guarded = {}
    if data.get(KEY):
        found[""] = {KEY: data[KEY]}
    projects = data.get("projects")
    if isinstance(projects, dict):
        for project, settings in projects.items():
            if isinstance(settings, dict):
                said = {key: settings[key] for key in PROJECT_KEYS if settings.get(key)}
                if said:
                    found[project] = said
    return found


def _restore(data: dict[str, Any], kept: Guarded, now: Guarded) -> None:
    """Make what ``data`` says runs as ``kept`` says, touching nothing else."""
    data.pop(KEY, None)
    if "" in kept:
        data[KEY] = kept[""][KEY]
    if not isinstance(data.get("projects"), dict):
        data["projects"] = {}
    projects = data["projects"]
    for project in sorted((set(kept) | set(now)) - {""}):
        settings = projects.get(project)
        if not isinstance(settings, dict):
            if project not in kept:
                continue
            settings = projects[project] = {}
        for key, default in PROJECT_KEYS.items():
            if key in kept.get(project, {}):
                settings[key] = kept[project][key]
            elif settings.get(key):
                settings[key] = type(default)()


def keep_servers(path: Path, before: bytes | None, aside: Path) -> str | None:
    """Put the servers of the file as it was (``before``, its bytes) back into ``path`` if the
    run changed them; what was done, in words (``None``: nothing to do). The file as the run
    left it is moved or copied to ``aside``.

    A file that was not there, or not JSON, before the run gets no servers: any it has now
    are removed. What the run left that is not a regular file (a link: to a hidden key, say;
    a FIFO) or cannot be read as JSON here is moved aside whole and the file put back as it
    was: it is never read through, and never half-understood.
    """
    try:
        text = read_regular(path)
    except NotRegular:
        return _put_back(path, before, aside, "it is no longer a regular file")
    if text is None or text == before:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return _put_back(path, before, aside, "it cannot be read as JSON")
    if not isinstance(data, dict):
        return _put_back(path, before, aside, "it is no longer a JSON object")
    now = _guarded(data)
    kept = guarded(before) or {}
    if now == kept:
        return None
    mode = path.lstat().st_mode & 0o777
    # moved first, then written back: a full disk leaves the file away, never as the run left it
    moved = move_entry_aside(path, aside)
    _restore(data, kept, now)
    try:
        replace_file(path, json.dumps(data, indent=2).encode() + b"\n", mode=mode)
    except OSError as error:
        return (
            f"{path}: its MCP servers or a project's trust or approvals were changed inside "
            f"the sandbox, and an agent starts them outside; the file was moved to {moved} and "
            f"could not be written back without them ({error.strerror or error}): the agent "
            "finds no such file until you put one back"
        )
    return (
        f"{path}: its MCP servers or a project's trust or approvals were changed inside the "
        "sandbox, and an agent starts them outside; they are back as they were (the file as "
        f"the run left it: {moved})"
    )


def keep_file(path: Path, before: bytes | None, aside: Path) -> str | None:
    """Put ``path`` back as it was before the run (``before``; ``None``: it was not there) if
    the run changed it, moving what the run left to ``aside``; what was done, in words
    (``None``: nothing to do). What is there is never read through a link."""
    try:
        now = read_regular(path)
    except NotRegular:
        return _put_back(path, before, aside, "it is no longer a regular file")
    if now is None or now == before:
        return None  # removed, or never made: nothing it says runs
    return _put_back(path, before, aside, "it says what runs outside later")


def _put_back(path: Path, before: bytes | None, aside: Path, why: str) -> str:
    """Move whatever is at ``path`` (not following a link) to ``aside``, then write ``before``
    back (nothing, when it was not there)."""
    moved = move_entry_aside(path, aside)  # the entry itself: a link stays a link, a FIFO unopened
    if before is not None:
        try:
            replace_file(path, before, mode=0o600)
        except OSError as error:
            return (
                f"{path}: changed inside the sandbox ({why}); moved to {moved}, and could not "
                f"be put back as it was ({error.strerror or error}): put it back yourself"
            )
    done = "put back as it was" if before is not None else "removed"
    return f"{path}: changed inside the sandbox ({why}); {done} (what the run left: {moved})"
