"""The transcript store: finds every session in a config dir and everything that belongs to it.

Theory of operation. A scan makes one pass over each store folder (``projects/*``,
``file-history``, ``session-env``, ``tasks``, ``todos``, ``debug``) with ``os.scandir`` and never
follows a symbolic link: a link is reported and counted as the link itself, so nothing outside
the config dir is ever read, sized or removed through it. A session is a ``<id>.jsonl``
transcript (or, for a session run only by subagents, an ``<id>/subagents/`` folder) with the
per-session entries of the other stores that carry its id.

Last activity is the newest of (a) the modification time of every file of the session and
(b) the last timestamp written inside its transcript. Taking the newest of both means a copied
or touched file and a clock-skewed line can only make a session look younger, never older: a
session is never pruned early.

A session is *in use* when one of its files was modified within :data:`ACTIVE_SECONDS` of
``now`` (or in the future), or when a running agent's pid file (``sessions/<pid>.json``)
names it and that process is alive. Prune and delete skip such sessions and say so.

Sessions named in an unfinished removal journal (see :mod:`airlock.sessions.removal`) are not
listed: a removal cut short is finished by the next prune or delete, never shown as whole.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import json
import operator
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from airlock._frozen import frozen
from airlock._frozen import set_field as _set
from airlock.errors import UsageError
from airlock.sessions import layout
from airlock.sessions.parallel import in_two
from airlock.sessions.transcript import Summary, summarize

_Found = tuple[str, str, str | None, str | None, tuple[str, ...]]
"""(project, session id, transcript, session folder, older-layout subagent transcripts), as
found under ``projects/``."""

ACTIVE_SECONDS = 120
"""A session with a file modified this recently (relative to ``now``) is being written."""
PARALLEL_FROM = 2000
"""A scan reading at least this many sessions shares them with a second process
(:func:`~airlock.sessions.parallel.in_two`)."""
JOURNAL_DIR = "airlock/sessions-removal"
"""Unfinished removals, relative to the config dir (see :mod:`airlock.sessions.removal`)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@frozen
class Session:
    """One session and every file that belongs to it.

    Paths are kept as strings (a listing of tens of thousands of sessions builds no ``Path``
    it does not need) and handed out as ``Path`` by the properties below.

    Attributes:
        id: the session id (the transcript's file name without ``.jsonl``).
        project: the ``projects/`` folder it lives in (its working directory, mangled).
        last_activity: the newest of every file's modification time and the transcript's
            last timestamp, in UTC.
        size: bytes of every file of the session (links count as themselves).
        started: the first timestamp of the transcript.
        first_prompt: the first thing the user typed, shortened.
        cwd: the working directory the transcript records.
        modified: the newest modification time of its files, in UTC.
        problems: malformed lines, unreadable files, links not followed.
        foreign: files owned by someone other than the config dir's owner.
    """

    __slots__ = (
        "cwd",
        "dir_paths",
        "file_paths",
        "first_prompt",
        "foreign",
        "id",
        "last_activity",
        "malformed_lines",
        "modified",
        "newest_mtime",
        "problems",
        "project",
        "raw_log_path",
        "root_paths",
        "size",
        "started",
        "subagent_paths",
        "transcript_path",
        "transcript_stamp",
    )
    id: str
    project: str
    transcript_path: str
    subagent_paths: tuple[str, ...]
    raw_log_path: str | None
    last_activity: datetime
    size: int
    started: datetime | None
    first_prompt: str | None
    cwd: str | None
    modified: datetime
    root_paths: tuple[str, ...]
    file_paths: tuple[str, ...]
    problems: tuple[str, ...]
    foreign: tuple[str, ...]
    malformed_lines: int
    """Lines of the transcript that are not JSON objects, in the part a listing reads (its
    first 64 KB; ``show`` reads all of it)."""
    newest_mtime: float
    """``modified`` as the file system gave it (a float, exact), to compare with later looks."""
    transcript_stamp: tuple[int, int]
    """The transcript's (``st_mtime_ns``, ``st_size``) when scanned: a removal compares it,
    exactly, with a fresh look to tell a session written to since."""
    dir_paths: tuple[str, ...]
    """The real folders among its paths and under them, as scanned (a removal empties them by
    what the scan found, and lists a folder again only when something new appeared in it)."""

    def __init__(
        self,
        id: str,
        project: str,
        transcript_path: str,
        subagent_paths: tuple[str, ...],
        raw_log_path: str | None,
        last_activity: datetime,
        size: int,
        started: datetime | None = None,
        first_prompt: str | None = None,
        cwd: str | None = None,
        modified: datetime = _EPOCH,
        root_paths: tuple[str, ...] = (),
        file_paths: tuple[str, ...] = (),
        problems: tuple[str, ...] = (),
        foreign: tuple[str, ...] = (),
        malformed_lines: int = 0,
        newest_mtime: float = 0.0,
        transcript_stamp: tuple[int, int] = (0, -1),
        dir_paths: tuple[str, ...] = (),
    ) -> None:
        _set(self, "id", id)
        _set(self, "project", project)
        _set(self, "transcript_path", transcript_path)
        _set(self, "subagent_paths", subagent_paths)
        _set(self, "raw_log_path", raw_log_path)
        _set(self, "last_activity", last_activity)
        _set(self, "size", size)
        _set(self, "started", started)
        _set(self, "first_prompt", first_prompt)
        _set(self, "cwd", cwd)
        _set(self, "modified", modified)
        _set(self, "root_paths", root_paths)
        _set(self, "file_paths", file_paths)
        _set(self, "problems", problems)
        _set(self, "foreign", foreign)
        _set(self, "malformed_lines", malformed_lines)
        _set(self, "newest_mtime", newest_mtime)
        _set(self, "transcript_stamp", transcript_stamp)
        _set(self, "dir_paths", dir_paths)

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
            "started": _iso(self.started),
            "last_activity": _iso(self.last_activity),
            "size": self.size,
            "subagents": len(self.subagent_paths),
            "transcript": self.transcript_path,
            "raw_log": self.raw_log_path,
            "files": len(self.file_paths),
            "malformed_lines": self.malformed_lines,
            "problems": list(self.problems),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@frozen
