"""Whether a session is being written right now: a recent file, or a running agent holding it.

A session is *in use* when one of its files was modified within :data:`ACTIVE_SECONDS` of
``now`` (or in the future), or when a running agent's pid file (``<config dir>/sessions/
<pid>.json``) names it and that process is alive. Prune and delete skip such sessions and say
so.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from airlock._process import alive
from airlock.sessions import layout
from airlock.sessions.model import Session

ACTIVE_SECONDS = 120
"""A session with a file modified this recently (relative to ``now``) is being written."""
PID_FILE_BYTES = 1024 * 1024
"""A pid file is read up to this size."""


def running(config_dir: Path) -> dict[str, int]:
    """Session ids of running agents, from their pid files, when the process is alive."""
    found: dict[str, int] = {}
    try:
        with os.scandir(config_dir / layout.RUNNING) as iterator:
            files = [e for e in iterator if e.name.endswith(".json") and not e.is_symlink()]
    except OSError:
        return found
    for entry in files:
        try:
            data = json.loads(Path(entry.path).read_bytes()[:PID_FILE_BYTES])
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        pid, session_id = data.get("pid"), data.get("sessionId")
        if isinstance(pid, int) and isinstance(session_id, str) and alive(pid):
            found[session_id] = pid
    return found


def in_use(session: Session, now: datetime, agents: dict[str, int], config_dir: Path) -> str | None:
    """Why the session is being written right now, or ``None`` when it is not.

    Args:
        session: a session of ``config_dir``.
        now: the current time.
        agents: :func:`running`.
        config_dir: the config dir (named in the reason).
    """
    age = (now - session.modified).total_seconds()
    if age < ACTIVE_SECONDS:
        return f"a file of it was modified {max(age, 0):.0f} s ago (under {ACTIVE_SECONDS} s)"
    pid = agents.get(session.id)
    if pid is not None:
        return f"a running agent (pid {pid}) has it open ({config_dir / layout.RUNNING})"
    return None
