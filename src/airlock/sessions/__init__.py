"""The local transcript cache: list, show, prune and delete the agent's sessions.

    >>> from airlock.sessions import SessionStore
    >>> store = SessionStore(loaded.config_dir)
    >>> session = store.get("0b9c…")   # or "<project>/<id>" where two projects hold the id
    >>> session.files()          # every file that belongs to it

Layout: :mod:`.layout`. Finding sessions: :mod:`.store` (the facade), :mod:`.scanner`,
:mod:`.model`, :mod:`.liveness`, :mod:`.transcript`. Removing them: :mod:`.plan`, then
:mod:`.removal` (journal: :mod:`.journal`, lock: :mod:`.lock`, descriptor-safe deletion:
:mod:`.deletion`).
"""

from airlock.errors import BusyError
from airlock.sessions.liveness import ACTIVE_SECONDS
from airlock.sessions.lock import removal_lock
from airlock.sessions.model import Scan, Session
from airlock.sessions.plan import LAST_ACTIVITY, Plan, Skipped, StoreEntry, plan_delete, plan_prune
from airlock.sessions.removal import Recovered, Report, dry_run, execute, recover
from airlock.sessions.store import SessionStore
from airlock.sessions.transcript import Entry, parse_timestamp, read_entries

__all__ = [
    "ACTIVE_SECONDS",
    "LAST_ACTIVITY",
    "BusyError",
    "Entry",
    "Plan",
    "Recovered",
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