class Scan:
    """One pass over a config dir: the sessions, what else is there, and what was wrong."""

    __slots__ = ("pending", "problems", "sessions", "shared", "strays", "unread", "unread_roots")
    sessions: tuple[Session, ...]
    problems: tuple[str, ...]
    pending: frozenset[str]
    """Sessions named by an unfinished removal, as ``<project>/<id>`` (or a bare id, which
    hides every copy): hidden until the removal is finished."""
    unread: frozenset[str]
    """Ids of sessions left out of ``sessions`` by ``active_since`` (known active, not read)."""
    unread_roots: frozenset[str]
    """The top-level paths of the ``unread`` sessions."""
    strays: tuple[tuple[str, str, str], ...] | None
    """Entries of the stores indexed by session id (``layout.INDEXED_STORES``) that name no
    session found, as (store, name, path); ``None`` when those stores were not read."""
    shared: dict[str, tuple[str, ...]]
    """The store entries (``file-history/<id>``, ``debug/<id>.txt``, …) of an id that more
    than one project folder holds: they belong to no one copy, so to none of their files; they
    go only when every copy goes."""

    def __init__(
        self,
        sessions: tuple[Session, ...],
        problems: tuple[str, ...],
        pending: frozenset[str],
        unread: frozenset[str] = frozenset(),
        unread_roots: frozenset[str] = frozenset(),
        strays: tuple[tuple[str, str, str], ...] | None = None,
        shared: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        _set(self, "sessions", sessions)
        _set(self, "problems", problems)
        _set(self, "pending", pending)
        _set(self, "unread", unread)
        _set(self, "unread_roots", unread_roots)
        _set(self, "strays", strays)
        _set(self, "shared", {} if shared is None else shared)


class _Prepared(NamedTuple):
    """What a scan reads, found by listing the folders (:meth:`SessionStore._prepare`)."""

    todo: list[_Found]
    """The sessions to read."""
    stores: dict[str, list[str]]
    """The other stores' entries, by session id."""
    folders: set[str]
    """The real folders among those entries."""
    owner: int
    """The config dir's owner."""
    problems: list[str]
    strays: list[tuple[str, str, str]]
    """Entries of the indexed stores that name no session, as (store, name, path)."""
    shared: dict[str, tuple[str, ...]]
    """The store entries of ids that more than one project holds (left out of ``stores``)."""


R = TypeVar("R")


@frozen
class Rendered(Generic[R]):
    """What :meth:`SessionStore.rendered` kept of each session, and what was wrong."""

    __slots__ = ("items", "pending", "problems")
    items: tuple[R, ...]
    """One a session kept, newest last activity first (ties: the greater id first)."""
    problems: tuple[str, ...]
    """Of the store itself (a session's own are in the session, for ``render`` to keep)."""
    pending: frozenset[str]
    """Session ids named by an unfinished removal (hidden until the removal is finished)."""

    def __init__(
        self, items: tuple[R, ...], problems: tuple[str, ...], pending: frozenset[str]
    ) -> None:
        _set(self, "items", items)
        _set(self, "problems", problems)
        _set(self, "pending", pending)


_MICROSECOND = timedelta(microseconds=1)


def _order(session: Session) -> int:
    """A session's last activity in whole microseconds since 1970: it sorts as the time does."""
    return (session.last_activity - _EPOCH) // _MICROSECOND


class _Walk:
    """What walking some paths found: files, bytes, newest mtime, links, foreign owners."""

    __slots__ = ("dirs", "files", "foreign", "newest", "owner", "problems", "size")
    owner: int
    files: list[str]
    dirs: list[str]
    size: int
    newest: float
    problems: list[str]
    foreign: list[str]

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.files = []
        self.dirs = []
        self.size = 0
        self.newest = 0.0
        self.problems = []
        self.foreign = []

    def walk(self, path: str, folder: bool = False) -> None:
        """Add ``path`` and, for a real folder, everything under it (links not followed).

        Args:
            path: a file, link or folder.
            folder: the caller already knows it is a real folder (from ``scandir``).
        """
        if folder:
            self._walk_dir(path)
            return
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        except OSError as error:
            self.problems.append(f"{path}: cannot be read: {error.strerror}")
            return
        if stat.S_ISDIR(info.st_mode):
            self._walk_dir(path)
        else:
            self.add_file(path, info)

    def add_file(self, path: str, info: os.stat_result) -> None:
        """Add one file or link whose status is already known."""
        if info.st_mtime > self.newest:
            self.newest = info.st_mtime
        if info.st_uid != self.owner:
            self.foreign.append(path)
        if stat.S_ISLNK(info.st_mode):
            self.problems.append(f"{path}: symbolic link, not followed")
        self.files.append(path)
        self.size += info.st_size

    def _walk_dir(self, path: str) -> None:
        """Folders are descended by their entries' types; only files are looked up.

        The hot loop of a listing: written flat, with locals, for tens of thousands of folders.
        """
        stack = [path]
        files, foreign, problems, owner = self.files, self.foreign, self.problems, self.owner
        dirs = self.dirs
        size, newest = self.size, self.newest
        while stack:
            current = stack.pop()
            dirs.append(current)
            try:
                with os.scandir(current) as iterator:
                    for entry in iterator:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        child = entry.path
                        files.append(child)
                        size += info.st_size
                        if info.st_mtime > newest:
                            newest = info.st_mtime
                        if info.st_uid != owner:
                            foreign.append(child)
                        if stat.S_ISLNK(info.st_mode):
                            problems.append(f"{child}: symbolic link, not followed")
            except OSError as error:
                problems.append(f"{current}: cannot be read: {error.strerror}")
        self.size, self.newest = size, newest


class SessionStore:
    """The sessions under one config dir (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``).

    Args:
        config_dir: the agent's config dir; nothing outside it is read or removed.
    """

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)

    # ----------------------------------------------------------------- public API

    def list(self) -> builtins.list[Session]:
        """Every session, newest last activity first."""
        return list(self.scan().sessions)

    def get(self, session_id: str) -> Session:
        """The session with this id.

        Raises:
            UsageError: the id is not a session id, or no session has it.
        """
        found = self.find([session_id])
        return found[session_id]

    def resolve(self, text: str) -> str:
        """The session ``text`` names: an id, ``<project>/<id>``, or a unique beginning of the
        id (in that project); an id is returned as it is given, or completed.

        Raises:
            UsageError: ``text`` is not a session name, or begins more than one id (listing them).
        """
        project, session_id = _split_name(text)
        pending = read_pending(self.config_dir)
        keys = {
            (item[0], item[1])
            for item in self._transcripts([], {})
            if not is_pending(item[0], item[1], pending) and (project is None or item[0] == project)
        }
        ids = sorted({found for _, found in keys})
        if session_id in ids:
            return text
        matches = [found for found in ids if found.startswith(session_id)]
        if len(matches) == 1:
            return matches[0] if project is None else f"{project}/{matches[0]}"
        if matches:
            shown = ", ".join(matches[:10]) + (" …" if len(matches) > 10 else "")
            raise UsageError(
                f"session id prefix {session_id!r} is ambiguous: {len(matches)} sessions match "
                f"({shown}); give more of the id"
            )
        return text  # unknown: the caller's look-up names it

    def find(self, names: Iterable[str]) -> dict[str, Session]:
        """The sessions with these names (ids, or ``<project>/<id>``), in one scan.

        Raises:
            UsageError: naming every name that is malformed, unknown, or an id that more than
                one project holds (nothing is returned).
        """
        wanted = list(dict.fromkeys(names))
        return pick(self.scan(only=frozenset(_split_name(n)[1] for n in wanted)), wanted, self)

    def scan(
        self,
        only: frozenset[str] | None = None,
        active_since: datetime | None = None,
        *,
        details: bool = True,
    ) -> Scan:
        """One pass over the config dir.

        Args:
            only: read just the sessions with these ids.
            active_since: leave out (unread) every session whose transcript was modified at or
                after this moment: its last activity is at least that recent. A prune needs to
                read only the others.
            details: read each transcript's first prompt, start and working directory; a
                prune, which needs only last activity, leaves them out.
        """
        pending = read_pending(self.config_dir)
        prepared = self._prepare(only, pending)
        if prepared is None:
            return Scan((), (), pending)
        todo, stores, folders, owner, problems, strays, shared = prepared
        limit = None if active_since is None else active_since.timestamp()

        def read(item: _Found) -> Session | None:
            info = None
            if limit is not None and item[2] is not None:
                try:
                    info = os.lstat(item[2])
                except OSError:
                    info = None
                else:
                    if info.st_mtime >= limit:
                        return None  # active since: left unread
            return self._session(*item, stores, folders, owner, details, info)

        with gc_paused():
            read_or_not = in_two(
                todo, read, parallel_from=PARALLEL_FROM, send=_pack, receive=_unpack
            )
        sessions = [session for session in read_or_not if session is not None]
        unread = [item for item, got in zip(todo, read_or_not, strict=True) if got is None]
        sessions.sort(key=operator.attrgetter("last_activity", "id"), reverse=True)
        roots = {
            path
            for _, session_id, transcript, folder, agents in unread
            for path in (transcript, folder, *agents, *stores.get(session_id, ()))
            if path is not None
        }
        return Scan(
            tuple(sessions),
            tuple(problems),
            pending,
            frozenset(item[1] for item in unread),
            frozenset(roots),
            tuple(strays),
            {key: paths for key, paths in shared.items() if only is None or key in only},
        )

    def rendered(self, render: Callable[[Session], R | None]) -> Rendered[R]:
        """``render`` of every session, newest last activity first, worked out in the
        processes that read the sessions: a listing of tens of thousands (``list --json``)
        sends between them only what it prints, not whole sessions.

        Args:
            render: what to keep of a session, as values :mod:`marshal` carries (strings,
                numbers, tuples, …), or ``None`` to leave the session out.
        """
        pending = read_pending(self.config_dir)
        prepared = self._prepare(None, pending)
        if prepared is None:
            return Rendered((), (), pending)
        todo, stores, folders, owner, problems, _, _ = prepared

        def read(item: _Found) -> tuple[int, str, R] | None:
            session = self._session(*item, stores, folders, owner)
            kept = render(session)
            return None if kept is None else (_order(session), session.id, kept)

        with gc_paused():
            got = [row for row in in_two(todo, read, parallel_from=PARALLEL_FROM) if row]
        got.sort(key=operator.itemgetter(0, 1), reverse=True)
        return Rendered(tuple(row[2] for row in got), tuple(problems), pending)

    def _prepare(self, only: frozenset[str] | None, pending: frozenset[str]) -> _Prepared | None:
        """What a scan reads, found by listing the folders; ``None`` without a config dir.
        Sessions named by an unfinished removal (``pending``) are left out."""
        problems: builtins.list[str] = []
        owner = self._owner()
        if owner is None:
            return None
        orphans: dict[str, str] = {}
        found = [
            item
            for item in self._transcripts(problems, orphans)
            if item[1] not in orphans or not is_pending(item[0], orphans[item[1]], pending)
        ]
        ids = {item[1] for item in found}
        folders: set[str] = set()
        strays: builtins.list[tuple[str, str, str]] = []
        stores = self._store_index(ids, problems, folders, strays)
        copies = Counter(item[1] for item in found)
        shared = {
            session_id: tuple(stores.pop(session_id))
            for session_id, count in copies.items()
            if count > 1 and session_id in stores
        }
        todo = [
            item
            for item in found
            if not is_pending(item[0], item[1], pending) and (only is None or item[1] in only)
        ]
        return _Prepared(todo, stores, folders, owner, problems, strays, shared)

    def in_use(
        self, session: Session, now: datetime, running: dict[str, int] | None = None
    ) -> str | None:
        """Why the session is being written right now, or ``None`` when it is not.

        Args:
            session: a session from this store.
            now: the current time.
            running: :meth:`running`, when the caller already has it.
        """
        age = (now - session.modified).total_seconds()
        if age < ACTIVE_SECONDS:
            return f"a file of it was modified {max(age, 0):.0f} s ago (under {ACTIVE_SECONDS} s)"
        pid = (self.running() if running is None else running).get(session.id)
        if pid is not None:
            return f"a running agent (pid {pid}) has it open ({self.config_dir / layout.RUNNING})"
        return None

    def running(self) -> dict[str, int]:
        """Session ids of running agents, from their pid files, when the process is alive."""
        folder = self.config_dir / layout.RUNNING
        alive: dict[str, int] = {}
        try:
            entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
        except OSError:
            return alive
        for entry in entries:
            if entry.is_symlink():
                continue
            try:
                data = json.loads(Path(entry.path).read_bytes()[: 1024 * 1024])
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            pid, session_id = data.get("pid"), data.get("sessionId")
            if isinstance(pid, int) and isinstance(session_id, str) and _alive(pid):
                alive[session_id] = pid
        return alive

    # ----------------------------------------------------------------- scanning

    def _owner(self) -> int | None:
        try:
            return self.config_dir.stat().st_uid
        except OSError:
            return None

    def _transcripts(
        self, problems: builtins.list[str], orphans: dict[str, str]
    ) -> Iterator[_Found]:
        """(project, id, transcript, session folder, older-layout subagents) for every session
        under ``projects/``.

        A subagent transcript of the older layout (``projects/<project>/agent-<agent>.jsonl``)
        belongs to the session its lines name (``sessionId``) and goes with it; one whose
        session is not in the same project is listed on its own, and noted in ``orphans``
        (its id to the session id it names) so it is hidden while that session's removal is
        unfinished.
        """
        root = os.path.join(self.config_dir, layout.PROJECTS)
        suffix = layout.TRANSCRIPT_SUFFIX
        for project in _entries(root, problems):
            if project.is_symlink():
                problems.append(f"{project.path}: symbolic link, not followed")
                continue
            if not project.is_dir(follow_symlinks=False):
                continue
            transcripts: dict[str, str] = {}
            folders: dict[str, str] = {}
            agents: dict[str, builtins.list[str]] = {}
            for entry in _entries(project.path, problems):
                name = entry.name
                if entry.is_symlink():
                    if name.endswith(suffix):
                        problems.append(f"{entry.path}: symbolic link, not followed")
                    continue
                if name.endswith(suffix):
                    stem = name[: -len(suffix)]
                    if layout.is_session_id(stem) and entry.is_file(follow_symlinks=False):
                        transcripts[stem] = entry.path
                        if stem.startswith(layout.AGENT_PREFIX):
                            parent = _named_session(entry.path)
                            if parent is not None and parent != stem:
                                agents.setdefault(parent, []).append(stem)
                elif layout.is_session_id(name) and entry.is_dir(follow_symlinks=False):
                    folders[name] = entry.path
            attached: dict[str, tuple[str, ...]] = {}
            for parent, stems in agents.items():
                if parent in transcripts or parent in folders:
                    attached[parent] = tuple(sorted(transcripts.pop(stem) for stem in stems))
                else:
                    orphans.update(dict.fromkeys(stems, parent))
            for session_id, folder in folders.items():
                if session_id not in transcripts and not os.path.isdir(
                    os.path.join(folder, layout.SUBAGENTS)
                ):
                    continue
                yield (
                    project.name,
                    session_id,
                    transcripts.pop(session_id, None),
                    folder,
                    attached.get(session_id, ()),
                )
            for session_id, transcript in transcripts.items():
                yield project.name, session_id, transcript, None, attached.get(session_id, ())

    def _store_index(
        self,
        ids: set[str],
        problems: builtins.list[str],
        folders: set[str],
        strays: builtins.list[tuple[str, str, str]],
    ) -> dict[str, builtins.list[str]]:
        """Per-session entries of the other stores, by session id; real folders among them are
        added to ``folders`` (so they need no second look-up), the entries no session id
        names to ``strays`` as (store, name, path)."""
        index: dict[str, builtins.list[str]] = {}
        base = os.fspath(self.config_dir)
        for store in layout.SESSION_DIR_STORES:
            for entry in _entries(os.path.join(base, store), problems):
                if entry.name in ids:
                    index.setdefault(entry.name, []).append(entry.path)
                    if entry.is_dir(follow_symlinks=False):
                        folders.add(entry.path)
                else:
                    strays.append((store, entry.name, entry.path))
        for entry in _entries(os.path.join(base, layout.DEBUG), problems):
            stem = entry.name[: -len(layout.DEBUG_SUFFIX)]
            if entry.name.endswith(layout.DEBUG_SUFFIX) and stem in ids:
                index.setdefault(stem, []).append(entry.path)
            else:
                strays.append((layout.DEBUG, entry.name, entry.path))
        for entry in _entries(os.path.join(base, layout.TODOS), problems):
            owner = layout.todo_owner(entry.name, ids)
            if owner is not None:
                index.setdefault(owner, []).append(entry.path)
            else:
                strays.append((layout.TODOS, entry.name, entry.path))
        return index

    def _session(
        self,
        project: str,
        session_id: str,
        transcript: str | None,
        folder: str | None,
        agents: tuple[str, ...],
        stores: dict[str, builtins.list[str]],
        folders: set[str],
        owner: int,
        details: bool = True,
        info: os.stat_result | None = None,
    ) -> Session:
        owned = stores.get(session_id, ())
        walk = _Walk(owner)
        if transcript is not None:
            roots = [transcript]
            summary = summarize(transcript, head_too=details, info=info)
            if summary.info is not None:
                walk.add_file(transcript, summary.info)
        else:
            roots = []
            summary = _NO_SUMMARY
        if folder is not None:
            roots.append(folder)
            walk.walk(folder, folder=True)
        for root in agents:
            roots.append(root)
            walk.walk(root)
        raw_log = None
        for root in owned:
            roots.append(root)
            walk.walk(root, folder=root in folders)
            if raw_log is None and root.endswith(layout.DEBUG_SUFFIX):
                raw_log = root  # debug/<id>.txt
        found = [
            path
            for path in walk.files
            if _SUBAGENT_MARKER in path and path.endswith(layout.TRANSCRIPT_SUFFIX)
        ]
        subagents = tuple(sorted(found + list(agents))) if found else agents  # agents: sorted
        if transcript is None and subagents:
            summary = summarize(subagents[0])
        newest = walk.newest
        modified = datetime.fromtimestamp(newest, UTC)
        last = summary.last_timestamp
        return Session(
            session_id,
            project,
            transcript
            or os.path.join(self.config_dir, layout.PROJECTS, project, session_id + ".jsonl"),
            subagents,
            raw_log,
            max(modified, last) if last else modified,
            walk.size,
            summary.started,
            summary.first_prompt,
            summary.cwd,
            modified,
            tuple(roots),
            tuple(walk.files),
            summary.problems + tuple(walk.problems) if walk.problems else summary.problems,
            tuple(walk.foreign),
            summary.malformed_lines,
            newest,
            _stamp(summary.info),
            tuple(walk.dirs),
        )


