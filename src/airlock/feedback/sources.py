"""The files of a session a bundle holds, and opening them without following any link.

Theory of operation. A bundle leaves the machine, so what goes in must be the session's own
files and nothing they point to. Each file is opened relative to a descriptor of the config
dir, one folder at a time, every folder on the way with ``O_NOFOLLOW | O_DIRECTORY`` and the
file itself with ``O_NOFOLLOW | O_NONBLOCK``; the open descriptor is then checked (``fstat``)
to be the regular file looked at a moment before, owned by the config dir's owner and with no
other name (a hard link may be a file from anywhere). Whatever fails a check is skipped, with
the reason, and the manifest lists it: a symbolic link (to a file, a folder, another link, or
in a loop), a link among the folders on the way (``projects/`` itself, the session folder,
``subagents/``, ``debug/``), a FIFO, a device, a socket, a file swapped for any of those
while it was being opened. Once open, the descriptor is read: renaming or replacing the path
afterwards changes nothing that is read.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airlock._kinds import file_kind
from airlock.errors import UsageError
from airlock.feedback.manifest import Role
from airlock.sessions import layout

if TYPE_CHECKING:
    from airlock.sessions import Session

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Source:
    """A file of the session to put in the bundle."""

    path: Path
    role: Role


class Skip(Exception):
    """A source that is not bundled, and why (in words for the manifest)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Gone(Exception):
    """A source that no longer exists: left out without a word (nothing of it is there)."""


def session_sources(session: Session) -> tuple[Source, ...]:
    """The files a bundle holds: the transcript, subagent transcripts and the raw session log.

    A symbolic link standing where the session folder or its ``subagents/`` folder would be is
    a source too, so that the bundle can say it was skipped.

    Raises:
        UsageError: None of them exists any more.
    """
    found = [Source(session.transcript, Role.TRANSCRIPT)]
    folder = session.transcript.with_suffix("")
    for linked in (folder, folder / layout.SUBAGENTS):
        if linked.is_symlink():
            found.append(Source(linked, Role.SUBAGENT_TRANSCRIPT))
            break
    found += [Source(path, Role.SUBAGENT_TRANSCRIPT) for path in session.subagent_transcripts]
    if session.raw_log is not None:
        found.append(Source(session.raw_log, Role.RAW_SESSION_LOG))
    present = tuple(source for source in found if os.path.lexists(source.path))
    if not present:
        raise UsageError(f"session {session.id} has no transcript or log left to bundle")
    return present


def open_root(root: Path) -> int:
    """A descriptor of the config dir (the one folder whose own link, if any, is followed).

    Raises:
        UsageError: It cannot be opened as a folder.
    """
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise UsageError(f"cannot open the config dir {root}: {error.strerror}") from error


def open_inside(root_fd: int, root: Path, path: Path) -> int:
    """A descriptor of the regular file ``path`` inside ``root``, no link followed on the way.

    Args:
        root_fd: A descriptor of ``root`` (:func:`open_root`).
        root: The config dir.
        path: The file, a path under ``root``.

    Returns:
        An open, blocking, read-only descriptor of a regular file; the caller closes it.

    Raises:
        Skip: The file is not bundled (the reason says why).
        Gone: There is nothing at ``path`` any more.
    """
    parts = _parts(root, path)
    owner = os.fstat(root_fd).st_uid
    fd, opened = root_fd, []
    try:
        for depth, name in enumerate(parts[:-1], start=1):
            fd = _open_folder(fd, name, "/".join(parts[:depth]))
            opened.append(fd)
        return _open_file(fd, parts[-1], owner)
    finally:
        for folder in opened:
            os.close(folder)


def _parts(root: Path, path: Path) -> tuple[str, ...]:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = ()
    if not parts or ".." in parts:
        raise Skip("not a plain path inside the config dir")
    return parts


def _open_folder(parent: int, name: str, where: str) -> int:
    what = f"the folder {where} on the way"
    info = _look(parent, name, what)
    if stat.S_ISLNK(info.st_mode):
        raise Skip(f"{what} is a symbolic link, not followed")
    if not stat.S_ISDIR(info.st_mode):
        raise Skip(f"{where} on the way is not a folder ({file_kind(info.st_mode)})")
    return _open(parent, name, _DIR_FLAGS, what, (errno.ELOOP, errno.ENOTDIR))


def _open_file(parent: int, name: str, owner: int) -> int:
    before = _look(parent, name, "the file")
    if not stat.S_ISREG(before.st_mode):
        raise Skip(not_regular(before.st_mode))
    fd = _open(parent, name, _FILE_FLAGS, "the file", (errno.ELOOP,))
    try:
        check_opened(os.fstat(fd), before, owner)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _look(parent: int, name: str, what: str) -> os.stat_result:
    """``name``'s own status (a link's, not its target's)."""
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise Gone from None
    except OSError as error:
        raise Skip(f"{what} cannot be read: {error.strerror}") from error


def _open(parent: int, name: str, flags: int, what: str, swapped: tuple[int, ...]) -> int:
    """Open ``name``; an error in ``swapped`` means it became a link since it was looked at."""
    try:
        return os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        raise Gone from None
    except OSError as error:
        if error.errno in swapped:
            raise Skip(f"{what} was replaced while being opened, not followed") from error
        raise Skip(f"{what} cannot be read: {error.strerror}") from error


def check_opened(info: os.stat_result, before: os.stat_result, owner: int) -> None:
    """Check that what was opened is the regular file looked at, with one name, of ``owner``.

    Args:
        info: The open file's status (``fstat``).
        before: The status of the name looked at before opening it (``lstat``).
        owner: The config dir's owner.

    Raises:
        Skip: The file changed between the look and the open, or is not to be bundled.
    """
    if not stat.S_ISREG(info.st_mode):
        raise Skip(f"replaced while being opened: {not_regular(info.st_mode)}")
    if (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
        raise Skip("replaced by another file while being opened")
    if info.st_nlink > 1:
        raise Skip(
            f"has {info.st_nlink} names (a hard link): it may be a file from outside the config dir"
        )
    if info.st_uid != owner:
        raise Skip(f"owned by another user (uid {info.st_uid}), not the config dir's owner")


def not_regular(mode: int) -> str:
    """Why a file of ``mode`` is skipped: its kind named (``not a regular file (a FIFO)``)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link, not followed"
    return f"not a regular file ({file_kind(mode)})"
