"""``airlock serve`` as a user runs it: where keys go, the default address, the sweeps."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airlock.collector.db import Database, sqlite_url
from airlock.policy.collection import OrgTerms
from tests.cli import airlock
from tests.collector.harness import running
from tests.collector.test_service import bearer, post_logs
from tests.servers import airlock_serve

LONG_AGO = 1_780_000_000.0
"""A clock for items received long ago: their 30-day retention is over now."""


def _orgs(data: Path) -> list[tuple[str, str, int, int]]:
    with sqlite3.connect(data / "collector.sqlite3") as db:
        return db.execute(
            "SELECT name, account_class, zero_data_retention, product_feedback FROM orgs"
            " ORDER BY name"
        ).fetchall()


def test_storage_options_before_keys_are_used(tmp_path: Path) -> None:
    """`serve --data-dir DIR keys create`, as `keys create --data-dir DIR`: the key goes to DIR
    (given in both places, the one after `create` counts); the organisation's terms from the
    flags."""
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    created = airlock(
        "serve", "--data-dir", str(outer), "keys", "create", "--org", "acme",
        "--no-product-feedback", "--account-class", "consumer_standard",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("alk_")
    assert _orgs(outer) == [("acme", "consumer_standard", 0, 0)]
    both = airlock(
        "serve", "--data-dir", str(outer), "keys", "create", "--org", "other",
        "--data-dir", str(inner),
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert _orgs(inner) == [("other", "commercial", 0, 1)]
    assert [name for name, *_ in _orgs(outer)] == ["acme"]


def test_sweep_removes_what_is_past_its_period_and_says_what(tmp_path: Path) -> None:
    """`serve --sweep` removes the items whose period is over, prints them by kind, keeps the rest."""
    data = tmp_path / "data"
    url = sqlite_url(data)
    with running(url, data, clock=lambda: LONG_AGO) as old:
        key = old.key("acme")
        assert post_logs(old.url, key, "old", 3).status_code == 200
    with running(url, data) as recent:
        assert post_logs(recent.url, key, "new", 2).status_code == 200
    swept = airlock("serve", "--sweep", "--data-dir", str(data))
    assert swept.returncode == 0, swept.stderr
    assert "3 items past their retention period removed" in swept.stdout
    assert "logs: 3" in swept.stdout
    database = Database(url)
    try:
        assert sorted(row["session_id"] for row in database.rows()) == ["new", "new"]
    finally:
        database.close()


def test_the_sweep_runs_on_its_schedule(tmp_path: Path) -> None:
    """While serving, items whose period ends are removed every --sweep-every seconds: two
    batches written after the start, each gone within seconds."""
    data = tmp_path / "data"
    url = sqlite_url(data)
    with airlock_serve("--data-dir", str(data), "--sweep-every", "0.3") as (served, _):
        database = Database(url)
        key = database.create_org("acme", OrgTerms())
        database.close()
        for batch in ("first", "second"):
            with running(url, data, clock=lambda: LONG_AGO) as old:
                assert post_logs(old.url, key, batch, 2).status_code == 200
            deadline = time.monotonic() + 30
            while True:
                status = httpx.get(f"{served}/v1/sessions/{batch}", headers=bearer(key)).status_code
                if status == 404:
                    break
                assert status == 200 and time.monotonic() < deadline, f"{batch}: still stored"
                time.sleep(0.1)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_it_listens_on_127_0_0_1_port_8787_by_default(tmp_path: Path) -> None:
    """No --host and no --port: http://127.0.0.1:8787, and not another address of the machine."""
    if not _free(8787):
        pytest.fail("port 8787 is taken on 127.0.0.1: stop what holds it to run this test")
    process = subprocess.Popen(
        [sys.executable, "-m", "airlock", "serve", "--data-dir", str(tmp_path / "data")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert re.search(r"listening on http://127\.0\.0\.1:8787\b", line), line
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get("http://127.0.0.1:8787/healthz", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "airlock serve did not answer on 8787"
                time.sleep(0.05)
        with pytest.raises(httpx.ConnectError):
            httpx.get("http://127.0.0.2:8787/healthz", timeout=2)
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_a_shared_database_with_bundles_in_a_folder_is_warned_about(
    tmp_path: Path, pg_cluster: str
) -> None:
    """PostgreSQL (which several hosts may share) with bundles in this host's folder: a warning
    says other hosts cannot delete them and names --blob-url."""
    from tests.collector.backends import fresh_database

    url = fresh_database(pg_cluster)
    with airlock_serve("--database-url", url, "--data-dir", str(tmp_path / "d")) as (_, process):
        process.terminate()
        assert process.stderr is not None
        said = process.stderr.read()
    assert "WARNING: bundles are kept in a folder of this host" in said
    assert "--blob-url s3://" in said