_SUBAGENT_MARKER = f"{os.sep}{layout.SUBAGENTS}{os.sep}{layout.AGENT_PREFIX}"
_NO_SUMMARY = Summary(None, None, None, None)
"""The summary of a session with no main transcript, before its first subagent's is read."""


_SESSION_ID_FIELD = re.compile(rb'"sessionId"\s*:\s*"([A-Za-z0-9_-]{1,128})"')


def _named_session(path: str) -> str | None:
    """The ``sessionId`` the first lines of a transcript name, if any."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.read(fd, 16 * 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    match = _SESSION_ID_FIELD.search(head)
    return match.group(1).decode("ascii") if match else None


_Packed = tuple[Any, ...]
"""A session as plain values (times as POSIX seconds), for :mod:`marshal` between processes."""


_FIELDS: tuple[str, ...] = Session.__match_args__
"""A session's fields, in the order ``Session`` takes them."""
_TIMES = frozenset({"last_activity", "started", "modified"})
"""The fields of a session that are times (sent as POSIX seconds)."""
_TIME_INDEXES = tuple(index for index, name in enumerate(_FIELDS) if name in _TIMES)
"""Where the times are among a session's fields."""
_GET_FIELDS = operator.attrgetter(*_FIELDS)
"""A session's fields as a tuple, in the order ``Session`` takes them."""


