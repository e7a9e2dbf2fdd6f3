"""Removing paths inside one folder through descriptors, never following a symbolic link.

Every path is removed relative to a descriptor of the root (the config dir), each folder on
the way opened with ``O_NOFOLLOW | O_DIRECTORY``: a path that is not plainly inside the root, or
that has a symbolic link among its folders, is refused (:class:`~airlock.errors.UnsafePathError`)
before anything of it is touched. A file or a link is unlinked as itself; a folder goes with
``shutil.rmtree(name, dir_fd=parent)``, which opens every folder below it without following
links and unlinks a link as a link. Something already gone is not an error.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from airlock.errors import UnsafePathError
from airlock.sessions import layout
from airlock.sessions.model import Session

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_PLAIN = frozenset({"..", ".", ""})
"""Path parts that would leave, stay in or skip a folder: never in a path removed."""
MAX_OPEN_FOLDERS = 256
"""Folder descriptors kept open for reuse at most (the shallow ones are kept)."""


def why(error: BaseException) -> str:
    """What went wrong, in words: the system's message and the file it names."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return str(error)


class Remover:
    """Removes paths inside ``root`` through descriptors; use it as a context manager.

    Args:
        root: the folder nothing outside of which is ever removed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")
        self._fds: dict[tuple[str, ...], int] = {}

    def __enter__(self) -> Remover:
        self._fds[()] = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def remove(self, path: str | Path) -> None:
        """Remove a file, link or whole folder at ``path``; a missing path is not an error.

        Raises:
            UnsafePathError: ``path`` is not inside the root, or a folder on the way is a link.
        """
        remove_entry(*self.locate(path))

    def check(self, session: Session) -> None:
        """Open every folder on the way to each root of ``session``, as a removal would.

        Raises:
            UnsafePathError: a root is not inside the root folder, or a folder on the way is a
                link (nothing has been removed).
        """
        for root in session.root_paths:
            self.locate(root)

    def remove_session(self, session: Session) -> None:
        """Remove every root of ``session``, each as :meth:`remove` does.

        The transcript goes last, and the session folder just before it: a removal that
        fails part way leaves a session that is still listed, with what is left of it.

        Raises:
            UnsafePathError: a root is not inside the root folder, or a folder on the way is a
                link.
        """
        last = (
            session.transcript_path.removesuffix(layout.TRANSCRIPT_SUFFIX),
            session.transcript_path,
        )
        roots = [root for root in session.root_paths if root not in last]
        roots += [root for root in last if root in session.root_paths]
        for root in roots:
            self.remove(root)

    def locate(self, path: str | Path) -> tuple[int, str]:
        """A descriptor of the folder holding ``path`` (inside the root, reached without
        following a link) and the last name of ``path``.

        Raises:
            UnsafePathError: as :meth:`remove` says.
        """
        text = os.fspath(path)
        if not text.startswith(self._prefix):
            raise UnsafePathError(f"{path} is outside {self.root}: refused")
        parts = tuple(text[len(self._prefix) :].split(os.sep))  # noqa: PTH206 - str paths
        if not _NOT_PLAIN.isdisjoint(parts):
            raise UnsafePathError(f"{path}: not a plain path inside {self.root}: refused")
        return self._dir_fd(parts[:-1]), parts[-1]

    def _dir_fd(self, parts: tuple[str, ...]) -> int:
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        parent = self._dir_fd(parts[:-1])
        try:
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        except OSError as error:
            where = self.root.joinpath(*parts)
            link = error.errno in (errno.ELOOP, errno.ENOTDIR) and where.is_symlink()
            what = "a symbolic link, not followed" if link else f"not a real folder ({why(error)})"
            raise UnsafePathError(f"{where}: {what}: refused") from error
        if len(self._fds) > MAX_OPEN_FOLDERS:
            for key in [k for k in self._fds if len(k) > 2]:
                os.close(self._fds.pop(key))
        self._fds[parts] = fd
        return fd


def remove_entry(parent: int, name: str) -> None:
    """Remove ``name`` in the folder ``parent``: a file or link by unlinking it (never what a
    link points to), a folder with everything in it; gone already is not an error."""
    try:
        os.unlink(name, dir_fd=parent)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    except PermissionError:  # what unlink says of a folder outside Linux
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise
    shutil.rmtree(name, dir_fd=parent, onerror=_unless_gone)


def _unless_gone(
    function: object, path: str, info: tuple[type[BaseException], BaseException, object]
) -> None:
    """``rmtree``'s error handler: what is gone already is not an error; the rest is raised."""
    if not isinstance(info[1], FileNotFoundError):
        raise info[1]
