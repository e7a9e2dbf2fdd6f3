"""The collector's database: organisations, keys and stored items (SQLAlchemy Core).

Theory of operation
-------------------
One schema, on SQLite (WAL, the default, under the data directory) or PostgreSQL
(``--database-url postgresql://…``, psycopg 3), created and changed only by the Alembic
migrations in :mod:`airlock.collector.migrations`. Several collector processes may share one
PostgreSQL: every write is one short transaction, and nothing is kept in process memory that
another process could contradict (a key's organisation is cached for a few seconds only).

The tables are in :mod:`airlock.collector.schema`; times are seconds since the epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from airlock.collector.engine import lock_for_writing, make_engine, safe_url
from airlock.collector.schema import NO_ORG, api_keys, items, orgs, refusals
from airlock.errors import UsageError
from airlock.policy.collection import OrgTerms
from airlock.policy.retention import RetentionClass

KEY_PREFIX = "alk_"
LOCAL_ORG = "local"
NO_KEY = "no_key"
"""The refusal reason of a request without a key (401)."""
UNKNOWN_KEY = "unknown_key"
"""The refusal reason of a request with a key the collector does not know (401)."""
OTHER_ORGANISATION = "other_organisation"
"""The refusal reason of a session asked for with another organisation's key."""
REFUSAL_REASONS = (NO_KEY, UNKNOWN_KEY, OTHER_ORGANISATION)
REFUSALS_FLUSH_SECONDS = 1.0
"""Refusals are counted in memory and written at most this often (see ``count_refusal``)."""
KEY_CACHE_SECONDS = 5.0
"""Seconds a key's organisation, once looked up, is answered from memory."""
ITEM_COLUMNS = (
    "org_id",
    "session_id",
    "kind",
    "retention_class",
    "received_at",
    "expires_at",
    "idempotency_key",
    "blob",
    "size",
    "body",
)


_INSERT = (
    f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) "  # noqa: S608 (constants only)
    f"VALUES ({', '.join('?' * len(ITEM_COLUMNS))})"
)
"""SQLite's insert of one item (``?`` parameters, in the order of :data:`ITEM_COLUMNS`)."""
_COPY = f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN"
"""PostgreSQL's copy of items (rows in the order of :data:`ITEM_COLUMNS`)."""


@dataclass(frozen=True, slots=True)
class Org:
    """An organisation as the collector knows it."""

    id: int
    name: str
    terms: OrgTerms


@dataclass(frozen=True, slots=True)
class Item:
    """One record to store."""

    session_id: str | None
    kind: str
    retention_class: str
    received_at: float
    expires_at: float | None
    size: int
    body: bytes | None = None
    idempotency_key: str | None = None
    blob: str | None = None


@dataclass(frozen=True, slots=True)
class Filing:
    """What every record of one request is stored with: its kind, class and times."""

    kind: str
    retention_class: str
    received_at: float
    expires_at: float | None
    idempotency_key: str | None = None
    """The request's ``Idempotency-Key``: its records are stored under :func:`record_key`
    (``KEY#0``, ``KEY#1``…), and the constraint ``items_once`` refuses them all
    (:class:`AlreadyStored`) once one of them is stored. ``None``: stored every time."""


class AlreadyStored(Exception):
    """Records refused by the constraint ``items_once``: their idempotency key is stored
    already (a request sent again); their transaction stored nothing."""


def record_key(key: str, number: int) -> str:
    """The idempotency key of record ``number`` of a request sent with ``key``: ``KEY#N``.

    One to one: the result's last ``#`` separates ``key`` (any text) from ``N`` (digits
    only), so the records of two requests with different keys never share a key.
    """
    return f"{key}#{number}"


