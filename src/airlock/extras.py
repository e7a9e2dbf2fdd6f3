"""Optional capabilities and the extra that installs each.

The core (``pip install airlock``: the policy engine, settings, redaction, sessions, feedback
bundles, the web fetch guard) needs none of these. A capability that needs an extra calls
:func:`require` before importing it, so a missing package is reported as the extra to install
rather than as a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

from airlock.errors import MissingExtraError

EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": (
        "starlette",
        "uvicorn",
        "httptools",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "boto3",
        "opentelemetry.proto",
        "brotli",
    ),
    "otel": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http", "sentry_sdk"),
    "graph": ("graphviz",),
    "run": ("httptools", "cryptography", *(() if sys.platform == "win32" else ("uvloop",))),
}
"""Each extra of ``pyproject.toml`` and the modules it brings (kept in step by a test)."""


def missing(extra: str) -> tuple[str, ...]:
    """The modules of ``extra`` that cannot be imported here."""
    return tuple(name for name in EXTRAS[extra] if not _importable(name))


def require(extra: str, what: str) -> None:
    """Make sure ``extra`` is installed before ``what`` uses it.

    Args:
        extra: The extra's name (``"serve"``, ``"otel"``, ``"graph"``, ``"run"``).
        what: What needs it, in words (``"airlock serve"``).

    Raises:
        MissingExtraError: A module of the extra is not installed; the message names the
            extra and the command that installs it.
    """
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{what} needs the optional dependencies of airlock's {extra!r} extra, and "
            f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed: "
            f"pip install 'airlock[{extra}]' (or 'airlock[all]' for every capability)"
        )


def _importable(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ImportError:  # a parent package is missing
        return False
