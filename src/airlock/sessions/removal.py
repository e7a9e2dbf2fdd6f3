"""Removing sessions: plan first, then remove through a journal, never outside the config dir.

Theory of operation.

1. *Plan* (:mod:`airlock.sessions.plan`): one scan decides what goes; nothing is touched.
2. *Check*: every folder on the way to each path of each session is opened without following
   a link (:meth:`~airlock.sessions.deletion.Remover.check`). A session behind a link is
   refused whole: nothing of it is removed or journalled, it stays listed, and every run
   reports it.
3. *Journal* (:mod:`airlock.sessions.journal`): one journal naming each session to remove and
   its paths is written atomically. A listing hides every session a journal names, so a
   removal cut short (crash, kill, power loss) never leaves a half-removed session listed as
   whole; the next prune or delete finishes it (:func:`recover`), except for a session written
   to since the journal was made.
4. *Remove* (:mod:`airlock.sessions.deletion`): through descriptors of the config dir, links
   removed as links, never followed. Before a session goes, its transcript is looked at
   again: if it was written since the scan, the session is kept and reported. A session whose
   removal fails part way keeps its transcript (which goes last): it is listed again, with
   what is left of it, and reported by every run until it can be removed.
5. The journal is removed once every session it names is gone, kept, or reported.

One removal at a time: :func:`execute` and :func:`recover` hold the config dir's removal lock
(:mod:`airlock.sessions.lock`).
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from airlock.errors import UnsafePathError
from airlock.sessions import layout
from airlock.sessions.deletion import Remover, why
from airlock.sessions.journal import Journal, journals, read_journal, write_journal
from airlock.sessions.lock import LOCK_WAIT_SECONDS, removal_lock
from airlock.sessions.model import NO_STAMP, Session, iso, stamp_of
from airlock.sessions.plan import LAST_ACTIVITY, Plan, Skipped, StoreEntry
from airlock.sessions.store import SessionStore

Progress = Callable[[int], None]
"""Called with the number of steps just done (a session or a store entry each)."""


@dataclass(slots=True)
class Report:
    """What was removed, kept and freed."""

    plan: Plan
    dry_run: bool
    removed: list[Session] = field(default_factory=list)
    entries: list[StoreEntry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(s.size for s in self.removed) + sum(e.size for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "cutoff": iso(self.plan.cutoff),
            "last_activity": LAST_ACTIVITY,
            "sessions": [s.to_json() for s in self.removed],
            "entries": [e.to_json() for e in self.entries],
            "skipped": [s.to_json() for s in self.skipped],
            "recovered": self.recovered,
            "problems": self.problems,
            "bytes_freed": self.bytes_freed,
        }


@dataclass(frozen=True, slots=True)
class Recovered:
    """What finishing the removals cut short did."""

    finished: tuple[str, ...] = ()
    """The sessions finished, as ``<project>/<id>`` (a bare id from an older journal)."""
    problems: tuple[str, ...] = ()
    """The sessions that could not be finished, and why; they are listed again, and every
    run reports them until they can be removed."""


class Fate(enum.Enum):
    """What became of a session a removal set out to remove."""

    REMOVED = "removed"
    KEPT = "kept"
    """Written to during the removal: left in place (the reason says so)."""
    FAILED = "failed"
    """Not fully removed (the problem says why)."""


class Outcome(NamedTuple):
    """A session's fate, and the reason or problem in words."""

    fate: Fate
    text: str = ""


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
    tick = progress or (lambda count: None)
    with removal_lock(store.config_dir, wait=lock_wait), Remover(store.config_dir) as remover:
        recovered = recover(store, now=now, remover=remover)
        report.recovered = list(recovered.finished)
        report.problems += recovered.problems
        left = _remove_sessions(store.config_dir, plan.sessions, remover, report, now, tick)
        for entry in plan.entries:
            if entry.session not in left:  # what copies shared stays while one of them does
                try:
                    remover.remove(entry.path)
                    report.entries.append(entry)
                except (OSError, UnsafePathError) as error:
                    report.problems.append(f"{entry.path}: not removed: {why(error)}")
            tick(1)
    return report


