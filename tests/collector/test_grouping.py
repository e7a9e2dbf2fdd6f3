"""Ingest's grouped inserts, on SQLite and PostgreSQL: requests that wait together are stored
together, each with its own organisation and filing, and a request whose records cannot be
stored fails alone."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from airlock.collector.db import Database, Filing
from airlock.collector.grouping import GroupedInserts
from airlock.policy.collection import OrgTerms

LOGS = Filing("logs", "commercial", 100.0, 200.0)
METRICS = Filing("metrics", "commercial", 101.0, None)


def _database(url: str) -> Database:
    database = Database(url)
    database.migrate()
    return database


def test_waiting_requests_are_stored_each_with_its_own_filing(database_url: str) -> None:
    database = _database(database_url)
    try:
        acme = database.org_for_key(database.create_org("acme", OrgTerms()))
        umbrella = database.org_for_key(database.create_org("umbrella", OrgTerms()))
        assert acme is not None and umbrella is not None
        inserts = GroupedInserts(database)

        async def send() -> None:
            await asyncio.gather(
                inserts.insert_records(acme, LOGS, [("s-1", b"a"), ("s-1", b"b")]),
                inserts.insert_records(umbrella, METRICS, [(None, b"c")]),
                *(inserts.insert_records(acme, LOGS, [("s-2", bytes([n]))]) for n in range(20)),
            )

        asyncio.run(send())
        stored = [
            (row["org_id"], row["session_id"], row["kind"], row["expires_at"], row["body"])
            for row in database.rows()
        ]
        assert len(stored) == 23
        assert stored[:3] == [
            (acme.id, "s-1", "logs", 200.0, b"a"),
            (acme.id, "s-1", "logs", 200.0, b"b"),
            (umbrella.id, None, "metrics", None, b"c"),
        ]
        assert sorted(body for *_, body in stored[3:]) == [bytes([n]) for n in range(20)]
    finally:
        database.close()


def test_a_request_that_cannot_be_stored_fails_alone(database_url: str) -> None:
    """Three requests wait together; the second's record cannot be bound by the driver (not
    bytes): it fails with the database's error, and the other two are stored."""
    database = _database(database_url)
    try:
        org = database.org_for_key(database.create_org("acme", OrgTerms()))
        assert org is not None
        inserts = GroupedInserts(database)
        unbindable = cast(Any, object())

        async def send() -> list[BaseException | None]:
            return await asyncio.gather(
                inserts.insert_records(org, LOGS, [("s", b"first")]),
                inserts.insert_records(org, LOGS, [("s", b"ok"), ("s", unbindable)]),
                inserts.insert_records(org, LOGS, [("s", b"third")]),
                return_exceptions=True,
            )

        first, second, third = asyncio.run(send())
        assert first is None and third is None
        assert isinstance(second, Exception)
        assert [row["body"] for row in database.rows()] == [b"first", b"third"]
    finally:
        database.close()


@pytest.mark.parametrize("count", [1, 3])
def test_a_lone_request_is_stored_at_once(database_url: str, count: int) -> None:
    """Requests one after another (none waiting) are each stored before their answer."""
    database = _database(database_url)
    try:
        org = database.org_for_key(database.create_org("acme", OrgTerms()))
        assert org is not None
        inserts = GroupedInserts(database)

        async def send() -> list[int]:
            seen = []
            for n in range(count):
                await inserts.insert_records(org, LOGS, [("s", bytes([n]))])
                seen.append(len(database.rows()))
            return seen

        assert asyncio.run(send()) == list(range(1, count + 1))
    finally:
        database.close()
