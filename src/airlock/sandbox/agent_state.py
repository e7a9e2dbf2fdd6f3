"""The agent's state file, writable inside, with the part of it that runs code kept as it was.

Theory of operation
-------------------
The reference agent writes ``~/.claude.json`` all the time (its user state), by a lock
folder and a new file beside it renamed over it; the home is read-only inside, so for the run
the state is put in the agent's config dir (:func:`staging`, :func:`stage`: it reads it there
when ``CLAUDE_CONFIG_DIR`` names that dir) and carried back after (:func:`carry_back`). It
also holds the user's MCP servers (``mcpServers``, at its top
and under each project in ``projects``): commands the agent starts outside later. So
:func:`read` keeps the file's bytes before the run, and :func:`keep_servers` reads the servers
of both after it, when the file changed at all: when they differ,
the file is rewritten (atomically, its mode kept) with the servers as they were and the rest
as the run left it; the file as the run left it is kept beside the other things set aside, so
nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airlock._atomic import create_file, replace_file
from airlock.sandbox.files import (
    LIMIT,
    NotRegular,
    aside_names,
    move_entry_aside,
    read_regular,
)

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


STATE_FILE = ".claude.json"
"""The reference agent's state file: in the home, or in ``CLAUDE_CONFIG_DIR`` when that is set."""


def state_files(home: Path, config_dir: Path, named: bool = False) -> list[Path]:
    """``~/.claude.json``, and ``<config dir>/.claude.json`` when the config dir is elsewhere
    or ``named`` (``CLAUDE_CONFIG_DIR`` names it, ``~/.claude`` too: the agent keeps its state
    there then)."""
    files = [home / STATE_FILE]
    if named or config_dir.resolve() != (home / ".claude").resolve():
        files.append(config_dir / STATE_FILE)
    return files


def staging(home: Path, config_dir: Path, inside: Mapping[str, str]) -> Path | None:
    """Where the agent inside keeps its state instead of ``~/.claude.json``: the same name in
    its config dir, ``~/.claude``, which it reads when ``CLAUDE_CONFIG_DIR`` names that dir.

    The agent saves its state by making a lock folder and a new file beside it and renaming
    that over it: in the home, which is read-only inside, every save failed (each run asked
    again to trust the folder, and a new home went through the first start's questions every
    time). ``None`` (the file stays where it is) when ``CLAUDE_CONFIG_DIR`` is set inside
    already (it names a writable folder then), the config dir is not ``~/.claude`` or is not
    a folder, a file is at the staged path already (the user's own), or ``~/.claude.json`` is
    a link, not a regular file or larger than :data:`~airlock.sandbox.files.LIMIT` (read-only
    inside as it is: the agent's saves fail there).
    """
    folder = home / ".claude"
    if inside.get("CLAUDE_CONFIG_DIR") or not folder.is_dir() or folder.is_symlink():
        return None
    if os.path.realpath(config_dir) != os.path.realpath(folder):
        return None
    staged = folder / STATE_FILE
    state = home / STATE_FILE
    if os.path.lexists(staged):
        return None
    if os.path.lexists(state) and (
        state.is_symlink() or not state.is_file() or state.stat().st_size > LIMIT
    ):
        return None  # one too large to read could not be carried back either
    return staged


def stage(home: Path, staged: Path) -> None:
    """Put ``~/.claude.json``'s state at ``staged`` (:func:`staging`) for the run, with its
    mode; nothing when there is none yet (the agent inside makes it).

    Raises:
        OSError: it could not be made (the run must not start: the agent inside would take
            the missing file for a new user's).
    """
    state = home / STATE_FILE
    text = read(state)
    if text is not None:
        create_file(staged, text, mode=stat.S_IMODE(state.lstat().st_mode))


def carry_back(
    home: Path, staged: Path, before: bytes | None, aside: Path
) -> tuple[str | None, bytes | None]:
    """Put the state the agent inside left at ``staged`` into ``~/.claude.json``, where the
    agent outside reads it; ``before``: that file's bytes before the run. What was done, in
    words, when anything is worth saying (``None``: nothing to say); and what the file's MCP
    servers, trust and approvals come back to (:func:`keep_servers`, after): as they were
    before the run, or as the agent outside saved them meanwhile (the user's own).

    Under the agent's own lock (``~/.claude.json.lock``, a folder it makes while it saves):
    when the agent outside holds it, the file is left as it is and the state from inside kept
    under ``aside``. A file changed outside meanwhile (the agent run outside at the same
    time) gets what the agent inside changed merged in, key by key (:func:`merged`), and
    where a value changed on both sides keeps the outside's, the state from inside is kept
    aside too. A file that is no JSON object (before the run already: the user's to mend), or
    that cannot be written (a full disk), is left as it is, the state from inside kept aside:
    the staged path is free again for the next run. What is at ``staged`` that is not a
    regular file is moved to ``aside`` whole, never read through.
    """
    state = home / STATE_FILE
    outside = _outside(state, before)
    try:
        text = read_regular(staged)
    except NotRegular:
        moved = move_entry_aside(staged, aside)
        said = f"{staged}: the agent's state was no regular file after the run; moved to {moved}"
        return said, outside
    if text is None:
        return None, outside
    if text == before:  # nothing saved inside
        staged.unlink()
        return None, outside
    lock = home / f"{STATE_FILE}.lock"
    if not _take(lock):
        moved = move_entry_aside(staged, aside)
        said = (
            f"{state}: the agent outside was saving it ({lock} is there): left as it is; the "
            f"agent's state from inside the sandbox is at {moved}"
        )
        return said, outside
    try:
        outside = _outside(state, before)  # what the agent outside saved, read under its lock
        try:
            return _carried(state, staged, text, before, aside), outside
        except (ValueError, RecursionError) as error:  # JSON no encoder here writes back
            moved = move_entry_aside(staged, aside)
            said = (
                f"{state}: the agent's state from inside the sandbox could not be merged in "
                f"({error}); left as it is, the state from inside at {moved}"
            )
            return said, outside
    finally:
        with contextlib.suppress(OSError):
            lock.rmdir()


