"""The ``local_archive`` delivery: the bundle kept on this machine until the user forwards it.

Bundles go to ``<config dir>/feedback-bundles/`` (directory 0700, each file 0600). A bundle is
written with no name at all (an ``O_TMPFILE`` file in that directory), synced, and only then
linked under its final name, and the directory synced: a crash mid-write leaves nothing in the
folder. Where the file system has no ``O_TMPFILE``, or cannot link one, a hidden ``.partial``
name stands in (filled from the complete temporary file when there is one), is renamed when
complete, and leftovers of an earlier crash are removed on the next write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from airlock.errors import AirlockError, UnsafePathError

FOLDER = "feedback-bundles"
SUFFIX = ".tar.gz"
PARTIAL = ".partial"


def archive_dir(config_dir: Path) -> Path:
    """``<config dir>/feedback-bundles``."""
    return config_dir / FOLDER


def ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` (0700) or make an existing one private; refuse a link or a stranger's.

    Raises:
        UnsafePathError: It is a symbolic link, not a directory, or owned by another user.
    """
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = directory.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{directory} is not a plain directory: refusing to write bundles")
    if info.st_uid != os.geteuid():
        raise UnsafePathError(f"{directory} belongs to another user: refusing to write bundles")
    if stat.S_IMODE(info.st_mode) != 0o700:
        directory.chmod(0o700)
    return directory


def write_private(directory: Path, name: str, fill: Callable[[IO[bytes]], None]) -> Path:
    """Write a file atomically: readable by its owner only, complete or absent.

    Args:
        directory: Where the file goes (made private by :func:`ensure_private_dir`).
        name: Its final name; an existing file of that name is never replaced.
        fill: Writes the content into the open file.

    Returns:
        The path of the complete file.

    Raises:
        AirlockError: The file could not be written.
    """
    ensure_private_dir(directory)
    final = directory / name
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        return _write_renamed(directory, final, fill)
    try:
        with os.fdopen(fd, "w+b") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
            try:
                os.link(f"/proc/self/fd/{handle.fileno()}", final)
            except OSError as error:
                if error.errno == errno.EEXIST:
                    raise
                # Some file systems and containers cannot link an O_TMPFILE file: copy the
                # complete content under a hidden name instead, then rename.
                handle.seek(0)
                return _write_renamed(directory, final, lambda out: shutil.copyfileobj(handle, out))
    except OSError as error:
        raise AirlockError(f"cannot write {final}: {error.strerror}") from error
    _sync_dir(directory)
    return final


def _write_renamed(directory: Path, final: Path, fill: Callable[[IO[bytes]], None]) -> Path:
    for stale in directory.glob(f".*{PARTIAL}"):
        with contextlib.suppress(OSError):
            stale.unlink()
    temporary = directory / f".{final.name}.{os.getpid()}{PARTIAL}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if final.exists():
            raise FileExistsError(17, "File exists")
        temporary.rename(final)
    except OSError as error:
        raise AirlockError(f"cannot write {final}: {error.strerror}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _sync_dir(directory)
    return final


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
