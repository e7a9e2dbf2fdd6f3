"""Organisations, keys, items and refusals.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("account_class", sa.String(64), nullable=False),
        sa.Column("zero_data_retention", sa.Boolean, nullable=False),
        sa.Column("product_feedback", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "items",
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
    )
    op.create_index("items_session", "items", ["org_id", "session_id"])
    op.create_index("items_expiry", "items", ["expires_at"])
    op.create_table(
        "refusals",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refusals")
    op.drop_table("items")
    op.drop_table("api_keys")
    op.drop_table("orgs")
