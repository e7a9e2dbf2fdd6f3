"""Indexes for the sweep: expiry then id, and the expiry of items with a blob.

``items_expiry`` on ``(expires_at, id)`` lets a PostgreSQL sweep start each batch where the
last one ended, instead of walking again past the index entries of the rows it deleted
(PostgreSQL keeps them until vacuum). ``items_blob_expiry`` (only rows with a blob) finds the
expired bundles without reading every expired row.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

WITH_BLOB = sa.text("blob IS NOT NULL")


def upgrade() -> None:
    op.drop_index("items_expiry", table_name="items")
    op.create_index("items_expiry", "items", ["expires_at", "id"])
    op.create_index(
        "items_blob_expiry",
        "items",
        ["expires_at"],
        sqlite_where=WITH_BLOB,
        postgresql_where=WITH_BLOB,
    )


def downgrade() -> None:
    op.drop_index("items_blob_expiry", table_name="items")
    op.drop_index("items_expiry", table_name="items")
    op.create_index("items_expiry", "items", ["expires_at"])
