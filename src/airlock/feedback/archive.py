"""The ``local_archive`` delivery: the bundle kept on this machine until the user forwards it.

Bundles go to ``<config dir>/feedback-bundles/`` (directory 0700, each file 0600), each made by
:func:`airlock._atomic.create_file`: written with no name at all, synced, and only then linked
under its final name, and the directory synced: a crash mid-write leaves nothing in the folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from airlock._atomic import Fill, create_file
from airlock.errors import AirlockError, UnsafePathError

FOLDER = "feedback-bundles"
SUFFIX = ".tar.gz"


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


def write_private(directory: Path, name: str, fill: Fill) -> Path:
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
        return create_file(final, fill, mode=0o600)
    except OSError as error:
        raise AirlockError(f"cannot write {final}: {error.strerror}") from error
