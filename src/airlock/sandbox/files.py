"""Reading files that code inside the sandbox could have prepared: never through a link, never
blocking on a FIFO, never more than a bound; and acting in a folder it could have changed,
through the folder itself, opened (:func:`open_folder`)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

LIMIT = 64 << 20
"""The most bytes :func:`read_regular` reads (a state file is far smaller)."""


NOT_THROUGH_A_LINK = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""How a file code inside could have prepared is opened: never through a link, never waiting
on a FIFO."""


class NotRegular(Exception):
    """The path is there but is not a regular file (a link, a FIFO, a folder) or is too big."""


def read_regular(path: Path, limit: int = LIMIT) -> bytes | None:
    """The bytes of the regular file at ``path``; ``None`` when nothing is there.

    Raises:
        NotRegular: something else is there (a link, a FIFO, a device, a folder), or a file
            larger than ``limit``.
    """
    try:
        fd = os.open(path, NOT_THROUGH_A_LINK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if os.path.lexists(path):
            raise NotRegular(f"{path}: {error.strerror}") from error
        return None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise NotRegular(f"{path}: not a regular file")
        if found.st_size > limit:
            raise NotRegular(f"{path}: larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if sum(map(len, chunks)) > limit:
                raise NotRegular(f"{path}: larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text_or_none(path: Path, limit: int = 4096) -> str | None:
    """The start of a small regular file as text (``limit`` bytes at most), or ``None`` when it
    is missing or not a regular file: for the git files read at start-up (``.git`` files,
    ``commondir``, ``config``)."""
    try:
        data = read_regular(path, LIMIT)
    except NotRegular:
        return None
    return None if data is None else data[:limit].decode("utf-8", "replace")


def open_folder(path: Path) -> int:
    """``path`` opened as a folder, to act in it by name (``*at`` calls with ``dir_fd``): no
    read permission needed, and what is acted on stays in this folder whatever is renamed, or
    swapped for a link, on the way to it meanwhile. The caller closes it.

    Raises:
        OSError: it cannot be opened as a folder.
    """
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def is_at(opened: int, path: Path) -> bool:
    """Whether the folder ``opened`` (:func:`open_folder`) is ``path`` (a real path) now."""
    return Path(f"/proc/self/fd/{opened}").readlink() == path


def chmod_regular(path: Path, mode: int) -> None:
    """Give the regular file at ``path`` (never through a link) ``mode``, if it is one."""
    with contextlib.suppress(OSError):
        fd = os.open(path, NOT_THROUGH_A_LINK)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
