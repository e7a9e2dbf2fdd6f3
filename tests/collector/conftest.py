"""Fixtures of the collector's tests: a PostgreSQL cluster for the run, and a database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.backends import fresh_database, postgres_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on SQLite (in the test's folder) and on PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'collector.sqlite3'}"
    cluster: str = request.getfixturevalue("pg_cluster")
    return fresh_database(cluster)
