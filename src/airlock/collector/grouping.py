"""Ingest's inserts, grouped: the records of requests that arrive while an insert is under way
are stored together, in the next transaction.

Theory of operation
-------------------
Every OTLP and Sentry request is parsed in the event loop and its records stored in one
transaction from a thread of the pool. With several clients sending at once, most of a
request's cost on SQLite was not the insert itself but what surrounds it: a trip to the pool,
a wait for the process's one writer, ``BEGIN IMMEDIATE`` and ``COMMIT``, and the pages of the
table's and indexes' ends written to the WAL again by each transaction.

:class:`GroupedInserts` keeps the requests that arrive while a transaction is under way; when
it ends, all that waited (up to :data:`MAX_GROUP_ROWS` records) go to the database in one
transaction, in one trip to the pool, and each request is answered. A lone request is stored
at once, as before. Each request's records are still stored all or none: a group is one
transaction, and when it fails, each of its requests is tried again alone, so that each is
answered with its own outcome.

One :class:`GroupedInserts` serves one event loop (the server's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from airlock._tasks import create_task
from airlock.collector.db import Database, Filing, Org, Records

MAX_GROUP_ROWS = 10_000
"""Records one grouped transaction stores at most (a request's own may be more)."""

Batch = tuple[Org, Filing, Records]
"""One request's records: its organisation, their filing, and each ``(session, bytes)``."""


class GroupedInserts:
    """Stores each request's records, in one transaction with those of requests waiting too."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Batch, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def insert_records(self, org: Org, filing: Filing, records: Records) -> None:
        """Store ``records`` (all or none); returns once they are committed.

        Raises:
            Exception: what storing them raised (the database's error).
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(((org, filing, records), future))
        if self._draining is None:
            self._draining = create_task(self._drain(), name="grouped inserts")
        await future

    async def _drain(self) -> None:
        group: list[tuple[Batch, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group = self._take()
                outcomes = await run_in_threadpool(self._store, [batch for batch, _ in group])
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():  # its request went away
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)
                group = []
        finally:
            self._draining = None
            stopped = RuntimeError("the collector stopped before these records were stored")
            for _, future in [*group, *self._waiting]:  # none left unless cancelled
                if not future.done():
                    future.set_exception(stopped)

    def _take(self) -> list[tuple[Batch, asyncio.Future[None]]]:
        """The first waiting requests, as many as fit :data:`MAX_GROUP_ROWS` (at least one)."""
        rows = 0
        for count, ((_, _, records), _) in enumerate(self._waiting):
            rows += len(records)
            if count and rows > MAX_GROUP_ROWS:
                break
        else:
            count = len(self._waiting)
        group, self._waiting = self._waiting[:count], self._waiting[count:]
        return group

    def _store(self, batches: Sequence[Batch]) -> list[Exception | None]:
        """Store ``batches`` in one transaction, else each alone; each one's outcome."""
        if len(batches) > 1:
            try:
                self.db.insert_batches(batches)
                return [None] * len(batches)
            except Exception:  # noqa: S110 (each is tried alone next, and answered with its own error)
                pass
        outcomes: list[Exception | None] = []
        for batch in batches:
            try:
                self.db.insert_batches([batch])
                outcomes.append(None)
            except Exception as error:
                outcomes.append(error)
        return outcomes
