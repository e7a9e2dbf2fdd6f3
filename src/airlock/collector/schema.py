"""The collector's tables (SQLAlchemy Core): organisations, keys, stored items and refusals.

The schema itself is made and changed only by the Alembic migrations in
:mod:`airlock.collector.migrations`; these definitions are what the queries are written
against, and each matches the newest migration.

* ``orgs``: an organisation, its account class, zero data retention and product feedback.
* ``api_keys``: the SHA-256 of each key, never the key, and its organisation.
* ``items``: everything received, one row per record (an OTLP log record or data point, an
  error event, a rating, a bundle whose bytes are a blob), with its organisation, session,
  kind, retention class and expiry (from :func:`airlock.policy.collection.storing`).
* ``refusals``: refused requests counted by organisation, day and reason; organisation
  :data:`NO_ORG` for those no organisation can be named for (no key, an unknown key).

Times are seconds since the epoch (floats), the same on both databases.
"""

from __future__ import annotations

import sqlalchemy as sa

NO_ORG = 0
"""The organisation of a refusal that names none (no key, or an unknown one)."""

metadata = sa.MetaData()

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("account_class", sa.String(64), nullable=False),
    sa.Column("zero_data_retention", sa.Boolean, nullable=False),
    sa.Column("product_feedback", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_sha256", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("session_id", sa.String(200), nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("retention_class", sa.String(64), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("blob", sa.String(200), nullable=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.UniqueConstraint("org_id", "idempotency_key", "kind", name="items_once"),
    sa.Index("items_session", "org_id", "session_id"),
    sa.Index("items_expiry", "expires_at", "id"),
    sa.Index(
        "items_blob_expiry",
        "expires_at",
        sqlite_where=sa.text("blob IS NOT NULL"),
        postgresql_where=sa.text("blob IS NOT NULL"),
    ),
)

refusals = sa.Table(
    "refusals",
    metadata,
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "day", "reason", name="refusals_key"),
)
