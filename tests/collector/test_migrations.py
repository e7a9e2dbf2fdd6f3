"""The collector's schema migrations keep what an older schema held, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from airlock.collector.db import NO_KEY, OTHER_ORGANISATION, Database
from airlock.collector.migrations import upgrade
from airlock.collector.schema import NO_ORG
from airlock.policy.collection import OrgTerms


def test_refusals_counted_before_by_org_are_kept(database_url: str) -> None:
    """Refusals counted under the first schema (by day and reason) are the collector's own
    (organisation 0) after the upgrade, and counting by organisation works on top of them."""
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            upgrade(connection, "0001")
            connection.execute(
                sa.text("INSERT INTO refusals (day, reason, count) VALUES (:d, :r, 3)"),
                {"d": "2026-01-02", "r": NO_KEY},
            )
        database.migrate()
        with database.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT org_id, day, reason, count FROM refusals"))
            assert rows.all() == [(NO_ORG, "2026-01-02", NO_KEY, 3)]
        key = database.create_org("acme", OrgTerms())
        org = database.org_for_key(key)
        assert org is not None
        database.count_refusal(OTHER_ORGANISATION, org.id)
        database.count_refusal(OTHER_ORGANISATION, org.id)
        database.count_refusal(NO_KEY)
        assert database.refusal_counts(org) == {NO_KEY: 4, OTHER_ORGANISATION: 2}
        database.migrate()  # at the newest version already: nothing changes
        assert database.refusal_counts() == {NO_KEY: 4, OTHER_ORGANISATION: 2}
    finally:
        database.close()
