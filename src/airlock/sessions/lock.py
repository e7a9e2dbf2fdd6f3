"""One removal at a time: an exclusive ``flock`` on the config dir's removal lock file.

:func:`~airlock.sessions.removal.execute` and :func:`~airlock.sessions.removal.recover` hold
``<config dir>/airlock/sessions-removal.lock``, so a second prune or delete never mistakes the
first one's live journal for an interrupted one; it waits :data:`LOCK_WAIT_SECONDS`, then gives
up with :class:`~airlock.errors.BusyError`. The lock goes with the process (a killed run leaves
nothing held).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from airlock.errors import BusyError, UnsafePathError

LOCK_FILE = "airlock/sessions-removal.lock"
"""Held (``flock``, exclusive) by the one prune or delete that is removing, relative to the
config dir."""
LOCK_WAIT_SECONDS = 3.0
"""How long a second prune or delete waits for the first before giving up."""
_POLL_SECONDS = 0.05


@contextlib.contextmanager
def removal_lock(config_dir: Path, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the config dir's removal lock, waiting up to ``wait`` seconds for it.

    Raises:
        BusyError: another process holds it after ``wait`` seconds.
        UnsafePathError: ``<config dir>/airlock`` or the lock file is a symbolic link.
    """
    path = config_dir / LOCK_FILE
    if path.parent.is_symlink():
        raise UnsafePathError(f"{path.parent} is a symbolic link: refusing to lock there")
    path.parent.mkdir(exist_ok=True, mode=0o700)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        raise UnsafePathError(f"{path}: cannot be opened as the lock: {error.strerror}") from error
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another 'airlock sessions prune' or 'delete' is running on "
                        f"{config_dir} (it holds {path}; waited {wait:g} s). Nothing was "
                        "removed; run this again when it has finished."
                    ) from None
                time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing releases the lock
