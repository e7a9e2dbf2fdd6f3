"""One run at a time in a workspace; runs that share a home take turns where their
placeholders could clash.

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
placeholders (:func:`removing`). Runs with one home otherwise go at once: the lock is held
for the time a sandbox takes to be set up, not for the run.

In one workspace, runs do not overlap at all (:func:`take_workspace`, held for the whole
run): after its command a run makes safe what was made inside (a repository renamed aside,
settings set aside), and what it moves may be what another sandbox in the same workspace
binds read-only, whose mounts go with it. The second run waits :data:`WORKSPACE_WAIT`
seconds, then refuses. The kernel lets every lock go when its run is killed; a run that
finds one taken names the run that holds it (its process id and start, written in the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
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
"""The descriptor of the set-up lock while this process holds it (a second ``flock`` of the
same file in the same process, on another descriptor, would wait for itself)."""


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


WORKSPACE_WAIT = 5.0
"""How long a run waits, in seconds, for another run in its workspace to end before it refuses."""


def take_workspace(
    workspace: Path,
    state: Path,
    started: float,
    waiting: Callable[[str], None],
    wait: float = WORKSPACE_WAIT,
) -> SetupLock:
    """Hold the workspace for the whole run: one ``airlock run`` at a time in a workspace.
    Two at once there cannot both be right after their commands: what one makes safe (a
    repository made inside, settings written) may be what the other's sandbox stands on, and
    moving it would take that sandbox's read-only mounts away. ``state`` is airlock's state
    for the home's default config dir (runs of every config dir meet there).

    Raises:
        SandboxError: another run holds the workspace past ``wait`` seconds.
    """
    key = hashlib.sha256(os.fsencode(workspace)).hexdigest()[:32]
    path = state / "locks" / f"workspace-{key}.lock"
    what = f"another airlock run ({{holder}}) is running in this workspace ({workspace})"
    return _take(
        path,
        started,
        waiting,
        wait,
        waiting_words=f"{what}; waiting up to {wait:g} s for it to end",
        refusal=(
            f"{what}: two at once in one workspace would take each other's protected paths "
            f"for what the command made; waited {wait:g} s; run again when it has ended, or "
            f"use another worktree (its lock: {path}); nothing was run"
        ),
        say_after=0.0,
        setup=False,
    )


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
    what = "another airlock run ({holder})"
    return _take(
        path,
        started,
        waiting,
        wait,
        waiting_words=f"waiting for {what} to set up or clean up its sandbox",
        refusal=(
            f"{what} has been setting up or cleaning up its sandbox for over {wait:g} s (its "
            f"lock: {path}); run again when it is past that; nothing was run"
        ),
        say_after=1.0,
    )


def _take(
    path: Path,
    started: float,
    waiting: Callable[[str], None],
    wait: float,
    *,
    waiting_words: str,
    refusal: str,
    say_after: float,
    setup: bool = True,
) -> SetupLock:
    """Hold the lock file ``path`` (see :func:`take`); ``{holder}`` in the words is the run
    that holds it, ``waiting_words`` said once after ``say_after`` seconds of waiting;
    ``setup``: it is the set-up lock (noted in :data:`_held`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise SandboxError(
            f"cannot open the lock {path} that keeps runs apart "
            f"({error.strerror or error}): nothing was run"
        ) from error
    try:
        _wait_for(fd, path, waiting, wait, waiting_words, refusal, say_after)
        data = json.dumps({"pid": os.getpid(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except BaseException:
        os.close(fd)
        raise
    if setup:
        _held.append(fd)
    return SetupLock(fd)


@contextlib.contextmanager
def removing(ledgers: Path | None) -> Iterator[bool]:
    """Hold the lock while a run removes its placeholders (at once when this process holds it
    already); whether they may be removed now. One that cannot be had in time (a run stopped
    mid-set-up, ``Ctrl-Z``) is said, and the placeholders stay listed: the next run's sweep
    removes them, once this process is gone."""
    if ledgers is None or _held:
        yield True
        return
    lock = None
    try:
        lock = take(ledgers, time.time(), _say, wait=WAIT)
    except SandboxError as error:
        _say(f"the placeholders are left for the next run to remove: {error}")
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release()


def _say(words: str) -> None:
    import sys

    with contextlib.suppress(OSError):
        print(f"airlock run: {words}", file=sys.stderr)


def _wait_for(
    fd: int,
    path: Path,
    waiting: Callable[[str], None],
    wait: float,
    waiting_words: str,
    refusal: str,
    say_after: float,
) -> None:
    """Hold ``fd``'s lock alone, trying every :data:`POLL` seconds for up to ``wait`` (counted
    again whenever another run holds it: a queue of quick set-ups is no stuck one)."""
    deadline = time.monotonic() + wait
    told = time.monotonic() + say_after
    holder = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if (named := _holder(path)) != holder:
            holder, deadline = named, now + wait
        if now >= deadline:
            raise SandboxError(refusal.format(holder=holder))
        if told and now >= told:
            waiting(waiting_words.format(holder=holder))
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
