"""Refused requests counted in memory and written at most once a second: a flood without a
key costs the database one write a second, and no count is lost at a read or at close."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airlock.collector import db as db_module
from airlock.collector.db import NO_KEY, Database
from airlock.collector.schema import refusals


def _stored(database: Database) -> int:
    """The refusals in the table itself, past what the process holds in memory."""
    with database.engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.sum(refusals.c.count))).scalar_one()
    return int(total or 0)


def _opened(url: str) -> Database:
    database = Database(url)
    database.migrate()
    return database


def test_a_flood_is_written_once_and_lost_nowhere(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "REFUSALS_FLUSH_SECONDS", 3600.0)
    database = _opened(database_url)
    for _ in range(100):
        database.count_refusal(NO_KEY)
    assert _stored(database) == 0  # held: no write per refused request
    assert database.refusal_counts() == {NO_KEY: 100}  # a read writes what is held first
    assert _stored(database) == 100
    for _ in range(5):
        database.count_refusal(NO_KEY)
    database.close()  # and so does close
    reopened = Database(database_url)
    try:
        assert _stored(reopened) == 105
    finally:
        reopened.close()


def test_counts_are_written_once_the_second_is_over(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "REFUSALS_FLUSH_SECONDS", 0.0)
    database = _opened(database_url)
    try:
        database.count_refusal(NO_KEY)
        database.count_refusal(NO_KEY)
        assert _stored(database) == 2
    finally:
        database.close()


def test_a_lone_refusal_is_written_within_the_second(database_url: str) -> None:
    """With no other refusal after it, a count still reaches the table, for the other
    collector processes to read."""
    import time

    database = _opened(database_url)
    try:
        database.refusal_counts()  # a write just now: the next one waits for its second
        database.count_refusal(NO_KEY)
        deadline = time.monotonic() + 10
        while _stored(database) != 1:
            assert time.monotonic() < deadline, "the count was never written"
            time.sleep(0.05)
    finally:
        database.close()
