"""The local transcript cache: list, show, prune and delete the agent's sessions.

    >>> from airlock.sessions import SessionStore
    >>> store = SessionStore(loaded.config_dir)
    >>> session = store.get("0b9c…")
    >>> session.files()          # every file that belongs to it

Layout: :mod:`airlock.sessions.layout`. Removal (plan, journal, safe delete):
:mod:`airlock.sessions.removal`.
"""

from airlock.errors import BusyError
from airlock.sessions.removal import (
    LAST_ACTIVITY,
    Plan,
    Report,
    Skipped,
    StoreEntry,
    dry_run,
    execute,
    plan_delete,
    plan_prune,
    recover,
    removal_lock,
)
from airlock.sessions.store import ACTIVE_SECONDS, Rendered, Scan, Session, SessionStore
from airlock.sessions.transcript import Entry, parse_timestamp, read_entries

__all__ = [
    "ACTIVE_SECONDS",
    "LAST_ACTIVITY",
    "BusyError",
    "Entry",
    "Plan",
    "Rendered",
    "Report",
    "Scan",
    "Session",
    "SessionStore",
    "Skipped",
    "StoreEntry",
    "dry_run",
    "execute",
    "parse_timestamp",
    "plan_delete",
    "plan_prune",
    "read_entries",
    "recover",
    "removal_lock",
]