STALE_LOCK = 60.0
"""Seconds after which the agent's lock folder, untouched, is taken for one a crash left (the
agent refreshes its own while it holds it)."""


def _take(lock: Path) -> bool:
    """Make the agent's lock folder; one left untouched for :data:`STALE_LOCK` seconds (an
    agent that crashed while saving) is removed first, if empty. Whether it was made."""
    try:
        lock.mkdir(0o700)
        return True
    except FileExistsError:
        try:
            if time.time() - lock.lstat().st_mtime < STALE_LOCK or lock.is_symlink():
                return False
            lock.rmdir()
            lock.mkdir(0o700)
            return True
        except OSError:
            return False
    except OSError:
        return False


def _outside(state: Path, before: bytes | None) -> bytes | None:
    """What the state file holds now, when the agent outside saved it since the run began
    (else ``before``)."""
    try:
        return read_regular(state)
    except NotRegular:
        return before


def _carried(
    state: Path, staged: Path, text: bytes, before: bytes | None, aside: Path
) -> str | None:
    """:func:`carry_back` under the agent's lock."""
    try:
        now = read_regular(state)
    except NotRegular as error:
        moved = move_entry_aside(staged, aside)
        return f"{error}: left as it is; the agent's state from inside the sandbox is at {moved}"
    if now is not None and now.strip() and guarded(now) is None:  # the user's to mend
        moved = move_entry_aside(staged, aside)
        return (
            f"{state} is no JSON object (as it was before the run, or as it was saved outside "
            f"meanwhile): left as it is; the agent's state from inside the sandbox is at {moved}"
        )
    said = None
    kept = 0
    if now != before:
        found = merged(before, text, now)
        if found is None:
            moved = move_entry_aside(staged, aside)
            return (
                f"{state} changed outside while the run went on, and one of its forms is no "
                f"JSON object: left as it is; the agent's state from inside the sandbox is at "
                f"{moved}"
            )
        text, kept = found
        said = (
            f"{state} changed outside while the run went on: what the agent inside saved is "
            "merged in"
        )
    mode = 0o600 if now is None else stat.S_IMODE(state.lstat().st_mode)
    try:
        replace_file(state, text, mode=mode)
    except OSError as error:  # a full disk: the file is as it was, the state from inside aside
        moved = move_entry_aside(staged, aside)
        return (
            f"{state}: the agent's state from inside the sandbox could not be written there "
            f"({error.strerror or error}): left as it is; the state from inside is at {moved}"
        )
    if not kept:
        staged.unlink()
        return said
    moved = move_entry_aside(staged, aside)  # what the outside's values took the place of
    return (
        f"{said} ({kept} value{'s' if kept > 1 else ''} both changed: the outside's kept; the "
        f"state as the agent inside saved it is at {moved})"
    )


MERGED_DEPTH = 3
"""How deep :func:`merged` goes into objects changed on both sides: the file's keys, each
project's entry under ``projects``, that entry's keys."""
_ABSENT = object()


def merged(before: bytes | None, inside: bytes, outside: bytes | None) -> tuple[bytes, int] | None:
    """``outside`` (the state file now) with what ``inside`` changed from ``before`` applied,
    key by key (:data:`MERGED_DEPTH` levels of objects): a value changed or removed inside
    and not outside is taken, one changed on both sides keeps the outside's. The result as
    the agent writes the file (two-space indents) and how many values kept the outside's;
    ``None`` when one of the three is no JSON object."""
    try:
        base, ours, theirs = (
            json.loads(text) if text else {} for text in (before, inside, outside)
        )
    except ValueError:
        return None
    if not all(isinstance(value, dict) for value in (base, ours, theirs)):
        return None
    result, kept = _merge(base, ours, theirs, MERGED_DEPTH)
    return json.dumps(result, indent=2).encode(), kept  # a lone surrogate stays an escape


