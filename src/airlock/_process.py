"""Whether a process is there, for the places that keep a process id on disk (an agent's pid
file, a run's placeholders ledger). Standard library only: cheap to import on a start-up path."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
