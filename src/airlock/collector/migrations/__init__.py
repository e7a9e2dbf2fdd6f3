"""The collector's schema migrations (Alembic), run by :meth:`Database.migrate`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection

HERE = Path(__file__).parent


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on ``connection`` (inside its transaction)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
