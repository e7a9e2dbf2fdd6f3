"""Alembic's environment: migrations run on the connection :func:`upgrade` hands over."""

from __future__ import annotations

from alembic import context

from airlock.collector.schema import metadata


def run() -> None:
    """Run the migrations on the connection in Alembic's configuration."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # Alembic is running this file (not an import for inspection)
    run()
