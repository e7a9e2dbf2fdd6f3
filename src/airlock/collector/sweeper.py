"""The retention sweeper: deletes what is past its expiry, in batches that never block ingest.

Theory of operation
-------------------
Items with a blob (bundles) go first, a batch at a time, found by their own index
(``items_blob_expiry``): the blobs, then their rows, so a sweep cut short leaves a row to find
again, never an orphaned blob past its period.

The rest go in batches, each its own short transaction:

* On SQLite, the first rows by the expiry index (``WHERE expires_at <= now ORDER BY
  expires_at, id LIMIT n``) are counted by kind and deleted, both in the transaction that holds
  the write lock; since SQLite removes index entries as it deletes, every batch starts at the
  first expired row still there.
* On PostgreSQL, deleted rows stay in the index until vacuumed, so a batch found from the start
  of the index would walk past every row the earlier batches deleted. Each batch starts where
  the last one ended instead, by the index on ``(expires_at, id)``, and deletes its rows by
  address (``ctid``), without a second look-up by ``id``. When expired rows are most of the
  table (at least :data:`DENSE` a page on average, counted by the index up to that many),
  the sweep instead reads the table once in order of address, a range of pages a batch
  (``ctid`` ranges): as fast as one plain ``DELETE``, where the index would fetch row by row.
  Such a batch counts its rows by kind (a ``SELECT``) and then deletes them (a ``DELETE``
  without ``RETURNING``: counting a ``RETURNING`` by kind cost about as much as the delete
  itself), both in one ``REPEATABLE READ``
  transaction so that they see the same rows; a batch whose rows another sweep or a session
  deletion took meanwhile fails to serialize and is done again.

Counting by kind is a second look at every row, about a third of a sweep's time. Only
``airlock serve --sweep`` prints what went by kind; the sweep on a schedule
(:func:`sweep_every`) asks for the total (``by_kind=False``), and each batch is then one
``DELETE`` whose row count is the batch's total, on both databases.

SQLite has one writer: while a batch runs, ingest waits for it, asking again every millisecond
(:meth:`Database.writing`), and gets the lock in the pause of :data:`PAUSE_SECONDS` after each
batch; the sweep never holds it across batches. PostgreSQL's deletes lock only their own rows,
but every commit of ingest writes out the write-ahead log before it, and a batch of deleted
pages is mostly full-page images in that log (8 KB a page, at the first change after a
checkpoint): 1,000 pages a batch made ingest's commits wait 60-100 ms behind the sweep's log
writes. So a SQLite batch and a PostgreSQL batch by address are sized by time: the first is
:data:`BATCH` rows (or :data:`FIRST_PAGES` pages), and each next one as many as take about
:data:`BATCH_SECONDS` at the pace of the last (:func:`next_size`), so ingest waits at most
about that long on a fast or a slow machine, and the pauses stay a small share of the sweep (a
fixed 1,000 rows, about 3 ms on a quiet machine, made the 2 ms pauses most of it). PostgreSQL
needs no pause between batches, and a sweep there keeps one connection for all of its
batches (each its own transaction), where one from the pool would be checked, a round trip,
before each. Several collector processes may sweep at once: a row deleted by another is simply not
counted twice.

:func:`remove_strays` deletes stored bundles that no row names, once older than
:data:`STRAY_SECONDS`: a stop between storing a bundle and writing its row leaves one, which no
sweep by expiry would find.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from airlock.collector.db import Database
from airlock.collector.schema import items
from airlock.collector.service import Collector

BATCH = 1000
"""Rows the first batch deletes on SQLite; the next ones take about :data:`BATCH_SECONDS`."""
BATCH_SECONDS = 0.01
"""How long one batch should take (on SQLite, hold the write lock: ingest waits that long at most)."""
MIN_BATCH = 100
MAX_BATCH = 20_000
"""Bounds of a SQLite batch, in rows."""
BATCH_SHARED = 10_000
"""Rows one batch deletes on PostgreSQL, where a delete holds no lock that ingest needs."""
FIRST_PAGES = 100
"""Table pages (8 KB) the first PostgreSQL batch reads when the sweep goes by address; the next
ones take about :data:`BATCH_SECONDS`."""
MIN_PAGES = 10
MAX_PAGES = 10_000
"""Bounds of a PostgreSQL batch by address, in pages."""
RETRIES = 5
"""Times a PostgreSQL batch is done again after another transaction deleted some of its rows."""
DENSE = 1
"""Expired rows a table page holds on average from which a PostgreSQL sweep goes by address."""
PAUSE_SECONDS = 0.002
"""The pause between two batches, in which a waiting writer takes the lock."""
BLOB_BATCH = 200
"""Expired items with a blob handled at a time (each blob is deleted on its own)."""


ALL_KINDS = "items"
"""The one key of what :func:`sweep` returns when it does not count by kind."""


def sweep(
    collector: Collector,
    *,
    batch: int | None = None,
    now: float | None = None,
    by_kind: bool = True,
) -> dict[str, int]:
    """Delete every item whose expiry has passed; returns how many went, by kind.

    ``batch``: rows a statement deletes (default :data:`BATCH` on SQLite,
    :data:`BATCH_SHARED` on PostgreSQL). ``by_kind=False``: only the total, under
    :data:`ALL_KINDS` (bundles, deleted one by one, are still counted by kind): each batch's
    rows are then deleted without being counted first, which is about a third of a sweep's
    time; the sweep on a schedule does so, ``airlock serve --sweep`` counts by kind."""
    db = collector.db
    moment = collector.clock() if now is None else now
    removed: Counter[str] = Counter()
    while found := expired_blobs(db, moment, BLOB_BATCH):  # bundles: the blob first
        for _, blob in found:
            collector.blobs.delete(blob)
        removed.update(delete_ids(db, [item for item, _ in found]))
    pause = PAUSE_SECONDS if db.dialect == "sqlite" else 0.0
    for kinds in batches(db, moment, batch, by_kind=by_kind):
        removed.update(kinds)
        time.sleep(pause)
    return {kind: count for kind, count in removed.items() if count}


BLOB_NAME = re.compile(r"[0-9a-f]{64}\.tar\.gz")
"""The names the collector gives stored bundles (:func:`airlock.collector.feedback.blob_name`)."""
STRAY_SECONDS = 3600.0
"""Age past which a stored bundle that no item names is a stray (see :func:`remove_strays`)."""


def remove_strays(collector: Collector, *, now: float | None = None) -> int:
    """Delete the stored bundles no item names that are older than :data:`STRAY_SECONDS`;
    returns how many went.

    A bundle is stored whole before its row is written, so a stop between the two leaves one
    that no row names, and that no sweep by expiry would ever find. One younger than the
    margin may be an upload whose row is being written now, and is left. Only names the
    collector makes (:data:`BLOB_NAME`) are looked at: anything else in the folder or the
    bucket is not the collector's to delete.

    Collectors with databases of their own must not share a bucket prefix: each would take
    the other's bundles for strays."""
    moment = collector.clock() if now is None else now
    with collector.db.engine.connect() as connection:
        named = set(
            connection.execute(sa.select(items.c.blob).where(items.c.blob.is_not(None))).scalars()
        )
    gone = 0
    for name, stored in collector.blobs.listing():
        if not BLOB_NAME.fullmatch(name):  # not one the collector made: never touched
            continue
        if name not in named and stored <= moment - STRAY_SECONDS:
            collector.blobs.delete(name)
            gone += 1
    return gone


