"""Whether a process is there, for the places that keep a process id on disk (an agent's pid
file, a run's placeholders ledger). Standard library only: cheap to import on a start-up path.

A process id alone names a process only while it lives: after it ends (a ``kill -9``, a
reboot) the kernel gives the id to another, and a file that kept only the id would take that
one for the process it named for as long as it runs. So a file that can keeps the process's
start too (:func:`start_of`), and :func:`alive` given it counts a process with that id but
another start as gone.
"""

from __future__ import annotations

import os
from pathlib import Path

BOOT_ID = "/proc/sys/kernel/random/boot_id"
"""A random id the kernel draws at each boot: a start in clock ticks counts from one boot."""


def start_of(pid: int) -> str | None:
    """When process ``pid`` started, as ``BOOT_ID:TICKS``: the boot's id (:data:`BOOT_ID`)
    and the start in clock ticks after that boot (field 22 of ``/proc/PID/stat``); two
    processes that ever had one id differ in it. ``None`` when it cannot be read (the process
    is gone, or ``/proc`` hides it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        boot = Path(BOOT_ID).read_bytes().strip().decode("ascii")
        # the command's name (field 2) is in parentheses and may hold spaces and parentheses:
        # the fields are counted after the last ")", where field 3 is
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[22 - 3])
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    return f"{boot}:{ticks}"


def alive(pid: int, start: str | None = None) -> bool:
    """Whether a process with this id exists (one of another user's counts) and, with
    ``start`` (:func:`start_of`, as kept when the id was written), is the one that started
    then: a process that took the id over later (after the other ended, or a reboot) is not.
    A start that cannot be read now counts as the same (as without ``start``)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is not None:
        now = start_of(pid)
        if now is not None and now != start:
            return False
    return True
