"""Removing sessions: plan first, then remove through a journal, never outside the config dir.

Theory of operation.

1. *Plan* (:func:`plan_prune`, :func:`plan_delete`): one scan decides what goes. Sessions in
   use, or holding files of another owner, are skipped with the reason. Nothing is touched.
2. *Journal*: before anything is removed, one journal naming each session of the plan and
   its paths is written atomically (one ``fsync`` of the file, one of its folder) under
   ``<config dir>/airlock/sessions-removal/``. A listing hides every session a journal names,
   so a removal cut short (crash, kill, power loss) never leaves a half-removed session listed
   as whole; the next prune or delete finishes it (:func:`recover`), except for a session
   written to since the journal was made.
3. *Remove*: every path is removed relative to a descriptor of the config dir, each folder on
   the way opened with ``O_NOFOLLOW``: a symbolic link is removed as a link and never followed,
   a path that is not inside the config dir is refused (:class:`~airlock.errors.UnsafePathError`),
   folders are emptied the same way, never following a link: by what the scan found in them
   (:func:`_remove_known`: no second listing), listed again only when something was added
   since (:func:`_remove_tree`). Before a session goes, its transcript is looked at again: if
   it was written since the scan, the session is kept and reported. A large removal runs in
   two processes (:func:`_remove_sessions`).
4. The journal is removed once every session it names is gone (or kept, and reported).

One removal at a time: :func:`execute` and :func:`recover` hold an exclusive ``flock`` on
``<config dir>/airlock/sessions-removal.lock`` (:func:`removal_lock`), so a second prune or
delete never mistakes the first one's live journal for an interrupted one; it waits
:data:`LOCK_WAIT_SECONDS`, then gives up with :class:`BusyError`. The lock goes with the process
(a killed run leaves nothing held).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airlock._frozen import frozen
from airlock._frozen import set_field as _set
from airlock.errors import BusyError, UnsafePathError
from airlock.sessions import layout
from airlock.sessions.parallel import in_two
from airlock.sessions.store import (
    JOURNAL_DIR,
    Scan,
    Session,
    SessionStore,
    _Walk,
    gc_paused,
    pick,
    stamp_of,
)

LOCK_FILE = "airlock/sessions-removal.lock"
"""Held (``flock``, exclusive) by the one prune or delete that is removing, relative to the
config dir."""
LOCK_WAIT_SECONDS = 3.0
"""How long a second prune or delete waits for the first before giving up."""

PARALLEL_FROM = 2000
"""A removal of at least this many sessions shares them with a second process."""

LAST_ACTIVITY = (
    "last activity is the newest of the modification time of every file of the session "
    "and the last timestamp inside its transcript"
)


@frozen
class StoreEntry:
    """An entry of a store swept by age (``plans/…``, ``paste-cache/…``, an orphaned folder)."""

    __slots__ = ("modified", "path", "session", "size")
    path: Path
    size: int
    modified: datetime
    session: str | None
    """The id whose copies (one in each of several projects) shared this entry; it goes only
    when every copy went."""

    def __init__(
        self, path: Path, size: int, modified: datetime, session: str | None = None
    ) -> None:
        _set(self, "path", path)
        _set(self, "size", size)
        _set(self, "modified", modified)
        _set(self, "session", session)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "modified": self.modified.isoformat().replace("+00:00", "Z"),
        }


@frozen
class Skipped:
    """A session left in place, and why."""

    __slots__ = ("reason", "session")
    session: Session
    reason: str

    def __init__(self, session: Session, reason: str) -> None:
        _set(self, "session", session)
        _set(self, "reason", reason)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.session.id, "project": self.session.project, "reason": self.reason}


@frozen
class Plan:
    """What a prune or delete will remove, decided by one scan, before anything is touched."""

    __slots__ = ("cutoff", "entries", "problems", "sessions", "skipped")
    sessions: tuple[Session, ...]
    entries: tuple[StoreEntry, ...]
    skipped: tuple[Skipped, ...]
    problems: tuple[str, ...]
    cutoff: datetime | None

    def __init__(
        self,
        sessions: tuple[Session, ...],
        entries: tuple[StoreEntry, ...] = (),
        skipped: tuple[Skipped, ...] = (),
        problems: tuple[str, ...] = (),
        cutoff: datetime | None = None,
    ) -> None:
        _set(self, "sessions", sessions)
        _set(self, "entries", entries)
        _set(self, "skipped", skipped)
        _set(self, "problems", problems)
        _set(self, "cutoff", cutoff)

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.sessions) + sum(e.size for e in self.entries)

    @property
    def steps(self) -> int:
        return len(self.sessions) + len(self.entries)


class Report:
    """What was removed, kept and freed."""

    __slots__ = ("dry_run", "entries", "plan", "problems", "recovered", "removed", "skipped")
    plan: Plan
    dry_run: bool
    removed: list[Session]
    entries: list[StoreEntry]
    skipped: list[Skipped]
    problems: list[str]
    recovered: list[str]

    def __init__(
        self,
        plan: Plan,
        dry_run: bool,
        removed: list[Session] | None = None,
        entries: list[StoreEntry] | None = None,
        skipped: list[Skipped] | None = None,
        problems: list[str] | None = None,
        recovered: list[str] | None = None,
    ) -> None:
        self.plan = plan
        self.dry_run = dry_run
        self.removed = [] if removed is None else removed
        self.entries = [] if entries is None else entries
        self.skipped = [] if skipped is None else skipped
        self.problems = [] if problems is None else problems
        self.recovered = [] if recovered is None else recovered

    @property
    def bytes_freed(self) -> int:
        return sum(s.size for s in self.removed) + sum(e.size for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        cutoff = self.plan.cutoff
        return {
            "dry_run": self.dry_run,
            "cutoff": cutoff.isoformat().replace("+00:00", "Z") if cutoff else None,
            "last_activity": LAST_ACTIVITY,
            "sessions": [s.to_json() for s in self.removed],
            "entries": [e.to_json() for e in self.entries],
            "skipped": [s.to_json() for s in self.skipped],
            "recovered": self.recovered,
            "problems": self.problems,
            "bytes_freed": self.bytes_freed,
        }


# --------------------------------------------------------------------------- planning


def plan_prune(store: SessionStore, *, now: datetime, older_than: timedelta) -> Plan:
    """Every session whose last activity is before ``now - older_than``, and the stale store
    entries that belong to no session."""
    cutoff = now - older_than
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
    found = pick(scan, names, store)
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
            walk = _Walk(owner)
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
    entries: list[StoreEntry] = []
    for name, found in _sweep_candidates(store, scan):
        for entry_name, path in found:
            if _owned_name(name, entry_name, scan.pending):
                continue
            walk = _Walk(owner)
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
        for name, entry_name, path in scan.strays:
            strays[name].append((entry_name, path))
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


# --------------------------------------------------------------------------- executing

Progress = Callable[[int], None]
"""Called with the number of steps just done (a session or a store entry each)."""


@contextlib.contextmanager
def removal_lock(config_dir: Path, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the config dir's removal lock, waiting up to ``wait`` seconds for it.

    Raises:
        BusyError: another process holds it after ``wait`` seconds.
        UnsafePathError: ``<config dir>/airlock`` or the lock file is a symbolic link.
    """
    path = config_dir / LOCK_FILE
    if path.parent.is_symlink():
        raise UnsafePathError(f"{path.parent} is a symbolic link: refusing to lock there")
    path.parent.mkdir(exist_ok=True, mode=0o700)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        raise UnsafePathError(f"{path}: cannot be opened as the lock: {_why(error)}") from error
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another 'airlock sessions prune' or 'delete' is running on "
                        f"{config_dir} (it holds {path}; waited {wait:g} s). Nothing was "
                        "removed; run this again when it has finished."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def execute(
    store: SessionStore,
    plan: Plan,
    *,
    now: datetime,
    progress: Progress | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> Report:
    """Remove what ``plan`` names; finish unfinished removals first.

    Raises:
        BusyError: another prune or delete is removing in the same config dir.
    """
    report = Report(plan, dry_run=False, skipped=list(plan.skipped), problems=list(plan.problems))
    if not store.config_dir.is_dir():
        return report  # nothing there, nothing to remove (and nothing is created)
    with (
        removal_lock(store.config_dir, wait=lock_wait),
        _Remover(store.config_dir) as remover,
        gc_paused(),
    ):
        recovered = recover(store, now=now, remover=remover)
        report.recovered = list(recovered.finished)
        report.problems += recovered.problems
        left: set[str] = set()  # ids of which a copy stays: what the copies shared stays too
        reachable = []
        for session in plan.sessions:
            try:
                remover.check(session)
            except (OSError, UnsafePathError) as error:
                report.problems.append(_not_removed(session, "not removed", error))
                left.add(session.id)
                if progress:
                    progress(1)
            else:
                reachable.append(session)
        if reachable:
            journal = _write_journal(store.config_dir, reachable, now)
            outcomes = _remove_sessions(reachable, remover, progress)
            for session, (outcome, text) in zip(reachable, outcomes, strict=True):
                if outcome == _REMOVED:
                    report.removed.append(session)
                    continue
                left.add(session.id)
                if outcome == _KEPT:
                    report.skipped.append(Skipped(session, text))
                else:  # what is left of it is listed again, and the next run tries again
                    report.problems.append(text)
            journal.unlink()
        for entry in plan.entries:
            if entry.session in left:
                if progress:
                    progress(1)
                continue
            try:
                remover.remove(entry.path)
                report.entries.append(entry)
            except (OSError, UnsafePathError) as error:
                report.problems.append(f"{entry.path}: not removed: {_why(error)}")
            if progress:
                progress(1)
    return report


def dry_run(plan: Plan) -> Report:
    """What :func:`execute` would do, with nothing touched."""
    return Report(
        plan,
        dry_run=True,
        removed=list(plan.sessions),
        entries=list(plan.entries),
        skipped=list(plan.skipped),
        problems=list(plan.problems),
    )


_REMOVED, _KEPT, _FAILED = 0, 1, 2
"""What became of a session: removed, kept (with the reason), not fully removed (the problem)."""
_Outcome = tuple[int, str]


def _remove_one(session: Session, remover: _Remover) -> _Outcome:
    if _rewritten(session):
        return _KEPT, "in use: written to during the removal"
    try:
        remover.remove_session(session)
    except (OSError, UnsafePathError) as error:
        return _FAILED, _not_removed(session, "not fully removed", error)
    return _REMOVED, ""


def _not_removed(session: Session, what: str, error: BaseException) -> str:
    return (
        f"session {session.key}: {what}: {_why(error)}; it stays listed, and every prune or "
        "delete reports it until this is fixed"
    )


def _remove_sessions(
    sessions: Sequence[Session], remover: _Remover, progress: Progress | None
) -> list[_Outcome]:
    """Remove every session (journaled by the caller); what became of each, in order.

    Removing is mostly system calls, so a large removal is shared with a second process
    (:func:`~airlock.sessions.parallel.in_two`), which shares the descriptors (the lock, the
    config dir's) and the plan. A removal is repeatable (what is already gone is not an
    error), so what the child leaves undone is done here.
    """
    return in_two(
        sessions,
        lambda session: _remove_one(session, remover),
        parallel_from=PARALLEL_FROM,
        receive=_outcome,
        progress=progress,
    )


def _outcome(value: Any) -> _Outcome:
    """An outcome sent by the child, checked."""
    code, text = value
    if code not in (_REMOVED, _KEPT, _FAILED) or not isinstance(text, str):
        raise ValueError(f"not an outcome: {value!r}")
    return code, text


def _why(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return str(error)


def _rewritten(session: Session) -> bool:
    """Whether the session was written to since the scan.

    The transcript: its nanosecond mtime or its size differ (exact integers: no rounding can
    make an untouched file look written). A subagent transcript: modified after the newest
    file the scan saw, or one the scan did not see in the same folder.
    """
    if session.transcript_stamp != (0, -1):  # none: a subagent-only session
        now = stamp_of(session.transcript_path)
        if now != (0, -1) and now != session.transcript_stamp:
            return True
    if not session.subagent_paths:
        return False
    for path in session.subagent_paths:
        try:
            if os.lstat(path).st_mtime > session.newest_mtime:
                return True
        except OSError:
            continue  # gone: nothing to keep
    known = frozenset(session.subagent_paths)
    # A session folder's own subagents/ (in the older layout, agent transcripts sit in the
    # project folder beside other sessions': nothing new there is this session's).
    folders = {path.rpartition(os.sep)[0] for path in session.subagent_paths}
    for folder in folders:
        if not folder.endswith(os.sep + "subagents"):
            continue
        try:
            names = os.listdir(folder)  # noqa: PTH208 - str paths, as the scan keeps them
        except OSError:
            continue
        if any(
            name.endswith(layout.TRANSCRIPT_SUFFIX) and os.path.join(folder, name) not in known
            for name in names
        ):
            return True
    return False


def _written_since(path: str | Path, moment: float) -> bool:
    try:
        return os.lstat(path).st_mtime > moment
    except OSError:
        return False


# --------------------------------------------------------------------------- the journal


def _write_journal(config_dir: Path, batch: Iterable[Session], now: datetime) -> Path:
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
    return _write_journal_data(folder, {"started": now.timestamp(), "sessions": sessions})


def _write_journal_data(folder: Path, data: dict[str, Any]) -> Path:
    """Write a journal (fsync'd, renamed into place); its path."""
    # A random name, as a uuid4 would give (the uuid module is slow to import).
    path = folder / f"{os.urandom(16).hex()}.json"
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        handle.write(json.dumps(data).encode("utf-8"))  # json.dump would encode in Python
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    _fsync_dir(folder)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Recovered:
    """What finishing the removals cut short did."""

    finished: tuple[str, ...] = ()
    """The sessions finished, as ``<project>/<id>`` (a bare id from an older journal)."""
    problems: tuple[str, ...] = ()
    """The sessions that could not be finished, and why; they are listed again, and every
    run reports them until they can be removed."""


def recover(store: SessionStore, *, now: datetime, remover: _Remover | None = None) -> Recovered:
    """Finish removals cut short.

    A session written to after its journal was made is alive again and kept; one that cannot
    be removed (a folder on the way became a link, …) is reported and listed again.
    """
    folder = store.config_dir / JOURNAL_DIR
    try:
        journals = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".tmp"))
    except OSError:
        return Recovered()
    finished: list[str] = []
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        if remover is None:  # called on its own, not from execute (which holds the lock)
            stack.enter_context(removal_lock(store.config_dir))
            remover = stack.enter_context(_Remover(store.config_dir))
        for journal in journals:
            if journal.suffix == ".json":
                done, failed = _finish(store, journal, remover)
                finished += done
                problems += failed
            journal.unlink(missing_ok=True)
    return Recovered(tuple(finished), tuple(problems))