def batches(
    db: Database, now: float, size: int | None = None, *, by_kind: bool = True
) -> Iterator[Counter[str]]:
    """Delete what expired by ``now``, a batch (one transaction) at a time; yields each
    batch's count by kind (``by_kind=False``: its total, under :data:`ALL_KINDS`)."""
    if db.dialect != "postgresql":
        yield from _by_expiry(db, now, size, by_kind)
    elif size is None and _dense(db, now):
        yield from _by_address(db, now, by_kind)
    else:
        yield from _after_key(db, now, size or BATCH_SHARED)


def expired_blobs(db: Database, now: float, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` expired items that have a blob: id and blob name."""
    with db.engine.connect() as connection:
        return [
            (row.id, row.blob)
            for row in connection.execute(
                sa.select(items.c.id, items.c.blob)
                .where(items.c.expires_at <= now, items.c.blob.is_not(None))
                .limit(limit)
            )
        ]


def delete_ids(db: Database, ids: Sequence[int]) -> Counter[str]:
    """Delete the items ``ids``; how many of each kind were deleted."""
    with db.writing() as connection:
        deleted = items.delete().where(items.c.id.in_(ids)).returning(items.c.kind)
        return Counter(connection.execute(deleted).scalars().all())


_CHOSEN = (
    sa.select(items.c.id)
    .where(items.c.expires_at <= sa.bindparam("now"))
    .order_by(items.c.expires_at, items.c.id)
    .limit(sa.bindparam("size"))
    .scalar_subquery()
)
_COUNT_CHOSEN = (
    sa.select(items.c.kind, sa.func.count().label("n"))
    .where(items.c.id.in_(_CHOSEN))
    .group_by(items.c.kind)
)
_DELETE_CHOSEN = items.delete().where(items.c.id.in_(_CHOSEN))
"""One SQLite batch: the first ``size`` expired rows by the expiry index, counted by kind and
deleted in one transaction that holds the write lock, so both statements see the same rows.
(Counting in the database: a ``RETURNING`` of every row, counted here, cost a quarter more.)"""


def _by_expiry(db: Database, now: float, size: int | None, by_kind: bool) -> Iterator[Counter[str]]:
    """SQLite: batches by the expiry index, until one finds fewer rows than it may take.

    ``size``: rows a batch takes; ``None``: :data:`BATCH` at first, then as many as take about
    :data:`BATCH_SECONDS` (:func:`next_size`)."""
    rows = size or BATCH
    while True:
        with db.writing() as connection:
            started = time.monotonic()
            bound = {"now": now, "size": rows}
            if by_kind:
                kinds = _kinds(connection.execute(_COUNT_CHOSEN, bound).all())
                connection.execute(_DELETE_CHOSEN, bound)
            else:
                kinds = Counter({ALL_KINDS: connection.execute(_DELETE_CHOSEN, bound).rowcount})
        held = time.monotonic() - started  # the lock's time alone, not the pause that follows
        yield kinds
        if kinds.total() < rows:
            return
        if size is None:
            rows = next_size(rows, held)


def _kinds(rows: Sequence[sa.Row[Any]]) -> Counter[str]:
    """A batch's count by kind, from its rows of ``kind`` and ``n`` (counted in the database)."""
    return Counter({str(row.kind): int(row.n) for row in rows})


def next_size(rows: int, seconds: float, least: int = MIN_BATCH, most: int = MAX_BATCH) -> int:
    """The size of the next batch (rows, or pages), after one of ``rows`` took ``seconds``: as
    many as take :data:`BATCH_SECONDS` at that pace, at most twice as many as before, within
    ``least`` and ``most`` (by default :data:`MIN_BATCH` and :data:`MAX_BATCH` rows)."""
    paced = rows * BATCH_SECONDS / max(seconds, 1e-6)
    return int(min(most, 2 * rows, max(least, paced)))


_DELETE_AFTER = sa.text(
    "WITH gone AS ("
    " DELETE FROM items WHERE ctid = ANY(ARRAY("
    "  SELECT ctid FROM items WHERE expires_at <= :now AND (expires_at, id) > (:expires, :id)"
    "  ORDER BY expires_at, id LIMIT :limit)) AND expires_at <= :now"
    " RETURNING kind, expires_at, id),"
    " last AS (SELECT expires_at, id FROM gone ORDER BY expires_at DESC, id DESC LIMIT 1) "
    "SELECT gone.kind, count(*) AS n, last.expires_at, last.id FROM gone, last "
    "GROUP BY gone.kind, last.expires_at, last.id"
)
"""One PostgreSQL batch: the next rows by ``(expires_at, id)`` after the key, deleted by
address; answers the count of each kind and the batch's last key (counted in the database,
not row by row here)."""

_INDEX_ORDER = (
    sa.text("SET LOCAL enable_bitmapscan = off"),
    sa.text("SET LOCAL enable_sort = off"),
    sa.text("SET LOCAL jit = off"),
)
"""Settings for one batch's transaction: the batch is read in the index's order. Without them
the planner, misjudging how many rows follow the key, may read every expired row left in
each batch (a bitmap scan) and sort them, which makes the sweep quadratic. (The cost that
puts a sort out of favour would also make it compile the query, 150 ms a batch: no JIT.)"""


def _after_key(db: Database, now: float, size: int) -> Iterator[Counter[str]]:
    """PostgreSQL: ``size`` expired rows at a time in index order, each batch after the last."""
    expires, last = float("-inf"), 0
    with db.engine.connect() as connection:  # one connection, a transaction a batch
        while True:
            bound = _DELETE_AFTER.bindparams(now=now, limit=size, expires=expires, id=last)
            with connection.begin():
                for setting in _INDEX_ORDER:
                    connection.execute(setting)
                rows = connection.execute(bound).all()
            kinds = _kinds(rows)
            yield kinds
            if kinds.total() < size:
                return
            expires, last = float(rows[0].expires_at), int(rows[0].id)


_PAGES = sa.text("SELECT pg_relation_size('items') / current_setting('block_size')::int")
_EXPIRED_UP_TO = sa.text(
    "SELECT count(*) FROM (SELECT 1 FROM items WHERE expires_at <= :now LIMIT :most) AS expired"
)
_IN_PAGES = "ctid >= CAST(:first AS tid) AND ctid < CAST(:end AS tid) AND expires_at <= :now"
_COUNT_PAGES = sa.text(
    f"SELECT kind, count(*) AS n FROM items WHERE {_IN_PAGES} GROUP BY kind"  # noqa: S608
)
_DELETE_PAGES = sa.text(f"DELETE FROM items WHERE {_IN_PAGES}")  # noqa: S608
_SAME_ROWS = sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
SERIALIZATION_FAILURE = "40001"
"""PostgreSQL's SQLSTATE for a transaction that saw rows another one changed meanwhile."""


def _dense(db: Database, now: float) -> bool:
    """PostgreSQL: whether expired rows number at least :data:`DENSE` a table page."""
    with db.engine.connect() as connection:
        most = DENSE * int(connection.execute(_PAGES).scalar_one())
        found = connection.execute(_EXPIRED_UP_TO.bindparams(now=now, most=most)).scalar_one()
    return most > 0 and int(found) >= most


def _by_address(db: Database, now: float, by_kind: bool) -> Iterator[Counter[str]]:
    """PostgreSQL: the table read once in order of address, a range of pages a batch, the
    first :data:`FIRST_PAGES` and each next one sized by time (:func:`next_size`). Pages
    added meanwhile hold rows received since, which have not expired."""
    with db.engine.connect() as connection:  # one connection, a transaction a batch
        pages = int(connection.execute(_PAGES).scalar_one())
        connection.commit()
        first, width = 0, FIRST_PAGES
        while first <= pages:
            started = time.monotonic()
            kinds = _delete_pages(connection, now, first, first + width, by_kind)
            took = time.monotonic() - started
            yield kinds
            first += width
            width = next_size(width, took, MIN_PAGES, MAX_PAGES)


def _delete_pages(
    connection: sa.Connection, now: float, first: int, end: int, by_kind: bool = True
) -> Counter[str]:
    """Count by kind and delete the expired rows of pages ``first`` to ``end`` (excluded), in
    one transaction that sees one snapshot; done again if another transaction deleted some
    of them meanwhile (at most :data:`RETRIES` times). ``by_kind=False``: delete them, one
    statement, and count them as it does (what another deleted first is not counted)."""
    bound = {"now": now, "first": f"({first},0)", "end": f"({end},0)"}
    if not by_kind:
        with connection.begin():
            return Counter({ALL_KINDS: connection.execute(_DELETE_PAGES, bound).rowcount})
    attempt = 0
    while True:
        try:
            with connection.begin():
                connection.execute(_SAME_ROWS)
                kinds = _kinds(connection.execute(_COUNT_PAGES, bound).all())
                connection.execute(_DELETE_PAGES, bound)
            return kinds
        except sa.exc.DBAPIError as error:
            attempt += 1
            if getattr(error.orig, "sqlstate", None) != SERIALIZATION_FAILURE or attempt > RETRIES:
                raise


def sweep_every(
    collector: Collector, seconds: float, stopping: threading.Event
) -> threading.Thread:
    """Sweep now and then every ``seconds`` until ``stopping`` is set, in a daemon thread,
    without counting by kind (the total goes to stderr when something went)."""

    def loop() -> None:
        while True:
            try:
                removed = sum(sweep(collector, by_kind=False).values())
                strays = remove_strays(collector)
                if removed or strays:
                    print(
                        f"airlock serve: swept {removed} items past their retention period"
                        + (f" and {strays} stored bundles no item named" if strays else ""),
                        file=sys.stderr,
                        flush=True,
                    )
            except Exception as error:  # a failed sweep is tried again next time
                print(
                    f"airlock serve: WARNING: the retention sweep failed ({error}); trying again in {seconds:g} s",
                    file=sys.stderr,
                    flush=True,
                )
            if stopping.wait(seconds):
                return

    thread = threading.Thread(target=loop, name="retention-sweep", daemon=True)
    thread.start()
    return thread
