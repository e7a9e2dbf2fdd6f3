"""Writes on SQLite: each takes the one write lock as it begins, waiting for another writer
without failing, and a block that fails leaves nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from airlock.collector.db import Database, Item
from airlock.policy.collection import OrgTerms


def _item(session: str) -> Item:
    return Item(session, "logs", "commercial", 1.0, 2.0, 1, b"x")


def test_write_waits_for_the_other_writer(tmp_path: Path) -> None:
    """An insert while another connection holds the write lock waits, and is stored once the
    other commits; the other's write is kept too."""
    path = tmp_path / "collector.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    org = database.org_for_key(database.create_org("acme", OrgTerms()))
    assert org is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE orgs SET created_at = 5")
    done = threading.Event()
    writer = threading.Thread(target=lambda: (database.insert(org, [_item("s")]), done.set()))
    writer.start()
    try:
        assert not done.wait(0.5), "the insert did not wait for the write lock"
        other.execute("COMMIT")
        assert done.wait(30)
    finally:
        writer.join(30)
        other.close()
    assert [row["session_id"] for row in database.rows()] == ["s"]
    with database.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT created_at FROM orgs")).scalar() == 5
    database.close()


def test_failed_block_leaves_nothing(tmp_path: Path) -> None:
    """An error inside a write rolls it back and frees the lock for the next writer."""
    database = Database(f"sqlite:///{tmp_path / 'collector.sqlite3'}")
    database.migrate()
    org = database.org_for_key(database.create_org("acme", OrgTerms()))
    assert org is not None
    with pytest.raises(RuntimeError), database.writing() as connection:
        connection.execute(sa.text("DELETE FROM orgs"))
        raise RuntimeError("stop")
    started = time.monotonic()
    database.insert(org, [_item("after")])
    assert time.monotonic() - started < 10
    assert database.has_orgs() and [row["session_id"] for row in database.rows()] == ["after"]
    database.close()
