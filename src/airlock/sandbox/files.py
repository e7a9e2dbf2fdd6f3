"""Reading files that code inside the sandbox could have prepared: never through a link, never
blocking on a FIFO, never more than a bound; and acting in a folder it could have changed,
through the folder itself, opened (:func:`open_folder`)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

LIMIT = 64 << 20
"""The most bytes :func:`read_regular` reads (a state file is far smaller)."""


NOT_THROUGH_A_LINK = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""How a file code inside could have prepared is opened: never through a link, never waiting
on a FIFO."""


class NotRegular(Exception):
    """The path is there but is not a regular file (a link, a FIFO, a folder) or is too big."""


def regular_bytes(path: Path, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of a regular file, through links, as the program that reads it
    opens it (git, an agent); ``None`` for anything else (never waiting on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


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


def folder_identity(folder: Path) -> tuple[int, int] | None:
    """A folder's device and inode, through links as rules are made on it; ``None`` when it
    is gone: another folder put at its path since has another."""
    try:
        found = folder.stat()
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def chmod_regular(path: Path, mode: int) -> None:
    """Give the regular file at ``path`` (never through a link) ``mode``, if it is one."""
    with contextlib.suppress(OSError):
        fd = os.open(path, NOT_THROUGH_A_LINK)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, mode)
        finally:
            os.close(fd)


INERT_SUFFIX = ".airlock-set-aside"
"""Added to an entry's name when it cannot be moved to airlock's set-aside folder (another
file system, a full disk): no agent, editor, direnv or git reads ``.claude.airlock-set-aside``
or ``pre-commit.airlock-set-aside``."""


def rename_aside(name: str, opened: int, folder: Path, target: Path) -> Path:
    """Rename ``name`` (in the open ``folder``) to a free ``target`` (its folders made), or,
    where it cannot go there (another file system, a folder that cannot be made on a full
    disk), to a free inert name beside it (:data:`INERT_SUFFIX`); where it went. Nothing is
    ever copied.

    Raises:
        OSError: it could not be renamed at all.
    """
    try:
        target = _free(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(name, target, src_dir_fd=opened)
    except OSError as error:
        inert = next(
            (free for free in aside_names(name + INERT_SUFFIX) if not _exists_in(free, opened)),
            None,
        )
        if inert is None:  # a thousand taken
            raise OSError(f"{folder / name}: no free name to set it aside under") from error
        os.rename(name, inert, src_dir_fd=opened, dst_dir_fd=opened)
        return folder / inert
    return target


def move_entry_aside(path: Path, target: Path) -> Path:
    """:func:`rename_aside` for the entry at ``path`` (a link stays a link), through its
    folder opened; where it went.

    Raises:
        OSError: it could not be renamed at all.
    """
    opened = open_folder(path.parent)
    try:
        return rename_aside(path.name, opened, path.parent, target)
    finally:
        os.close(opened)


def aside_names(first: str) -> Iterator[str]:
    """The names something set aside is given: ``first``, then ``first.1``, ``first.2``, …
    (at most a thousand)."""
    yield first
    for number in range(1, 1000):
        yield f"{first}.{number}"


def _free(target: Path) -> Path:
    """``target``, or the first of ``target.1``, ``target.2``, … that is not taken (set-aside
    folders are airlock's own, read-only in every sandbox: nothing takes one meanwhile).

    Raises:
        OSError: all of them are taken.
    """
    free = next(
        (
            target.with_name(name)
            for name in aside_names(target.name)
            if not os.path.lexists(target.with_name(name))
        ),
        None,
    )
    if free is None:  # a thousand taken
        raise OSError(f"{target}: no free name to set it aside under")
    return free


def _exists_in(name: str, opened: int) -> bool:
    try:
        os.stat(name, dir_fd=opened, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
