"""Runs that share airlock's state take turns where their placeholders could clash.

Theory of operation
-------------------
A run makes empty placeholders at the missing protected paths of the workspace (``.git``,
``.claude``, …) and of the agent's state in the home (``~/.claude/settings.json``, …), binds
onto them, and removes them after its command (:mod:`airlock.sandbox.placeholders`). Runs at
once share them: a run that finds another's placeholder lists it in its own ledger too, and a
run that ends never removes a path another running run lists. That holds only if no run
removes a placeholder between another run's look at the paths and that run's ledger being
written: the other would bind a path that is gone (``bwrap: Can't find source path``), or
take a placeholder for the user's own folder and leave it behind.

So a run holds this lock (``flock``, exclusive; a file beside the ledgers' folder) from before
it looks at any path until its ledger is written (:func:`take`, released when
:func:`airlock.sandbox.launcher.start` returns), and takes it again to remove its
placeholders (:func:`removing`). Runs otherwise go at once: the lock is held for the time a
sandbox takes to be set up, not for the run. The kernel lets it go when a run is killed. A
run that finds it taken waits for it, up to :data:`WAIT` seconds, then refuses, naming the
run that holds it (its process id and start, which that run wrote in the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from airlock._process import alive
from airlock.errors import SandboxError

WAIT = 60.0
"""How long a run waits, in seconds, for another run's set-up or clean-up before it refuses
(a set-up walks the workspace: a few seconds in a large one)."""
POLL = 0.05
"""How often, in seconds, a waiting run tries the lock again."""
LOCK = "placeholders.lock"
"""The lock's file, beside the ledgers' folder (``placeholders/``) in airlock's state."""

_held: list[int] = []
"""The descriptor of the lock while this process holds it (a second ``flock`` of the same
file in the same process, on another descriptor, would wait for itself)."""


class SetupLock:
    """The lock while a run holds it: :meth:`release` lets it go (a second call does nothing)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            if self._fd in _held:
                _held.remove(self._fd)
            os.close(self._fd)
            self._fd = -1


def lock_path(ledgers: Path) -> Path:
    """The lock of the runs whose ledgers are in the folder ``ledgers``."""
    return ledgers.parent / LOCK


def take(
    ledgers: Path, started: float, waiting: Callable[[str], None], wait: float = WAIT
) -> SetupLock:
    """Take the lock of the runs whose ledgers are in ``ledgers``, waiting up to ``wait``
    seconds (``waiting`` is told once, when it waits), and write this run's process id and
    start (``started``, seconds since the epoch) in it.

    Raises:
        SandboxError: another run holds it past the wait, or it cannot be opened.
    """
    path = lock_path(ledgers)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise SandboxError(
            f"cannot open the lock {path} that keeps runs' set-ups apart "
            f"({error.strerror or error}): nothing was run"
        ) from error
    try:
        _wait_for(fd, path, waiting, wait)
        data = json.dumps({"pid": os.getpid(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except BaseException:
        os.close(fd)
        raise
    _held.append(fd)
    return SetupLock(fd)


@contextlib.contextmanager
def removing(ledgers: Path | None) -> Iterator[None]:
    """Hold the lock while a run removes its placeholders (at once when this process holds it
    already). One that cannot be had in time is gone without: the paths other runs list are
    still never removed, only the window above is open."""
    if ledgers is None or _held:
        yield
        return
    lock = None
    with contextlib.suppress(SandboxError):
        lock = take(ledgers, time.time(), lambda _: None)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _wait_for(fd: int, path: Path, waiting: Callable[[str], None], wait: float) -> None:
    """Hold ``fd``'s lock alone, trying every :data:`POLL` seconds for up to ``wait``."""
    deadline = time.monotonic() + wait
    told = time.monotonic() + 1.0  # a wait under a second is not worth a word
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise SandboxError(
                f"another airlock run ({_holder(path)}) has been setting up or cleaning up its "
                f"sandbox for over {wait:g} s (its lock: {path}); run again when it is past "
                "that; nothing was run"
            )
        if told and now >= told:
            waiting(f"waiting for another airlock run ({_holder(path)}) to set up its sandbox")
            told = 0.0
        time.sleep(POLL)


def _holder(path: Path) -> str:
    """The process id and start of the run that wrote ``path``, in words."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not alive(int(data["pid"])):  # the last one's: the holder has not written yet
            raise ValueError
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(data["started"])))
        return f"pid {int(data['pid'])}, started {when}"
    return "pid unknown: it is just starting"
