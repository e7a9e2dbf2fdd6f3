"""``python -m airlock`` is the ``airlock`` command."""

from airlock.cli.main import console

console()
