"""Scanning a config dir: every session and everything that belongs to it, in one pass.

Theory of operation. A scan makes one pass over each store folder (``projects/*``,
``file-history``, ``session-env``, ``tasks``, ``todos``, ``debug``) with ``os.scandir`` and never
follows a symbolic link: a link is reported and counted as the link itself, so nothing outside
the config dir is ever read, sized or removed through it. A session is a ``<id>.jsonl``
transcript (or, for a session run only by subagents, an ``<id>/subagents/`` folder) with the
per-session entries of the other stores that carry its id. When several project folders hold
the same id, those entries belong to none of the copies (:attr:`Scan.shared`).

Last activity is the newest of (a) the modification time of every file of the session and
(b) the last timestamp written inside its transcript. Taking the newest of both means a copied
or touched file and a clock-skewed line can only make a session look younger, never older: a
session is never pruned early.

Sessions named in an unfinished removal journal (:mod:`airlock.sessions.journal`) are not
listed: a removal cut short is finished by the next prune or delete, never shown as whole.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from airlock.sessions import layout
from airlock.sessions.journal import is_pending, read_pending
from airlock.sessions.model import Scan, Session, Stray, stamp
from airlock.sessions.transcript import Summary, summarize
from airlock.sessions.walk import Walk, entries


class Found(NamedTuple):
    """A session as found under ``projects/``, before it is read."""

    project: str
    id: str
    transcript: str | None
    folder: str | None
    """``projects/<project>/<id>/``, when there is one."""
    agents: tuple[str, ...]
    """Older-layout subagent transcripts (``projects/<project>/agent-*.jsonl``) naming it."""


class Index(NamedTuple):
    """The entries of the stores keyed by session id, read once for a whole scan."""

    by_id: dict[str, list[str]]
    """Each id's entries (``file-history/<id>``, ``debug/<id>.txt``, …)."""
    folders: set[str]
    """The real folders among them (no second look-up needed)."""
    strays: list[Stray]
    """Entries that name no session found."""
    shared: dict[str, tuple[str, ...]]
    """The entries of ids that more than one project holds (left out of ``by_id``)."""


def owner_of(config_dir: Path) -> int | None:
    """The config dir's owner; ``None`` when there is no config dir."""
    try:
        return config_dir.stat().st_uid
    except OSError:
        return None


def scan(
    config_dir: Path,
    only: frozenset[str] | None = None,
    active_since: datetime | None = None,
    *,
    details: bool = True,
) -> Scan:
    """One pass over ``config_dir``.

    Args:
        config_dir: the agent's config dir.
        only: read just the sessions with these ids.
        active_since: leave out (unread) every session whose transcript was modified at or
            after this moment: its last activity is at least that recent. A prune needs to
            read only the others.
        details: read each transcript's first prompt, start and working directory; a
            prune, which needs only last activity, leaves them out.
    """
    pending = read_pending(config_dir)
    owner = owner_of(config_dir)
    if owner is None:
        return Scan((), (), pending)
    problems: list[str] = []
    orphans: dict[str, str] = {}
    found = [
        item
        for item in transcripts(config_dir, problems, orphans)
        if item.id not in orphans or not is_pending(item.project, orphans[item.id], pending)
    ]
    index = store_index(config_dir, found, problems)
    limit = None if active_since is None else active_since.timestamp()
    sessions: list[Session] = []
    unread: list[Found] = []
    for item in found:
        if is_pending(item.project, item.id, pending) or (only is not None and item.id not in only):
            continue
        info = None
        if limit is not None and item.transcript is not None:
            try:
                info = os.lstat(item.transcript)
            except OSError:
                info = None
            else:
                if info.st_mtime >= limit:  # active since: left unread
                    unread.append(item)
                    continue
        sessions.append(read_session(config_dir, item, index, owner, details, info))
    sessions.sort(key=lambda s: (s.last_activity, s.id), reverse=True)
    roots = {
        path
        for item in unread
        for path in (item.transcript, item.folder, *item.agents, *index.by_id.get(item.id, ()))
        if path is not None
    }
    return Scan(
        tuple(sessions),
        tuple(problems),
        pending,
        frozenset(item.id for item in unread),
        frozenset(roots),
        tuple(index.strays),
        {key: paths for key, paths in index.shared.items() if only is None or key in only},
    )


def transcripts(config_dir: Path, problems: list[str], orphans: dict[str, str]) -> Iterator[Found]:
    """Every session under ``projects/``.

    A subagent transcript of the older layout (``projects/<project>/agent-<agent>.jsonl``)
    belongs to the session its lines name (``sessionId``) and goes with it; one whose
    session is not in the same project is listed on its own, and noted in ``orphans``
    (its id to the session id it names) so it is hidden while that session's removal is
    unfinished.
    """
    for project in entries(os.path.join(config_dir, layout.PROJECTS), problems):
        if project.is_symlink():
            problems.append(f"{project.path}: symbolic link, not followed")
        elif project.is_dir(follow_symlinks=False):
            yield from _project(project, problems, orphans)


