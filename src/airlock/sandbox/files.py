"""Reading files that code inside the sandbox could have prepared: never through a link, never
blocking on a FIFO, never more than a bound."""

from __future__ import annotations

import os
import stat
from pathlib import Path

LIMIT = 64 << 20
"""The most bytes :func:`read_regular` reads (a state file is far smaller)."""


class NotRegular(Exception):
    """The path is there but is not a regular file (a link, a FIFO, a folder) or is too big."""


def read_regular(path: Path, limit: int = LIMIT) -> bytes | None:
    """The bytes of the regular file at ``path``; ``None`` when nothing is there.

    Raises:
        NotRegular: something else is there (a link, a FIFO, a device, a folder), or a file
            larger than ``limit``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
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