Records = Sequence[tuple[str | None, bytes]]
"""Records of one request: each one's session (if named) and bytes."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'collector.sqlite3'}"


class Database:
    """The collector's tables on one engine (SQLite or PostgreSQL).

    Raises:
        UsageError: the URL is not a database the collector can use.
    """

    def __init__(self, url: str, *, clock: Any = time.time) -> None:
        self.url = url
        self.clock = clock
        try:
            self.engine: Engine = make_engine(url)
        except (sa.exc.ArgumentError, ImportError) as error:
            raise UsageError(
                f"--database-url {safe_url(url)}: not a database URL the collector can use "
                f"({error}); expected sqlite:///PATH or postgresql://USER@HOST/DB"
            ) from error
        self.dialect = self.engine.dialect.name
        self._keys: dict[str, tuple[float, Org]] = {}
        self._keys_lock = threading.Lock()
        self._writer = threading.Lock()
        self._write_connection: Connection | None = None
        """SQLite: the connection of this process's writes, used by whoever holds ``_writer``."""
        self._refusals: Counter[tuple[int, str, str]] = Counter()
        """Refusals counted since the last write, by organisation, day and reason."""
        self._refusals_lock = threading.Lock()
        self._refusals_written = time.monotonic()
        self._refusals_timer: threading.Timer | None = None
        self._closed = False

    def migrate(self) -> None:
        """Bring the schema to the newest version (Alembic), once even with several processes."""
        from airlock.collector.migrations import upgrade

        try:
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(7367826)"))
                upgrade(connection)
        except sa.exc.OperationalError as error:
            raise UsageError(
                f"database {safe_url(self.url)} cannot be used: {error.orig or error}"
            ) from error

    def close(self) -> None:
        with self._refusals_lock:
            self._closed = True  # no timer from now on
            if self._refusals_timer is not None:
                self._refusals_timer.cancel()
                self._refusals_timer = None
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # the database gone: nothing to do
            self.write_refusals()
        with self._writer:
            if self._write_connection is not None:
                self._write_connection.close()
                self._write_connection = None
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that writes: committed at the end of the block, rolled back on error.

        On SQLite, whose one writer holds every other off, the transaction takes the write lock
        as it begins (``BEGIN IMMEDIATE``), asking again every millisecond while another
        process holds it. SQLite's own wait (``busy_timeout``) pauses longer and longer between
        asks, up to 100 ms, so a writer waiting behind a sweep could miss every short gap
        between the sweep's batches; asking often, it gets the lock in the first gap. The
        writers of this process queue for it on a lock of their own first, so only one of
        them asks (the others would wake every millisecond to ask in vain), and they share one
        connection, kept open between writes and closed after a failed one.
        """
        if self.dialect != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self._writer:
            connection = self._write_connection or self._open_for_writing()
            try:
                lock_for_writing(connection)
                yield connection
                connection.commit()
            except BaseException:
                self._write_connection = None
                connection.close()  # rolls back; the next write opens a fresh connection
                raise

    def _open_for_writing(self) -> Connection:
        connection = self.engine.connect()
        connection.exec_driver_sql("PRAGMA busy_timeout=0")  # lock_for_writing waits instead
        self._write_connection = connection
        return connection

    # Organisations and keys

    def create_org(self, name: str, terms: OrgTerms) -> str:
        """A new organisation (or a new key for an existing one of that name); returns the key.

        Raises:
            UsageError: an organisation of that name exists with other terms.
        """
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.writing() as connection:
            row = connection.execute(sa.select(orgs).where(orgs.c.name == name)).first()
            if row is None:
                inserted = connection.execute(
                    orgs.insert().values(
                        name=name,
                        account_class=str(terms.account_class),
                        zero_data_retention=terms.zero_data_retention,
                        product_feedback=terms.product_feedback,
                        created_at=now,
                    )
                ).inserted_primary_key
                assert inserted is not None
                org_id = inserted[0]
            else:
                if _terms(row) != terms:
                    raise UsageError(
                        f"--org {name}: the organisation exists with other terms "
                        f"({_describe(_terms(row))}); a new key keeps them"
                    )
                org_id = row.id
            connection.execute(
                api_keys.insert().values(key_sha256=hash_key(key), org_id=org_id, created_at=now)
            )
        return key

    def has_orgs(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(orgs.c.id).limit(1)).first() is not None

    def known_org(self, key: str) -> Org | None:
        """The organisation of ``key`` if it was looked up in the last :data:`KEY_CACHE_SECONDS`
        (no I/O: callable from the event loop); ``None``: ask :meth:`org_for_key`."""
        with self._keys_lock:
            cached = self._keys.get(hash_key(key))
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        return None

    def org_for_key(self, key: str) -> Org | None:
        """The organisation of ``key``; ``None`` for an unknown key."""
        known = self.known_org(key)
        if known is not None:
            return known
        digest = hash_key(key)
        now = time.monotonic()
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(orgs)
                .join(api_keys, api_keys.c.org_id == orgs.c.id)
                .where(api_keys.c.key_sha256 == digest)
            ).first()
        if row is None:
            return None
        org = Org(row.id, row.name, _terms(row))
        with self._keys_lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (now, org)
        return org

    def count_refusal(self, reason: str, org_id: int = NO_ORG) -> None:
        """Count one refused request, for ``org_id`` (:data:`NO_ORG`: no organisation named).

        Counted in memory and written within :data:`REFUSALS_FLUSH_SECONDS` (and when the
        counts are read, and at close): a flood of requests without a key costs the database
        one write a second, not one a request. A process killed outright loses at most that
        second's counts."""
        day = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        with self._refusals_lock:
            self._refusals[(org_id, day, reason)] += 1
            wait = REFUSALS_FLUSH_SECONDS - (time.monotonic() - self._refusals_written)
            later = wait > 0 and self._refusals_timer is None and not self._closed
            if later:  # written within the second even if no other refusal comes
                self._refusals_timer = threading.Timer(wait, self._write_refusals_later)
                self._refusals_timer.daemon = True
                self._refusals_timer.start()
        if wait <= 0:
            self.write_refusals()

    def _write_refusals_later(self) -> None:
        with self._refusals_lock:
            self._refusals_timer = None
            if self._closed:  # close() wrote them
                return
        with contextlib.suppress(Exception):  # kept in memory for the next write
            self.write_refusals()

    def write_refusals(self) -> None:
        """Write the refusals counted in memory since the last write (added to the stored
        counts, in one transaction; kept for the next write if this one fails)."""
        with self._refusals_lock:
            pending, self._refusals = self._refusals, Counter()
            self._refusals_written = time.monotonic()
        if not pending:
            return
        try:
            with self.writing() as connection:
                for (org_id, day, reason), count in sorted(pending.items()):
                    _add_refusals(connection, org_id, day, reason, count)
        except BaseException:
            with self._refusals_lock:
                self._refusals.update(pending)
            raise

    def refusal_counts(self, org: Org | None = None) -> dict[str, int]:
        """Refused requests by reason: all of them, or those naming no organisation and ``org``'s
        (this process's counts written first)."""
        self.write_refusals()
        query = sa.select(refusals.c.reason, sa.func.sum(refusals.c.count)).group_by(
            refusals.c.reason
        )
        if org is not None:
            query = query.where(refusals.c.org_id.in_((NO_ORG, org.id)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {reason: int(total) for reason, total in rows}

    def count_if_elsewhere(self, org: Org, session_id: str) -> None:
        """Count, for each other organisation that holds ``session_id``, one refused request
        naming it with ``org``'s key. The caller's answer is the same as for an unknown
        session, and only the session's organisation sees the count."""
        owners = (
            sa.select(items.c.org_id)
            .where(
                items.c.org_id.in_(sa.select(orgs.c.id).where(orgs.c.id != org.id)),
                items.c.session_id == session_id,
            )
            .distinct()
        )
        with self.engine.connect() as connection:
            found = list(connection.execute(owners).scalars())
        for owner in found:
            self.count_refusal(OTHER_ORGANISATION, owner)

    # Items

    def insert(self, org: Org, rows: Sequence[Item]) -> None:
        """Store ``rows`` in one transaction: all of them or none."""
        self._store([_row(org, row) for row in rows])

    def insert_records(self, org: Org, filing: Filing, records: Records) -> None:
        """Store each ``(session, bytes)`` record as an item filed under ``filing``, in one
        transaction: all of them or none.

        Raises:
            AlreadyStored: ``filing`` has an idempotency key, and its records are stored.
        """
        self.insert_batches([(org, filing, records)])

    def insert_batches(self, batches: Sequence[tuple[Org, Filing, Records]]) -> None:
        """Store the records of several requests (each with its organisation and filing) in one
        transaction: all of them or none.

        Raises:
            AlreadyStored: a request's idempotency key is stored already, or two of the
                requests have the same one (store them one by one to tell which).
        """
        self._store(
            [
                (
                    org.id,
                    session,
                    filing.kind,
                    filing.retention_class,
                    filing.received_at,
                    filing.expires_at,
                    None
                    if filing.idempotency_key is None
                    else record_key(filing.idempotency_key, n),
                    None,  # blob
                    len(body),
                    body,
                )
                for org, filing, records in batches
                for n, (session, body) in enumerate(records)
            ]
        )

    def _store(self, values: list[tuple[Any, ...]]) -> None:
        """Insert ``values`` (in the order of :data:`ITEM_COLUMNS`) in one transaction.

        The rows go to the driver as they are, without SQLAlchemy's processing of each row's
        parameters (for a batch of small records that cost as much as the insert): on SQLite
        in one ``executemany`` (its loop in C), on PostgreSQL in one ``COPY`` (a quarter of
        the time of psycopg's ``executemany``, which sends each row as a statement).
        """
        if not values:
            return
        try:
            with self.writing() as connection:
                if self.dialect == "postgresql":
                    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                    with cursor.copy(_COPY) as copy:
                        for row in values:
                            copy.write_row(row)
                else:
                    connection.exec_driver_sql(_INSERT, values)
        except Exception as error:
            if _refused_once(error):
                raise AlreadyStored("an idempotency key is stored already") from error
            raise

    def insert_once(self, org: Org, row: Item) -> bool:
        """Store ``row`` unless its idempotency key is stored; ``False``: already stored."""
        with self.writing() as connection:
            if self._has(connection, org, row.kind, row.idempotency_key):
                return False
            try:
                with connection.begin_nested():
                    connection.execute(items.insert().values(**_values(org, row)))
            except sa.exc.IntegrityError:
                return False
        return True

    def has(self, org: Org, kind: str, key: str) -> bool:
        with self.engine.connect() as connection:
            return self._has(connection, org, kind, key)

    @staticmethod
    def _has(connection: Connection, org: Org, kind: str, key: str | None) -> bool:
        found = connection.execute(
            sa.select(items.c.id).where(
                items.c.org_id == org.id, items.c.kind == kind, items.c.idempotency_key == key
            )
        ).first()
        return found is not None

    def session(self, org: Org, session_id: str) -> dict[str, Any]:
        """What is stored about one session of ``org``: counts by kind, times, classes."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    items.c.kind,
                    items.c.retention_class,
                    sa.func.count(),
                    sa.func.min(items.c.received_at),
                    sa.func.max(items.c.received_at),
                    sa.func.max(items.c.expires_at),
                )
                .where(items.c.org_id == org.id, items.c.session_id == session_id)
                .group_by(items.c.kind, items.c.retention_class)
            ).all()
        counts: dict[str, int] = {}
        classes: dict[str, dict[str, Any]] = {}
        oldest = newest = None
        for kind, retention, count, first, last, expires in rows:
            counts[kind] = counts.get(kind, 0) + count
            entry = classes.setdefault(retention, {"items": 0, "expires_at": None})
            entry["items"] += count
            if expires is not None:
                entry["expires_at"] = max(entry["expires_at"] or 0.0, expires)
            oldest = first if oldest is None else min(oldest, first)
            newest = last if newest is None else max(newest, last)
        return {
            "session_id": session_id,
            "items": counts,
            "oldest": _iso(oldest),
            "newest": _iso(newest),
            "retention": {
                name: {"items": entry["items"], "expires_at": _iso(entry["expires_at"])}
                for name, entry in sorted(classes.items())
            },
        }

    def session_blobs(self, org: Org, session_id: str) -> list[str]:
        """The blobs the rows of one session of ``org`` name (deleted before the rows are)."""
        where = sa.and_(
            items.c.org_id == org.id, items.c.session_id == session_id, items.c.blob.is_not(None)
        )
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(items.c.blob).where(where)).scalars()
            return [str(name) for name in found]

    def delete_session(
        self, org: Org, session_id: str, blobs_deleted: Collection[str] = ()
    ) -> dict[str, int]:
        """Delete the rows of one session of ``org`` (one statement, by the session index),
        those with a blob only when it is among ``blobs_deleted``: a bundle stored since the
        session's blobs were deleted stays whole, row and blob. Returns counts by kind."""
        where = sa.and_(
            items.c.org_id == org.id,
            items.c.session_id == session_id,
            sa.or_(items.c.blob.is_(None), items.c.blob.in_(list(blobs_deleted))),
        )
        with self.writing() as connection:
            gone = connection.execute(items.delete().where(where).returning(items.c.kind)).all()
        return dict(Counter(kind for (kind,) in gone))

    def retention(self, org: Org) -> dict[str, dict[str, Any]]:
        """Per class: how many items are kept and the age of the oldest (seconds)."""
        now = self.clock()
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    items.c.retention_class, sa.func.count(), sa.func.min(items.c.received_at)
                )
                .where(items.c.org_id == org.id)
                .group_by(items.c.retention_class)
            ).all()
        return {
            name: {"items": int(count), "oldest_age_seconds": round(now - oldest, 3)}
            for name, count, oldest in sorted(rows)
        }

    def rows(self, org: Org | None = None) -> list[Mapping[str, Any]]:
        """Every stored item (for tests and inspection)."""
        query = sa.select(items).order_by(items.c.id)
        if org is not None:
            query = query.where(items.c.org_id == org.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def _add_refusals(connection: Connection, org_id: int, day: str, reason: str, count: int) -> None:
    """Add ``count`` to the refusals of ``org_id`` on ``day`` for ``reason`` (the day's first
    row made if missing, by this or, meanwhile, another process)."""
    this = sa.and_(refusals.c.org_id == org_id, refusals.c.day == day, refusals.c.reason == reason)
    more = refusals.update().where(this).values(count=refusals.c.count + count)
    if connection.execute(more).rowcount:
        return
    try:
        with connection.begin_nested():
            connection.execute(
                refusals.insert().values(org_id=org_id, day=day, reason=reason, count=count)
            )
    except sa.exc.IntegrityError:  # another process wrote the day's first meanwhile
        connection.execute(more)


def _row(org: Org, row: Item) -> tuple[Any, ...]:
    """``row``'s values in the order of :data:`ITEM_COLUMNS`."""
    return (
        org.id,
        row.session_id,
        row.kind,
        row.retention_class,
        row.received_at,
        row.expires_at,
        row.idempotency_key,
        row.blob,
        row.size,
        row.body,
    )


def _values(org: Org, row: Item) -> dict[str, Any]:
    """``row``'s values by column name."""
    return dict(zip(ITEM_COLUMNS, _row(org, row), strict=True))


def _refused_once(error: BaseException) -> bool:
    """Whether ``error`` is the constraint ``items_once`` refusing a row: psycopg's
    ``UniqueViolation`` from the ``COPY`` (raw, not wrapped by SQLAlchemy), or SQLite's
    ``IntegrityError`` (wrapped) naming the constraint's columns."""
    found = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    if getattr(found, "sqlstate", None) == "23505":  # unique_violation
        return getattr(getattr(found, "diag", None), "constraint_name", None) == "items_once"
    return isinstance(found, sqlite3.IntegrityError) and "items.idempotency_key" in str(found)


def _terms(row: Any) -> OrgTerms:
    try:
        account = RetentionClass(row.account_class)
    except ValueError:
        account = RetentionClass.COMMERCIAL
    return OrgTerms(account, bool(row.zero_data_retention), bool(row.product_feedback))


def _describe(terms: OrgTerms) -> str:
    return (
        f"{terms.account_class}, zero data retention {'on' if terms.zero_data_retention else 'off'}, "
        f"product feedback {'on' if terms.product_feedback else 'off'}"
    )


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