def _remove_sessions(
    config_dir: Path,
    sessions: tuple[Session, ...],
    remover: Remover,
    report: Report,
    now: datetime,
    tick: Progress,
) -> set[str]:
    """Check, journal and remove ``sessions``, filling ``report``; the ids of which a copy
    stays."""
    left: set[str] = set()
    reachable = []
    for session in sessions:
        try:
            remover.check(session)
        except (OSError, UnsafePathError) as error:
            report.problems.append(_not_removed(session, "not removed", error))
            left.add(session.id)
            tick(1)
        else:
            reachable.append(session)
    if not reachable:
        return left
    journal = write_journal(config_dir, reachable, now)
    for session in reachable:
        outcome = _remove_one(session, remover)
        if outcome.fate is Fate.REMOVED:
            report.removed.append(session)
        elif outcome.fate is Fate.KEPT:
            report.skipped.append(Skipped(session, outcome.text))
        else:  # what is left of it is listed again, and the next run tries again
            report.problems.append(outcome.text)
        if outcome.fate is not Fate.REMOVED:
            left.add(session.id)
        tick(1)
    journal.unlink()
    return left


def _remove_one(session: Session, remover: Remover) -> Outcome:
    if _rewritten(session):
        return Outcome(Fate.KEPT, "in use: written to during the removal")
    try:
        remover.remove_session(session)
    except (OSError, UnsafePathError) as error:
        return Outcome(Fate.FAILED, _not_removed(session, "not fully removed", error))
    return Outcome(Fate.REMOVED)


def _not_removed(session: Session, what: str, error: BaseException) -> str:
    return (
        f"session {session.key}: {what}: {why(error)}; it stays listed, and every prune or "
        "delete reports it until this is fixed"
    )


def _rewritten(session: Session) -> bool:
    """Whether the session was written to since the scan.

    The transcript: its nanosecond mtime or its size differ (exact integers: no rounding can
    make an untouched file look written). A subagent transcript: modified after the newest
    file the scan saw, or one the scan did not see in the same folder.
    """
    if session.transcript_stamp != NO_STAMP:  # none: a subagent-only session
        now = stamp_of(session.transcript_path)
        if now not in (NO_STAMP, session.transcript_stamp):
            return True
    if not session.subagent_paths:
        return False
    if any(_written_since(path, session.newest_mtime) for path in session.subagent_paths):
        return True
    known = frozenset(session.subagent_paths)
    # A session folder's own subagents/ (in the older layout, agent transcripts sit in the
    # project folder beside other sessions': nothing new there is this session's).
    folders = {path.rpartition(os.sep)[0] for path in session.subagent_paths}
    for folder in folders:
        if not folder.endswith(os.sep + layout.SUBAGENTS):
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


def recover(store: SessionStore, *, now: datetime, remover: Remover | None = None) -> Recovered:
    """Finish removals cut short.

    A session written to after its journal was made is alive again and kept; one that cannot
    be removed (a folder on the way became a link, …) is reported and listed again.
    """
    found = journals(store.config_dir)
    if not found:
        return Recovered()
    finished: list[str] = []
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        if remover is None:  # called on its own, not from execute (which holds the lock)
            stack.enter_context(removal_lock(store.config_dir))
            remover = stack.enter_context(Remover(store.config_dir))
        for path in found:
            journal = read_journal(path)
            if journal is not None:
                done, failed = _finish(store, journal, remover)
                finished += done
                problems += failed
            path.unlink(missing_ok=True)
    return Recovered(tuple(finished), tuple(problems))


def _finish(store: SessionStore, journal: Journal, remover: Remover) -> tuple[list[str], list[str]]:
    """Finish the sessions ``journal`` names: those finished, and a problem for each that
    cannot be (no longer hidden: the journal goes)."""
    finished: list[str] = []
    problems: list[str] = []
    for name, paths in journal.sessions.items():
        targets = [store.config_dir / p for p in paths]
        if any(_written_since(t, journal.started) for t in targets if t.suffix == ".jsonl"):
            continue
        try:
            for target in targets:
                remover.remove(target)
        except (OSError, UnsafePathError) as error:
            problems.append(
                f"session {name}: an interrupted removal cannot be finished: {why(error)}; it "
                "is listed again, and every prune or delete reports it until this is fixed"
            )
        else:
            finished.append(name)
    return finished, problems
