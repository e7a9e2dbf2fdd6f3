"""What a run must still make safe after its command, kept on disk until it has: a run that
never got there (``kill -9``, the machine's power lost, the OOM killer) has it done by the next.

Theory of operation
-------------------
After the command, ``airlock run`` makes safe what code inside wrote where the user's tools
will run it outside: the repository made inside is brought in without its hooks, new nested
repositories and submodules are emptied of theirs, an MCP server added to ``~/.claude.json``
is taken out, settings made inside are set aside (:class:`airlock.sandbox.written.Watch`).
Each compares the workspace with what it was at the start, so what it needs is known before
the command runs, and only then.

So before the command runs, :func:`keep` writes that (the :class:`Watch`, the held
repository, the sandbox's read-only paths, the workspace's identity) to a *pending* file
under airlock's own state, and holds a lock on it while the run lives; :meth:`Kept.done`
removes it once the work is done. Every run holds the home's *runs' lock* shared while it
lives (:func:`join_runs`). At the start of a run, :func:`recover` does the work of the
pending files left when it can take that lock alone, no other run going (setting a file
aside in a workspace a sandbox runs in would take away that sandbox's mount on it), and
removes them; otherwise it says so, and a later run does it. A workspace that is another
folder now is left alone.

The file is a :mod:`pickle` of airlock's own classes, read back by an unpickler that takes
those classes and nothing else; it lives in airlock's state, which no sandbox sees, and must
be a regular file of this user that no one else may write.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from airlock.sandbox.files import NOT_THROUGH_A_LINK, folder_identity
from airlock.sandbox.repositories import Held, bring_in
from airlock.sandbox.written import Watch, each_step

SUFFIX = ".pending"

CLASSES = {
    ("pathlib", "PosixPath"),
    ("builtins", "frozenset"),
    ("builtins", "set"),
    ("airlock.sandbox.pending", "Pending"),
    ("airlock.sandbox.written", "Watch"),
    ("airlock.sandbox.written", "Snapshot"),
    ("airlock.sandbox.written", "NotedLink"),
    ("airlock.sandbox.written", "AgentFolders"),
    ("airlock.sandbox.direnv", "PathFolders"),
    ("airlock.sandbox.repositories", "Held"),
    ("airlock.sandbox.repositories", "Linked"),
    ("airlock.sandbox.repositories", "NestedScan"),
}
"""The only classes a pending file may name (module, name)."""


class Pending(NamedTuple):
    """What one run must make safe after its command."""

    run: str
    """The run's name (its time and airlock's process id): where it sets things aside."""
    workspace: Path
    watch: Watch | None
    held: Held | None
    read_only: dict[Path, bool]
    """The sandbox's path rules (:func:`airlock.sandbox.paths.read_only_map`)."""
    identity: tuple[int, int] | None = None
    """The workspace's device and inode at the start (:func:`folder_identity`): a folder put
    at its path since is not it, and is left alone."""

    def moved(self) -> bool:
        """Whether the workspace is gone, or another folder is at its path now (moved or
        renamed while the command ran): what the run wrote there cannot be found by its
        path, nor made safe at it (another folder's entries would be taken for new)."""
        return self.identity is not None and folder_identity(self.workspace) != self.identity

    def home_only(self, state: Path) -> list[str]:
        """What :meth:`make_safe` does when the workspace :meth:`moved`: the agents' state in
        the home only (it needs no workspace); what was done, a line each."""
        done: list[str] = []
        watch, held = self.watch, self.held
        if watch is not None:
            aside = state / "set-aside" / self.run
            said = each_step(
                done,
                "make safe the agents' state",
                lambda: watch.agents_state(aside, self.read_only),
            )
            done.extend(said if isinstance(said, list) else [])
        if held is not None and os.path.lexists(held.folder):
            done.append(
                f"airlock: a git repository made inside is kept at {held.folder}, with its "
                "hooks and config as written inside: check them before you use it"
            )
        return done

    def make_safe(self, state: Path) -> list[str]:
        """Bring in the repository made inside, then make safe what the run wrote (each step
        whatever the other did); what was done, a line each. ``state``: airlock's own. When
        the workspace :meth:`moved`, only its part in the home (:meth:`home_only`), and the
        first line says so."""
        if self.moved():
            return [
                f"airlock: the workspace {self.workspace} is gone or another folder now (moved "
                "or renamed while the command ran): what the command wrote in it was not made "
                "safe; look in it for .claude, .vscode, .mcp.json, .envrc, .git and the like "
                "before you start an agent, an editor, direnv or git there",
                *self.home_only(state),
            ]
        lines: list[str] = []
        held, watch = self.held, self.watch
        if held is not None:
            said = each_step(lines, "bring in the repository made inside", lambda: bring_in(held))
            if isinstance(said, str):
                lines.append(f"airlock: {said}")
        if watch is not None:
            aside = state / "set-aside" / self.run
            said = each_step(
                lines, "make safe what the run wrote", lambda: watch.after(aside, self.read_only)
            )
            if isinstance(said, list):
                lines.extend(str(line) for line in said)
        return lines


class Kept:
    """A run's pending file, locked while the run lives."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def done(self) -> None:
        """The work is done (or was tried, and what failed was said): the file goes."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = -1


