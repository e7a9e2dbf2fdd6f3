"""Agent and editor configuration written inside the sandbox: found after the run and set aside.

Theory of operation
-------------------
A ``.claude`` folder, ``.mcp.json``, ``.vscode``, ``.idea`` or ``.envrc`` says what runs
when an agent, an editor or direnv starts in the folder that holds it: hooks, MCP servers,
tasks. The workspace's own are read-only inside (:data:`airlock.sandbox.paths.PROTECTED_IN_WORKSPACE`),
but one can be made in any subfolder, where no rule can stand in advance (a placeholder in
every folder would litter the project), and the files a protected one names (a hook's script
under ``.claude/hooks/``) are not protected themselves. So:

1. before the run, :func:`snapshot` notes every such entry in the workspace and each file under
   the folders among them (type, size, inode, modification time), through at most
   :data:`FOLDERS` folders, :data:`DEPTH` deep, breadth first, without following symbolic
   links or entering :data:`airlock.sandbox.repositories.NOT_SCANNED` folders;
2. after it, :func:`set_aside` looks again and moves every entry that is new or changed (a
   folder as a whole when it is new, else each changed file in it) to a folder of its own under
   airlock's state, keeping its path relative to the workspace, and says where each went. A
   removal is left as it is (it runs nothing).

Nothing is deleted: the user reviews what was set aside and moves back what they want. A
workspace larger than the bounds is looked at in part, and the run says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from airlock.sandbox.agent_state import CONFIG_FILES, keep_file, keep_servers, read, state_files
from airlock.sandbox.repositories import NOT_SCANNED, module_folders, secure_new_modules

WATCHED = frozenset({".claude", ".mcp.json", ".vscode", ".idea", ".envrc"})
"""Names whose content steers an agent, an editor or direnv started in their folder."""
DEPTH = 4
"""How many folders deep below the workspace :func:`snapshot` looks."""
FOLDERS = 2_000
"""How many folders of the workspace :func:`snapshot` reads at most."""
FILES_IN_WATCHED = 1_000
"""How many entries under one watched folder are noted at most."""

Signature = tuple[int, int, int, int]
"""``(mode, size, inode, modification time in ns)`` of an entry, not following a link."""


class Snapshot(NamedTuple):
    """The watched entries found, with their signatures, and whether the bounds held them all;
    ``links``: where each watched entry that is a symbolic link pointed."""

    entries: dict[Path, Signature]
    complete: bool
    links: dict[Path, str]


class SetAside(NamedTuple):
    """One entry moved out of the workspace: where it was, and where it is now."""

    path: Path
    moved_to: Path


def _signature(path: Path) -> Signature | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return (found.st_mode, found.st_size, found.st_ino, found.st_mtime_ns)


def snapshot(workspace: Path, depth: int = DEPTH, folders: int = FOLDERS) -> Snapshot:
    """Every watched entry of ``workspace`` and every entry under the watched folders, and the
    workspace's ``.git/hooks`` when it is a symbolic link (a read-only rule lands on what a
    link names, so the link itself could be replaced by a folder of new hooks)."""
    entries: dict[Path, Signature] = {}
    hooks = workspace / ".git" / "hooks"
    if hooks.is_symlink():
        _note(hooks, entries)
    queue: deque[tuple[Path, int]] = deque([(workspace, 0)])
    read = 0
    complete = True
    while queue:
        folder, level = queue.popleft()
        if read >= folders:
            complete = False
            break
        read += 1
        try:
            listing = list(os.scandir(folder))
        except OSError:
            continue
        for entry in listing:
            path = Path(entry.path)
            if entry.name in WATCHED:
                complete &= _note(path, entries)
            elif (
                level < depth
                and entry.name not in NOT_SCANNED
                and entry.name != ".git"
                and entry.is_dir(follow_symlinks=False)
            ):
                queue.append((path, level + 1))
    links = {path: str(path.readlink()) for path in entries if path.is_symlink()}
    return Snapshot(entries, complete, links)


def _note(path: Path, entries: dict[Path, Signature]) -> bool:
    """Note ``path`` and, for a real folder, what is under it; whether all of it was noted."""
    signature = _signature(path)
    if signature is None:
        return True
    entries[path] = signature
    if not path.is_dir() or path.is_symlink():
        return True
    noted = 0
    for root, folder_names, file_names in os.walk(path):  # does not follow links by default
        for name in (*folder_names, *file_names):
            if noted >= FILES_IN_WATCHED:
                return False
            inner = Path(root) / name
            found = _signature(inner)
            if found is not None:
                entries[inner] = found
                noted += 1
    return True


def set_aside(
    workspace: Path, before: Snapshot, destination: Path, read_only: Iterable[Path] = ()
) -> list[SetAside]:
    """Move what is new or changed since ``before`` to ``destination`` (created when needed),
    each at its path relative to ``workspace``; what was moved, outermost first.

    An entry whose folder is new itself goes with that folder. Entries under ``read_only``
    (read-only inside: a change there came from outside, the user's own) stay. An entry that
    cannot be moved stays where it is and is reported with ``moved_to`` equal to its ``path``.
    """
    after = snapshot(workspace)
    if before.links:  # a link replaced: its replacement is new, and the link comes back
        for path in before.links:
            if path not in after.entries and path.exists():
                after.entries[path] = _signature(path) or (0, 0, 0, 0)
    kept = tuple(read_only)
    changed = sorted(
        path
        for path, signature in after.entries.items()
        if before.entries.get(path) != signature
        and not any(path.is_relative_to(protected) for protected in kept)
    )
    moved: list[SetAside] = []
    taken: list[Path] = []
    for path in changed:
        if any(path.is_relative_to(outer) for outer in taken):
            continue  # went with its new folder
        was = before.entries.get(path)
        if was is not None and stat.S_ISDIR(was[0]) and path.is_dir() and not path.is_symlink():
            continue  # a folder that was there: its changed entries are moved one by one
        done = _move(path, destination / path.relative_to(workspace))
        moved.append(done)
        if done.moved_to == path:
            continue
        taken.append(path)
        if path in before.links:
            with contextlib.suppress(OSError):
                path.symlink_to(before.links[path])
    return moved


GIT_FOLDER_MARKS = ("HEAD", "objects", "refs")
"""What makes git take a folder for a git folder (a bare repository) when it has no ``.git``."""


def looks_like_git_folder(folder: Path) -> bool:
    """Whether git would take ``folder`` itself for a git folder."""
    return all(os.path.lexists(folder / mark) for mark in GIT_FOLDER_MARKS)


def set_aside_git_folder(workspace: Path, before: bool, destination: Path) -> list[SetAside]:
    """After the run: when the workspace itself became a git folder during it (``HEAD``,
    ``objects``, ``refs`` at its top: git would then run its ``config``, ``core.fsmonitor``
    included, for anyone using git there), its ``HEAD`` and ``config`` are set aside."""
    if before or not looks_like_git_folder(workspace):
        return []
    moved = []
    for name in ("HEAD", "config"):
        path = workspace / name
        if os.path.lexists(path):
            moved.append(_move(path, destination / name))
    return moved


def _move(path: Path, target: Path) -> SetAside:
    """Move ``path`` to ``target`` (its folders made); one that cannot be moved stays, and the
    answer says so (``moved_to`` is ``path``)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    except OSError:
        return SetAside(path, path)
    return SetAside(path, target)


def set_aside_message(moved: list[SetAside]) -> str:
    """What :func:`set_aside` did, for the user: each entry and where it went."""
    lines = [
        "airlock: written inside the sandbox, these would steer an agent, an editor or direnv "
        "started in their folder (hooks, servers, tasks), so they were set aside; review them "
        "and move back what you mean to keep:"
    ]
    for entry in moved:
        if entry.moved_to == entry.path:
            lines.append(f"  {entry.path}: could not be moved; check it before you start one there")
        else:
            lines.append(f"  {entry.path} → {entry.moved_to}")
    return "\n".join(lines)


class Watch:
    """Everything looked at before a run and made safe after it, in one place: the watched
    settings (:func:`snapshot`, :func:`set_aside`), whether the workspace was a git folder
    (:func:`set_aside_git_folder`), the submodules' git folders
    (:func:`airlock.sandbox.repositories.secure_new_modules`), the agent's MCP servers
    (:func:`airlock.sandbox.agent_state.keep_servers`) and other agents' configuration
    (:func:`airlock.sandbox.agent_state.keep_file`)."""

    def __init__(self, workspace: Path, home: Path, config_dir: Path) -> None:
        self.workspace = workspace
        self.settings = snapshot(workspace)
        self.modules = module_folders(workspace)
        self.was_git_folder = looks_like_git_folder(workspace)
        self.state = {path: read(path) for path in state_files(home, config_dir)}
        self.configs = {home / name: read(home / name) for name in CONFIG_FILES}

    def after(self, destination: Path, read_only: Iterable[Path]) -> list[str]:
        """Make safe what the run wrote (what is set aside goes under ``destination``); what
        was done, a message per line (none when the run wrote nothing of the kind)."""
        moved = set_aside(self.workspace, self.settings, destination, read_only)
        moved += set_aside_git_folder(self.workspace, self.was_git_folder, destination)
        lines = [set_aside_message(moved)] if moved else []
        lines += [f"airlock: {done}" for done in secure_new_modules(self.workspace, self.modules)]
        for number, (path, before) in enumerate(self.state.items()):
            kept = keep_servers(path, before, destination / f"{path.name}.{number}")
            if kept is not None:
                lines.append(f"airlock: {kept}")
        for path, before in self.configs.items():
            kept = keep_file(path, before, destination / path.parent.name / path.name)
            if kept is not None:
                lines.append(f"airlock: {kept}")
        return lines
