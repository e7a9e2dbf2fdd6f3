"""Files that are complete or absent: atomic writes and directory syncs, written once.

Two ways to write, both synced (the file, then its folder) before they return:

* :func:`replace_file` puts new content at a path, replacing what was there: it is written
  under a hidden temporary name in the same folder and renamed over the path. A crash leaves
  the old content or the new, never a mix (a hidden ``.<name>.<random>.tmp`` may be left).
* :func:`create_file` makes a new file and never replaces one: it is written with no name at
  all (``O_TMPFILE``) and linked under its name only when complete, so a crash leaves nothing.
  Where the file system has no ``O_TMPFILE`` (or cannot link one), a hidden temporary name
  stands in and is linked (or, failing that, renamed) into place.

:func:`sync_file` makes an open file's content durable (for a file written as it streams in,
then renamed); :func:`fsync_dir` makes a rename or a removal in a folder durable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

Fill = Callable[[IO[bytes]], object]
"""Writes a file's content into the open file (``lambda out: out.write(data)``)."""

__all__ = ["Fill", "create_file", "fsync_dir", "replace_file", "sync_file"]


def sync_file(handle: IO[bytes]) -> None:
    """Flush ``handle`` and sync its file: what was written to it is on the disk."""
    handle.flush()
    os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Sync ``directory`` itself: the names added, renamed or removed in it are durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, fill: Fill | bytes, *, mode: int = 0o600) -> Path:
    """Write ``path`` atomically, replacing any file there: the old content or the new, whole.

    Args:
        path: The file to write.
        fill: Its content, or a function writing it into the open file.
        mode: Permission bits of the new file.

    Returns:
        ``path``.

    Raises:
        OSError: It could not be written (the temporary name is removed; ``path`` is as it was).
    """
    with _temporary(path, fill, mode) as temporary:
        temporary.replace(path)
    fsync_dir(path.parent)
    return path


def create_file(path: Path, fill: Fill | bytes, *, mode: int = 0o600) -> Path:
    """Create ``path`` atomically: complete, or not there at all; an existing file is kept.

    Args:
        path: The new file.
        fill: Its content, or a function writing it into the open file.
        mode: Permission bits of the new file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists already (it is left as it is).
        OSError: It could not be written.
    """
    try:
        fd = os.open(path.parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    except (AttributeError, OSError):  # no O_TMPFILE here
        return _create_named(path, fill, mode)
    with os.fdopen(fd, "w+b") as handle:
        _fill(handle, fill)
        try:
            os.link(f"/proc/self/fd/{handle.fileno()}", path)
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise
            # Some file systems and containers cannot link an O_TMPFILE file: copy the
            # complete content under a temporary name instead.
            handle.seek(0)
            return _create_named(path, lambda out: shutil.copyfileobj(handle, out), mode)
    fsync_dir(path.parent)
    return path


def _create_named(path: Path, fill: Fill | bytes, mode: int) -> Path:
    with _temporary(path, fill, mode) as temporary:
        try:
            os.link(temporary, path)  # fails if ``path`` exists: nothing is replaced
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise
            if path.exists():  # a file system without hard links: check, then rename
                raise FileExistsError(errno.EEXIST, "File exists", str(path)) from error
            temporary.rename(path)
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def _temporary(path: Path, fill: Fill | bytes, mode: int) -> Iterator[Path]:
    """A hidden file beside ``path``, written and synced; removed on the way out if still
    there (renamed into place, it is not)."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        _write(temporary, fill, mode)
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _write(path: Path, fill: Fill | bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as handle:
        _fill(handle, fill)


def _fill(handle: IO[bytes], fill: Fill | bytes) -> None:
    if isinstance(fill, bytes):
        handle.write(fill)
    else:
        fill(handle)
    sync_file(handle)