def _finish(store: SessionStore, journal: Path, remover: _Remover) -> tuple[list[str], list[str]]:
    """Finish the sessions ``journal`` names: those finished, and a problem for each that
    cannot be (it is no longer hidden: the journal goes)."""
    try:
        data = json.loads(journal.read_bytes())
        started = float(data["started"])
        sessions = data["sessions"]
        assert isinstance(sessions, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return [], []
    finished: list[str] = []
    problems: list[str] = []
    for name, paths in sessions.items():
        if not isinstance(paths, list) or not _journal_name(str(name)):
            continue
        targets = [store.config_dir / str(p) for p in paths]
        if any(_written_since(t, started) for t in targets if t.suffix == ".jsonl"):
            continue
        try:
            for target in targets:
                remover.remove(target)
        except (OSError, UnsafePathError) as error:
            problems.append(
                f"session {name}: an interrupted removal cannot be finished: {_why(error)}; "
                "it is listed again, and every prune or delete reports it until this is fixed"
            )
        else:
            finished.append(str(name))
    return finished, problems


def _journal_name(name: str) -> bool:
    """Whether a journal names a session plainly: ``<project>/<id>``, or an id."""
    project, slash, session_id = name.rpartition("/")
    plain_project = not slash or (project not in ("", ".", "..") and "/" not in project)
    return layout.is_session_id(session_id) and plain_project


# --------------------------------------------------------------------------- safe removal


class _Remover:
    """Removes paths inside one folder through descriptors; never follows a symbolic link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")
        self._fds: dict[tuple[str, ...], int] = {}
        self._folders: dict[str, tuple[str, ...]] = {}
        """A folder's path (as given) to its parts, once checked by :meth:`_parts`."""

    def __enter__(self) -> _Remover:
        self._fds[()] = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def remove(self, path: str | Path) -> None:
        """Remove a file, link or whole folder at ``path``; a missing path is not an error.

        Raises:
            UnsafePathError: ``path`` is not inside the root, or a folder on the way is a link.
        """
        parent, name = self._locate(os.fspath(path))
        self._unlink(parent, name)

    def _locate(self, path: str) -> tuple[int, str]:
        """(a descriptor of the folder holding ``path``, its last name), the path checked as
        :meth:`_parts` does; a folder already checked is looked up, not checked again."""
        folder, _, name = path.rpartition(os.sep)
        parts = self._folders.get(folder)
        if parts is None or name in ("..", ".", ""):
            full = self._parts(path)
            parts = self._folders[folder] = full[:-1]
            name = full[-1]
        fd = self._fds.get(parts)
        return (fd if fd is not None else self._dir_fd(parts)), name

    def _unlink(self, parent: int, name: str) -> None:
        """Remove ``name`` in ``parent``: a file or link by unlinking it, a folder as a tree."""
        try:
            os.unlink(name, dir_fd=parent)  # a file or a link (never what it points to)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            _remove_tree(parent, name)
        except PermissionError:  # what unlink says of a folder outside Linux
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise
            _remove_tree(parent, name)

    def check(self, session: Session) -> None:
        """Open every folder on the way to each root of ``session``, as a removal would.

        Raises:
            UnsafePathError: a root is not inside the root folder, or a folder on the way is a
                link (nothing has been removed).
        """
        for root in session.root_paths:
            self._locate(root)

    def remove_session(self, session: Session) -> None:
        """Remove every root of ``session``: files and links by name, folders by what the scan
        found in them (:func:`_remove_known`), each through descriptors as :meth:`remove` does.

        The transcript goes last, and the session folder just before it: a removal that
        fails part way leaves a session that is still listed, with what is left of it.

        Raises:
            UnsafePathError: a root is not inside the root folder, or a folder on the way is a
                link.
        """
        last = (
            session.transcript_path.removesuffix(layout.TRANSCRIPT_SUFFIX),
            session.transcript_path,
        )
        roots = [root for root in session.root_paths if root not in last]
        roots += [root for root in last if root in session.root_paths]
        folders = session.dir_paths
        if not folders:  # files and links only
            for root in roots:
                self._unlink(*self._locate(root))
            return
        known = frozenset(folders)
        for root in roots:
            parent, name = self._locate(root)
            if root not in known:
                self._unlink(parent, name)
                continue
            prefix = root + os.sep
            tree: _Tree = {}
            for folder in folders:
                if folder.startswith(prefix):
                    _place(tree, folder[len(prefix) :], {})
            for path in session.file_paths:
                if path.startswith(prefix):
                    _place(tree, path[len(prefix) :], None)
            _remove_known(parent, name, tree)

    def _parts(self, path: str | Path) -> tuple[str, ...]:
        text = os.fspath(path)
        if not text.startswith(self._prefix):
            raise UnsafePathError(f"{path} is outside {self.root}: refused")
        parts = tuple(text[len(self._prefix) :].split(os.sep))  # noqa: PTH206 - str paths, fast
        if any(part in ("..", ".", "") for part in parts):
            raise UnsafePathError(f"{path}: not a plain path inside {self.root}: refused")
        return parts

    def _dir_fd(self, parts: tuple[str, ...]) -> int:
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        parent = self._dir_fd(parts[:-1])
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags, dir_fd=parent)
        except OSError as error:
            where = self.root.joinpath(*parts)
            link = error.errno in (errno.ELOOP, errno.ENOTDIR) and where.is_symlink()
            what = "a symbolic link, not followed" if link else f"not a real folder ({_why(error)})"
            raise UnsafePathError(f"{where}: {what}: refused") from error
        if len(self._fds) > 256:  # bound the open descriptors on wide trees
            self._drop_deep()
        self._fds[parts] = fd
        return fd

    def _drop_deep(self) -> None:
        for key in [k for k in self._fds if len(k) > 2]:
            os.close(self._fds.pop(key))


