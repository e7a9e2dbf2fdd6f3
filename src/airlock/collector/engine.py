"""Connections to the collector's database: the engine for a URL, and SQLite's write lock.

SQLite runs in WAL mode (readers never wait for the writer) with ``synchronous=NORMAL``; its
one writer is taken by :func:`lock_for_writing`, which asks every :data:`WRITE_POLL` seconds
rather than through SQLite's own ``busy_timeout`` (see :meth:`Database.writing`).
PostgreSQL goes through psycopg 3 with a small pool.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

WRITE_WAIT = 30.0
"""Seconds a write waits for SQLite's one writer before it fails (``database is locked``)."""
WRITE_POLL = 0.001
"""Seconds between two asks for SQLite's write lock."""
BUSY_TIMEOUT_MS = round(WRITE_WAIT * 1000)
"""SQLite's own wait for a lock, for statements outside :meth:`Database.writing`."""


def lock_for_writing(connection: Connection) -> None:
    """Begin a transaction on SQLite holding the write lock, asking for it every
    :data:`WRITE_POLL` seconds. ``connection``'s ``busy_timeout`` must be 0, so that each ask
    fails at once while another process holds the lock.

    Raises:
        sqlalchemy.exc.OperationalError: the lock was not free once in :data:`WRITE_WAIT` s.
    """
    deadline = time.monotonic() + WRITE_WAIT
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sa.exc.OperationalError as error:
            code = getattr(error.orig, "sqlite_errorcode", None)
            if code != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            connection.rollback()
            time.sleep(WRITE_POLL)


def safe_url(url: str) -> str:
    """The URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("@")[-1]


def make_engine(url: str) -> Engine:
    """The engine for ``url``: SQLite (its file and folder made private, WAL) or PostgreSQL.

    Raises:
        sqlalchemy.exc.ArgumentError: not a SQLite or PostgreSQL URL.
    """
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from airlock.collector.feedback import private_dir, private_file

            private_dir(Path(database).parent)
            private_file(Path(database))
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise sa.exc.ArgumentError(f"unsupported database {parsed.get_backend_name()!r}")
    return sa.create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True)
