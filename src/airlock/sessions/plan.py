"""Planning a removal: one scan decides what goes, before anything is touched.

:func:`plan_prune` takes every session whose last activity is before the cutoff, and the
entries of the stores swept by age (``layout.AGE_SWEPT``) that belong to no session;
:func:`plan_delete` the sessions named. Sessions in use, or holding files of another owner, are
skipped with the reason. What copies of one id in several projects share
(:attr:`~airlock.sessions.model.Scan.shared`) joins the plan only when every copy goes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airlock.sessions import layout
from airlock.sessions.model import Scan, Session, iso
from airlock.sessions.store import SessionStore, pick
from airlock.sessions.walk import Walk

LAST_ACTIVITY = (
    "last activity is the newest of the modification time of every file of the session "
    "and the last timestamp inside its transcript"
)


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """An entry of a store swept by age (``plans/…``, ``paste-cache/…``, an orphaned folder)."""

    path: Path
    size: int
    modified: datetime
    session: str | None = None
    """The id whose copies (one in each of several projects) shared this entry; it goes only
    when every copy went."""

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "size": self.size, "modified": iso(self.modified)}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A session left in place, and why."""

    session: Session
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.session.id, "project": self.session.project, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Plan:
    """What a prune or delete will remove, decided by one scan, before anything is touched."""

    sessions: tuple[Session, ...]
    entries: tuple[StoreEntry, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    problems: tuple[str, ...] = ()
    cutoff: datetime | None = None

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.sessions) + sum(e.size for e in self.entries)

    @property
    def steps(self) -> int:
        return len(self.sessions) + len(self.entries)


def period(days: float) -> timedelta:
    """``days`` (0 or more) as a period; one longer than a :class:`~datetime.timedelta` holds
    (2.7 million years: ``cleanupPeriodDays`` of 10**9, ``--older-than 1e12``) is the longest
    one that does: nothing is older."""
    return timedelta(days=days) if days < timedelta.max.days else timedelta.max


def cutoff_before(now: datetime, older_than: timedelta) -> datetime:
    """``now - older_than``; a moment before the calendar's first day is that day's first
    moment: nothing is older."""
    try:
        return now - older_than
    except OverflowError:
        return datetime.min.replace(tzinfo=now.tzinfo)


def plan_prune(store: SessionStore, *, now: datetime, older_than: timedelta) -> Plan:
    """Every session whose last activity is before ``now - older_than``, and the stale store
    entries that belong to no session."""
    cutoff = cutoff_before(now, older_than)
    scan = store.scan(active_since=cutoff, details=False)
    running = store.running()
    chosen: list[Session] = []
    skipped: list[Skipped] = []
    for session in scan.sessions:
        if session.last_activity >= cutoff:
            continue
        reason = _keep_reason(store, session, now, running)
        if reason:
            skipped.append(Skipped(session, reason))
        else:
            chosen.append(session)
    problems = list(scan.problems)
    entries = _stale_entries(store, scan, cutoff, problems) + _shared_entries(store, scan, chosen)
    return Plan(tuple(chosen), tuple(entries), tuple(skipped), tuple(problems), cutoff)


def plan_delete(store: SessionStore, names: Sequence[str], *, now: datetime) -> Plan:
    """The sessions these names (ids, or ``<project>/<id>``) name, and what their copies shared
    when every copy of an id goes.

    Raises:
        UsageError: naming every unknown name, and every id more than one project holds.
    """
    scan = store.scan(only=frozenset(name.rpartition("/")[2] for name in names))
    found = pick(scan, names, store.config_dir)
    running = store.running()
    chosen: list[Session] = []
    skipped: list[Skipped] = []
    for session in found.values():
        reason = _keep_reason(store, session, now, running)
        if reason:
            skipped.append(Skipped(session, reason))
        else:
            chosen.append(session)
    return Plan(tuple(chosen), tuple(_shared_entries(store, scan, chosen)), tuple(skipped))


def _shared_entries(store: SessionStore, scan: Scan, chosen: list[Session]) -> list[StoreEntry]:
    """The entries shared by the copies of an id (:attr:`Scan.shared`) when every copy is
    ``chosen``: no copy is left to own them."""
    going = {session.key for session in chosen}
    owner = scan_owner(store)
    entries: list[StoreEntry] = []
    for session_id, paths in sorted(scan.shared.items()):
        copies = [s.key for s in scan.sessions if s.id == session_id]
        if session_id in scan.unread or not all(key in going for key in copies):
            continue
        for path in paths:
            walk = Walk(owner)
            walk.walk(path)
            if walk.foreign:
                continue
            modified = datetime.fromtimestamp(walk.newest, UTC)
            entries.append(StoreEntry(Path(path), walk.size, modified, session_id))
    return entries


def scan_owner(store: SessionStore) -> int:
    """The config dir's owner (this user when there is none yet)."""
    return store.config_dir.stat().st_uid if store.config_dir.exists() else os.getuid()


def _keep_reason(
    store: SessionStore, session: Session, now: datetime, running: dict[str, int]
) -> str | None:
    busy = store.in_use(session, now, running)
    if busy:
        return f"in use: {busy}"
    if session.foreign:
        return f"{len(session.foreign)} file(s) owned by another user, e.g. {session.foreign[0]}"
    return None


def _stale_entries(
    store: SessionStore, scan: Scan, cutoff: datetime, problems: list[str]
) -> list[StoreEntry]:
    owner = scan_owner(store)
    limit = cutoff.timestamp()
    pending = frozenset(name.rpartition("/")[2] for name in scan.pending)  # ids
    entries: list[StoreEntry] = []
    for name, found in _sweep_candidates(store, scan):
        for entry_name, path in found:
            if _owned_name(name, entry_name, pending):
                continue
            walk = Walk(owner)
            walk.walk(path)
            if walk.newest >= limit or walk.foreign:
                continue
            modified = datetime.fromtimestamp(walk.newest, UTC)
            entries.append(StoreEntry(Path(path), walk.size, modified))
    return entries


def _sweep_candidates(
    store: SessionStore, scan: Scan
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(store, its entries that belong to no session found, by name) for every store swept by
    age; the scan's strays where it read the store, a listing of it otherwise."""
    strays: dict[str, list[tuple[str, str]]] = {}
    if scan.strays is not None:
        for name in layout.INDEXED_STORES:
            strays[name] = []
        for stray in scan.strays:
            strays[stray.store].append((stray.name, stray.path))
    for name in layout.AGE_SWEPT:
        found = strays.get(name)
        if found is None:
            try:
                with os.scandir(store.config_dir / name) as iterator:
                    found = [(entry.name, entry.path) for entry in iterator]
            except OSError:
                continue
            if name in layout.INDEXED_STORES:  # the scan did not read it: drop what it owns
                owned = {root for session in scan.sessions for root in session.root_paths}
                owned |= scan.unread_roots
                ids = {session.id for session in scan.sessions} | scan.unread
                found = [
                    (entry_name, path)
                    for entry_name, path in found
                    if path not in owned and not _owned_name(name, entry_name, ids)
                ]
        yield name, sorted(found)


def _owned_name(store: str, name: str, ids: set[str] | frozenset[str]) -> bool:
    """Whether a store entry belongs to a listed or pending session (kept with its session)."""
    if store in layout.SESSION_DIR_STORES:
        return name in ids
    if store == layout.DEBUG:
        return name.endswith(layout.DEBUG_SUFFIX) and name[: -len(layout.DEBUG_SUFFIX)] in ids
    if store == layout.TODOS:
        return layout.todo_owner(name, ids) is not None
    return False