_TREE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_Tree = dict[str, "_Tree | None"]
"""What a scan found in a folder: a name to its own tree (a folder) or to ``None`` (a file)."""


def _place(tree: _Tree, relative: str, leaf: _Tree | None) -> None:
    """Put ``relative`` (a path below the tree's folder) into ``tree`` as ``leaf``."""
    *folders, name = relative.split(os.sep)  # noqa: PTH206 - str paths, fast
    for folder in folders:
        below = tree.get(folder)
        if below is None:
            below = tree[folder] = {}
        tree = below
    if leaf is None:
        tree[name] = None
    else:
        tree.setdefault(name, leaf)


def _unlink_any(parent: int, name: str) -> None:
    """Unlink ``name`` in ``parent`` (a file, or a link as itself); a folder now, where the scan
    found a file, goes as a tree; gone already is not an error."""
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        _remove_tree(parent, name)


def _remove_known(parent: int, name: str, tree: _Tree) -> None:
    """Remove the folder ``name`` in ``parent`` by what a scan found in it (``tree``).

    Removes as :func:`_remove_tree` does (each folder opened with ``O_NOFOLLOW`` relative to
    its parent, links unlinked as links), without listing the folders again: a file is unlinked
    by name, a folder is removed once emptied. Only when the scan's picture is out of date (a
    name is now a folder, or a folder is not empty: something was added since) is that folder
    listed and emptied by :func:`_remove_tree`. A name gone since the scan is not an error.
    """
    try:
        fd = os.open(name, _TREE_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        _unlink_any(parent, name)  # a file or a link now: removed as itself, never followed
        return
    try:
        for child, below in tree.items():
            if below is not None:
                _remove_known(fd, child, below)
                continue
            _unlink_any(fd, child)
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        _remove_tree(parent, name)  # something was added since the scan


def _remove_tree(parent: int, name: str) -> None:
    """Remove the folder ``name`` in ``parent`` and everything in it, through descriptors.

    Each folder is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so a folder
    swapped for a link while this runs fails to open (``ELOOP``) instead of being followed; a
    link inside is unlinked as a link.
    """
    fd = os.open(name, _TREE_FLAGS, dir_fd=parent)
    try:
        with os.scandir(fd) as iterator:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in iterator]
        for child, is_dir in entries:
            if is_dir:
                _remove_tree(fd, child)
            else:
                try:
                    os.unlink(child, dir_fd=fd)
                except IsADirectoryError:  # replaced by a folder since the listing
                    _remove_tree(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
