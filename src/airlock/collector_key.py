"""Where airlock's own clients find the key of the collector's local organisation.

``airlock serve`` writes the key of the organisation it creates on its first start to
:func:`key_path` (0600); ``AIRLOCK_COLLECTOR_KEY`` overrides the file. Uploads send it as
``Authorization: Bearer KEY``. Kept apart from :mod:`airlock.collector` so that clients load
no server code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV = "AIRLOCK_COLLECTOR_KEY"


def key_path(environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_CONFIG_HOME/airlock/collector.key``, else ``~/.config/airlock/collector.key``."""
    base = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "airlock" / "collector.key"


def collector_key(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """The key to send: ``AIRLOCK_COLLECTOR_KEY``, else the key file's first line, else ``None``."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV, "").strip():
        return environ[ENV].strip()
    try:
        text = key_path(environ, home or Path.home()).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text.strip().splitlines()[0].strip() if text.strip() else None


def auth_headers() -> dict[str, str]:
    """``{"Authorization": "Bearer KEY"}`` when a key is found, else nothing."""
    key = collector_key()
    return {"Authorization": f"Bearer {key}"} if key else {}