def keep(folder: Path, pending: Pending) -> Kept:
    """Write ``pending`` to ``folder`` and hold its lock until :meth:`Kept.done`.

    Raises:
        OSError: it could not be written (the run must not go on: a kill would lose it).
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{pending.run}{SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until done(): the run lives
        data = pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        raise
    return Kept(path, fd)


class _OwnClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in CLASSES:
            raise pickle.UnpicklingError(f"names {module}.{name}, which a pending file never does")
        found: type = super().find_class(module, name)
        return found


def read(path: Path) -> Pending:
    """A pending file, read back.

    Raises:
        OSError: it cannot be read, or is not a regular file of this user that only it may
            write (a link is not followed).
        pickle.UnpicklingError, ValueError, …: it is not one airlock wrote (see :func:`recover`).
    """
    fd = os.open(path, NOT_THROUGH_A_LINK)
    with os.fdopen(fd, "rb") as file:
        return _read_open(file)


def _read_open(file: io.BufferedReader) -> Pending:
    found = os.fstat(file.fileno())
    if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise PermissionError("not a private regular file of this user")
    pending = _OwnClasses(file).load()
    if not isinstance(pending, Pending):
        raise ValueError("holds no pending work")
    return pending


RUNS_LOCK = "runs.lock"
"""The lock every run of a home holds, shared, from before it looks for killed runs' work
until it ends; that work is done only under it held alone (:func:`recover`)."""


def join_runs(folder: Path) -> int:
    """Open the runs' lock in ``folder`` (airlock's state for the home's default config dir,
    whatever config dir a run uses: runs of every config dir meet there); its descriptor,
    which the run keeps open until it ends (closing it lets the lock go).

    Raises:
        OSError: it cannot be opened.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(folder / RUNS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _share(runs: int, waiting: Callable[[], None] | None) -> None:
    """Hold the runs' lock shared; ``waiting`` is called first when another run holds it alone
    (doing killed runs' work), before this one waits for it."""
    try:
        fcntl.flock(runs, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        if waiting is not None:
            waiting()
        fcntl.flock(runs, fcntl.LOCK_SH)


def recover(
    folder: Path, state: Path, runs: int, waiting: Callable[[], None] | None = None
) -> list[str]:
    """Make safe what the runs that were killed left (their pending files in ``folder``) when
    no other run lives (``runs``: :func:`join_runs`, taken alone for the work: setting a file
    aside under a running sandbox would take away its mount there), then hold ``runs`` shared
    as every run does (``waiting`` is called before it waits for a run doing that work);
    what was done, in lines for stderr. A pending file whose workspace is
    another folder now is left, and one that cannot be read is named."""
    try:
        paths = [path for path in sorted(folder.glob(f"*{SUFFIX}")) if not _held(path)]
    except OSError:
        paths = []
    if not paths:  # none, or only those of runs still going
        _share(runs, waiting)  # waits while another run does killed runs' work
        return []
    try:
        fcntl.flock(runs, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _share(runs, waiting)
        return [
            f"airlock run: {len(paths)} run(s) killed earlier have still to have what their "
            f"commands wrote made safe ({folder}); other runs are going: the first run started "
            "while none is does that"
        ]
    try:
        return _recover_alone(paths, state)
    finally:
        fcntl.flock(runs, fcntl.LOCK_SH)


def _held(path: Path) -> bool:
    """Whether a pending file's run still holds it (a link, or one that cannot be opened,
    is not held: it is named when its work is looked at)."""
    try:
        fd = os.open(path, NOT_THROUGH_A_LINK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # the lock, if taken, goes with it
    return False


def _recover_alone(paths: list[Path], state: Path) -> list[str]:
    lines: list[str] = []
    for path in paths:
        try:
            fd = os.open(path, NOT_THROUGH_A_LINK)
        except FileNotFoundError:
            continue  # done by its run meanwhile
        except OSError as error:  # a link, or unreadable: named
            lines.append(_unreadable(path, error))
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _still_there(fd, path):
                os.close(fd)
                continue
            with os.fdopen(os.dup(fd), "rb") as file:
                pending = _read_open(file)
        except BlockingIOError:  # its run lives (one of another home, with this config dir)
            os.close(fd)
            continue
        except Exception as error:  # any damage: named, and left for the user
            os.close(fd)
            lines.append(_unreadable(path, error))
            continue
        try:
            lines += _make_safe(pending, state)
            with contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)
    return lines


def _make_safe(pending: Pending, state: Path) -> list[str]:
    """The work of one killed run, if its workspace is the same folder still."""
    if pending.moved() or pending.identity is None:  # not known to be the same folder
        return [
            f"airlock run: run {pending.run} in {pending.workspace} was killed before it made "
            "safe what its command wrote, and that workspace is gone or another folder now: "
            "nothing was done there; check it yourself (the agents' state in the home was made "
            "safe)",
            *pending.home_only(state),
        ]
    done = pending.make_safe(state)
    said = (
        f"airlock run: run {pending.run} in {pending.workspace} was killed before it made safe "
        "what its command wrote; done now, taking every change since that run started as its "
        "command's (moved aside, never removed)"
    )
    return [said + (":" if done else ": nothing to do"), *done]


def _unreadable(path: Path, error: BaseException) -> str:
    return (
        f"airlock run: {path} holds what a killed run had still to make safe, but cannot be "
        f"read ({error}): check that run's workspace yourself, then remove the file"
    )


def _still_there(fd: int, path: Path) -> bool:
    try:
        opened, named = os.fstat(fd), path.stat(follow_symlinks=False)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