def _project(
    project: os.DirEntry[str], problems: list[str], orphans: dict[str, str]
) -> Iterator[Found]:
    suffix = layout.TRANSCRIPT_SUFFIX
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    agents: dict[str, list[str]] = {}
    for entry in entries(project.path, problems):
        name = entry.name
        if entry.is_symlink():
            if name.endswith(suffix):
                problems.append(f"{entry.path}: symbolic link, not followed")
            continue
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            if layout.is_session_id(stem) and entry.is_file(follow_symlinks=False):
                files[stem] = entry.path
                if stem.startswith(layout.AGENT_PREFIX):
                    parent = named_session(entry.path)
                    if parent is not None and parent != stem:
                        agents.setdefault(parent, []).append(stem)
        elif layout.is_session_id(name) and entry.is_dir(follow_symlinks=False):
            folders[name] = entry.path
    attached: dict[str, tuple[str, ...]] = {}
    for parent, stems in agents.items():
        if parent in files or parent in folders:
            attached[parent] = tuple(sorted(files.pop(stem) for stem in stems))
        else:
            orphans.update(dict.fromkeys(stems, parent))
    for session_id, folder in folders.items():
        if session_id in files or Path(folder, layout.SUBAGENTS).is_dir():
            transcript = files.pop(session_id, None)
            yield Found(project.name, session_id, transcript, folder, attached.get(session_id, ()))
    for session_id, transcript in files.items():
        yield Found(project.name, session_id, transcript, None, attached.get(session_id, ()))


def store_index(config_dir: Path, found: list[Found], problems: list[str]) -> Index:
    """The entries of the other stores, by the session id they carry."""
    ids = {item.id for item in found}
    by_id: dict[str, list[str]] = {}
    folders: set[str] = set()
    strays: list[Stray] = []
    for store in layout.SESSION_DIR_STORES:
        for entry in entries(config_dir / store, problems):
            if entry.name in ids:
                by_id.setdefault(entry.name, []).append(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    folders.add(entry.path)
            else:
                strays.append(Stray(store, entry.name, entry.path))
    for entry in entries(config_dir / layout.DEBUG, problems):
        stem = entry.name.removesuffix(layout.DEBUG_SUFFIX)
        if entry.name.endswith(layout.DEBUG_SUFFIX) and stem in ids:
            by_id.setdefault(stem, []).append(entry.path)
        else:
            strays.append(Stray(layout.DEBUG, entry.name, entry.path))
    for entry in entries(config_dir / layout.TODOS, problems):
        owner = layout.todo_owner(entry.name, ids)
        if owner is not None:
            by_id.setdefault(owner, []).append(entry.path)
        else:
            strays.append(Stray(layout.TODOS, entry.name, entry.path))
    copies = Counter(item.id for item in found)
    shared = {
        session_id: tuple(by_id.pop(session_id))
        for session_id, count in copies.items()
        if count > 1 and session_id in by_id
    }
    return Index(by_id, folders, strays, shared)


_SUBAGENT_MARKER = f"{os.sep}{layout.SUBAGENTS}{os.sep}{layout.AGENT_PREFIX}"
_NO_SUMMARY = Summary(None, None, None, None)
"""The summary of a session with no main transcript, before its first subagent's is read."""


def read_session(
    config_dir: Path,
    item: Found,
    index: Index,
    owner: int,
    details: bool = True,
    info: os.stat_result | None = None,
) -> Session:
    """Read one session: walk its paths, summarise its transcript."""
    walk = Walk(owner)
    roots: list[str] = []
    summary = _NO_SUMMARY
    if item.transcript is not None:
        roots.append(item.transcript)
        summary = summarize(item.transcript, head_too=details, info=info)
        if summary.info is not None:
            walk.add_file(item.transcript, summary.info)
    if item.folder is not None:
        roots.append(item.folder)
        walk.walk(item.folder, folder=True)
    for root in item.agents:
        roots.append(root)
        walk.walk(root)
    raw_log = None
    for root in index.by_id.get(item.id, ()):
        roots.append(root)
        walk.walk(root, folder=root in index.folders)
        if raw_log is None and root.endswith(layout.DEBUG_SUFFIX):
            raw_log = root  # debug/<id>.txt
    inside = [
        p for p in walk.files if _SUBAGENT_MARKER in p and p.endswith(layout.TRANSCRIPT_SUFFIX)
    ]
    subagents = tuple(sorted(inside + list(item.agents))) if inside else item.agents
    if item.transcript is None and subagents:
        summary = summarize(subagents[0])
    modified = datetime.fromtimestamp(walk.newest, UTC)
    last = summary.last_timestamp
    transcript = item.transcript or os.path.join(
        config_dir, layout.PROJECTS, item.project, item.id + layout.TRANSCRIPT_SUFFIX
    )
    return Session(
        id=item.id,
        project=item.project,
        transcript_path=transcript,
        subagent_paths=subagents,
        raw_log_path=raw_log,
        last_activity=max(modified, last) if last else modified,
        size=walk.size,
        started=summary.started,
        first_prompt=summary.first_prompt,
        cwd=summary.cwd,
        modified=modified,
        root_paths=tuple(roots),
        file_paths=tuple(walk.files),
        problems=summary.problems + tuple(walk.problems),
        foreign=tuple(walk.foreign),
        malformed_lines=summary.malformed_lines,
        newest_mtime=walk.newest,
        transcript_stamp=stamp(summary.info),
    )


_SESSION_ID_FIELD = re.compile(rb'"sessionId"\s*:\s*"([A-Za-z0-9_-]{1,128})"')


def named_session(path: str) -> str | None:
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
