"""The empty files and folders bubblewrap makes where a protected path is missing: listed while
they stand, removed after the run, and after a run that was killed.

Theory of operation
-------------------
A read-only rule on a missing path (``.git/commondir``, ``.vscode``, ``~/.claude/settings.json``)
needs something to bind onto: bubblewrap makes an empty file or folder there, on the host's
file system when the place is writable. After the run airlock removes them. A run killed with
``SIGKILL`` cannot, and what it leaves breaks tools: git refuses a repository whose
``commondir`` is empty, an agent cannot read a ``settings.json`` that is a folder.

So before the sandbox is built, :meth:`Placeholders.record` writes the list to a *ledger* (one
JSON file per run, under airlock's state, with the run's process id and start and its scratch
folder in the temporary folder, where the sources of those binds are), and
:meth:`Placeholders.remove` deletes the ledger once they are gone. At the start of every run,
:func:`sweep` removes the placeholders of ledgers whose process is gone. A placeholder is only
ever removed while empty, and never while another run that is still going lists the same path
(unlinking a path another sandbox has a mount on would take that mount away inside it).

A process is known by its id and its start (:func:`airlock._process.start_of`): after a
reboot, or once ids have gone round, the id of a killed run may be another process's, which
must not keep that run's placeholders for as long as it runs. (A ledger written before the
start was kept is read by its id alone.)

The run's other folders in the temporary folder, the CA bundle's and the git gateway
socket's (:mod:`airlock.egress.options`), have a ledger of their own each, listing no path:
a run killed with inspection or ``--repo`` leaves them too, and the same sweep removes them.

Runs that share airlock's state take turns from their look at the paths until their ledger is
written, and to remove their placeholders (:mod:`airlock.sandbox.setup_lock`): no placeholder
goes between another run's look and its ledger, so one is never taken for a path that is
there, nor removed under a run that binds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from airlock._process import alive, start_of
from airlock.sandbox.files import is_at, open_folder
from airlock.sandbox.setup_lock import removing

SCRATCH_PREFIX = "airlock-run-"
"""How a run's scratch folder is named (:func:`airlock.sandbox.launcher.start`)."""

CA_PREFIX = "airlock-ca-"
"""How the folder of a run's CA bundle is named (:mod:`airlock.egress.options`)."""
GATEWAY_PREFIX = "airlock-git-gateway-"
"""How the folder of a run's git gateway socket is named (:mod:`airlock.egress.options`)."""


class Placeholders:
    """The placeholders of one run, its scratch folder (or another folder of the run's in
    the temporary folder: :data:`RUN_FOLDERS`), and its ledger (``None``: none kept, as in
    tests)."""

    def __init__(
        self,
        paths: Sequence[Path],
        ledger: Path | None = None,
        scratch: Path | None = None,
        workspace: Path | None = None,
    ) -> None:
        self.paths = tuple(paths)
        self.ledger = ledger
        self.scratch = scratch
        self.workspace = workspace
        """The workspace (its real path), held open by :meth:`record` (before the sandbox is
        built) when placeholders go in it: they are removed where it is by then (the user
        may move or rename it while the command runs; found by its old path, they would stay:
        an empty ``.git/commondir`` that git refuses, a folder at ``.mcp.json``). One folder
        held, whatever the placeholders' number."""
        self._held = -1

    def record(self) -> None:
        """Write the ledger (a failure to write it is raised: the run must not go on blind),
        and hold the workspace (:attr:`workspace`); a failure lets it go again."""
        self._hold()
        try:
            if self.ledger is None or not (self.paths or self.scratch):
                return
            self.ledger.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            text = json.dumps(
                {
                    "pid": os.getpid(),
                    "start": start_of(os.getpid()),
                    "paths": [str(path) for path in self.paths],
                    "scratch": str(self.scratch) if self.scratch else None,
                }
            )
            self.ledger.write_text(text, encoding="utf-8")
        except BaseException:
            self._release()
            raise

    def remove(self) -> None:
        """Remove the placeholders no other running sandbox stands on, the scratch folder,
        then the ledger, all under the lock: a run that ends at the same time and finds this
        run's ledger still there would leave the placeholders both stand on, taking them for
        this run's (each would leave them to the other)."""
        try:
            with removing(None if self.ledger is None else self.ledger.parent) as now:
                if not now:  # listed still: the next run's sweep removes them
                    return
                claimed = claimed_by_others(self.ledger)
                paths = (path for path in self.paths if path not in claimed)
                held = self.workspace if self._held >= 0 else None
                moved = (held, self._held) if held is not None else None
                remove_empty(paths, moved, claimed)
                if self.scratch is not None and _is_scratch(self.scratch):
                    shutil.rmtree(self.scratch, ignore_errors=True)  # never through a link
                if self.ledger is not None:
                    with contextlib.suppress(OSError):
                        self.ledger.unlink()
        finally:
            self._release()

    def _hold(self) -> None:
        workspace = self.workspace
        if self._held >= 0 or workspace is None:
            return
        if not any(path.is_relative_to(workspace) for path in self.paths):
            return
        with contextlib.suppress(OSError):  # not there: nothing is made in it
            opened = open_folder(workspace)
            if is_at(opened, workspace):  # the real folder (the paths are real ones)
                self._held = opened
            else:
                os.close(opened)

    def _release(self) -> None:
        if self._held >= 0:
            os.close(self._held)
            self._held = -1


