"""What a scan finds: each session with every file that belongs to it, and the scan itself.

Paths are kept as strings (a listing of tens of thousands of sessions builds no ``Path`` it does
not need) and handed out as ``Path`` by the properties.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Stamp(NamedTuple):
    """A file's modification time in nanoseconds and its size, as ``lstat`` gives them."""

    mtime_ns: int
    size: int


NO_STAMP = Stamp(0, -1)
"""The stamp of a file that is not there."""


def stamp(info: os.stat_result | None) -> Stamp:
    """The stamp of a file whose status is ``info`` (:data:`NO_STAMP` for none)."""
    return Stamp(info.st_mtime_ns, info.st_size) if info is not None else NO_STAMP


def stamp_of(path: str) -> Stamp:
    """The stamp of ``path`` now (a link's own); :data:`NO_STAMP` when it is gone."""
    try:
        return stamp(os.lstat(path))
    except OSError:
        return NO_STAMP


def iso(moment: datetime | None) -> str | None:
    """``moment`` in ISO 8601 with a ``Z``, or ``None``."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True, slots=True)
class Session:
    """One session and every file that belongs to it.

    Attributes:
        id: the session id (the transcript's file name without ``.jsonl``).
        project: the ``projects/`` folder it lives in (its working directory, mangled).
        transcript_path: ``projects/<project>/<id>.jsonl`` (absent for a subagent-only session).
        subagent_paths: its subagent transcripts, sorted.
        raw_log_path: ``debug/<id>.txt``, when there is one that is this session's alone.
        last_activity: the newest of every file's modification time and the transcript's
            last timestamp, in UTC.
        size: bytes of every file of the session (links count as themselves).
        started: the first timestamp of the transcript.
        first_prompt: the first thing the user typed, shortened.
        cwd: the working directory the transcript records.
        modified: the newest modification time of its files, in UTC.
        root_paths: the top-level paths that belong to it; removing these removes the session.
        file_paths: every file (or link) under them.
        problems: malformed lines, unreadable files, links not followed.
        foreign: files owned by someone other than the config dir's owner.
        malformed_lines: lines of the transcript that are not JSON objects, in the part a
            listing reads (its first 64 KB; ``show`` reads all of it).
        newest_mtime: ``modified`` as the file system gave it (exact), to compare with later
            looks.
        transcript_stamp: the transcript's stamp when scanned: a removal compares it, exactly,
            with a fresh look to tell a session written to since.
    """

    id: str
    project: str
    transcript_path: str
    subagent_paths: tuple[str, ...]
    raw_log_path: str | None
    last_activity: datetime
    size: int
    started: datetime | None = None
    first_prompt: str | None = None
    cwd: str | None = None
    modified: datetime = EPOCH
    root_paths: tuple[str, ...] = ()
    file_paths: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    malformed_lines: int = 0
    newest_mtime: float = 0.0
    transcript_stamp: Stamp = NO_STAMP

    @property
    def key(self) -> str:
        """``<project>/<id>``: names this session even where another project has the same id."""
        return f"{self.project}/{self.id}"

    @property
    def transcript(self) -> Path:
        """``projects/<project>/<id>.jsonl`` (absent for a subagent-only session)."""
        return Path(self.transcript_path)

    @property
    def subagent_transcripts(self) -> tuple[Path, ...]:
        """``projects/<project>/<id>/subagents/agent-*.jsonl``, sorted."""
        return tuple(map(Path, self.subagent_paths))

    @property
    def raw_log(self) -> Path | None:
        """``debug/<id>.txt``, the raw session log, when there is one."""
        return Path(self.raw_log_path) if self.raw_log_path else None

    @property
    def roots(self) -> tuple[Path, ...]:
        """The top-level paths that belong to it; removing these removes the session."""
        return tuple(map(Path, self.root_paths))

    def files(self) -> tuple[Path, ...]:
        """Every file that belongs to the session (transcripts, tool results, logs, …)."""
        return tuple(map(Path, self.file_paths))

    def to_json(self) -> dict[str, Any]:
        """The session as JSON-ready data (the ``list --json`` object)."""
        return {
            "id": self.id,
            "project": self.project,
            "cwd": self.cwd,
            "first_prompt": self.first_prompt,
            "started": iso(self.started),
            "last_activity": iso(self.last_activity),
            "size": self.size,
            "subagents": len(self.subagent_paths),
            "transcript": self.transcript_path,
            "raw_log": self.raw_log_path,
            "files": len(self.file_paths),
            "malformed_lines": self.malformed_lines,
            "problems": list(self.problems),
        }


class Stray(NamedTuple):
    """An entry of a store indexed by session id that names no session found."""

    store: str
    name: str
    path: str


@dataclass(frozen=True, slots=True)
class Scan:
    """One pass over a config dir: the sessions, what else is there, and what was wrong.

    Attributes:
        sessions: newest last activity first (ties: the greater id first).
        problems: of the store itself (a session's own are in the session).
        pending: sessions named by an unfinished removal, as ``<project>/<id>`` (or a bare
            id, which hides every copy): hidden until the removal is finished.
        unread: ids of sessions left out by ``active_since`` (known active, not read).
        unread_roots: the top-level paths of the ``unread`` sessions.
        strays: entries of the stores indexed by session id (``layout.INDEXED_STORES``) that
            name no session found; ``None`` when those stores were not read.
        shared: the store entries (``file-history/<id>``, ``debug/<id>.txt``, …) of an id that
            more than one project folder holds: they belong to no one copy, so to none of their
            files; they go only when every copy goes.
    """

    sessions: tuple[Session, ...]
    problems: tuple[str, ...]
    pending: frozenset[str]
    unread: frozenset[str] = frozenset()
    unread_roots: frozenset[str] = frozenset()
    strays: tuple[Stray, ...] | None = None
    shared: dict[str, tuple[str, ...]] = field(default_factory=dict)
