"""Git repositories in the workspace: nested ones protected like the root's, and a new one
made inside kept out of the workspace until airlock has made it safe.

Theory of operation
-------------------
Git runs what a repository's ``hooks/`` and ``config`` say (``core.fsmonitor``,
``core.hooksPath``, filters, aliases) whenever someone uses git in its work tree. Code inside
the sandbox must not be able to write them for the user's git to run outside later.

* **Repositories there at the start.** The root's ``.git/hooks``, ``.git/config`` and
  ``.git/commondir`` are read-only (:data:`airlock.sandbox.paths.PROTECTED_IN_WORKSPACE`).
  :func:`find_nested` looks for ``.git`` in subfolders, breadth first, at most
  :data:`NESTED_DEPTH` folders deep and through at most :data:`NESTED_FOLDERS` folders (it
  does not follow symbolic links, nor enter a ``.git`` or the folders of
  :data:`NOT_SCANNED`, such as ``node_modules`` and ``.venv``); :func:`nested_rules` makes the same
  paths read-only in each one found, with its ``.gitmodules``. A ``.git`` *file* (a
  submodule's or a linked worktree's) is read-only itself, and so are the hooks, config and
  commondir of the git folder it names when that folder is in the workspace
  (``.git/modules/NAME`` for a submodule).
* **No repository at the root.** A read-only placeholder at ``.git`` would make ``git init``
  fail. Instead :func:`hold` binds a fresh folder outside the workspace (under airlock's own
  state, read-only inside but for this bind) at ``.git``: git works as usual inside, hooks
  and all, but nothing it writes is in the workspace. After the run, :func:`bring_in` makes
  what was written safe, then moves it to ``.git``: every ``hooks/`` emptied, every
  ``config`` cut down to :data:`SAFE_CONFIG` (format, remotes' URLs and refspecs, branches'
  upstreams, the user's name and address), ``commondir`` and ``config.worktree`` moved aside, in
  the repository and in each submodule's git folder under ``modules/``, and the hooks in the
  folder the user's own ``core.hooksPath`` names in the workspace (a relative one: each
  repository's ``.githooks``) renamed aside (:func:`work_tree_hooks_aside`). If airlock ends
  before that (``kill -9``), the repository stays in the holding folder and never reaches
  the workspace.

* **Repositories made or changed in subfolders.** After the run,
  :func:`secure_new_repositories` makes safe, as :func:`bring_in` does, each ``.git`` the
  scan finds that was not there at the start, and :func:`secure_linked_repositories` each
  repository an index names as a submodule (where the scan does not look) whose ``.git``,
  config or hooks changed during the run: the user's ``git status`` at the root runs a
  submodule's config; :func:`secure_repositories_beyond` each other repository past the
  scan's bounds (found by :func:`walk_all`) whose ``.git``, config, hooks or
  ``core.hooksPath`` hooks changed during it. A ``.git`` file made in the run that names a
  git folder nothing in which changed (a worktree's of the user's) is left alone.

Not covered: nested repositories deeper or further than the scan's bounds are not
protected while the command runs (``--ro PATH`` protects one by hand); they are looked at
after it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import shutil
import stat
import subprocess
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from airlock._visible import visible as shown
from airlock.errors import SandboxError
from airlock.sandbox.files import LIMIT, read_text_or_none, regular_bytes
from airlock.sandbox.paths import (
    HOOK_MANAGER_FILES,
    LEFTHOOK_FILES,
    PRIVATE_TMPFS,
    Kind,
    Mount,
    commondir_rule,
    mount,
    read_only_at,
    resolve,
    sandbox_own_in,
)
from airlock.sandbox.placeholders import remove_empty

NESTED_DEPTH = 4
"""How many folders deep below the workspace :func:`find_nested` looks (``a/b/c/d/.git``)."""
NESTED_FOLDERS = 2_000
"""How many folders :func:`find_nested` reads at most (tens of milliseconds: every run pays)."""
NESTED_ENTRIES = 20_000
"""How many entries of one folder :func:`find_nested` reads at most."""
NESTED_REPOSITORIES = 300
"""How many nested repositories get rules at most (each is a few of bubblewrap's arguments,
which are bounded)."""
NOT_SCANNED = frozenset(
    {
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
    }
)
"""Folders that package managers and tools fill, entered by no scan (a project's own
repositories do not live there; thousands of folders do)."""
VCS_FOLDERS = frozenset({".git", ".hg"})
"""A repository's own folder, git's and Mercurial's: entered by no scan (what in them runs code
is looked at by name; a store holds thousands of folders)."""

SAFE_CONFIG: tuple[str, ...] = (
    r"core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase"
    r"|precomposeunicode|symlinks)",
    r"extensions\.(objectformat|refstorage)",
    r"remote\..+\.(url|pushurl|fetch|push|tagopt|mirror)",
    r"branch\..+\.(remote|merge|rebase)",
    r"user\.(name|email)",
    r"init\.defaultbranch",
)
"""Patterns of the keys (matched whole, any case) of a repository's config that come in from a repository made inside: none of
them runs a program (``remote.*.uploadpack``, ``core.sshCommand``, ``core.fsmonitor``,
``core.hooksPath``, filters, aliases and includes are dropped)."""


KEPT_CONFIG = 500
"""At most this many entries of a config made inside are kept (a repository's own has tens;
what is more is a config made to be long)."""

UNSAFE_URL_PREFIXES = ("ext::", "fd::")
"""Remote URL transports that run a program or use a descriptor: a repository made inside
brings no remote of theirs out (git refuses ``ext::`` by default; a user may allow it)."""


class NestedScan(NamedTuple):
    """The ``.git`` entries found in subfolders, and whether the scan saw every folder.

    (A named tuple, not a dataclass: it is built on every run's start-up path, where a
    dataclass costs about four times as much to define.)"""

    found: tuple[Path, ...]
    complete: bool


class Walk:
    """The workspace's folders, breadth first, as :func:`scan_workspace` reads them: iterating
    gives each entry of each folder read and the depth of its folder (0: the root). Folders
    are entered when they are not :data:`VCS_FOLDERS` or :data:`NOT_SCANNED`, nor links
    but to a folder in one of those (:func:`_enters_link`), at most
    ``max_depth`` below the root; at most ``max_folders`` folders are read, and
    ``max_entries`` entries of each. The entries of ``skip`` (the agents' own state: it may
    hold thousands of folders, written all the time) are neither given nor entered.

    What the folder and entry bounds cut off is in :attr:`cut`; folders below ``max_depth`` in
    :attr:`deeper` (a scan bounded in depth on purpose may leave them aside), those of
    :data:`NOT_SCANNED` met in :attr:`passed`, and those left to read when the folder bound
    stopped it in :attr:`unread`: what :func:`walk_all` reads after the run (:attr:`ended`:
    the walk went to its end, or to its bound).
    """

    def __init__(
        self,
        root: Path,
        max_depth: int,
        max_folders: int,
        max_entries: int,
        skip: Iterable[Path] = (),
    ) -> None:
        self.root = root
        self.max_depth = max_depth
        self.max_folders = max_folders
        self.max_entries = max_entries
        self.skip = frozenset(map(str, skip))  # compared with each entry's path as text
        self.cut: list[str] = []
        self.deeper: list[Path] = []
        self.passed: list[Path] = []
        self.unread: list[Path] = []
        self.ended = False
        self.stopped = ""
        """What :attr:`cut` says of the folder bound, when it stopped the walk."""

    def __iter__(self) -> Iterator[tuple[os.DirEntry[str], int]]:
        queue: deque[tuple[Path, int]] = deque([(self.root, 0)])
        read = 0
        linked: set[Path] = set()  # the folders entered through a link, resolved
        while queue:
            folder, depth = queue.popleft()
            if read >= self.max_folders:
                self.stopped = f"folders past the first {self.max_folders}"
                self.cut.append(self.stopped)
                self.unread = [folder, *(left for left, _ in queue)]
                self.ended = True
                return
            read += 1
            for entry in listing(folder, self.max_entries, self.cut):
                if entry.path in self.skip:
                    continue
                yield entry, depth
                if entry.name in NOT_SCANNED and entry.is_dir(follow_symlinks=False):
                    self.passed.append(Path(entry.path))
                if entry.name in NOT_SCANNED or entry.name in VCS_FOLDERS:
                    continue
                if not entry.is_dir(follow_symlinks=False) and not _enters_link(
                    entry, self.root, linked
                ):
                    continue
                if depth < self.max_depth:
                    queue.append((Path(entry.path), depth + 1))
                else:
                    self.deeper.append(Path(entry.path))
        self.ended = True


def _enters_link(entry: os.DirEntry[str], root: Path, linked: set[Path]) -> bool:
    """Whether a walk of ``root`` walks the folder a symbolic link leads to: one in the root
    that the walk does not enter itself, in one of :data:`NOT_SCANNED` or
    :data:`VCS_FOLDERS` (a link made to it, ``app -> node_modules/x``, would hide what is in
    it); each once (``linked``: those entered), never one that holds the link (a loop).
    Other folders in the root are walked as they are."""
    if not entry.is_symlink():
        return False
    try:
        target = resolve(Path(entry.path))
        real_root = resolve(root)
        if target in linked or not target.is_relative_to(real_root) or not target.is_dir():
            return False
    except OSError:  # a link that cannot be read (/proc/1/cwd): not walked
        return False
    skipped = NOT_SCANNED | VCS_FOLDERS
    if skipped.isdisjoint(target.relative_to(real_root).parts):
        return False
    if resolve(Path(entry.path).parent).is_relative_to(target):
        return False  # the link's own folder, or one holding it: a loop
    linked.add(target)
    return True


def listing(folder: Path, max_entries: int, cut: list[str]) -> list[os.DirEntry[str]]:
    """The first ``max_entries`` entries of ``folder`` (none when it is gone, or is not a
    folder); when there are more, or it cannot be read (a folder made unreadable hides what
    is in it from the look, not from a program that names it), says so in ``cut``."""
    found: list[os.DirEntry[str]] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(found) >= max_entries:
                    cut.append(f"entries past the first {max_entries} of {folder}")
                    break
                found.append(entry)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as error:
        cut.append(f"{shown(folder)}, which cannot be read ({error.strerror or error})")
    return found


def find_nested(
    workspace: Path, max_depth: int = NESTED_DEPTH, max_folders: int = NESTED_FOLDERS
) -> NestedScan:
    """The ``.git`` folders and files below ``workspace`` (not its own), breadth first, in
    folders at most ``max_depth`` below it, reading at most ``max_folders`` folders
    (:class:`Walk`), :data:`NESTED_REPOSITORIES` of them at most."""
    return scan_workspace(workspace, frozenset(), max_depth, max_folders).nested


class WorkspaceScan(NamedTuple):
    """One walk of the workspace (:class:`Walk`, within the bounds of :func:`find_nested`):
    the nested repositories found, the entries that bear one of the names asked for (breadth
    first: a folder's before what is under it), and what the bounds cut off (:attr:`Walk.cut`)
    and left below the depth (:attr:`Walk.deeper`)."""

    nested: NestedScan
    named: tuple[Path, ...]
    cut: tuple[str, ...]
    deeper: tuple[Path, ...]
    heads: tuple[Path, ...] = ()
    """Each ``HEAD`` in a subfolder (at most :data:`NESTED_REPOSITORIES`): a folder that git
    takes for a git folder itself (a bare repository) has one."""
    hg: tuple[Path, ...] = ()
    """Each ``.hg`` entry, the root's included (at most :data:`NESTED_REPOSITORIES`): a
    Mercurial repository's folder (:mod:`airlock.sandbox.mercurial`)."""
    left: tuple[Path, ...] | None = None
    """The folders the walk did not read (:class:`Walk`: below its depth, of
    :data:`NOT_SCANNED`, past its folder bound), where :func:`walk_all` goes on; ``None`` when
    it stopped before its end (at its count of repositories)."""
    stopped: str = ""
    """The line of :attr:`cut` saying the folder bound stopped it (what :func:`walk_all`
    reads past); the others (entries past a folder's bound, a folder that cannot be read) it
    does not."""

    @property
    def envrcs(self) -> list[Path]:
        """The ``.envrc`` entries among :attr:`named` (direnv's: :mod:`airlock.sandbox.direnv`)."""
        return [path for path in self.named if path.name == ".envrc"]


def scan_workspace(
    workspace: Path,
    names: frozenset[str],
    max_depth: int = NESTED_DEPTH,
    max_folders: int = NESTED_FOLDERS,
    skip: Iterable[Path] = (),
) -> WorkspaceScan:
    """Walk ``workspace`` once for its nested repositories (:func:`find_nested`) and the
    entries named one of ``names`` (what :func:`airlock.sandbox.written.snapshot` notes), so
    the run's start reads the workspace only once; ``skip``: folders of the agents' own state
    in it, not walked (:class:`Walk`). With no ``names``, the walk stops at the
    :data:`NESTED_REPOSITORIES`-th repository."""
    found: list[Path] = []
    named: list[Path] = []
    heads: list[Path] = []
    hg: list[Path] = []
    full = False
    walk = Walk(workspace, max_depth, max_folders, NESTED_ENTRIES, skip)
    for entry, depth in walk:
        if entry.name == "HEAD" and depth > 0:
            _bounded(heads, Path(entry.path), walk.cut, "HEAD entries")
        if entry.name == ".hg":
            _bounded(hg, Path(entry.path), walk.cut, ".hg folders")
        if entry.name == ".git" and depth > 0:
            if len(found) < NESTED_REPOSITORIES:
                found.append(Path(entry.path))
            full = len(found) >= NESTED_REPOSITORIES
            if full and not names:
                break
        if entry.name in names:
            named.append(Path(entry.path))
    nested = NestedScan(tuple(found), complete=not walk.cut and not full)
    return WorkspaceScan(
        nested,
        tuple(named),
        tuple(walk.cut),
        tuple(walk.deeper),
        tuple(heads),
        tuple(hg),
        (*walk.deeper, *walk.passed, *walk.unread) if walk.ended else None,
        walk.stopped,
    )


def _bounded(found: list[Path], path: Path, cut: list[str], what: str) -> None:
    """Add ``path`` to ``found`` up to :data:`NESTED_REPOSITORIES`; past it, say so once in
    ``cut`` (what is not looked at is said, never left silently)."""
    if len(found) < NESTED_REPOSITORIES:
        found.append(path)
        return
    message = f"{what} past the first {NESTED_REPOSITORIES}"
    if message not in cut:
        cut.append(message)


def bare_rules(heads: Iterable[Path], why: str) -> Iterator[Mount]:
    """Read-only rules for each subfolder that is a git folder itself (a bare repository: a
    ``HEAD`` with ``objects`` and ``refs``, or with a ``commondir``): its hooks run for the
    user's ``git push`` to it, its config for any git command there."""
    for head in heads:
        folder = head.parent
        if os.path.lexists(folder / "commondir") or all(
            os.path.lexists(folder / mark) for mark in ("objects", "refs")
        ):
            yield from _git_folder_rules(folder, why)


def nested_rules(workspace: Path, scan: NestedScan) -> Iterator[Mount]:
    """Read-only rules for each nested repository's hooks, config, commondir, ``.gitmodules``,
    and the hook managers' files in its work tree (:func:`hook_manager_rules`)."""
    why = "runs code outside later (a nested git repository)"
    for dot_git in scan.found:
        yield mount(Kind.READ, dot_git.parent / ".gitmodules", why)
        yield from git_folder_rules(workspace, dot_git, why)
        yield from hook_manager_rules(dot_git.parent, why)


def hook_manager_rules(work_tree: Path, why: str) -> Iterator[Mount]:
    """Read-only, as at the workspace's root (:func:`airlock.sandbox.paths.workspace_rules`):
    the files of :data:`~airlock.sandbox.paths.HOOK_MANAGER_FILES` there in a nested
    repository's work tree, and with lefthook in use there the missing ones of
    :data:`~airlock.sandbox.paths.LEFTHOOK_FILES` too. The hooks that pre-commit, lefthook and
    husky install (read-only themselves) read them from the work tree at the user's next
    ``git commit`` there: written inside, they would say what that commit runs."""
    lefthook = any(os.path.lexists(work_tree / name) for name in LEFTHOOK_FILES)
    for name in HOOK_MANAGER_FILES:
        if os.path.lexists(work_tree / name) or (lefthook and name in LEFTHOOK_FILES):
            yield mount(Kind.READ, work_tree / name, f"{why}: a git hook manager's file")


def git_folder_rules(workspace: Path, dot_git: Path, why: str) -> Iterator[Mount]:
    """Read-only rules for what git runs in the repository whose ``.git`` is ``dot_git``:
    in a git folder its hooks, config and commondir, and the hooks it runs from elsewhere
    (:func:`hooks_rules`); a ``.git`` file itself, and the git folder it names, wherever it
    is (a linked worktree's, in the main repository: read-only with the rest of the system,
    but not under a ``--rw`` given to commit there), with its common folder's."""
    if dot_git.is_dir() and not dot_git.is_symlink():
        yield from _git_folder_rules(dot_git, why)
        yield from hooks_rules(dot_git.parent, dot_git, why)
        return
    yield mount(Kind.READ, dot_git, why)
    given = _gitdir_named(dot_git)
    if given is None:
        return
    named = resolve(given)
    yield from unmade_on_the_way(given, f"{why}: on the way to the git folder a .git file names")
    if not os.path.lexists(named):
        yield missing_git_folder_rule(given, f"{why}: the git folder a .git file names")
    elif named.is_dir() and not sandbox_own_in(named):
        yield from _git_folder_rules(named, why)
        yield from hooks_rules(dot_git.parent, named, why)


def _git_folder_rules(git_folder: Path, why: str) -> Iterator[Mount]:
    yield mount(Kind.READ, git_folder / "hooks", why)
    yield mount(Kind.READ, git_folder / "config", why)
    yield commondir_rule(git_folder, why)
    yield from more_git_rules(git_folder, why)


EMPTY_CONFIG = Path(__file__).with_name("git-empty-config")
"""An empty file: bound read-only at a git folder's missing ``config.worktree`` (git reads an
empty one as no settings; a folder there would stop it)."""


def read_only_file(path: Path, why: str, shown: bool = False) -> Mount:
    """Read-only on a file a tool reads as its config or runs as a script; where it is missing
    in a folder that exists, :data:`EMPTY_CONFIG` stands there (read as empty, where the empty
    folder of :func:`~airlock.sandbox.paths.mount`'s placeholder would stop the tool).
    ``shown``: the user's own, in sight even under the private ``/tmp`` (:class:`Mount`)."""
    real = resolve(path)
    if not os.path.lexists(real) and real.parent.is_dir():
        named = path if path.absolute() != real else None
        return Mount(Kind.READ, real, why, False, False, EMPTY_CONFIG, named=named, shown=shown)
    return mount(Kind.READ, path, why, shown=shown)


def more_git_rules(git_folder: Path, why: str) -> Iterator[Mount]:
    """Read-only rules for the other files of ``git_folder`` that say what git runs: its
    ``config.worktree`` (read when ``extensions.worktreeConfig`` is on), each linked
    worktree's ``commondir`` and ``config.worktree`` under ``worktrees/``, the hooks and
    config of the common folder its own ``commondir`` names (a bare repository's worktree),
    and those of every submodule's git folder under ``modules/``."""
    yield _worktree_config_rule(git_folder, why)
    worktrees = git_folder / "worktrees"
    if worktrees.is_dir() and not worktrees.is_symlink():
        for linked in sorted(itertools.islice(worktrees.iterdir(), GIT_FOLDERS)):
            if linked.is_dir() and not linked.is_symlink():
                yield mount(Kind.READ, linked / "commondir", why)
                yield _worktree_config_rule(linked, why)
    named = named_common(git_folder)
    common = None if named is None else resolve(named)
    if named is not None:
        yield from unmade_on_the_way(named, f"{why}: on the way to the folder a commondir names")
    if named is not None and common is not None and not os.path.lexists(common):
        yield missing_git_folder_rule(named, f"{why}: the common folder a commondir names")
    elif common is not None and common.is_dir() and common != resolve(git_folder):
        yield mount(Kind.READ, common / "hooks", why)
        yield mount(Kind.READ, common / "config", why)
        yield _worktree_config_rule(common, why)
    for module in list(itertools.islice(_git_folders(git_folder), GIT_FOLDERS + 1))[1:]:
        yield mount(Kind.READ, module / "hooks", why)
        yield mount(Kind.READ, module / "config", why)
        yield commondir_rule(module, why)
        yield _worktree_config_rule(module, why)


GIT_FOLDERS = 300
"""How many linked worktrees, and how many submodules' git folders, of one repository get
their rules (each is a few of bubblewrap's arguments, which are bounded)."""


def _worktree_config_rule(git_folder: Path, why: str) -> Mount:
    path = git_folder / "config.worktree"
    if os.path.lexists(path) or not git_folder.is_dir() or git_folder.is_symlink():
        return mount(Kind.READ, path, why)
    return Mount(
        Kind.READ, resolve(git_folder) / "config.worktree", why, False, False, EMPTY_CONFIG
    )


def common_folder(git_folder: Path) -> Path | None:
    """The folder ``git_folder``'s ``commondir`` names, when it is a real one."""
    named = named_common(git_folder)
    real = None if named is None else resolve(named)
    return real if real is not None and real.is_dir() else None


def named_common(git_folder: Path) -> Path | None:
    """What ``git_folder``'s ``commondir`` names, as written (relative to ``git_folder``, links
    on the way kept), whether it is there or not; ``None`` when there is no ``commondir``
    or it names nothing."""
    text = read_text_or_none(git_folder / "commondir")
    if text is None or not text.strip():
        return None
    return git_folder / text.strip()


def missing_git_folder_rule(named: Path, why: str) -> Mount:
    """Read-only on the missing git folder that a ``.git`` file or a ``commondir`` names
    (``named``, as written: a link on the way is put back after the run): an empty read-only
    folder stands there where code inside could make it (the workspace, the agents' state, a
    ``--rw`` folder). Made inside, with a ``config`` of its own (``core.fsmonitor``), the
    user's next ``git status`` in the work tree would run that config outside: git reads a
    repository's config and hooks from the folder its ``.git`` file names, and from the
    common folder its ``commondir`` names. Git takes no such repository before the run (the
    folder is missing), and none inside either."""
    return mount(Kind.READ, named, why)


def unmade_on_the_way(named: Path, why: str) -> Iterator[Mount]:
    """Read-only on each missing folder that ``named`` (as written, relative to the current
    folder or absolute) goes through and then leaves by a ``..`` (``missing/../real``): an
    empty read-only folder stands there. Git (and Mercurial, for an absolute ``sharedpath``)
    follows such a path as the kernel does, a link made at the missing name taken before the
    ``..``; :func:`~airlock.sandbox.paths.mount` drops ``missing/..`` as written, so code
    inside could make ``missing`` a link to a folder of its own (``sub/inner``) and the path
    would then name ``sub/real``, a repository it made, whose config the user's next ``git
    status`` would run outside. Nothing for a path without ``..``: the first missing folder on
    its way gets the rule of the path itself."""
    if ".." not in named.parts:
        return
    parts = named.absolute().parts
    folder = Path(parts[0])
    for index, name in enumerate(parts[1:], start=1):
        if name == "..":
            folder = folder.parent
            continue
        step = folder / name
        if step.exists():
            folder = resolve(step)  # a link followed before the ".." after it, as the kernel
            continue
        yield mount(Kind.READ, step, why)  # a link to a missing folder: where it leads
        if parts[index + 1 : index + 2] != ("..",):
            return  # nothing can be made in the empty folder: the path names nothing there
        folder = resolve(step)


HOOK_NAMES: tuple[str, ...] = (
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
)
"""The hooks git runs (githooks(5)), by the name of their file in the hooks folder."""


def hooks_rules(work_tree: Path, git_folder: Path, why: str) -> Iterator[Mount]:
    """Read-only rules for the hooks git runs from elsewhere than ``hooks/``: the folder
    ``core.hooksPath`` names (husky's ``.husky``, a project's ``.githooks``), and what each
    link in the hooks folders points at, in ``work_tree``. A ``core.hooksPath`` that names the
    work tree itself or a folder holding it (``.``) cannot be read-only whole: each of
    :data:`HOOK_NAMES` there is (a new one is set aside after the run,
    :class:`airlock.sandbox.written.Watch`: a placeholder folder named ``pre-commit`` would
    stop git inside). One that names no folder (``/dev/null``) is left alone."""
    folders = [git_folder / "hooks"]
    inside = resolve(work_tree)
    named = _hooks_path(work_tree, git_folder)
    real = resolve(named) if named is not None else None
    if named is None or real is None or _not_a_hooks_folder(real, inside):
        pass
    elif _protectable(real, inside):
        yield mount(Kind.READ, named, f"{why}: core.hooksPath")
        folders.append(named)
    elif _holds_the_work_tree(real, inside):
        for name in HOOK_NAMES:  # a link among them: mount() lands on what it names
            if os.path.lexists(named / name):
                yield mount(Kind.READ, named / name, f"{why}: a hook in core.hooksPath")
    for folder in folders:
        try:
            links = [entry for entry in folder.iterdir() if entry.is_symlink()]
        except OSError:
            continue
        for link in links:
            target = resolve(link)
            if target.is_relative_to(inside) and target.exists():  # given as the link: the
                # links on its way are put back after the run
                yield mount(Kind.READ, link, f"{why}: the hook {link.name} links to it")


def hooks_folder_holding(work_tree: Path) -> Path | None:
    """The folder the work tree's ``core.hooksPath`` names when it is the work tree itself or
    holds it (``.``): its hooks are then files among the project's, which the run watches
    (:class:`airlock.sandbox.written.Watch`); ``None`` otherwise."""
    git_folder = work_tree / ".git"
    if not git_folder.is_dir():
        return None
    named = _hooks_path(work_tree, git_folder)
    if named is None:
        return None
    real, inside = resolve(named), resolve(work_tree)
    if _not_a_hooks_folder(real, inside) or not _holds_the_work_tree(real, inside):
        return None
    return named


def _holds_the_work_tree(real: Path, work_tree: Path) -> bool:
    """A ``core.hooksPath`` folder that is the work tree or holds it, and none of the
    sandbox's own folders: its hooks are files among the project's (:func:`hooks_rules`,
    :func:`hooks_folder_holding`)."""
    return work_tree.is_relative_to(real) and not sandbox_own_in(real)


def _not_a_hooks_folder(real: Path, work_tree: Path) -> bool:
    """``core.hooksPath`` names no folder code inside could write hooks to: ``/dev/null``
    (hooks turned off), a file, a place in ``/proc`` or ``/dev``, or one in the sandbox's
    private ``/tmp`` or ``/run`` outside the work tree (bound there, the host's would show)."""
    if any(real.is_relative_to(own) for own in ("/dev", "/proc")):
        return True
    if not real.is_relative_to(work_tree) and any(
        real.is_relative_to(own) for own in PRIVATE_TMPFS
    ):
        return True
    return real.exists() and not real.is_dir()


def _protectable(folder: Path, work_tree: Path) -> bool:
    """Whether a read-only rule can stand on ``folder``, there or not (under a ``--rw`` path a
    missing one could be made, hooks and all, for git outside to run: its placeholder stands
    where code inside could make it, :func:`airlock.sandbox.paths.plan`); never the work tree
    itself or a folder holding it (its hooks are, :func:`hooks_rules`) or one holding the
    sandbox's own folders (``core.hooksPath = /``: not covered, as the README says)."""
    return not (work_tree.is_relative_to(folder) or sandbox_own_in(folder))


USER_GIT_FOLDERS = frozenset({"core.hookspath", "init.templatedir"})
"""The keys of git's config (as git lists them, in lower case) naming a folder that runs code
for every repository: ``core.hooksPath``, the hooks of each repository that sets none of its
own; ``init.templateDir``, what ``git init`` and ``git clone`` copy into each new repository's
git folder, its hooks too (a clone's ``post-checkout`` runs at once)."""

USER_GIT_KEYS = r"^(core\.hookspath|init\.templatedir|include(if\..*)?\.path)$"
"""What :func:`user_git_rules` asks git for in each config file: :data:`USER_GIT_FOLDERS` and
the files it includes (``include.path``, ``includeIf.<condition>.path``)."""


def user_git_rules(
    home: Path, workspace: Path, environ: Mapping[str, str], why: str
) -> list[Mount]:
    """Read-only, missing ones too: the folders that git's own configs name for every
    repository (:data:`USER_GIT_FOLDERS`), and the one ``GIT_TEMPLATE_DIR`` names. Wherever the
    workspace is, a repository or not: git outside runs them in every other repository (a
    missing ``~/.githooks`` made under ``--rw ~`` too).

    The configs read (:func:`every_user_config`): the user's and the system's, wherever git
    could find them, and every file they include, conditionally or not, and so on (at most
    :data:`INCLUDES` from each), each file on its own (``git config --file F --no-includes``):
    a value set under ``includeIf "gitdir:~/work/"`` is in force in each repository there,
    which asking git in one place (where the condition does not hold) would not show. Then
    what ``environ`` gives git (``GIT_CONFIG_COUNT`` and its keys, ``GIT_CONFIG_PARAMETERS``),
    and the files that includes.

    Only absolute ones (``~/`` is the home): a relative ``core.hooksPath`` is each
    repository's own folder (the workspace's is :func:`hooks_rules`'). None that names no
    folder (``/dev/null``), that is in the sandbox's private ``/tmp`` or ``/run``, or that is
    or holds the home or the workspace (a read-only rule there would close what ``--rw ~``
    opens; not covered). Git is asked once for each file that mentions one of the keys or an
    include, none for the others (a run's start-up path)."""
    found: dict[str, bool] = {}  # each folder, and whether the user's own files name it
    if environ.get("GIT_TEMPLATE_DIR"):
        found[environ["GIT_TEMPLATE_DIR"]] = True
    configs = every_user_config(home, environ)
    for key, value in given_config(environ):
        if key.lower() in USER_GIT_FOLDERS:
            found[_home_expanded(value, home)] = True
    configs += given_includes(home, environ)
    own, inside = resolve(home), resolve(workspace)
    seen: set[Path] = set()
    for config in configs:
        if resolve(config) in seen:
            continue
        seen.add(resolve(config))
        queue, count = deque([(config, True)]), 0
        while queue:
            read, theirs = queue.popleft()
            folders, included = _user_git_values(read, home)
            if theirs and (folders or included):  # what a file in the project names is not
                theirs = not resolve(read).is_relative_to(inside)
            for folder in folders:
                found[folder] = found.get(folder, False) or theirs
            for path in included:
                real = resolve(path)
                if real in seen:
                    continue
                if count == INCLUDES:  # include_rules says so for the user's configs
                    queue.clear()
                    break
                count += 1
                seen.add(real)
                queue.append((path, theirs))
    rules: list[Mount] = []
    for text, theirs in found.items():
        if not text.startswith("/"):
            continue
        real = resolve(Path(text))
        if own.is_relative_to(real) or inside.is_relative_to(real) or sandbox_own_in(real):
            continue
        in_sight = real.is_relative_to(own) or real.is_relative_to(inside)
        if _not_a_hooks_folder(real, own if in_sight else inside):
            continue
        rules.append(mount(Kind.READ, Path(text), why, shown=theirs))  # links put back after
    return rules


def every_user_config(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """Every user's or system's git config that git could read, from ``environ`` or from a
    shell without its git variables (the user's git outside later may run without them):
    ``GIT_CONFIG_GLOBAL`` and ``GIT_CONFIG_SYSTEM`` when set, ``~/.gitconfig``,
    ``$XDG_CONFIG_HOME/git/config`` and ``~/.config/git/config``, ``/etc/gitconfig``."""
    loose = {
        name: value
        for name, value in environ.items()
        if name not in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")
    }
    found: list[Path] = []
    for given in (environ, loose, {}):
        found += user_configs(home, given)
    return list(dict.fromkeys(found))


def given_config(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``key``, ``value`` pairs ``environ`` gives git as if on its command line: those of
    ``GIT_CONFIG_PARAMETERS`` (``git -c``'s, quoted as git quotes them) and
    ``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>`` for each ``n`` below ``GIT_CONFIG_COUNT``.
    As git reads them up to where it would stop with an error (the ones before kept: more read
    only the more protected)."""
    found = _config_parameters(environ.get("GIT_CONFIG_PARAMETERS", ""))
    try:
        count = int(environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for number in range(max(count, 0)):
        key = environ.get(f"GIT_CONFIG_KEY_{number}")
        value = environ.get(f"GIT_CONFIG_VALUE_{number}")
        if not key or value is None:  # git stops there: no count of them is read
            break
        found.append((key, value))
    return found


def _config_parameters(text: str) -> list[tuple[str, str]]:
    """The pairs of ``GIT_CONFIG_PARAMETERS``: ``'key=value'`` or ``'key'='value'`` (a bare
    ``'key'=`` sets no value), parted by white space, each quoted as git's ``sq_quote`` does
    (``'\\''`` for a quote, ``'\\!'`` for ``!``)."""
    found: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        key, at = _sq_dequoted(text, at)
        if key is None:
            break
        if at < len(text) and text[at] == "=":
            value, at = _sq_dequoted(text, at + 1)
            if value is not None:
                found.append((key, value))
            elif at < len(text) and not text[at].isspace():
                break
        elif at == len(text) or text[at].isspace():
            name, equals, value = key.partition("=")
            if equals:
                found.append((name, value))
        else:
            break
    return found


def _sq_dequoted(text: str, at: int) -> tuple[str | None, int]:
    """The single-quoted word at ``at`` in ``text`` and where it ends, as git's
    ``sq_dequote_step`` reads it; ``None`` when there is none there."""
    if at >= len(text) or text[at] != "'":
        return None, at
    word: list[str] = []
    at += 1
    while at < len(text):
        if text[at] != "'":
            word.append(text[at])
            at += 1
        elif text[at + 1 : at + 4] in ("\\''", "\\!'"):  # '\'' or '\!': on in the quote
            word.append(text[at + 2])
            at += 4
        else:
            return "".join(word), at + 1
    return None, at  # no closing quote: git stops


def _names_an_include(key: str) -> bool:
    """Whether a config key (in lower case) names a file to include."""
    return key == "include.path" or (key.startswith("includeif.") and key.endswith(".path"))


def _home_expanded(value: str, home: Path) -> str:
    """A path of git's config as git reads it: ``~`` and ``~/…`` in ``home``, ``~user/…`` in
    that user's home; as it is otherwise (still ``~…`` for no such user: nothing git reads)."""
    if value == "~" or value.startswith("~/"):
        return str(home / value[2:])
    if not value.startswith("~"):
        return value
    try:
        return str(Path(value).expanduser())
    except RuntimeError:  # no such user
        return value


def _user_git_values(config: Path, home: Path) -> tuple[list[str], list[Path]]:
    """What ``config`` alone says of :data:`USER_GIT_FOLDERS` (``~`` expanded, relative ones
    as written) and the files it includes, whatever the include's condition; nothing when it
    mentions neither (git is not asked) or git cannot read it."""
    text = _regular_text(config)
    lower = "" if text is None else text.lower()
    if not any(word in lower for word in ("hookspath", "templatedir", "include")):
        return [], []
    done = run_git(
        ["config", "--file", str(config), "--no-includes", "--null", "--get-regexp", USER_GIT_KEYS],
        timeout=10,
    )
    if done is None:
        return [], []
    folders: list[str] = []
    included: list[Path] = []
    for item in done.stdout.decode("utf-8", "replace").split("\0"):
        key, _, value = item.partition("\n")
        if key.lower() in USER_GIT_FOLDERS:
            folders.append(_home_expanded(value, home))
        elif value.strip() and _names_an_include(key.lower()):
            included.append(_include_path(value.strip(), config, home))
    return folders, included


INCLUDES = 50
"""How many files included from one git config :func:`include_rules` protects at most."""


def include_rules(
    workspace: Path, home: Path, nested: Iterable[Path], environ: Mapping[str, str], why: str
) -> tuple[list[Mount], list[str]]:
    """The files that the configs git reads here include (``include.path``,
    ``includeIf.*.path``), read-only inside, missing ones too (an empty file stands at one
    whose folder exists: git reads it as an empty config), and what those include in turn:
    the configs are read-only, but a file they include may sit in the workspace (a shared
    ``../.gitconfig``) or in a writable home, and code inside would write a
    ``core.fsmonitor`` there for the user's git to run.

    The configs looked at, the repositories' first: the repository the workspace is in when
    its ``.git`` is further up, the root's and each nested repository's (``nested``: their
    ``.git``), each with its ``config.worktree`` and, for a linked worktree, its common
    folder's; then the user's (``GIT_CONFIG_GLOBAL``, else ``~/.gitconfig`` and
    ``$XDG_CONFIG_HOME/git/config``), and those the configuration ``environ`` gives git
    includes (``GIT_CONFIG_PARAMETERS``, ``GIT_CONFIG_COUNT``: :func:`given_includes`), read-only
    themselves too. At most :data:`INCLUDES` files from each; the configs
    that had more, for the caller to say. Git is asked only for a config that mentions
    ``include``."""
    git_dir = [Path(environ["GIT_DIR"])] if environ.get("GIT_DIR") else []
    configs: list[Path] = []
    for dot_git in (*git_dir, *enclosing_git(workspace), workspace / ".git", *nested):
        git_folder = git_folder_of(dot_git)
        common = common_folder(git_folder) if git_folder is not None else None
        for folder in (git_folder, common):
            if folder is not None:
                configs += [folder / "config", folder / "config.worktree"]
    user = user_configs(home, environ)
    rules: list[Mount] = [  # the user's own config files too: they may lie in the workspace
        rule
        for config in user
        if (rule := _include_rule(config, why, mine=True, shown=True)) is not None
    ]
    given = given_includes(home, environ)
    rules += [  # theirs: in sight
        rule for config in given if (rule := _include_rule(config, why, shown=True)) is not None
    ]
    theirs = {*user, *given}
    inside = resolve(workspace)
    seen: set[Path] = set()
    capped: list[str] = []
    for config in dict.fromkeys((*configs, *user, *given)):
        queue, count = deque([(config, config in theirs)]), 0
        while queue:  # a relative include is read against the folder the config is named in
            read, mine = queue.popleft()
            includes = included_configs(read, home)
            if mine and includes:  # what a file in the project includes is not the user's
                mine = not resolve(read).is_relative_to(inside)
            for included in includes:
                real = resolve(included)
                if real in seen:
                    continue
                if count == INCLUDES:
                    capped.append(str(config))
                    queue.clear()
                    break
                count += 1
                seen.add(real)
                rule = _include_rule(included, why, shown=mine)
                if rule is not None:
                    rules.append(rule)
                    queue.append((included, mine))
    return rules, capped


def given_includes(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The files that the configuration ``environ`` gives git (:func:`given_config`) includes:
    absolute ones only (``~/`` is the home), as git reads no relative one there."""
    found: list[Path] = []
    for key, value in given_config(environ):
        text = _home_expanded(value, home)
        if _names_an_include(key.lower()) and text.startswith("/"):
            found.append(Path(text))
    return found


def user_configs(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The user's and the system's git configs, as git finds them from ``environ``."""
    if environ.get("GIT_CONFIG_GLOBAL"):
        found = [Path(environ["GIT_CONFIG_GLOBAL"]).expanduser()]
    else:
        xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        found = [home / ".gitconfig", xdg / "git" / "config"]
    if not environ.get("GIT_CONFIG_NOSYSTEM"):
        found.append(Path(environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
    return found


def _include_rule(
    included: Path, why: str, mine: bool = False, shown: bool = False
) -> Mount | None:
    """Read-only on an included file, the rule standing on what the links on the way name
    (they are put back after the run); an empty file where it is missing in a folder that
    exists; ``None`` for the sandbox's own (``/proc``, ``/dev``: nothing of the host's) and,
    for a config of the user's (``mine``), when it is missing. ``shown``: one the user's own
    configuration names, in sight even under the private ``/tmp`` (:class:`Mount`)."""
    real = resolve(included)
    if real.is_relative_to("/proc") or real.is_relative_to("/dev"):
        return None
    if mine and not os.path.lexists(real):
        return None
    try:
        return read_only_file(included, why, shown)
    except SandboxError:  # a folder holding the sandbox's own: nothing to bind
        return None


def enclosing_git(workspace: Path) -> list[Path]:
    """The ``.git`` of the repository the workspace is in, when it is further up."""
    if os.path.lexists(workspace / ".git"):
        return []
    for folder in resolve(workspace).parents:
        if os.path.lexists(folder / ".git"):
            return [folder / ".git"]
    return []


def included_configs(config: Path, home: Path) -> list[Path]:
    """The files ``config`` includes, as git would find them (relative to its folder, ``~/``
    the home); none when it mentions no include, or git cannot read it. Read through a link,
    as git reads it (a dotfiles ``~/.gitconfig``)."""
    text = _regular_text(config)
    if text is None or "include" not in text.lower():
        return []
    keys = r"^include(if\..*)?\.path$"
    done = run_git(
        ["config", "--file", str(config), "--no-includes", "--null", "--get-regexp", keys],
        timeout=10,
    )
    if done is None:
        return []
    found = []
    for item in done.stdout.decode("utf-8", "replace").split("\0"):
        value = item.partition("\n")[2].strip()
        if value:
            found.append(_include_path(value, config, home))
    return found


def _include_path(value: str, config: Path, home: Path) -> Path:
    """The file an include in ``config`` names, as git finds it: relative to the folder
    ``config`` is named in, ``~/`` the home, ``~user/`` that user's."""
    return config.parent / _home_expanded(value, home)


def _hooks_path(work_tree: Path, git_folder: Path) -> Path | None:
    """The folder ``core.hooksPath`` names for this repository (every level of git's config,
    includes followed), resolved against the work tree; ``None`` when not set. Git is asked
    only when a config file mentions ``hookspath`` or an include (a run's start-up path)."""
    texts = []
    for config in (git_folder / "config", *user_configs(Path.home(), os.environ)):
        text = _regular_text(config)  # through a link, as git reads it
        if text is not None:
            texts.append(text.lower())
    if not any("hookspath" in text or "include" in text for text in texts):
        return None
    done = run_git(
        ["-C", str(work_tree), "config", "--type=path", "--get", "core.hooksPath"], timeout=10
    )
    if done is None:
        return None
    value = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not value:
        return None
    return work_tree / value  # as named: a link on the way is put back after the run


GIT_VARIABLE = "AIRLOCK_GIT"
"""Names the ``git`` airlock runs on the host when it is installed elsewhere than the system's
folders."""


def host_git() -> str | None:
    """The ``git`` airlock runs on the host, before and after the command (to read configs and
    the index), by its real path: from the system's folders
    (:data:`~airlock.sandbox.launcher.SYSTEM_PROGRAMS`), or where :data:`GIT_VARIABLE` names
    it; else from ``PATH`` less its relative folders and those in the current folder (the
    workspace). Not ``PATH`` first: a folder of it the command could write (an activated
    ``.venv/bin`` in the workspace) would have airlock run a ``git`` the command left there,
    outside the sandbox. ``None`` when there is none."""
    from airlock.sandbox.launcher import SYSTEM_PROGRAMS

    named = os.environ.get(GIT_VARIABLE)
    found = named if named and Path(named).is_absolute() else None
    found = found or shutil.which("git", path=os.pathsep.join(SYSTEM_PROGRAMS))
    if found is None:
        here = Path.cwd().resolve()
        folders = [
            folder
            for folder in os.environ.get("PATH", "").split(os.pathsep)
            if folder.startswith("/") and not Path(os.path.realpath(folder)).is_relative_to(here)
        ]
        found = shutil.which("git", path=os.pathsep.join(folders))
    return None if found is None else os.path.realpath(found)


def run_git(
    arguments: list[str], environ: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[bytes] | None:
    """Run :func:`host_git` with ``arguments`` in ``/``, without the loader's variables
    (``LD_LIBRARY_PATH`` with an empty entry, the current folder, would have git load a
    library the command left in the workspace: :func:`~airlock.sandbox.launcher.loader_variable`);
    ``environ`` instead of airlock's own when given. ``None`` when there is no git, or it
    could not be run in time."""
    from airlock.sandbox.launcher import loader_variable

    git = host_git()
    if git is None:
        return None
    base = os.environ if environ is None else environ
    clean = {name: value for name, value in base.items() if not loader_variable(name)}
    try:
        return subprocess.run(
            [git, *arguments], capture_output=True, check=False, timeout=timeout, env=clean, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


READING_GIT = (
    *("--no-pager", "--no-optional-locks", "-c", "core.fsmonitor=false"),
    *("-c", "safe.directory=*"),
)
"""Git's options when airlock only reads a repository the command may have written: no lock
taken, no file-system monitor asked (the config may have been written inside), another
user's repository read too (reading it runs nothing)."""


def read_by_git(
    arguments: list[str], timeout: float, variables: Mapping[str, str] = MappingProxyType({})
) -> subprocess.CompletedProcess[bytes] | None:
    """:func:`run_git` with :data:`READING_GIT`, in airlock's environment without git's own
    variables (``GIT_DIR``, …), plus ``variables``."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return run_git([*READING_GIT, *arguments], {**environ, **variables}, timeout=timeout)


def in_no_repository(workspace: Path) -> bool:
    """Whether no ``.git`` is at ``workspace`` or above it: git would list nothing there."""
    return not os.path.lexists(workspace / ".git") and not enclosing_git(workspace)


def unlisted_by_git(workspace: Path, names: Iterable[str]) -> frozenset[str]:
    """Which of ``names`` (plain paths in ``workspace``: git quotes no character of theirs)
    ``git status`` would not list as new files there: those its ignore rules name, or all
    when the workspace is in no repository (or git is not there). An empty file the run
    stands at one is then seen by no one's git. Git reads the ignore rules only (no
    fsmonitor, no hook), in another user's repository too; none is asked (so each may be
    listed) when an ignore file in the workspace git would read is not a regular file (a
    FIFO an earlier command left would hold it)."""
    asked = list(names)
    if not asked:
        return frozenset()
    if in_no_repository(workspace):
        return frozenset(asked)  # nothing to ask git (a process saved)
    read = [workspace / ".gitignore", workspace / ".git" / "info" / "exclude"]
    read += [workspace / Path(name).parent / ".gitignore" for name in asked]
    for path in read:  # a FIFO there (made by an earlier command) would hold git: not asked
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return frozenset()
        except FileNotFoundError:
            continue
        except OSError:
            return frozenset()
    folder = git_folder_of(workspace / ".git")
    if folder is not None and not git_would_answer(folder):  # a FIFO at its HEAD: not asked
        return frozenset()
    done = read_by_git(["-C", str(workspace), "check-ignore", "--", *asked], timeout=5)
    if done is None:  # no git (nothing lists them), or it did not answer in time
        return frozenset(asked) if host_git() is None else frozenset()
    if b"not a git repository" in done.stderr:
        return frozenset(asked)
    if done.returncode not in (0, 1):  # git could not say: each one may be listed
        return frozenset()
    return frozenset(os.fsdecode(name) for name in done.stdout.splitlines()) & set(asked)


def _regular_text(path: Path) -> str | None:
    """The start of a regular file (through links) as text; ``None`` for anything else."""
    data = regular_bytes(path, LIMIT)
    return None if data is None else data.decode("utf-8", "replace")


GITFILE_LIMIT = 1 << 20
"""The largest ``.git`` file read (git refuses larger ones too)."""


def _gitdir_of(dot_git: Path) -> Path | None:
    """The folder a ``.git`` file names, read as git reads it: the whole file (through a link),
    ``gitdir: `` then the path up to the line breaks at its end (spaces, and breaks inside,
    are part of it), relative to the folder the ``.git`` is named in; ``None`` when git would
    not take it (no such prefix, no path, too large)."""
    named = _gitdir_named(dot_git)
    return None if named is None else resolve(named)


def _gitdir_named(dot_git: Path) -> Path | None:
    """:func:`_gitdir_of` as written: links on the way not resolved."""
    data = regular_bytes(dot_git, GITFILE_LIMIT + 1)
    if data is None or len(data) > GITFILE_LIMIT or not data.startswith(b"gitdir: "):
        return None
    named = data.partition(b"\0")[0][len(b"gitdir: ") :].rstrip(b"\r\n")  # git stops at a NUL
    if not named:
        return None
    return dot_git.parent / os.fsdecode(named)


class Held(NamedTuple):
    """A fresh folder outside the workspace, bound at the workspace's missing ``.git``."""

    folder: Path
    target: Path

    @property
    def rule(self) -> Mount:
        """The bind: writable inside, its mount point removed after the run."""
        why = "a new repository, held outside the workspace until made safe"
        return Mount(Kind.WRITE, self.target, why, False, True, source=self.folder)


def hold(workspace: Path, state: Path, run: str) -> Held | None:
    """A holding folder for the workspace's ``.git`` when there is none; ``None`` otherwise.

    Args:
        workspace: the workspace, resolved.
        state: airlock's own folder (``<config dir>/airlock``): read-only inside.
        run: a name for this run's folder, unique.
    """
    target = workspace / ".git"
    if os.path.lexists(target):
        return None
    folder = state / "repositories" / run
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(mode=0o755)
    return Held(folder, target)


def bring_in(held: Held) -> str | None:
    """After the run: the repository made inside, made safe and moved to ``.git``.

    Returns:
        What was done, in words, or ``None`` when nothing was made (the folder is removed).
    """
    if not os.path.lexists(held.folder):
        return None  # brought in already (a run killed after it did, done again by the next)
    try:
        if not _made_inside(held.folder):
            held.folder.rmdir()
            return None
    except OSError as error:
        return f"the holding folder {held.folder} cannot be read ({error.strerror}): check it"
    if os.path.lexists(held.target):
        return (
            f"a git repository was made inside, but {held.target} exists now: it stays in "
            f"{shown(held.folder)} with its hooks and config as written inside"
        )
    dropped: list[str] = []
    workspace = held.target.parent
    try:
        for git_folder in _git_folders(held.folder):
            dropped += _make_safe(git_folder)
        aside = work_tree_hooks_aside(workspace, held.folder, workspace)
        held.folder.rename(held.target)  # never a copy: one may be huge, or hold links
    except OSError as error:
        if error.errno == errno.EXDEV:
            return (
                f"the git repository made inside was made safe, hooks removed; it stays in "
                f"{shown(held.folder)}, on another file system than the workspace (it is never copied): "
                f"move it with: mv {held.folder} {held.target}"
            )
        return (
            f"the git repository made inside could not be made safe ({error}): it stays in "
            f"{shown(held.folder)}, not in the workspace"
        )
    except RecursionError as error:
        return (
            f"the git repository made inside could not be made safe ({error}): it stays in "
            f"{shown(held.folder)}, not in the workspace"
        )
    said = f"the git repository made inside is now {held.target}, hooks removed"
    said += f", {aside}" if aside else ""
    return said + (f", config dropped: {', '.join(sorted(set(dropped)))}" if dropped else "")


def work_tree_hooks_aside(work_tree: Path, git_folder: Path, workspace: Path) -> str:
    """For a repository made safe after the run: the hooks in the folder that the user's or
    the system's ``core.hooksPath`` names for it, when that is in the workspace (a relative
    one, ``.githooks``, names each repository's own folder in its work tree: no rule stood
    there for a repository made inside), renamed out of git's way (``NAME.removed-…``, which
    git never runs), as the git folder's ``hooks/`` is; what was done, in words (``""``:
    nothing).

    Raises:
        OSError: a hook there could not be renamed.
    """
    named = _hooks_path(work_tree, git_folder)
    if named is None or not resolve(named).is_relative_to(resolve(workspace)):
        return ""
    moved = []
    for name in HOOK_NAMES:
        hook = named / name
        if os.path.lexists(hook):
            hook.rename(hook.with_name(f"{name}.removed-{os.urandom(4).hex()}"))
            moved.append(name)
    if not moved:
        return ""
    return f"hooks in core.hooksPath {shown(named)} renamed aside: {', '.join(moved)}"


def _made_inside(folder: Path) -> bool:
    """Whether anything was made in the holding ``folder``; it is emptied of the empty files
    and folders that bubblewrap made there and nothing else wrote, when it holds no ``HEAD``
    (no repository: ``git init`` writes one). Those are where a rule on a path under ``.git``
    stood, made by the run's own bubblewrap over the bind (a ``.git`` that appeared between
    :func:`hold` and the rules: another run's placeholder): never a repository made inside.

    Raises:
        OSError: the folder cannot be read.
    """
    names = [entry.name for entry in os.scandir(folder)]
    if names and "HEAD" not in names:
        remove_empty(folder / name for name in names)
        names = [entry.name for entry in os.scandir(folder)]
    return bool(names)


def module_folders(workspace: Path) -> frozenset[Path]:
    """The submodules' git folders under the workspace's ``.git/modules`` (nested too)."""
    git_folder = workspace / ".git"
    if not git_folder.is_dir() or git_folder.is_symlink():
        return frozenset()
    return frozenset(list(itertools.islice(_git_folders(git_folder), 10 * GIT_FOLDERS))[1:])


def secure_new_modules(workspace: Path, before: frozenset[Path]) -> list[str]:
    """After the run: each submodule git folder made under ``.git/modules`` during it, made
    safe as :func:`bring_in` makes a new repository (the user's ``git submodule update``
    would take it as it is, hooks and all); what was done, in words."""
    done = []
    for folder in sorted(module_folders(workspace) - before):
        try:
            dropped = _make_safe(folder)
        except OSError as error:
            done.append(f"{shown(folder)}: could not be made safe ({error}); remove it")
            continue
        more = f", config keys dropped: {', '.join(dropped)}" if dropped else ""
        done.append(f"{shown(folder)}: made inside the sandbox; hooks emptied{more}")
    return done


def secure_new_repositories(
    workspace: Path,
    before: frozenset[Path],
    skip: Iterable[Path] = (),
    found: NestedScan | None = None,
    read_only: Mapping[Path, bool] = MappingProxyType({}),
    since: float = 0.0,
) -> list[str]:
    """After the run: each ``.git`` made in a subfolder during it (:func:`find_nested`'s
    bounds), made safe as :func:`bring_in` makes a new repository: the user's git at the root
    runs a subfolder repository's config too (``git status`` looks into a submodule that the
    index names, with no ``.gitmodules``). For a ``.git`` file, the git folder it names (read
    as git reads it), when that is in the workspace or anywhere else the sandbox could write
    (``read_only``: its rules); one naming a folder it could not write, whose config and
    hooks are then the user's, is left alone, and one naming no folder is reported.
    ``found``: the repositories a walk after the run found already (else one is made now);
    ``since``: when the run started (a ``.git`` file naming a git folder nothing in which
    changed since is the user's, and left alone). What was done."""
    done = []
    found = found or scan_workspace(workspace, frozenset(), skip=skip).nested
    for dot_git in sorted(set(found.found) - before):
        said = _secure(dot_git, workspace, read_only, "made inside the sandbox", since)
        if said is not None:
            done.append(said)
    return done


def _secure(
    dot_git: Path, workspace: Path, read_only: Mapping[Path, bool], made: str, since: float
) -> str | None:
    """Make the repository of ``dot_git`` safe (:func:`_make_all_safe`), as
    :func:`secure_new_repositories` says; what was done, or ``None`` when there was nothing to
    do: its git folder is one the sandbox could not write (``read_only``: its rules), or a
    ``.git`` file names one nothing in which that runs programs changed since ``since`` (a
    git folder of the user's: a linked worktree's, a submodule's). A ``.git`` folder is made
    safe whatever its files' times: one moved into place keeps them."""
    try:
        git_folder = git_folder_of(dot_git)
        there = git_folder is not None and git_folder.is_dir()
    except OSError:  # a name too long, a loop: what it names cannot be read
        git_folder, there = None, False
    if git_folder is None or not there:
        return f"{shown(dot_git)}: {made}, names no git folder: check it"
    if read_only and _could_not_write(git_folder, read_only):
        return None  # the user's own (a submodule's, named anew): nothing in it changed
    if not read_only and not git_folder.is_relative_to(resolve(workspace)):
        return f"{shown(dot_git)}: {made}, names a git folder elsewhere: check it"
    if dot_git.is_file() and not _runs_changed(dot_git.parent, git_folder, since):
        return None  # a .git file naming a git folder as it was: the user's
    try:
        emptied = _make_all_safe(git_folder)
        aside = work_tree_hooks_aside(dot_git.parent, git_folder, workspace)
    except (OSError, RecursionError) as error:
        return f"{shown(dot_git)}: {made}, could not be made safe ({error}): remove it"
    return f"{shown(dot_git)}: {made}; {emptied}" + (f"; {aside}" if aside else "")


def _runs_changed(work_tree: Path, git_folder: Path, since: float) -> bool:
    """Whether what in ``git_folder`` makes git run a program (:data:`GIT_FOLDER_WATCHED`), or
    a hook in the folder its ``core.hooksPath`` names, changed after ``since``, or cannot be
    told."""
    if _changed_since(git_folder, git_folder, since):
        return True
    try:
        named = _hooks_path(work_tree, git_folder)
    except OSError:
        return True
    return named is not None and _entries_changed(named, since)


BEYOND_FOLDERS = 200_000
"""How many folders :func:`walk_all` reads at most."""
BEYOND_SECONDS = 5.0
"""How long :func:`walk_all` walks at most (and the setting aside of what it found,
:class:`airlock.sandbox.written.Watch`, goes on at most)."""
BEYOND_REPOSITORIES = 1_000
"""How many repositories beyond the bounds :func:`secure_repositories_beyond` looks at most."""


def walk_all(
    root: Path, folders: Iterable[Path], names: frozenset[str], skip: Iterable[Path] = ()
) -> tuple[list[Path], list[str]]:
    """Every entry under ``folders`` (``root``, the workspace, or what a bounded walk of it
    left: :attr:`WorkspaceScan.left`) named one of ``names``, at any depth: every folder is
    read but the git and Mercurial folders themselves (a link followed only as
    :func:`_enters_link` says; the folders of ``skip``, the agents' own state, passed over), at
    most :data:`BEYOND_FOLDERS` of them for :data:`BEYOND_SECONDS`, :data:`NESTED_ENTRIES`
    entries each; and what the walk did not read, a line each (none when it read
    everything)."""
    skipped = frozenset(map(str, skip))
    deadline = time.monotonic() + BEYOND_SECONDS
    cut: list[str] = []
    found: list[Path] = []
    stack = [folder for folder in folders if str(folder) not in skipped]
    linked: set[Path] = set()
    read = 0
    while stack:
        if read >= BEYOND_FOLDERS or time.monotonic() > deadline:
            cut.append(f"folders past the first {read} ({BEYOND_SECONDS:g} s at most)")
            break
        folder = stack.pop()
        read += 1
        for entry in listing(folder, NESTED_ENTRIES, cut):
            if entry.path in skipped:
                continue
            if entry.name in names:
                found.append(Path(entry.path))
            if entry.name in VCS_FOLDERS:
                continue
            if entry.is_dir(follow_symlinks=False) or _enters_link(entry, root, linked):
                stack.append(Path(entry.path))
    return found, cut


def secure_repositories_beyond(
    workspace: Path,
    dot_gits: Iterable[Path],
    seen: Iterable[Path],
    since: float,
    read_only: Mapping[Path, bool] = MappingProxyType({}),
    made_safe: Iterable[Path] = (),
) -> list[str]:
    """After the run: the git repositories below the bounds of the walks before and after it
    (deeper than :data:`NESTED_DEPTH`, in :data:`NOT_SCANNED` folders such as
    ``node_modules``, past :data:`NESTED_FOLDERS`), whose hooks and config no rule kept during
    the run: of ``dot_gits`` (the ``.git`` entries :func:`walk_all` found) those not in
    ``seen`` (found by the bounded walks), each whose ``.git`` file, config, ``commondir`` or
    hooks changed during it (made there, or written: a change time at or after ``since``,
    which no one can set back) is made safe as a new one in reach is. A git folder's own time
    is not looked at: it moves with every index write (a ``git status`` there); so one moved
    there whole from where it was written before the run keeps its files' times, and is not
    told apart from one that was there. Git runs a repository's
    ``core.fsmonitor`` and hooks at the next ``git status`` in it, an editor's too
    (``made_safe``: git folders an earlier step made safe, passed over). At most
    :data:`BEYOND_REPOSITORIES` are looked at. What was done, a line each."""
    known = frozenset(seen)
    secured = set(made_safe)
    candidates = [
        dot_git for dot_git in dot_gits if dot_git.parent != workspace and dot_git not in known
    ]
    done = []
    for dot_git in candidates[:BEYOND_REPOSITORIES]:
        try:
            git_folder = git_folder_of(dot_git)
        except OSError:  # what it names cannot be read: _secure says so
            git_folder = None
        if git_folder not in secured and (
            git_folder is None
            or _changed_since(dot_git, git_folder, since)
            or _runs_changed(dot_git.parent, git_folder, since)
        ):
            made = "changed during the run, beyond the walk's bounds (no rule kept it)"
            said = _secure(dot_git, workspace, read_only, made, since)
            if said is not None:
                done.append(said)
        if git_folder is not None:
            secured.add(git_folder)  # once, whatever names it (a link, a .git file)
    if len(candidates) > BEYOND_REPOSITORIES:
        done.append(
            f"more than {BEYOND_REPOSITORIES} git repositories beyond the walk's bounds: the "
            "first ones were looked at only (list them with: find . -name .git)"
        )
    return done


INDEXES = 300
"""How many repositories' indexes :func:`secure_linked_repositories` reads at most."""

LINKS = 100_000
"""How many gitlinks :func:`secure_linked_repositories` looks at, in all indexes together."""

CHANGED_SLACK = 1.0
"""Seconds before the run's start from which a change counts as the run's: the kernel stamps
a file's change time with a clock that may lag the one airlock reads by a tick."""


GIT_FOLDER_WATCHED = ("config", "commondir", "config.worktree", "hooks")
"""What in a git folder makes git run a program, looked at after the run."""

Signature = tuple[object, ...]
"""What stood behind a gitlink (:func:`_repository_signature`)."""


class Linked(NamedTuple):
    """What :func:`secure_linked_repositories` needs from before the run."""

    since: float
    """When the command was about to start."""
    root_gitlinks: Mapping[str, Signature | None] | None
    """The gitlinks of the root's index then, each with what stood behind it (``None``: no
    index, or unreadable)."""


def note_linked(workspace: Path) -> Linked:
    """Before the run: the time, and the gitlinks of the root's index with what stands
    behind each."""
    since = time.time()
    git_folder = git_folder_of(workspace / ".git")
    names = gitlinks(workspace, git_folder) if git_folder is not None else None
    if names is None:
        return Linked(since, None)
    behind = {name: _repository_signature(workspace / name / ".git") for name in names[:LINKS]}
    return Linked(since, behind)


def _repository_signature(dot_git: Path) -> Signature | None:
    """The git folder a ``.git`` leads to, and the identity and change time of what in it
    runs programs (through links): a folder renamed into place, or a link swapped, shows."""
    git_folder = git_folder_of(dot_git)
    if git_folder is None:
        return None
    parts: list[object] = [str(git_folder)]
    for path in (dot_git, *(git_folder / name for name in GIT_FOLDER_WATCHED)):
        try:
            found = path.stat()
        except OSError:
            parts.append(None)
            continue
        folder = stat.S_ISDIR(found.st_mode) and path.name != "hooks"  # moves with every write
        parts.append(
            (found.st_dev, found.st_ino)
            if folder
            else (found.st_dev, found.st_ino, found.st_ctime_ns, found.st_size)
        )
    return tuple(parts)


def secure_linked_repositories(
    workspace: Path,
    known: Iterable[Path],
    before: Linked,
    read_only: Mapping[Path, bool] = MappingProxyType({}),
    made_safe: set[Path] | None = None,
) -> list[str]:
    """After the run: the repositories that an index names as submodules (gitlinks) where no
    scan looked (in ``node_modules``, ``.venv`` and the like, or past the scan's bounds), made
    safe as :func:`bring_in` makes a new repository when the run may have made or changed them.
    Code inside can write an index and make such a repository; the user's ``git status`` at
    the root then runs its config (``core.fsmonitor``), as a submodule's.

    One counts as the run's when its ``.git``, ``config``, ``commondir``, ``config.worktree``
    or hooks changed after the run's start; for the root's index, also when it names it anew
    or something else stands behind the name than at the start (:func:`note_linked`); for
    another index that the run changed, any repository it names. Its git folder is made safe
    where code inside could write it (``read_only``: the sandbox's rules); elsewhere, or when
    its config and hooks were read-only inside, it is left as it is.

    The indexes read are the root's, those of ``known`` (the ``.git`` of the repositories the
    scans found, handled by the other steps) and those of each repository they name, in turn,
    for each work tree a git folder serves: at most :data:`INDEXES` indexes and :data:`LINKS`
    gitlinks. Past either, the indexes left that the run changed are moved aside
    (``index.removed-…``) so that git goes no further through them. Each git folder made safe
    is added to ``made_safe`` (for :func:`secure_repositories_beyond`). What was done, in
    words."""
    root = workspace / ".git"
    done: list[str] = []
    queue = deque(  # each .git with the git folder it leads to
        (dot_git, folder)
        for dot_git in (root, *sorted(known))
        if (folder := git_folder_of(dot_git)) is not None
    )
    trees = {(folder, resolve(dot_git.parent)) for dot_git, folder in queue}
    secured = {folder for folder, _ in trees}  # the other steps handle these git folders
    read = looked = 0
    while queue:
        dot_git, git_folder = queue.popleft()
        if not os.path.lexists(git_folder / "HEAD"):
            continue  # no repository git would use (an empty folder: another run's mount point)
        if read == INDEXES:
            done.append(f"more than {INDEXES} repositories' indexes to read")
            done.extend(_indexes_set_aside([(dot_git, git_folder), *queue], before.since))
            break
        read += 1
        names = gitlinks(dot_git.parent, git_folder)
        if names is None:
            done.append(
                f"{shown(dot_git.parent)}: its index could not be read, so the submodules it names "
                f"were not checked: look at 'git ls-files --stage | grep ^160000' there"
            )
            continue
        if dot_git == root:
            noted = before.root_gitlinks
            anew = noted is None
        else:
            noted, anew = None, _index_changed(git_folder, before.since)
        for name in names:
            looked += 1
            if looked > LINKS:
                done.append(f"more than {LINKS} submodules named")
                done.extend(_indexes_set_aside([(dot_git, git_folder), *queue], before.since))
                return done
            named = dot_git.parent / name / ".git"
            linked = git_folder_of(named)
            if linked is None:
                continue
            tree = (linked, resolve(named.parent))
            if tree in trees:
                continue
            trees.add(tree)
            queue.append((named, linked))
            if linked in secured:
                continue
            if noted is not None:
                changed = name not in noted or noted[name] != _repository_signature(named)
            else:
                changed = anew
            if changed or _changed_since(named, linked, before.since):
                secured.add(linked)
                if made_safe is not None:
                    made_safe.add(linked)
                said = _secure_linked(linked, read_only)
                done.append(
                    f"{shown(named)}: named as a submodule by {shown(dot_git.parent)}'s index, "
                    f"{said}"
                )
    return done


def _index_changed(git_folder: Path, since: float) -> bool:
    """Whether a git folder's index (as named, and where a link leads) changed in the run."""
    index = git_folder / "index"
    return _changed_since(index, None, since) or _changed_since(resolve(index), None, since)


def _indexes_set_aside(left: Iterable[tuple[Path, Path]], since: float) -> list[str]:
    """Past the bounds: each repository left unread (its ``.git`` and git folder) whose index
    the run changed (or made) has it moved aside; one the run did not touch is named, for
    the user to look at."""
    done = []
    for dot_git, folder in left:
        index = folder / "index"
        if not os.path.lexists(index):
            continue
        if not _index_changed(index.parent, since):
            done.append(
                f"{shown(dot_git)}: not read (unchanged by the run): look at 'git ls-files --stage | "
                "grep ^160000' there"
            )
            continue
        aside = index.with_name(f"index.removed-{os.urandom(4).hex()}")
        try:
            index.rename(aside)
        except OSError as error:
            done.append(
                f"{shown(dot_git)}: its index could not be moved aside ({error}): remove it"
            )
            continue
        done.append(
            f"{shown(dot_git)}: not read; its index, changed by the run, moved aside to {shown(aside.name)}"
        )
    return done


def _secure_linked(git_folder: Path, read_only: Mapping[Path, bool]) -> str:
    """:func:`secure_linked_repositories` for one git folder: what was done."""
    if read_only and _could_not_write(git_folder, read_only):
        return "changed, but not by the sandbox (it could not write there): left as it is"
    try:
        emptied = _make_all_safe(git_folder)
    except (OSError, RecursionError) as error:
        return f"made or changed inside the sandbox, could not be made safe ({error}): remove it"
    return f"made or changed inside the sandbox; {emptied} (the old ones kept as *.removed-*)"


def _make_all_safe(git_folder: Path) -> str:
    """:func:`_make_safe` on ``git_folder`` and each submodule's git folder under it; what was
    done, in words.

    Raises:
        OSError, RecursionError: one could not be made safe.
    """
    dropped = [key for folder in _git_folders(git_folder) for key in _make_safe(folder)]
    more = f", config keys dropped: {', '.join(sorted(set(dropped)))}" if dropped else ""
    return f"hooks emptied{more}"


def _could_not_write(git_folder: Path, read_only: Mapping[Path, bool]) -> bool:
    """Whether the sandbox could write neither the git folder's config nor its hooks."""
    return all(read_only_at(git_folder / name, read_only) for name in ("config", "hooks"))


def repository_folders(dot_gits: Iterable[Path]) -> list[Path]:
    """The git folders these ``.git`` entries are or name (resolved), those there."""
    folders = (git_folder_of(dot_git) for dot_git in dot_gits)
    return [folder for folder in folders if folder is not None]


GIT_FOLDER_ENTRIES = 200_000
"""At most this many entries of the git folders are looked at for links made in a run."""


def planted_links(workspace: Path, nested: Iterable[Path], since: float) -> tuple[list[Path], bool]:
    """After the run: the symbolic links made or changed during it (their change time at or
    after ``since``, less :data:`CHANGED_SLACK`) in the git folders of the workspace's
    repository (its ``.git/modules`` too) and of the nested ones (``nested``: their ``.git``
    entries), and whether every entry was looked at (:data:`GIT_FOLDER_ENTRIES`).

    Git makes no links in its own folders, and writes through one: it appends the reflog
    (``logs/HEAD``) and writes ``COMMIT_EDITMSG``, ``MERGE_MSG`` and the like in place. A link
    made inside would have the user's next ``git checkout`` or ``git commit --amend`` write
    text code inside chose into ``~/.bashrc`` or into a hook. A link the user made before the
    run (``hooks -> ../githooks``) is theirs, and left alone."""
    folders = dict.fromkeys(repository_folders((workspace / ".git", *nested)))
    planted: list[Path] = []
    looked = 0
    for folder in folders:
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                with os.scandir(current) as listing:
                    entries = list(itertools.islice(listing, GIT_FOLDER_ENTRIES - looked + 1))
            except OSError:
                continue
            looked += len(entries)
            if looked > GIT_FOLDER_ENTRIES:
                return planted, False
            for entry in entries:
                try:
                    if entry.is_symlink():
                        if entry.stat(follow_symlinks=False).st_ctime >= since - CHANGED_SLACK:
                            planted.append(Path(entry.path))
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                except OSError:
                    continue
    return planted, True


def git_folder_of(dot_git: Path) -> Path | None:
    """The git folder a ``.git`` is (a folder, or a link to one) or names (a ``.git`` file,
    read as git reads it), resolved."""
    if dot_git.is_dir():
        return resolve(dot_git)
    return _gitdir_of(dot_git) if dot_git.is_file() else None


def _changed_since(dot_git: Path, git_folder: Path | None, since: float) -> bool:
    """Whether ``dot_git`` (or a file given there) or what in its git folder runs programs
    changed after ``since`` (a change time, which no one can set back), or cannot be told."""
    # a git folder's own change time moves with every index write: what it holds is looked at
    paths = [] if dot_git.is_dir() and not dot_git.is_symlink() else [dot_git]
    if git_folder is not None:
        paths += [git_folder / name for name in GIT_FOLDER_WATCHED]
        if _entries_changed(git_folder / "hooks", since):
            return True
    return any(_changed(path, since) for path in paths)


def _entries_changed(folder: Path, since: float) -> bool:
    """Whether an entry of ``folder`` changed after ``since``, or there are more than a
    thousand, or they cannot be read (none when it is no folder)."""
    try:
        with os.scandir(folder) as listing:
            entries = list(itertools.islice(listing, 1_001))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return len(entries) > 1_000 or any(_changed(Path(entry.path), since) for entry in entries)


def _changed(path: Path, since: float) -> bool:
    """Whether ``path`` (not through a link) changed after ``since``, less
    :data:`CHANGED_SLACK`, or cannot be told; a missing one has not."""
    try:
        changed = path.lstat().st_ctime
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return changed >= since - CHANGED_SLACK


def gitlinks(work_tree: Path, git_folder: Path) -> list[str] | None:
    """The paths that the index of the repository at ``work_tree`` names as submodules
    (gitlinks, mode 160000), as git reads them, odd ones included (git checks a name when
    it adds it, not when it reads it); ``None`` when it cannot be read (no git, a broken
    index, a repository git refuses).

    Git is told the repository (``GIT_DIR``, no other variable of git's), to take no lock,
    to ask no file-system monitor (the config may have been written inside), and to read a
    repository of another user's too (reading the index runs nothing)."""
    try:  # a FIFO made inside would keep git waiting
        if not stat.S_ISREG((git_folder / "index").stat().st_mode):
            return None
    except FileNotFoundError:
        return []
    except OSError:
        return None
    if not git_would_answer(git_folder):
        return None
    variables = {"GIT_DIR": str(git_folder), "GIT_WORK_TREE": str(work_tree)}
    done = read_by_git(["ls-files", "--stage", "-z"], 20, variables)
    if done is None or done.returncode != 0:
        return None
    names = []
    for item in done.stdout.split(b"\0"):
        if item.startswith(b"160000 "):
            name = os.fsdecode(item.partition(b"\t")[2])
            if name:  # as written: git reads "a//b", "./a", "a/../b" and ".GIT/a" as they are
                names.append(name)
    return names


GIT_READS = ("HEAD", "commondir", "config", "config.worktree")
"""What git reads in a git folder before it takes it for a repository, whatever it is asked."""


def git_would_answer(git_folder: Path) -> bool:
    """Whether each of :data:`GIT_READS` in ``git_folder`` is a regular file or missing, so
    that git asked of the repository answers at once. A FIFO there (``HEAD`` is written
    inside; a repository may come with one) would hold git until airlock gives it up, 20 s at
    each look, before the command and after it, at every run in the workspace: and the set-up
    holds the home's turn meanwhile, so runs in other workspaces wait too. What git would
    have said is taken as not known, and said so, as when git could not read it."""
    for name in GIT_READS:
        try:
            if not stat.S_ISREG((git_folder / name).stat().st_mode):
                return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def _git_folders(root: Path) -> Iterator[Path]:
    """``root`` and every submodule's git folder under its ``modules/`` (nested too)."""
    yield root
    modules = root / "modules"
    if not modules.is_dir() or modules.is_symlink():
        return
    queue: deque[tuple[Path, int]] = deque([(modules, 0)])
    read = 0
    while queue and read < 10 * GIT_FOLDERS:  # breadth first, bounded: made inside, maybe hostile
        folder, depth = queue.popleft()
        read += 1
        try:
            with os.scandir(folder) as listing:
                entries = sorted(entry.name for entry in itertools.islice(listing, 10_000))
        except OSError:
            continue
        is_git_folder = folder != modules and "HEAD" in entries and "config" in entries
        if is_git_folder:
            yield folder
        for name in ["modules"] if is_git_folder else entries:  # not into objects/, refs/
            inner = folder / name
            if depth < 8 and inner.is_dir() and not inner.is_symlink():
                queue.append((inner, depth + 1))


def _make_safe(git_folder: Path) -> list[str]:
    """Empty ``hooks/``, keep only :data:`SAFE_CONFIG` of ``config``; the keys dropped.

    The hooks, the old config, ``commondir`` and ``config.worktree`` are renamed out of the
    way (``hooks.removed-…``, ``config.removed-…``, which git never reads), not deleted: nothing is lost when the
    repository was the user's, and a folder made inside may be deep enough to stop a
    recursive removal. A git folder made read-only inside is made writable for its owner
    first. The new config is written in one go (:func:`config_text`)."""
    with contextlib.suppress(OSError):  # ours: made inside by this user, or the user's own
        mode = git_folder.stat().st_mode
        if not mode & stat.S_IWUSR:
            git_folder.chmod(stat.S_IMODE(mode) | stat.S_IWUSR | stat.S_IXUSR)
    hooks = git_folder / "hooks"
    if hooks.is_dir() and not hooks.is_symlink():
        hooks.rename(git_folder / f"hooks.removed-{os.urandom(4).hex()}")
    elif os.path.lexists(hooks):
        hooks.unlink()
    hooks.mkdir()
    for name in ("commondir", "config.worktree", "config.lock"):  # aside, as the config
        if os.path.lexists(git_folder / name):
            (git_folder / name).rename(git_folder / f"{name}.removed-{os.urandom(4).hex()}")
    config = git_folder / "config"
    if not os.path.lexists(config):
        return []
    kept = git_folder / f"config.removed-{os.urandom(4).hex()}"  # git never reads it
    config.rename(kept)
    entries = _config_entries(kept)
    safe = re.compile("|".join(SAFE_CONFIG), re.IGNORECASE)  # compiled only when needed
    keep: list[tuple[str, str]] = []
    dropped = []
    for number, (key, value) in enumerate(entries):
        if number >= KEPT_CONFIG or not _safe_entry(safe, key, value):
            dropped.append(key)
        else:
            keep.append((key, value))
    text, unwritable = config_text(keep)
    dropped += unwritable
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return dropped


def config_text(entries: Iterable[tuple[str, str]]) -> tuple[str, list[str]]:
    """A git config file holding ``entries`` (``section.key`` or ``section.subsection.key``,
    as ``git config --list`` names them), in their order, every value quoted and escaped as
    git reads it; and the keys that cannot be written so (a line break or a NUL in a name)."""
    lines: list[str] = []
    header = None
    unwritable = []
    for key, value in entries:
        section, _, rest = key.partition(".")
        subsection, _, name = rest.rpartition(".")
        if not name or any(c in key for c in "\n\0") or "\0" in value:
            unwritable.append(key)
            continue
        quoted = subsection.replace("\\", "\\\\").replace('"', '\\"')
        wanted = f'[{section} "{quoted}"]' if subsection else f"[{section}]"
        if wanted != header:
            lines.append(wanted)
            header = wanted
        escaped = (
            value.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\t", "\\t")
            .replace("\b", "\\b")
        )
        lines.append(f'\t{name} = "{escaped}"')
    return "".join(line + "\n" for line in lines), unwritable


def _safe_entry(safe: re.Pattern[str], key: str, value: str) -> bool:
    """A key of :data:`SAFE_CONFIG`, and no remote URL through a transport that runs a
    program (``ext::``) or talks to an inherited descriptor (``fd::``)."""
    if not safe.fullmatch(key):
        return False
    names_a_remote = key.lower().endswith(("url", ".remote"))  # branch.X.remote may be a URL
    return not (names_a_remote and value.strip().lower().startswith(UNSAFE_URL_PREFIXES))


def _config_entries(config: Path) -> list[tuple[str, str]]:
    """Every ``key = value`` of a git config file, includes not followed (git reads it)."""
    if config.is_symlink() or not config.is_file():
        return []
    done = run_git(["config", "--file", str(config), "--no-includes", "--null", "--list"])
    if done is None:
        return []
    entries = []
    for item in done.stdout.decode("utf-8", "replace").split("\0"):
        if item:
            key, _, value = item.partition("\n")
            entries.append((key, value))
    return entries