SCRATCH_ENTRIES = frozenset({"empty-dir", "empty-file", "resolv.conf"})
"""What a run's scratch folder holds (:func:`airlock.sandbox.launcher.start`)."""

RUN_FOLDERS: dict[str, frozenset[str]] = {
    SCRATCH_PREFIX: SCRATCH_ENTRIES,
    CA_PREFIX: frozenset({"ca-bundle.pem"}),
    GATEWAY_PREFIX: frozenset({"gateway.sock"}),
}
"""A run's folders in the temporary folder, by how they are named, and what each holds."""


def _is_scratch(path: Path) -> bool:
    """Whether ``path`` is a run's scratch folder or another of its folders of
    :data:`RUN_FOLDERS`: so named, a folder of this user (not a link), holding nothing but what
    such a folder holds (a ledger naming any other folder removes nothing)."""
    try:
        found = path.lstat()
        names = {entry.name for entry in os.scandir(path)}
    except OSError:
        return False
    return (
        any(
            path.name.startswith(prefix) and names <= entries
            for prefix, entries in RUN_FOLDERS.items()
        )
        and stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
    )


def remove_empty(
    paths: Iterable[Path],
    moved: tuple[Path, int] | None = None,
    claimed: Collection[Path] = frozenset(),
) -> None:
    """Remove each empty folder or empty file (deepest first); anything with content stays.

    ``moved``: a folder (the workspace) and a descriptor held open on it since before the
    run (:meth:`Placeholders.record`): a path in it is taken where the folder is now, unless
    another run's ledger lists it there (``claimed``: a run started in the folder after it
    was moved). Each is removed through its folder, opened and found to be where the path
    says (the paths are real ones, links resolved, when listed): a folder on the way swapped
    for a link to elsewhere (by a sandbox still running) removes nothing elsewhere."""
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # gone, not empty, or made under a private /tmp
            if moved is not None and path.is_relative_to(moved[0]):
                folder_was, held = moved
                path = Path(f"/proc/self/fd/{held}").readlink() / path.relative_to(folder_was)
                if path in claimed:
                    continue
            folder = open_folder(path.parent)
            try:
                if is_at(folder, path.parent):
                    _remove_if_empty(path.name, folder)
            finally:
                os.close(folder)


def _remove_if_empty(name: str, folder: int) -> None:
    """Remove ``name`` in the open ``folder`` if it is an empty folder or an empty file."""
    found = os.stat(name, dir_fd=folder, follow_symlinks=False)
    if stat.S_ISDIR(found.st_mode):
        os.rmdir(name, dir_fd=folder)  # fails unless empty
    elif stat.S_ISREG(found.st_mode) and found.st_size == 0:
        os.unlink(name, dir_fd=folder)


def sweep(folder: Path) -> list[Path]:
    """Remove what killed runs left (their ledgers in ``folder``); the ledgers of those that
    left placeholders."""
    swept: list[Path] = []
    for ledger, (pid, start), paths, scratch in _ledgers(folder):
        if alive(pid, start):
            continue
        Placeholders(paths, ledger, scratch).remove()
        if paths:  # a scratch folder alone is nothing to tell
            swept.append(ledger)
    return swept


def _ledgers(
    folder: Path,
) -> list[tuple[Path, tuple[int, str | None], tuple[Path, ...], Path | None]]:
    """Each ledger in ``folder``: its run's process id and start (``None`` in a ledger
    written before the start was kept), its placeholders and its scratch folder."""
    found: list[tuple[Path, tuple[int, str | None], tuple[Path, ...], Path | None]] = []
    try:
        names = sorted(folder.glob("*.json"))
    except OSError:
        return found
    for ledger in names:
        try:
            data = json.loads(ledger.read_text(encoding="utf-8"))
            paths = tuple(Path(path) for path in data["paths"])
            scratch = Path(data["scratch"]) if data.get("scratch") else None
            start = data.get("start")
            process = (int(data["pid"]), start if isinstance(start, str) else None)
            found.append((ledger, process, paths, scratch))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # being written, or not ours: left alone
    return found


def claimed_by_others(ledger: Path | None) -> set[Path]:
    """Paths the ledgers of other runs that are still going list (beside ``ledger``).

    A run that finds another's placeholder in place (an empty ``.git/commondir`` that a run in
    the same workspace made) binds onto it as onto any file, and lists it in its own ledger
    too (:func:`airlock.sandbox.launcher.start`): the other run, when it ends, must not remove
    it, which would take this run's mount away inside its sandbox."""
    if ledger is None:
        return set()
    return {
        path
        for other, (pid, start), paths, _ in _ledgers(ledger.parent)
        if other != ledger and alive(pid, start)
        for path in paths
    }
