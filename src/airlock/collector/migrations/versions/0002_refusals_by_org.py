"""Refusals counted by organisation as well as day and reason.

A request that names a session only another organisation holds is counted for that
organisation (it sees how often others' keys asked for its sessions); refusals that name no
organisation (no key, an unknown key) keep organisation 0.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "refusals_by_org",
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "day", "reason", name="refusals_key"),
    )
    op.execute(
        "INSERT INTO refusals_by_org (org_id, day, reason, count) "
        "SELECT 0, day, reason, count FROM refusals"
    )
    op.drop_table("refusals")
    op.rename_table("refusals_by_org", "refusals")


def downgrade() -> None:
    op.create_table(
        "refusals_by_day",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO refusals_by_day (day, reason, count) "
        "SELECT day, reason, SUM(count) FROM refusals GROUP BY day, reason"
    )
    op.drop_table("refusals")
    op.rename_table("refusals_by_day", "refusals")