def _pack(s: Session | None) -> _Packed | None:
    if s is None:
        return None
    values = list(_GET_FIELDS(s))
    for index in _TIME_INDEXES:
        if values[index] is not None:
            values[index] = values[index].timestamp()
    return tuple(values)


def _unpack(values: _Packed | None) -> Session | None:
    if values is None:
        return None
    if len(values) != len(_FIELDS):
        raise ValueError(f"expected {len(_FIELDS)} fields, got {len(values)}")
    given = list(values)
    for index in _TIME_INDEXES:
        if given[index] is not None:
            given[index] = datetime.fromtimestamp(given[index], UTC)
    return Session(*given)


def _stamp(info: os.stat_result | None) -> tuple[int, int]:
    """A file's (``st_mtime_ns``, ``st_size``); ``(0, -1)`` when it has none."""
    return (info.st_mtime_ns, info.st_size) if info is not None else (0, -1)


def stamp_of(path: str) -> tuple[int, int]:
    """The (``st_mtime_ns``, ``st_size``) of ``path`` now (a link's own); ``(0, -1)`` if gone."""
    try:
        return _stamp(os.lstat(path))
    except OSError:
        return (0, -1)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a scan builds its (acyclic) objects: on tens of
    thousands of sessions the collector would otherwise walk the growing heap again and
    again. Reference counting still frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _entries(folder: str | Path, problems: list[str]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as iterator:
            return list(iterator)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        problems.append(f"{folder}: not a folder")
        return []
    except OSError as error:
        problems.append(f"{folder}: cannot be read: {error.strerror}")
        return []


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _split_name(text: str) -> tuple[str | None, str]:
    """``(project, id)`` of ``<project>/<id>``, ``(None, id)`` of a bare id.

    Raises:
        UsageError: Not a session id, nor a project folder name and one.
    """
    project, slash, session_id = text.rpartition("/")
    if not layout.is_session_id(session_id) or (
        slash and (project in ("", ".", "..") or "/" in project)
    ):
        raise UsageError(
            f"not a session id: {text!r} (expected letters, digits, '-' and '_', as in a "
            "transcript's file name, or PROJECT/ID with the project's folder under projects/)"
        )
    return (project if slash else None), session_id


def pick(scan: Scan, names: Iterable[str], store: SessionStore) -> dict[str, Session]:
    """The sessions of ``scan`` that ``names`` (ids, or ``<project>/<id>``) name, by name.

    Raises:
        UsageError: naming every name that is malformed, unknown, pending removal, or an id
            more than one project holds.
    """
    wanted = list(dict.fromkeys(names))
    bad = []
    for text in wanted:
        try:
            _split_name(text)
        except UsageError:
            bad.append(text)
    if bad:
        raise UsageError(
            f"not a session id: {', '.join(map(repr, bad))} (expected letters, digits, '-' "
            "and '_', as in a transcript's file name, or PROJECT/ID)"
        )
    found: dict[str, Session] = {}
    unknown, pending, ambiguous = [], [], []
    for text in wanted:
        project, session_id = _split_name(text)
        matching = [
            s
            for s in scan.sessions
            if s.id == session_id and (project is None or s.project == project)
        ]
        if len(matching) == 1:
            found[text] = matching[0]
        elif matching:
            keys = ", ".join(sorted(s.key for s in matching))
            ambiguous.append(f"{text} (held by {len(matching)} projects: {keys})")
        elif any(
            key == text or (key.rpartition("/")[2] == session_id and project is None)
            for key in scan.pending
        ):
            pending.append(text)
        else:
            unknown.append(text)
    parts = []
    if unknown:
        parts.append(
            f"unknown session id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(no transcript under {store.config_dir / layout.PROJECTS}; "
            "see 'airlock sessions list')"
        )
    if pending:
        parts.append(
            f"being removed by an unfinished removal: {', '.join(pending)} "
            "(run 'airlock sessions prune' or 'delete' again to finish it)"
        )
    if ambiguous:
        parts.append(
            f"ambiguous session id: {'; '.join(ambiguous)}; name one as PROJECT/ID "
            "(on a command line after '--', as a project folder's name starts with '-')"
        )
    if parts:
        raise UsageError("; ".join(parts))
    return found


def is_pending(project: str, session_id: str, pending: frozenset[str]) -> bool:
    """Whether an unfinished removal names the session (by ``<project>/<id>``, or by its id
    alone, as journals written before projects were named do)."""
    return f"{project}/{session_id}" in pending or session_id in pending


def read_pending(config_dir: Path) -> frozenset[str]:
    """The sessions named by unfinished removal journals (``<project>/<id>``, or an id)."""
    ids: set[str] = set()
    for entry in _entries(config_dir / JOURNAL_DIR, []):
        if not entry.name.endswith(".json") or entry.is_symlink():
            continue
        try:
            data = json.loads(Path(entry.path).read_bytes())
        except (OSError, ValueError):
            continue
        named = data.get("sessions") if isinstance(data, dict) else None
        if isinstance(named, dict | list):
            ids.update(item for item in named if isinstance(item, str))
    return frozenset(ids)
