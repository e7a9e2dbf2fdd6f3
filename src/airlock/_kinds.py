"""What kind of file a mode names, in words (for messages about what is not a regular file)."""

from __future__ import annotations

import stat

KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISREG, "a regular file"),
)


def file_kind(mode: int) -> str:
    """The kind of file ``mode`` (``st_mode``) names: ``a FIFO``, ``a folder``, …"""
    return next((word for test, word in KINDS if test(mode)), "of an unknown kind")
