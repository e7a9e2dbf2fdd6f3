"""Walking a session's paths without following a link: files, bytes, newest time, owners."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def entries(folder: str | Path, problems: list[str]) -> list[os.DirEntry[str]]:
    """The entries of ``folder``; none when it is missing, a problem when it cannot be read."""
    try:
        with os.scandir(folder) as iterator:
            return list(iterator)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        problems.append(f"{folder}: not a folder")
        return []
    except OSError as error:
        problems.append(f"{folder}: cannot be read: {error.strerror}")
        return []


class Walk:
    """What walking some paths found: files, bytes, newest mtime, links, foreign owners.

    A link is counted as itself (its own size and time) and reported, never followed.

    Args:
        owner: the config dir's owner; files of anyone else are listed in :attr:`foreign`.
    """

    __slots__ = ("files", "foreign", "newest", "owner", "problems", "size")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.files: list[str] = []
        self.size = 0
        self.newest = 0.0
        self.problems: list[str] = []
        self.foreign: list[str] = []

    def walk(self, path: str, folder: bool = False) -> None:
        """Add ``path`` and, for a real folder, everything under it (links not followed).

        Args:
            path: a file, link or folder.
            folder: the caller already knows it is a real folder (from ``scandir``).
        """
        if folder:
            self._walk_dir(path)
            return
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        except OSError as error:
            self.problems.append(f"{path}: cannot be read: {error.strerror}")
            return
        if stat.S_ISDIR(info.st_mode):
            self._walk_dir(path)
        else:
            self.add_file(path, info)

    def add_file(self, path: str, info: os.stat_result) -> None:
        """Add one file or link whose status is already known."""
        self.newest = max(self.newest, info.st_mtime)
        if info.st_uid != self.owner:
            self.foreign.append(path)
        if stat.S_ISLNK(info.st_mode):
            self.problems.append(f"{path}: symbolic link, not followed")
        self.files.append(path)
        self.size += info.st_size

    def _walk_dir(self, path: str) -> None:
        """Folders are descended by their entries' types; only files are looked up."""
        stack = [path]
        while stack:
            current = stack.pop()
            try:
                with os.scandir(current) as iterator:
                    for entry in iterator:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        self.add_file(entry.path, info)
            except OSError as error:
                self.problems.append(f"{current}: cannot be read: {error.strerror}")
