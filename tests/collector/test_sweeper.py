"""The sweep over many rows, expired and kept ones interleaved, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from airlock.collector.blobs import FolderBlobs
from airlock.collector.db import Database, Item
from airlock.collector.service import Collector
from airlock.collector.sweeper import BATCH_SECONDS, MAX_BATCH, MIN_BATCH, next_size, sweep
from airlock.policy.collection import OrgTerms

NOW = 1_780_000_000.0


@pytest.mark.parametrize("expired_share", [2, 50], ids=["mostly_expired", "few_expired"])
def test_sweep_removes_exactly_the_expired(
    database_url: str, tmp_path: Path, expired_share: int
) -> None:
    """Every expired row goes and every other stays, whether the expired are most of the
    table (PostgreSQL reads it by address, several batches) or few (by the expiry index)."""
    database = Database(database_url, clock=lambda: NOW)
    database.migrate()
    org = database.org_for_key(database.create_org("acme", OrgTerms()))
    assert org is not None
    body = b"r" * 1000
    expired = Counter[str]()
    for start in range(0, 30_000, 1000):
        rows = []
        for n in range(start, start + 1000):
            gone = n % expired_share == 0
            kind = "logs" if n % 3 else "metrics"
            expires = NOW - 1 if gone else NOW + 1
            rows.append(Item(f"s-{n % 97}", kind, "commercial", NOW - 10, expires, 1, body))
            expired[kind] += gone
        database.insert(org, rows)
    collector = Collector(
        database, FolderBlobs(tmp_path / "blobs"), tmp_path / "incoming", clock=lambda: NOW
    )
    try:
        assert sweep(collector) == +expired
        left = database.rows(org)
        assert len(left) == 30_000 - expired.total()
        assert all(row["expires_at"] > NOW for row in left)
        assert sweep(collector) == {}
    finally:
        database.close()


def test_two_sweeps_at_once_count_each_row_once(database_url: str, tmp_path: Path) -> None:
    """Two collectors (as two processes would) sweeping the same rows at the same time remove
    each expired row once between them, and count it once: a batch whose rows the other
    took meanwhile is done again, not counted twice nor failed."""
    databases = [Database(database_url, clock=lambda: NOW) for _ in range(2)]
    databases[0].migrate()
    org = databases[0].org_for_key(databases[0].create_org("acme", OrgTerms()))
    assert org is not None
    for start in range(0, 40_000, 2000):
        databases[0].insert(
            org,
            [
                Item(f"s-{n}", "logs" if n % 2 else "metrics", "commercial", NOW - 10, NOW - 1, 1)
                for n in range(start, start + 2000)
            ],
        )
    collectors = [
        Collector(db, FolderBlobs(tmp_path / "blobs"), tmp_path / "incoming", clock=lambda: NOW)
        for db in databases
    ]
    removed: list[dict[str, int]] = []
    starting = threading.Barrier(2)

    def run(collector: Collector) -> None:
        starting.wait()
        removed.append(sweep(collector))

    threads = [threading.Thread(target=run, args=(collector,)) for collector in collectors]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(removed) == 2
        assert Counter(removed[0]) + Counter(removed[1]) == {"logs": 20_000, "metrics": 20_000}
        assert databases[0].rows(org) == []
    finally:
        for database in databases:
            database.close()


@pytest.mark.parametrize(
    ("rows", "seconds", "expected"),
    [
        pytest.param(1000, BATCH_SECONDS, 1000, id="on_pace_keeps_its_size"),
        pytest.param(1000, BATCH_SECONDS / 4, 2000, id="fast_grows_at_most_twice"),
        pytest.param(1000, BATCH_SECONDS * 2, 500, id="slow_shrinks_to_the_pace"),
        pytest.param(1000, 10.0, MIN_BATCH, id="very_slow_keeps_the_minimum"),
        pytest.param(MAX_BATCH, 0.0, MAX_BATCH, id="never_beyond_the_maximum"),
    ],
)
def test_batches_sized_by_time(rows: int, seconds: float, expected: int) -> None:
    """The next batch takes as many rows (or pages) as fit the batch time at the last one's
    pace, at most twice as many as before, within the bounds."""
    assert next_size(rows, seconds) == expected


def test_strays_older_than_the_margin_are_removed(database_url: str, tmp_path: Path) -> None:
    """A stored bundle no item names (a stop between storing it and writing its row) goes once
    it is older than the margin; a young one (its row may be being written) and every bundle an
    item names stay; `airlock serve --sweep` says how many went."""
    import os
    import time

    from airlock.collector.sweeper import STRAY_SECONDS, remove_strays
    from tests.collector.harness import post_bundle, running
    from tests.collector.ingest import airlock_serve_sweep

    sqlite = database_url.startswith("sqlite:///")
    data = Path(database_url.removeprefix("sqlite:///")).parent if sqlite else tmp_path / "data"
    with running(database_url, data) as served:
        key = served.key("acme")
        assert post_bundle(served.url, key, b"kept" * 100, "b1", session="s").status_code == 201
        folder = served.collector.blobs.folder  # type: ignore[attr-defined]
        [named] = served.collector.blobs.names()
        old, young = folder / ("0" * 64 + ".tar.gz"), folder / ("f" * 64 + ".tar.gz")
        old.write_bytes(b"left by a stop")
        young.write_bytes(b"being written")
        foreign, subfolder = folder / "notes.txt", folder / ("1" * 64 + ".tar.gz.d")
        foreign.write_text("not the collector's")
        subfolder.mkdir()
        long_ago = time.time() - STRAY_SECONDS - 60
        for path in (old, folder / named, foreign, subfolder):
            os.utime(path, (long_ago, long_ago))
        assert remove_strays(served.collector) == 1  # the old one the collector named: nothing else
        assert foreign.exists() and subfolder.is_dir()
        foreign.unlink()
        subfolder.rmdir()
        assert sorted(served.collector.blobs.names()) == sorted([named, young.name])
        os.utime(young, (long_ago, long_ago))
    said = airlock_serve_sweep(
        "--data-dir", str(data), *([] if sqlite else ["--database-url", database_url])
    )
    assert "1 stored bundles that no item named removed" in said
    assert (folder / named).exists() and not young.exists()


def test_sweep_without_kinds_removes_the_same_and_counts_the_total(
    database_url: str, tmp_path: Path
) -> None:
    """The scheduled sweep's way (``by_kind=False``): the same rows go, in batches by address
    on PostgreSQL and by the index on SQLite, and the answer is their total."""
    import time

    from airlock.collector.sweeper import ALL_KINDS
    from tests.collector.harness import running
    from tests.collector.test_service import post_logs

    long_ago = time.time() - 40 * 86400.0
    with running(database_url, tmp_path / "data", clock=lambda: long_ago) as old:
        key = old.key("acme")
        for session in range(5):
            assert post_logs(old.url, key, f"old-{session}", 40).status_code == 200
    with running(database_url, tmp_path / "data") as recent:
        assert post_logs(recent.url, key, "new", 7).status_code == 200
        assert sweep(recent.collector, by_kind=False) == {ALL_KINDS: 200}
        assert sweep(recent.collector, by_kind=False) == {}
        assert [row["session_id"] for row in recent.collector.db.rows()] == ["new"] * 7
