"""Removal journals: which sessions a removal is taking, written before anything is removed.

A journal is ``<config dir>/airlock/sessions-removal/<random>.json``:
``{"started": <POSIX seconds>, "sessions": {"<project>/<id>": [<paths relative to the config
dir>, …], …}}``, written atomically (:func:`airlock._atomic.replace_file`). A listing hides every
session a journal names, so a removal cut short never leaves a half-removed session listed as
whole; the next prune or delete finishes it (:func:`airlock.sessions.removal.recover`).
Journals written before sessions were named by project name them by id alone: that hides every
copy of the id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from airlock._atomic import replace_file
from airlock.errors import UnsafePathError
from airlock.sessions import layout
from airlock.sessions.model import Session
from airlock.sessions.walk import entries

JOURNAL_DIR = "airlock/sessions-removal"
"""Unfinished removals, relative to the config dir."""


@dataclass(frozen=True, slots=True)
class Journal:
    """A journal as read back: when its removal started, and each session's paths."""

    path: Path
    started: float
    sessions: dict[str, tuple[str, ...]]
    """``<project>/<id>`` (or an id) to its paths, relative to the config dir."""


def is_pending(project: str, session_id: str, pending: frozenset[str]) -> bool:
    """Whether an unfinished removal names the session (by ``<project>/<id>``, or by its id
    alone, as older journals do)."""
    return f"{project}/{session_id}" in pending or session_id in pending


def read_pending(config_dir: Path) -> frozenset[str]:
    """The sessions named by unfinished removal journals (``<project>/<id>``, or an id)."""
    names: set[str] = set()
    for entry in entries(config_dir / JOURNAL_DIR, []):
        if not entry.name.endswith(".json") or entry.is_symlink():
            continue
        try:
            data = json.loads(Path(entry.path).read_bytes())
        except (OSError, ValueError):
            continue
        named = data.get("sessions") if isinstance(data, dict) else None
        if isinstance(named, dict | list):
            names.update(item for item in named if isinstance(item, str))
    return frozenset(names)


def write_journal(config_dir: Path, batch: Iterable[Session], now: datetime) -> Path:
    """Write the journal of a removal of ``batch``; its path.

    Raises:
        UnsafePathError: the journal folder, or the folder holding it, is a symbolic link.
    """
    folder = config_dir / JOURNAL_DIR
    for parent in (folder.parent, folder):
        if parent.is_symlink():
            raise UnsafePathError(f"{parent} is a symbolic link: refusing to write a journal there")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefix = os.path.join(config_dir, "")
    sessions = {
        s.key: [
            path.removeprefix(prefix)
            for path in (
                s.root_paths
                if s.transcript_path in s.root_paths[:1]
                else (*s.root_paths, s.transcript_path)
            )
            if path.startswith(prefix)
        ]
        for s in batch
    }
    data = json.dumps({"started": now.timestamp(), "sessions": sessions}).encode("utf-8")
    return replace_file(folder / f"{os.urandom(16).hex()}.json", data)


def journals(config_dir: Path) -> list[Path]:
    """The journal files of the config dir, oldest name first (and temporary leftovers)."""
    folder = config_dir / JOURNAL_DIR
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".json", ".tmp"))
    except OSError:
        return []


def read_journal(path: Path) -> Journal | None:
    """The journal at ``path``; ``None`` when it is not one (malformed, or a leftover)."""
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_bytes())
        started = float(data["started"])
        named = data["sessions"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(named, dict):
        return None
    sessions = {
        str(name): tuple(str(p) for p in paths)
        for name, paths in named.items()
        if isinstance(paths, list) and plain_name(str(name))
    }
    return Journal(path, started, sessions)


def plain_name(name: str) -> bool:
    """Whether ``name`` names a session plainly: ``<project>/<id>``, or an id."""
    project, slash, session_id = name.rpartition("/")
    plain_project = not slash or (project not in ("", ".", "..") and "/" not in project)
    return layout.is_session_id(session_id) and plain_project