def _same(one: object, other: object) -> bool:
    """Whether two JSON values are the same value (``true`` is not ``1``, as Python's ``==``
    has it; ``1.0`` is ``1``, as JSON readers have it)."""
    if one is _ABSENT or other is _ABSENT:
        return one is other
    return json.dumps(one, sort_keys=True) == json.dumps(other, sort_keys=True)


def _merge(
    base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], depth: int
) -> tuple[dict[str, Any], int]:
    result = dict(theirs)
    kept = 0
    for key in [*base, *(key for key in ours if key not in base)]:
        was, now, there = (side.get(key, _ABSENT) for side in (base, ours, theirs))
        if _same(now, was) or _same(now, there):
            continue
        if _same(there, was):
            if now is _ABSENT:
                result.pop(key, None)
            else:
                result[key] = now
        elif depth > 1 and all(isinstance(value, dict) for value in (now, there)):
            result[key], inner = _merge(was if isinstance(was, dict) else {}, now, there, depth - 1)
            kept += inner
        else:
            kept += 1
    return result, kept


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


LOCK_WAIT = 2.0
"""Seconds :func:`keep_servers` waits for the agent outside to finish a save of
``~/.claude.json`` (its lock folder there) before it reads and rewrites the file."""


def keep_servers(path: Path, before: bytes | None, aside: Path) -> str | None:
    """:func:`_keep_servers` under the agent's own lock for its state file
    (``~/.claude.json.lock``): a save of the agent outside between the read and the write back
    would be lost. The lock is waited for :data:`LOCK_WAIT` seconds at most; past that the
    servers are put back all the same (servers added inside must never stay to run outside)."""
    if path.name != STATE_FILE:
        return _keep_servers(path, before, aside)
    lock = path.with_name(f"{STATE_FILE}.lock")
    deadline = time.monotonic() + LOCK_WAIT
    taken = _take(lock)
    while not taken and time.monotonic() < deadline:
        time.sleep(0.02)
        taken = _take(lock)
    try:
        return _keep_servers(path, before, aside)
    finally:
        if taken:
            with contextlib.suppress(OSError):
                lock.rmdir()


def _keep_servers(path: Path, before: bytes | None, aside: Path) -> str | None:
    """Put the servers of the file as it was (``before``, its bytes) back into ``path`` if the
    run changed them; what was done, in words (``None``: nothing to do). The file as the run
    left it is kept at ``aside`` (:func:`_written_over`: never missing at ``path`` meanwhile).

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
    _restore(data, kept, now)
    moved, error = _written_over(path, json.dumps(data, indent=2).encode() + b"\n", mode, aside)
    if error is not None:
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
    """Keep whatever is at ``path`` (not following a link) at ``aside`` and write ``before``
    back (nothing, when it was not there): :func:`_written_over`."""
    moved, error = _written_over(path, before, 0o600, aside)
    if error is not None:
        return (
            f"{path}: changed inside the sandbox ({why}); moved to {moved}, and could not "
            f"be put back as it was ({error.strerror or error}): put it back yourself"
        )
    done = "put back as it was" if before is not None else "removed"
    return f"{path}: changed inside the sandbox ({why}); {done} (what the run left: {moved})"


def _written_over(
    path: Path, text: bytes | None, mode: int, aside: Path
) -> tuple[Path, OSError | None]:
    """Put ``text`` at ``path`` (``None``: nothing there), what is there kept whole at
    ``aside`` (the entry itself: a link stays a link, a FIFO unopened). It is given a second
    name there first and only then written over, atomically, so ``path`` is never missing
    meanwhile (an agent outside reading it then takes itself for a new user's, and a run
    killed then would leave none); where it can have no second name (another file system) it
    is moved there first. Where it is kept, and why ``text`` could not be written, if it
    could not: ``path`` is then gone, never left as the run left it (a full disk)."""
    kept = _linked_aside(path, aside)
    if kept is None:
        kept = move_entry_aside(path, aside)
    if text is None:
        with contextlib.suppress(FileNotFoundError):  # moved already: gone
            _unlink_if_same(path, kept)
        return kept, None
    try:
        replace_file(path, text, mode=mode)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):  # moved already: gone
            _unlink_if_same(path, kept)
        return kept, error
    return kept, None


def _linked_aside(path: Path, aside: Path) -> Path | None:
    """A second name for the entry at ``path`` (never followed) at ``aside``, or
    ``aside.1``, ``aside.2``, … when taken (its folder made); ``None`` when it can have none
    there (another file system, a folder, a full disk)."""
    try:
        aside.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    for name in aside_names(aside.name):
        target = aside.with_name(name)
        try:
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:
            return None
        return target
    return None


def _unlink_if_same(path: Path, kept: Path) -> None:
    """Remove ``path`` if it is still the entry kept at ``kept`` (by a second name)."""
    one, other = path.lstat(), kept.lstat()
    if (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino):
        path.unlink()
