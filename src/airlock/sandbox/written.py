"""Agent and editor configuration written inside the sandbox: found after the run and set aside.

Theory of operation
-------------------
A ``.claude`` folder, ``.mcp.json``, ``.vscode``, ``.idea``, ``.envrc`` (and the other
:data:`WATCHED` names) says what runs
when an agent, an editor or direnv starts in the folder that holds it: hooks, MCP servers,
tasks; a ``.hg`` folder's config what Mercurial runs there
(:mod:`airlock.sandbox.mercurial`). The workspace's own are read-only inside (:data:`airlock.sandbox.paths.PROTECTED_IN_WORKSPACE`),
but one can be made in any subfolder, where no rule can stand in advance (a placeholder in
every folder would litter the project), and the files a protected one names (a hook's script
under ``.claude/hooks/``) are not protected themselves. So:

1. before the run, :func:`snapshot` notes every such entry in the workspace and each file under
   the folders among them (type, size, inode, modification and change time), from the walk
   of the workspace the run makes once at its start for this and its nested repositories
   (:func:`airlock.sandbox.repositories.scan_workspace`), through at most :data:`FOLDERS`
   folders, :data:`DEPTH` deep;
2. after it, :func:`set_aside` looks again, with the same walk, and moves every entry that is new or changed (a
   folder as a whole when it is new, else each changed file in it) to a folder of its own under
   airlock's state, keeping its path relative to the workspace, and says where each went. A
   removal is left as it is (it runs nothing).

Nothing is deleted: the user reviews what was set aside and moves back what they want. A
workspace larger than the bounds is looked at in part, and the run says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from airlock._projects import project_name
from airlock._visible import visible as shown
from airlock.sandbox.agent_state import (
    CONFIG_FILES,
    STATE_FILE,
    carry_back,
    keep_file,
    keep_servers,
    read,
    state_files,
)
from airlock.sandbox.direnv import PathFolders, path_folders
from airlock.sandbox.files import (
    NotRegular,
    chmod_regular,
    folder_identity,
    is_at,
    open_folder,
    read_regular,
    rename_aside,
)
from airlock.sandbox.mercurial import HG_FILES
from airlock.sandbox.paths import (
    HOOK_MANAGER_FILES,
    PROTECTED_GLOBS_IN_WORKSPACE,
    TOOL_MANAGER_FILES,
    VERSION_FILES,
    home_paths,
    read_only_at,
    resolve,
)
from airlock.sandbox.repositories import (
    BEYOND_SECONDS,
    CHANGED_SLACK,
    GIT_FOLDER_ENTRIES,
    GIT_FOLDERS,
    HOOK_NAMES,
    NESTED_DEPTH,
    NESTED_ENTRIES,
    NESTED_FOLDERS,
    NOT_SCANNED,
    NestedScan,
    WorkspaceScan,
    common_folder,
    enclosing_git,
    git_folder_of,
    listing,
    module_folders,
    note_linked,
    planted_links,
    repository_folders,
    run_git,
    scan_workspace,
    secure_linked_repositories,
    secure_new_modules,
    secure_new_repositories,
    secure_repositories_beyond,
    walk_all,
)

WATCHED = frozenset(
    {
        ".claude",
        ".mcp.json",
        ".vscode",
        ".idea",
        ".envrc",
        ".gemini",
        ".codex",
        ".agents",
        ".cursor",
        ".roo",
        ".kilocode",
        ".amazonq",
        ".kiro",
        ".continue",
        ".opencode",
        "opencode.json",
        ".crush.json",
        "crush.json",
        "opencode.jsonc",
        ".qwen",
        ".clinerules",
        ".windsurf",
        ".junie",
        ".factory",
        ".aider.conf.yml",
        ".zed",
        ".devcontainer",
        ".devcontainer.json",
        "mise.toml",
        ".mise.toml",
        "mise.local.toml",
        ".mise.local.toml",
        ".mise",
        ".rtx.toml",
        *VERSION_FILES,
    }
)
"""Names whose content steers an agent, an editor, direnv or mise started in their folder
(their MCP servers, hooks, plugins and tasks; a dev container's ``initializeCommand`` runs on
the host; mise's hooks and ``path:`` versions; rustup's toolchain ``path``; Cline's hooks,
in ``.clinerules/hooks/``; the rules, workflows and MCP servers of Windsurf, Junie and
Factory's agents, which their agent reads in the folder it works in)."""
ROOT_WATCHED: tuple[str, ...] = (*HOOK_MANAGER_FILES, *TOOL_MANAGER_FILES, ".github/hooks")
"""Paths at the workspace's root that a git hook manager or a tool manager reads (read-only
inside when there): one made during the run is set aside after it (mise trusts a folder,
not a file: a ``.config/mise/conf.d/x.toml`` made next to a trusted ``mise.toml`` runs);
and Copilot CLI's hooks (``.github/hooks/*.json``, whose commands it runs where it starts),
each file made or changed set aside, the rest of ``.github`` left as it is."""

ROOT_WATCHED_GLOBS: tuple[str, ...] = tuple(
    pattern for pattern in PROTECTED_GLOBS_IN_WORKSPACE if "mise" in pattern
)
"""mise's files for one ``MISE_ENV`` at the workspace's root, made or changed: set aside."""

DEPTH = NESTED_DEPTH
"""How many folders deep below the workspace :func:`snapshot` looks: the bounds of the walk
it shares with the nested repositories' scan (the same before and after the run)."""
FOLDERS = NESTED_FOLDERS
"""How many folders of the workspace :func:`snapshot` reads at most."""
ENTRIES = NESTED_ENTRIES
"""How many entries of one folder :func:`snapshot` reads at most."""
FILES_IN_WATCHED = 5_000
"""How many entries under one watched folder are noted at most."""

Signature = tuple[int, int, int, int, int]
"""``(mode, size, inode, modification time, change time)`` of an entry, in ns, not following a
link. The change time cannot be set back from inside (``touch -d`` sets the other one)."""


class Snapshot(NamedTuple):
    """The watched entries found, with their signatures; ``unseen``: what the bounds kept the
    scan from (empty when it saw everything); ``links``: where each watched entry that is a
    symbolic link pointed; ``nested``: the nested repositories the same walk found."""

    entries: dict[Path, Signature]
    unseen: list[str]
    links: dict[Path, str]
    nested: NestedScan | None = None
    heads: tuple[Path, ...] = ()
    """The ``HEAD`` entries of subfolders the walk met (:class:`WorkspaceScan`)."""
    left: tuple[Path, ...] | None = None
    """The folders the walk did not read (:attr:`WorkspaceScan.left`; ``None``: not known)."""
    covered: tuple[str, ...] = ()
    """The lines of :attr:`unseen` that a walk of :attr:`left` reads past (the folder bound,
    the depth); the others it cannot."""

    @property
    def complete(self) -> bool:
        return not self.unseen


class SetAside(NamedTuple):
    """One entry moved out of the workspace: where it was, and where it is now."""

    path: Path
    moved_to: Path


GIT_TODOS: tuple[tuple[str, str], ...] = (
    ("rebase-merge", "git-rebase-todo"),
    ("sequencer", "todo"),
)
"""Where git keeps what a rebase or a cherry-pick in progress does next: ``git rebase
--continue`` runs each ``exec`` line there, outside, with the user's rights."""

_EXEC_LINE = re.compile(rb"^[ \t]*(?:exec|x)[ \t]", re.MULTILINE)

GIT_STRATEGIES: tuple[tuple[str, str], ...] = (
    ("rebase-merge", "strategy"),
    ("sequencer", "opts"),
)
"""Where a rebase or a cherry-pick in progress keeps the merge strategy it goes on with (the
file ``strategy``; ``options.strategy`` in ``opts``): for any but git's own
(:data:`GIT_OWN_STRATEGIES`) ``git rebase --continue`` and ``git cherry-pick --continue`` run
``git-merge-NAME``, found on ``PATH``, or, when the name holds a ``/`` (``../x``), taken as a
path from the work tree: ``git-merge-../x``, a program in a folder ``git-merge-..`` that code
inside made."""

GIT_OWN_STRATEGIES = frozenset({b"ort", b"recursive", b"resolve", b"octopus", b"ours", b"subtree"})
"""The merge strategies git brings: its own code, or programs in its own folder."""

TODO_FOLDERS = 10 * GIT_FOLDERS
"""How many git folders :func:`todo_folders` gives at most (each is two ``lstat`` calls,
before the run and after it)."""


def todo_folders(dot_gits: Iterable[Path], cut: list[str]) -> list[Path]:
    """The git folders where a rebase or a cherry-pick in progress keeps its state
    (:data:`GIT_TODOS`), for the repositories whose ``.git`` entries (or git folders) are
    ``dot_gits``: the git folder each is or names, the common folder its ``commondir`` names
    (a linked worktree's main repository's), the submodules' git folders under a ``.git``
    folder's ``modules/`` (nested too), and each linked worktree's own under their
    ``worktrees/``: ``git rebase --continue`` in each of those work trees reads its own. Each
    once, resolved, in that order (the first entries' first); at most :data:`TODO_FOLDERS`, for
    :data:`~airlock.sandbox.repositories.BEYOND_SECONDS` (code inside may have made
    thousands): what was left, in ``cut``."""
    deadline = time.monotonic() + BEYOND_SECONDS
    found: dict[Path, None] = {}
    for dot_git in dot_gits:
        if len(found) >= TODO_FOLDERS or time.monotonic() > deadline:
            cut.append(f"git folders past the first {len(found)}, for a rebase's commands")
            return list(found)[:TODO_FOLDERS]
        try:
            folder = git_folder_of(dot_git)
            common = common_folder(folder) if folder is not None else None
            for each in (folder, common):
                if each is None or each in found:
                    continue
                found[each] = None
                if each.name == ".git":  # a submodule's is under its work tree's .git/modules
                    found.update(dict.fromkeys(sorted(module_folders(each.parent))))
        except OSError:  # a name too long, a loop: git cannot use it either
            continue
    for folder in list(found):  # git follows a link at worktrees: so does this, to its end
        if len(found) > TODO_FOLDERS:
            break
        for entry in listing(resolve(folder / "worktrees"), GIT_FOLDERS, cut):
            if entry.is_dir(follow_symlinks=False):
                found[Path(entry.path)] = None
    if len(found) > TODO_FOLDERS:
        cut.append(f"git folders past the first {TODO_FOLDERS}, for a rebase's commands")
    return list(found)[:TODO_FOLDERS]


def todo_paths(folders: Iterable[Path]) -> list[Path]:
    """Each file of :data:`GIT_TODOS` and :data:`GIT_STRATEGIES` in ``folders``, there or not:
    what says which programs a rebase or a cherry-pick in progress runs next."""
    named = (*GIT_TODOS, *GIT_STRATEGIES)
    return [folder / name / todo for folder in folders for name, todo in named]


def _left_to_run(
    todos: Mapping[Path, Signature | None], found: Iterable[Path] = (), since: float = 0.0
) -> list[Path]:
    """The files of :data:`GIT_TODOS` and :data:`GIT_STRATEGIES` made or changed during the
    run that make git run a program (:func:`_runs_a_program`), or that cannot be read as
    regular files (git reads through a link): their folder is set aside whole, with what the
    run left in it (git then says no rebase is in progress; the set-aside folder put back
    resumes it). ``todos``: those noted before the run, with their signatures then;
    ``found``: those of git folders found only after it (made in it, or out of reach
    before), counted as made in it when their change time, which no program sets back, is at
    or after ``since`` (less :data:`~airlock.sandbox.repositories.CHANGED_SLACK`)."""
    left = []
    for path in dict.fromkeys([*todos, *found]):
        now = _signature(path)
        if now is None:
            continue
        if path in todos:
            if now == todos[path]:
                continue
        elif now[4] < (since - CHANGED_SLACK) * 1e9:
            continue  # there before the run, as it was: the user's own
        try:  # a regular file only, never read through a link
            text = read_regular(path)
        except (OSError, NotRegular):
            left.append(path)
            continue
        if text is not None and _runs_a_program(path, text):
            left.append(path)
    return left


def _runs_a_program(path: Path, text: bytes) -> bool:
    """Whether a file of :data:`GIT_TODOS` holds a command (``exec`` or ``x``), or one of
    :data:`GIT_STRATEGIES` names a strategy that is not git's own, or cannot be read."""
    if path.name == "strategy":  # read as git reads it: one line break at its end dropped
        value = text.removesuffix(b"\n")
        value = value.removesuffix(b"\r") if value != text else value
        return value not in GIT_OWN_STRATEGIES
    if path.name == "opts":
        if b"strategy" not in text.lower():
            return False  # a key cannot be split: no strategy named
        done = run_git(
            [
                "config",
                "--file",
                str(path),
                "--no-includes",
                "--null",
                "--get-all",
                "options.strategy",
            ],
            timeout=10,
        )
        if done is None or done.returncode not in (0, 1):
            return True  # git cannot say: no one can tell what it would run
        values = done.stdout.split(b"\0")[:-1]  # each value ends with a NUL
        return any(value not in GIT_OWN_STRATEGIES for value in values)
    return _EXEC_LINE.search(text) is not None


def _signature(path: Path) -> Signature | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return (found.st_mode, found.st_size, found.st_ino, found.st_mtime_ns, found.st_ctime_ns)


def snapshot(
    workspace: Path,
    depth: int = DEPTH,
    folders: int = FOLDERS,
    skip: Iterable[Path] = (),
    scan: WorkspaceScan | None = None,
) -> Snapshot:
    """Every watched entry of ``workspace`` and every entry under the watched folders, the
    :data:`~airlock.sandbox.mercurial.HG_FILES` of every ``.hg`` folder (and the ``.hg`` entry
    itself when it is a link), and the
    workspace's ``.git/hooks`` when it is a symbolic link (a read-only rule lands on what a
    link names, so the link itself could be replaced by a folder of new hooks). The folders of
    ``skip`` in the workspace (the agents' own state, writable by design: :func:`agent_skip`)
    are not walked.

    The watched entries are those of ``scan`` (the run's start walks the workspace once, for
    this and its nested repositories, with the same ``skip``), else of a walk of ``depth`` and
    ``folders`` made now: both are the same walk
    (:func:`airlock.sandbox.repositories.scan_workspace`), so what is new after the run is
    told from what was there, never from a difference of walks."""
    if scan is None:
        scan = scan_workspace(workspace, WATCHED, depth, folders, skip)
    entries: dict[Path, Signature] = {}
    unseen: list[str] = []
    left = [NOTED_IN_ALL]  # for the whole look
    hooks = workspace / ".git" / "hooks"
    if hooks.is_symlink():
        _note(hooks, entries, unseen, left=left)
    noted: set[Path] = set()
    for path in scan.named:  # breadth first: one under a noted folder was noted with it
        if path not in entries:
            _note(path, entries, unseen, workspace, left)
            noted.add(path)
    for name in ROOT_WATCHED:  # read-only when there; one made during the run is new
        if workspace / name not in entries:
            _note(workspace / name, entries, unseen)
    for pattern in ROOT_WATCHED_GLOBS:
        for path in sorted(workspace.glob(pattern)):
            if path not in entries:
                _note(path, entries, unseen)
    for folder in scan.hg:  # what Mercurial runs there (its config, a shared repository's)
        watched = [folder / name for name in HG_FILES]
        if folder.is_symlink():  # a link to a folder of one's own making: the link is noted
            watched.insert(0, folder)
        for path in watched:
            if path not in entries:
                _note(path, entries, unseen)
    covered = [scan.stopped] if scan.stopped else []  # a walk stopped there left the rest
    unseen += [line for line in scan.cut if line not in covered]
    deeper = [path for path in scan.deeper if noted.isdisjoint(path.parents)]
    if deeper:
        covered.append(f"folders more than {depth} deep ({deeper[0]})")
    links = {path: str(path.readlink()) for path in entries if path.is_symlink()}
    return Snapshot(
        entries,
        [*unseen[:3], *covered],
        links,
        scan.nested,
        scan.heads,
        scan.left,
        tuple(covered),
    )


def agent_skip(workspace: Path, agent_state: Iterable[Path]) -> list[Path]:
    """The folders of the agents' own state that are inside ``workspace`` (not it, nor one
    holding it: a workspace in ``~/.claude`` is watched as any other), for :func:`snapshot`."""
    return [path for path in agent_state if path != workspace and path.is_relative_to(workspace)]


NOTED_IN_ALL = 50_000
"""The most entries one look at a folder notes under its watched entries, all together: code
inside could make many links to one large folder, each noted through (a look that took hours
at the end of the run). Past it, what was not noted is said."""


def _note(
    path: Path,
    entries: dict[Path, Signature],
    unseen: list[str],
    within: Path | None = None,
    left: list[int] | None = None,
) -> None:
    """Note ``path`` and, for a folder, what is under it (breadth first, no recursion: a
    folder made inside may be thousands deep), up to :data:`FILES_IN_WATCHED` entries, and
    what ``left`` holds for the whole look (:data:`NOTED_IN_ALL`). A link to a folder in
    ``within`` (the workspace: ``pkg/.claude -> ../shared/claude``) has what is under it
    noted too, through the link; links under it are not followed."""
    left = left if left is not None else [NOTED_IN_ALL]
    signature = _signature(path)
    if signature is None:
        return
    entries[path] = signature
    if stat.S_ISLNK(signature[0]) and within is not None:
        target = resolve(path)
        if not (target.is_relative_to(resolve(within)) and target.is_dir()):
            return
    elif not stat.S_ISDIR(signature[0]):
        return
    queue: deque[Path] = deque([path])
    noted = 0
    while queue:
        for entry in listing(queue.popleft(), ENTRIES, unseen):
            if noted >= FILES_IN_WATCHED:
                unseen.append(f"entries past the first {FILES_IN_WATCHED} under {path}")
                return
            if left[0] <= 0:
                unseen.append(f"entries past the first {NOTED_IN_ALL} noted in all ({path})")
                return
            left[0] -= 1
            inner = Path(entry.path)
            found = _signature(inner)
            if found is None:
                continue
            entries[inner] = found
            noted += 1
            if stat.S_ISDIR(found[0]):
                queue.append(inner)


def set_aside(
    workspace: Path,
    before: Snapshot,
    destination: Path,
    read_only: Mapping[Path, bool] = MappingProxyType({}),
    skip: Iterable[Path] = (),
    after: Snapshot | None = None,
) -> tuple[list[SetAside], list[str]]:
    """Move what is new or changed since ``before`` to ``destination`` (created when needed),
    each at its path relative to ``workspace``; what was moved, outermost first.

    An entry whose folder is new itself goes with that folder. ``read_only``: the sandbox's
    path rules, each with whether it is read-only inside; an entry whose nearest rule is one
    (a change there came from outside, the user's own) stays. Folders of ``skip`` are not
    looked at (as for :func:`snapshot`). An entry that cannot be moved stays
    where it is and is reported with ``moved_to`` equal to its ``path``. Also returns what the
    bounds kept the scan after the run from (code inside may have made the workspace larger
    than they are, to hide something past them). ``after``: the look after the run, when it
    was made already (:meth:`Watch.after` uses its walk for the repositories made inside too).
    """
    after = after or snapshot(workspace, skip=skip)
    if before.links:  # a link replaced: its replacement is new, and the link comes back
        for path in before.links:
            if (
                path not in after.entries
                and os.path.lexists(path)
                and not _through_a_link(path, workspace)  # not out of the workspace
            ):
                after.entries[path] = _signature(path) or (0, 0, 0, 0, 0)
    rules = read_only or {workspace: False}  # none given: the workspace is writable
    changed = sorted(
        path
        for path, signature in after.entries.items()
        if before.entries.get(path) != signature and not read_only_at(path, rules)
    )
    moved: list[SetAside] = []
    taken: set[Path] = set()
    for path in changed:
        if not taken.isdisjoint(path.parents):
            continue  # went with its new folder
        was = before.entries.get(path)
        if was is not None and stat.S_ISDIR(was[0]) and path.is_dir() and not path.is_symlink():
            continue  # a folder that was there: its changed entries are moved one by one
        target = destination / path.relative_to(workspace)
        folder = resolve(path.parent)  # through a link in the workspace (the walk follows one)
        if not folder.is_relative_to(resolve(workspace)):
            moved.append(SetAside(path, path))  # it leads out of the workspace now: said
            continue
        done = move_aside(path, target, folder, relink=before.links.get(path))
        moved.append(done)
        if done.moved_to != path:
            taken.add(path)
    return moved, after.unseen


def _through_a_link(path: Path, workspace: Path) -> bool:
    """A folder between ``workspace`` and ``path`` is a symbolic link (the walks never enter
    one: a watched entry was noted in real folders only, so code inside made it a link)."""
    return any(
        folder.is_symlink()
        for folder in path.parents
        if folder != workspace and folder.is_relative_to(workspace)
    )


class NotedLink(NamedTuple):
    """A link on the way to a protected path, as it was before the run: what it pointed at, and
    the folder that holds it (device and inode: the same folder after the run, not one put in
    its place)."""

    target: str
    folder: tuple[int, int]


def note_links(links: Mapping[Path, str]) -> dict[Path, NotedLink]:
    """``links`` (:func:`airlock.sandbox.paths.links_on_the_way`) with their folders noted."""
    noted: dict[Path, NotedLink] = {}
    for link, target in links.items():
        with contextlib.suppress(OSError):
            folder = link.parent.stat()
            noted[link] = NotedLink(target, (folder.st_dev, folder.st_ino))
    return noted


def put_back_links(links: Mapping[Path, NotedLink], destination: Path) -> list[str]:
    """Each of ``links`` that the run removed or replaced comes back; what stood in its place is
    set aside under ``destination``, at its absolute path. Everything is done through the
    folder that held the link, opened and checked to be the same folder as before the run: one
    whose folder is not (code inside moved it away and left a link to elsewhere, maybe while
    this runs, from another sandbox) is only reported, and nothing is moved or made there.
    What was done, a message each."""
    done: list[str] = []
    for link in sorted(links, key=lambda path: len(path.parts)):  # a folder's before its own
        noted = links[link]
        what = (
            f"airlock: {shown(link)} was a link to {shown(noted.target)} on the way to a "
            "protected path"
        )
        try:
            folder = open_folder(link.parent)
        except OSError:
            done.append(f"{what}; its folder is gone: check it")
            continue
        try:
            found = os.fstat(folder)
            if (found.st_dev, found.st_ino) != noted.folder:
                done.append(f"{what}; its folder was replaced inside: check both")
                continue
            message = _put_back(link, noted.target, folder, destination)
            if message is not None:
                done.append(f"{what}; {message}")
        finally:
            os.close(folder)
    return done


def _put_back(link: Path, target: str, folder: int, destination: Path) -> str | None:
    """Make ``link`` (its name in the open ``folder``) point at ``target`` again, what stands
    there moved to ``destination``; what was done (``None``: it was as it was)."""
    name = link.name
    with contextlib.suppress(OSError):
        if os.readlink(name, dir_fd=folder) == target:
            return None
    moved = ""
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        try:
            aside = rename_aside(
                name, folder, link.parent, destination / link.relative_to(link.anchor)
            )
        except OSError as error:
            return f"it was replaced inside and could not be moved ({error.strerror}): check it"
        moved = f"what replaced it inside is set aside at {shown(aside)}; "
    try:
        os.symlink(target, name, dir_fd=folder)
    except OSError as error:
        return f"{moved}the link could not be made again ({error.strerror}): check it"
    return f"{moved}the link is back"


GIT_FOLDER_FILES = ("HEAD", "commondir", "config")
"""Set aside from a workspace that became a git folder during the run: what makes git take
it for one (``HEAD``, with ``commondir`` naming where its objects and config are), and the
config git would run."""


def looks_like_git_folder(folder: Path) -> bool:
    """Whether git would take ``folder`` itself for a git folder: a ``HEAD``, with ``objects``
    and ``refs`` or with a ``commondir`` that names a folder that has them."""
    if not os.path.lexists(folder / "HEAD"):
        return False
    if os.path.lexists(folder / "commondir"):
        return True
    return all(os.path.lexists(folder / mark) for mark in ("objects", "refs"))


def _git_folder_signature(folder: Path) -> tuple[object, ...]:
    """The identity, size and change time of a git folder's :data:`GIT_FOLDER_FILES`."""
    parts: list[object] = []
    for name in GIT_FOLDER_FILES:
        try:
            found = (folder / name).lstat()
        except OSError:
            parts.append(None)
            continue
        parts.append((found.st_ino, found.st_size, found.st_ctime_ns))
    return tuple(parts)


def set_aside_git_folder(workspace: Path, before: bool, destination: Path) -> list[SetAside]:
    """After the run: when the workspace itself became a git folder during it
    (:func:`looks_like_git_folder`: git would then run its config, ``core.fsmonitor`` included,
    for anyone using git there), its :data:`GIT_FOLDER_FILES` are set aside."""
    if before or not looks_like_git_folder(workspace):
        return []
    moved = []
    for name in GIT_FOLDER_FILES:
        path = workspace / name
        if os.path.lexists(path):
            moved.append(move_aside(path, destination / name, workspace))
    return moved


def move_aside(path: Path, target: Path, folder: Path, relink: str | None = None) -> SetAside:
    """Move ``path`` to ``target`` (``target.N`` when that is taken; its folders made); one
    that cannot be moved stays, and the answer says so (``moved_to`` is ``path``). With
    ``relink``, a link to that is made again where ``path`` was.

    Everything goes through ``path``'s folder, opened and found to be ``folder`` itself (a
    real path, as the walk or the run's start noted it): a folder on the way swapped for a link
    meanwhile (by another sandbox running there) moves nothing, from elsewhere or from another
    place in the workspace. Nothing is ever copied: when ``target`` is on another file system,
    the entry is renamed in its own folder with
    :data:`~airlock.sandbox.files.INERT_SUFFIX` instead."""
    try:
        opened = open_folder(path.parent)
    except OSError:
        return SetAside(path, path)
    try:
        if not is_at(opened, folder):
            return SetAside(path, path)
        moved_to = rename_aside(path.name, opened, path.parent, target)
        if relink is not None:
            with contextlib.suppress(OSError):
                os.symlink(relink, path.name, dir_fd=opened)
        return SetAside(path, moved_to)
    except Exception:
        return SetAside(path, path)
    finally:
        os.close(opened)


def set_aside_message(moved: list[SetAside]) -> str:
    """What :func:`set_aside` did, for the user: each entry and where it went."""
    lines = [
        "airlock: written inside the sandbox, these would steer an agent, an editor, direnv, "
        "mise, git or Mercurial started in their folder (hooks, servers, tasks), so they were "
        "set aside; review them "
        "and move back what you mean to keep:"
    ]
    for entry in moved[:MESSAGE_ENTRIES]:
        if entry.moved_to == entry.path:
            lines.append(
                f"  {shown(entry.path)}: could not be moved; check it before you start one there"
            )
        else:
            lines.append(f"  {shown(entry.path)} → {shown(entry.moved_to)}")
    if len(moved) > MESSAGE_ENTRIES:
        lines.append(f"  and {len(moved) - MESSAGE_ENTRIES} more, under the same folder")
    return "\n".join(lines)


def _where(moved: SetAside, advice: str) -> str:
    """Where an entry went, for a message; or that it could not be moved, and ``advice``."""
    if moved.moved_to != moved.path:
        return f"moved to {shown(moved.moved_to)}"
    return f"could not be moved: {advice}"


MESSAGE_ENTRIES = 50
"""How many entries set aside the message names (the rest are counted)."""
NAMED_PROGRAMS = 10
"""How many new programs on an ``.envrc``'s ``PATH`` folder the run names (the rest are
counted)."""


class Watch:
    """Everything looked at before a run and made safe after it, in one place: the watched
    settings (:func:`snapshot`, :func:`set_aside`), whether the workspace was a git folder
    (:func:`set_aside_git_folder`), the submodules' git folders
    (:func:`airlock.sandbox.repositories.secure_new_modules`), the rebases left with a command
    to run in every git folder the sandbox could write (:func:`_left_to_run`), the agent's MCP
    servers (:func:`airlock.sandbox.agent_state.keep_servers`) and other agents' configuration
    (:func:`airlock.sandbox.agent_state.keep_file`)."""

    def __init__(
        self,
        workspace: Path,
        home: Path,
        config_dir: Path,
        agent_state: Iterable[Path] = (),
        scan: WorkspaceScan | None = None,
        links: Mapping[Path, str] = MappingProxyType({}),
        hooks_folder: Path | None = None,
        roots: Iterable[Path] = (),
        cwd: Path | None = None,
        codex: Path | None = None,
        agent_files: Iterable[Path] | None = None,
    ) -> None:
        """``scan``: the workspace's walk made at the run's start with the names of
        :data:`WATCHED` (:func:`airlock.sandbox.repositories.scan_workspace`), else one is
        made now. ``links``: the symbolic links on the way to the protected paths, and what
        each points at (:func:`airlock.sandbox.paths.links_on_the_way`), put back after.
        ``hooks_folder``: a ``core.hooksPath`` that is the workspace or holds it
        (:func:`airlock.sandbox.repositories.hooks_folder_holding`): a hook's file made or
        changed there is set aside after the run. ``roots``: the other folders opened for
        writing (``--rw``, ``allowWrite``), outside the workspace: the settings written in
        them are set aside too (a skill in ``~/other/.claude/skills``, an ``.mcp.json``).
        ``codex``: the folder ``CODEX_HOME`` names, when not ``~/.codex``
        (:func:`airlock.sandbox.paths.codex_folder`): its configuration is put back and its
        skills and prompts looked at, as ``~/.codex``'s. ``agent_files``: the agent's state
        files (:func:`airlock.sandbox.agent_state.state_files`, by default for ``config_dir``
        not named by ``CLAUDE_CONFIG_DIR``)."""
        self.workspace = workspace
        self.linked = note_linked(workspace)
        """Before the command runs: the time, and the root index's submodules."""
        self.skip = tuple(agent_skip(workspace, agent_state))
        """The agents' own state in the workspace (writable by design; a workspace may hold
        the home): not walked."""
        scan = scan or scan_workspace(workspace, WATCHED, skip=self.skip)
        self.settings = snapshot(workspace, skip=self.skip, scan=scan)
        self.nested = frozenset(scan.nested.found)
        self.bare = {
            head.parent: _git_folder_signature(head.parent)
            for head in scan.heads
            if looks_like_git_folder(head.parent)
        }
        """The subfolders that were git folders themselves before the run (bare repositories),
        and what made them so, as it was."""
        self.modules = module_folders(workspace)
        self.was_git_folder = looks_like_git_folder(workspace)
        files = state_files(home, config_dir) if agent_files is None else agent_files
        self.state = {path: _before(path) for path in files}
        self.home = home
        self.staged: Path | None = None
        """Where the agent inside keeps the state of ``~/.claude.json``, when it is moved
        there for the run (:func:`airlock.sandbox.agent_state.staging`): carried back after."""
        self.configs = {path: _before(path) for path in home_paths(CONFIG_FILES, home, codex)}
        self.links = note_links(links)
        self.on_path = PathFolders(path_folders(scan.envrcs, home)) if scan.envrcs else None
        """The programs in the folders the workspace's ``.envrc`` files put on ``PATH``."""
        hooks = [hooks_folder / name for name in HOOK_NAMES] if hooks_folder else []
        self.hooks = {path: _signature(path) for path in hooks}
        self.hooks_within = resolve(hooks_folder) if hooks_folder else workspace
        self.managers = {
            path: _signature(path)
            for dot_git in sorted(self.nested)
            for path in (dot_git.parent / name for name in HOOK_MANAGER_FILES)
        }
        """The git hook managers' files in each nested repository's work tree, as they were:
        read-only inside when there (:func:`~airlock.sandbox.repositories.hook_manager_rules`);
        one made during the run is set aside after it, as at the root (:data:`ROOT_WATCHED`)."""
        self.agent_folders = AgentFolders(
            tuple(dict.fromkeys(map(resolve, (config_dir, home / ".claude")))),
            home,
            own_projects(workspace, cwd),
            codex,
        )
        self.agent_notes = self.agent_folders.notes([])
        """What the agents read at the start of every session and code inside could leave
        (:class:`AgentFolders`), as it was."""
        self.roots: dict[Path, tuple[tuple[Path, ...], Snapshot, tuple[int, int] | None]] = {}
        """Each other folder opened for writing, the folders not walked in it (the agents'
        state, the workspace), its settings before the run, and its device and inode (a
        folder put at its path since is not it)."""
        for root in roots:
            skipped = (*agent_skip(root, agent_state), workspace)
            self.roots[root] = (skipped, snapshot(root, skip=skipped), folder_identity(root))
        self.todos = {
            path: _signature(path) for path in todo_paths(todo_folders(self._git_entries(), []))
        }
        """The lists of commands a rebase or a cherry-pick in progress goes on with, in every
        git folder the sandbox could write (:meth:`_git_entries`), as they were
        (:func:`_left_to_run`)."""

    def _other_memory(self, destination: Path) -> list[str]:
        """Set aside what changed since the start in the agent's memory of other projects
        and in other agents' skills and prompts (:class:`AgentFolders`: every later session
        reads them, and would follow instructions written there from inside); what was done,
        in lines."""
        unseen: list[str] = []
        now = self.agent_folders.notes(unseen)
        before = self.agent_notes
        folders = set(self.agent_folders.folders())
        moved: list[SetAside] = []
        for path in sorted(now, key=lambda path: len(path.parts)):
            if before.get(path) == now[path] or any(item.path in path.parents for item in moved):
                continue
            if stat.S_ISDIR(now[path][0]) and (
                path in before or path.parent.name == "projects" or path in folders
            ):
                continue  # a folder that was there, a project's, or a watched one: its content
            moved.append(
                move_aside(path, destination / "agents" / path.relative_to("/"), path.parent)
            )
        lines = [f"airlock: not checked after the run ({shown(what)})" for what in unseen[:3]]
        gone = [item for item in moved if item.moved_to != item.path]
        stuck = [item for item in moved if item.moved_to == item.path]
        if gone:
            listed = "\n".join(f"  {shown(item.path)} → {shown(item.moved_to)}" for item in gone)
            lines.append(
                "airlock: the agent's memory of other projects, or other agents' skills or "
                "prompts, changed during the run (inside it, or by a session outside "
                "meanwhile); every later session would read them, so they were set aside; "
                f"move back what you mean to keep:\n{listed}"
            )
        for item in stuck:
            lines.append(
                f"airlock: {shown(item.path)} changed during the run and could not be moved "
                "aside: every later session would read it; check it yourself"
            )
        return lines

    @staticmethod
    def _in_root(
        root: Path,
        skipped: tuple[Path, ...],
        before: Snapshot,
        destination: Path,
        read_only: Mapping[Path, bool],
        moved: list[SetAside],
        lines: list[str],
    ) -> None:
        """Set aside the settings written in ``root``, another folder opened for writing
        (under ``destination``'s ``opened/``, at its path from ``/``)."""
        aside = destination / "opened" / root.relative_to(root.anchor)
        found, unseen = set_aside(root, before, aside, read_only, skipped)
        moved.extend(found)
        lines.extend(_not_checked(unseen))

    def after(self, destination: Path, read_only: Mapping[Path, bool]) -> list[str]:
        """Make safe what the run wrote (what is set aside goes under ``destination``); what
        was done, a message per line (none when the run wrote nothing of the kind). Each step
        runs whatever the others did: one that fails, or is interrupted, says so, and the rest
        still run. ``read_only``: the sandbox's path rules (:func:`set_aside`)."""
        lines: list[str] = []
        moved: list[SetAside] = []
        step = partial(each_step, lines)

        looked: list[Snapshot] = []  # the walk after the run, made once for two steps
        unseen: list[str] = []  # what that walk's bounds kept it from
        walked: list[list[Path]] = []  # the walk of every folder after it

        def settings() -> None:
            looked.append(snapshot(self.workspace, skip=self.skip))
            found, cut = set_aside(
                self.workspace, self.settings, destination, read_only, self.skip, looked[0]
            )
            moved.extend(found)
            unseen.extend(cut)

        def beyond() -> None:  # what the walk after the run left: past its depth, …
            left = looked[0].left if looked else None
            start = [self.workspace] if left is None else left
            found, cut = walk_all(self.workspace, start, WATCHED | {".git", ".hg"}, self.skip)
            walked.append(found)
            moved.extend(self._settings_beyond(found, looked, destination, read_only, lines))
            covered = looked[0].covered if looked and not cut else ()
            lines.extend(_not_checked([*(u for u in unseen if u not in covered), *cut]))

        step("look for settings written inside", settings)
        step("look for settings written inside beyond the walk's bounds", beyond)
        if unseen and not walked:  # the walk of every folder failed: the bounds are all
            lines.extend(_not_checked(unseen))
        for root, (skipped, seen, identity) in self.roots.items():
            if folder_identity(root) != identity:
                lines.append(
                    f"airlock: {shown(root)} is gone or another folder now: not looked at "
                    "after the run; check it before you start an agent or editor there"
                )
                continue
            step(
                f"look for settings written inside in {shown(root)}",
                partial(self._in_root, root, skipped, seen, destination, read_only, moved, lines),
            )
        step(
            "look for a git folder made of the workspace",
            lambda: moved.extend(
                set_aside_git_folder(self.workspace, self.was_git_folder, destination)
            ),
        )
        step(
            "look for git folders made of subfolders",
            lambda: moved.extend(self._bare_folders(destination, looked)),
        )
        step(
            "look for links made in the git folders",
            lambda: lines.extend(self._planted_links(destination, looked)),
        )
        step(
            "look for hooks written in core.hooksPath",
            lambda: moved.extend(
                move_aside(path, destination / "hooks" / path.name, self.hooks_within)
                for path, signature in self.hooks.items()
                if _signature(path) not in (None, signature)
            ),
        )
        step(
            "look for git hook managers' files written in nested repositories",
            lambda: moved.extend(self._hook_managers(destination, read_only)),
        )
        step(
            "look for programs made in the folders an .envrc puts on PATH",
            lambda: lines.extend(self._shadowing(destination, read_only)),
        )
        step(
            "look for commands a rebase in progress would run",
            lambda: moved.extend(self._rebases(destination, read_only, looked, walked, lines)),
        )
        step(
            "look for memory written for other projects",
            lambda: lines.extend(self._other_memory(destination)),
        )
        if moved:
            lines.insert(0, set_aside_message(moved))
        step(
            "put back the links on the way to the protected paths",
            lambda: lines.extend(put_back_links(self.links, destination / "links")),
        )
        step(
            "make the repositories made in subfolders safe",
            lambda: lines.extend(
                f"airlock: {done}"
                for done in secure_new_repositories(
                    self.workspace,
                    self.nested,
                    self.skip,
                    looked[0].nested if looked else None,
                    read_only,
                    self.linked.since,
                )
            ),
        )
        linked_made_safe: set[Path] = set()  # by the submodules' step: not again beyond
        step(
            "make safe the repositories the indexes name as submodules",
            lambda: lines.extend(
                f"airlock: {done}"
                for done in secure_linked_repositories(
                    self.workspace,
                    self._nested(looked),
                    self.linked,
                    read_only,
                    linked_made_safe,
                )
            ),
        )
        step(
            "make safe the repositories changed beyond the walk's bounds",
            lambda: lines.extend(
                f"airlock: {done}"
                for done in secure_repositories_beyond(
                    self.workspace,
                    [path for path in (walked[0] if walked else ()) if path.name == ".git"],
                    self._nested(looked),
                    self.linked.since,
                    read_only,
                    linked_made_safe,
                )
            ),
        )
        step(
            "make the submodules' new git folders safe",
            lambda: lines.extend(
                f"airlock: {done}" for done in secure_new_modules(self.workspace, self.modules)
            ),
        )
        lines.extend(self.agents_state(destination, read_only))
        return lines

    def agents_state(
        self, destination: Path, read_only: Mapping[Path, bool] = MappingProxyType({})
    ) -> list[str]:
        """Make safe the agents' state and configuration in the home (the part of
        :meth:`after` that does not need the workspace, done also when it is gone): carry
        the agent's state back, put back its MCP servers, trust and approvals and other
        agents' configuration; what was done, a line each. ``read_only``: the sandbox's path
        rules (none given: every file is looked at); a file code inside could not write
        (``~/.claude.json`` when the agent kept its state elsewhere, ``~/.codex/config.toml``
        when there was no ``~/.codex``) changed during the run only by the user's own hand,
        outside, and is left as it is."""
        lines: list[str] = []
        step = partial(each_step, lines)
        carried = None
        if self.staged is not None:  # first: what it says runs is then put back as it was
            carried = self.home / STATE_FILE
            step(
                f"carry the agent's state back to {shown(carried)}",
                partial(self._carry_back, lines, self.staged, destination / "agent-state"),
            )
        for number, (path, before) in enumerate(self.state.items()):
            if path != carried and _written_outside_only(path, read_only):
                continue
            aside = destination / f"{path.name}.{number}"
            step(
                f"check the MCP servers of {shown(path)}",
                partial(_keep, lines, keep_servers, path, before, aside),
            )
        for path, before in self.configs.items():
            if _written_outside_only(path, read_only):
                continue
            aside = destination / path.parent.name / path.name
            step(f"check {shown(path)}", partial(_keep, lines, keep_file, path, before, aside))
        return lines

    def _carry_back(self, lines: list[str], staged: Path, aside: Path) -> None:
        """The agent's state from inside into ``~/.claude.json``
        (:func:`airlock.sandbox.agent_state.carry_back`), before the run's file is checked:
        its MCP servers, trust and approvals then come back as they were, or as the agent
        outside saved them meanwhile."""
        state = self.home / STATE_FILE
        before, signature = self.state[state]
        done, guarded_as = carry_back(self.home, staged, before, aside)
        self.state[state] = (guarded_as, signature)  # what keep_servers puts back, next
        if done is not None:
            lines.append(f"airlock: {shown(done)}")

    def _shadowing(self, destination: Path, read_only: Mapping[Path, bool]) -> list[str]:
        """Move aside each program made or changed during the run in a folder an ``.envrc``
        puts on ``PATH`` whose name is a command found elsewhere on ``PATH``
        (:class:`airlock.sandbox.direnv.PathFolders`); what was done, a line each."""
        if self.on_path is None:
            return []
        lines = []
        new: dict[Path, list[str]] = {}
        for path, command in self.on_path.changed(os.environ.get("PATH", "")):
            if read_only_at(path, read_only):
                continue  # written from outside: the user's own
            if command is None:
                new.setdefault(path.parent, []).append(path.name)
                continue
            target = destination / "on-path" / path.relative_to(path.anchor)
            moved = move_aside(path, target, Path(os.path.realpath(path.parent)))
            where = _where(moved, "remove it before you enter the folder")
            lines.append(
                f"airlock: {shown(path)}: made or changed during the run in a folder an .envrc "
                f"puts on PATH, where it would run in place of {shown(command)}; {where}"
            )
        for folder, names in new.items():
            listed = ", ".join(sorted(names)[:NAMED_PROGRAMS])
            more = f" and {len(names) - NAMED_PROGRAMS} more" if len(names) > NAMED_PROGRAMS else ""
            lines.append(
                f"airlock: {shown(folder)}: {len(names)} program(s) made or changed during the "
                f"run in a folder an .envrc puts on PATH ({listed}{more}); each runs when its "
                "name is typed there: review them if you did not expect them"
            )
        return lines

    def _settings_beyond(
        self,
        found: list[Path],
        looked: list[Snapshot],
        destination: Path,
        read_only: Mapping[Path, bool],
        lines: list[str],
    ) -> list[SetAside]:
        """The watched entries the bounded looks before and after the run did not reach
        (``found`` by the walk of every folder: deeper, past the bounds), and the
        :data:`~airlock.sandbox.mercurial.HG_FILES` of the ``.hg`` folders among them: each
        file or link of theirs changed during the run (a change time at or after its start,
        which no program sets back) set aside, as :func:`set_aside` does with those in reach,
        unless a read-only rule held it (a change from outside). Not in the folders package
        managers fill (:data:`~airlock.sandbox.repositories.NOT_SCANNED`), unless reached
        through a link from elsewhere: no agent or editor starts there, and packages installed
        in the run bring such files with them. At most
        :data:`~airlock.sandbox.repositories.BEYOND_SECONDS` long; what was not looked at
        then is said."""
        noted = set(self.settings.entries)
        if looked:
            noted |= set(looked[0].entries)
        deadline = time.monotonic() + BEYOND_SECONDS
        moved = []
        for number, entry in enumerate(found):
            if time.monotonic() > deadline:
                lines.extend(_not_checked([f"{len(found) - number} settings past the bounds"]))
                break
            if entry.name == ".hg":
                watched = [entry / name for name in HG_FILES]
            elif entry.name in WATCHED:
                watched = [entry]
            else:
                continue
            if not NOT_SCANNED.isdisjoint(entry.relative_to(self.workspace).parts):
                continue
            for path in watched:
                if path in noted:
                    continue
                changed, complete = changed_under(path, self.linked.since)
                for each in changed:
                    if not read_only_at(each, read_only):
                        where = destination / each.relative_to(self.workspace)
                        moved.append(move_aside(each, where, Path(os.path.realpath(each.parent))))
                if not complete:
                    lines.append(
                        f"airlock: {shown(path)} holds more than {CHANGED_ENTRIES} entries: "
                        "those changed in the run were looked for in the first ones only; "
                        "check it before you start an agent or editor there"
                    )
        return moved

    def _nested(self, looked: list[Snapshot]) -> set[Path]:
        """The nested repositories' ``.git`` entries: those at the run's start, and those the
        walk after it found (``looked``, when it was made)."""
        nested = set(self.nested)
        if looked and looked[0].nested is not None:
            nested |= set(looked[0].nested.found)
        return nested

    def _git_entries(
        self, looked: list[Snapshot] | None = None, beyond: Iterable[Path] = ()
    ) -> list[Path]:
        """The ``.git`` entries, or git folders, whose rebases :meth:`after` looks at
        (:func:`todo_folders`), the workspace's first: the workspace's ``.git`` (or the
        workspace itself when a git folder, or the ``.git`` of the repository it is in, further
        up), those of the other folders opened for writing (or
        the folder itself when a git folder: ``--rw main/.git`` to commit in a worktree), the
        subfolders that were git folders themselves, the nested repositories' (those at the
        start, and those the walk after the run found, ``looked``) and those ``beyond`` the
        walk's bounds."""
        roots = [
            path
            for root in self.roots
            for path in (root / ".git", root)
            if path != root or looks_like_git_folder(root)
        ]
        return [
            self.workspace / ".git",
            *([self.workspace] if self.was_git_folder else []),  # a bare one's worktrees
            *enclosing_git(self.workspace),
            *roots,
            *self.bare,
            *sorted(self._nested(looked or [])),
            *beyond,
        ]

    def _hook_managers(self, destination: Path, read_only: Mapping[Path, bool]) -> list[SetAside]:
        """Move aside each git hook manager's file made or changed during the run in a nested
        repository's work tree (:attr:`managers`) where the sandbox could write, at its path
        under ``destination``: the hooks installed there run what it says at the user's next
        ``git commit``. One whose folder leads out of the workspace now is only named."""
        rules = read_only or {self.workspace: False}  # none given: the workspace is writable
        inside = resolve(self.workspace)
        moved = []
        for path, signature in self.managers.items():
            now = _signature(path)
            if now is None or now == signature or read_only_at(path, rules):
                continue
            folder = resolve(path.parent)
            if not folder.is_relative_to(inside):
                moved.append(SetAside(path, path))
                continue
            moved.append(move_aside(path, destination / path.relative_to(self.workspace), folder))
        return moved

    def _rebases(
        self,
        destination: Path,
        read_only: Mapping[Path, bool],
        looked: list[Snapshot],
        walked: list[list[Path]],
        lines: list[str],
    ) -> list[SetAside]:
        """Move aside each rebase or cherry-pick in progress that the run left with a command
        to run (:func:`_left_to_run`) in a git folder the sandbox could write (``read_only``:
        its rules): the workspace's own under ``destination``'s ``git/``, another's in the
        workspace at its path there, one elsewhere under ``git/opened/`` at its path from
        ``/``. ``looked``, ``walked``: the walks after the run (:meth:`after`), for the
        repositories made in it or past the bounds; what they could not look at, in
        ``lines``."""
        cut: list[str] = []
        beyond = [path for path in (walked[0] if walked else ()) if path.name == ".git"]
        found = todo_paths(todo_folders(self._git_entries(looked, beyond), cut))
        lines.extend(_not_checked(cut[:3]))
        rules = read_only or {self.workspace: False}  # none given: the workspace is writable
        own = git_folder_of(self.workspace / ".git")
        workspace = resolve(self.workspace)
        moved = []
        states = dict.fromkeys(
            path.parent for path in _left_to_run(self.todos, found, self.linked.since)
        )
        for state in states:
            if read_only_at(state, rules):
                continue  # written from outside: the user's own rebase
            git_folder = state.parent
            if git_folder == own:
                aside = destination / "git"
            elif git_folder.is_relative_to(workspace):
                aside = destination / "git" / git_folder.relative_to(workspace)
            else:
                aside = destination / "git" / "opened" / git_folder.relative_to(git_folder.anchor)
            moved.append(move_aside(state, aside / state.name, git_folder))
        return moved

    def _bare_folders(self, destination: Path, looked: list[Snapshot]) -> list[SetAside]:
        """A subfolder that became a git folder itself during the run, or one whose ``HEAD``,
        ``commondir`` or config the run changed (a ``HEAD`` with ``objects`` and ``refs``: git
        takes it for a bare repository, and runs its config's ``core.fsmonitor`` for whoever
        uses git there): its :data:`GIT_FOLDER_FILES` set aside, as the workspace's own would
        be. One a nested repository's ``.git`` names is made safe by that step instead."""
        served = set(
            repository_folders(self._nested(looked))
        )  # a .git file names them: made safe later
        moved: list[SetAside] = []
        for head in looked[0].heads if looked else ():
            folder = head.parent
            if not looks_like_git_folder(folder) or Path(os.path.realpath(folder)) in served:
                continue
            if self.bare.get(folder) == _git_folder_signature(folder):
                continue  # there before the run, as it was: the user's
            relative = folder.relative_to(self.workspace)
            real = Path(os.path.realpath(folder))
            for name in GIT_FOLDER_FILES:
                if os.path.lexists(folder / name):
                    moved.append(move_aside(folder / name, destination / relative / name, real))
        return moved

    def _planted_links(self, destination: Path, looked: list[Snapshot]) -> list[str]:
        """Move aside each link made in a git folder during the run (see
        :func:`airlock.sandbox.repositories.planted_links`); what was done, a line each."""
        planted, complete = planted_links(
            self.workspace, sorted(self._nested(looked)), self.linked.since
        )
        lines = []
        for path in planted:
            try:
                target = str(path.readlink())
            except OSError:
                target = "?"
            folder = Path(os.path.realpath(path.parent))
            moved = move_aside(path, destination / "git-links" / path.name, folder)
            where = _where(moved, "remove it before you use git there")
            lines.append(
                f"airlock: {shown(path)}: a link (to {shown(target)}) made in a git folder "
                f"during the run, where git writes through links (the reflog, the commit "
                f"message), {where}"
            )
        if not complete:
            lines.append(
                f"airlock: the git folders hold more than {GIT_FOLDER_ENTRIES} entries: links "
                "made in them during the run were looked for in the first ones only (find "
                "them with: find .git -type l -newer .git/HEAD)"
            )
        return lines


MEMORY_PROJECTS = 2_000
"""The most projects whose memory :class:`AgentFolders` looks at, in each config dir."""
PROJECT_ENTRIES = 20_000
"""The most entries of a config dir's ``projects/`` read for them (files among them too)."""
AGENT_FOLDERS = (".codex/skills", ".codex/prompts")
"""Other agents' folders in the home read at the start of every session (Codex's skills and
custom prompts): writable with their state, looked at after the run."""
AGENTS_OWN = ".codex/skills/.system"
"""Written by Codex itself at its start (its bundled skills): not looked at."""


def own_projects(workspace: Path, cwd: Path | None = None) -> frozenset[str]:
    """The ``projects/`` folder names of the run's own (the workspace's, the folder the
    command starts in): their memory is the agent's to write."""
    return frozenset(project_name(str(folder)) for folder in (workspace, cwd) if folder)


class AgentFolders(NamedTuple):
    """What the agents read at the start of every later session and code inside could
    write: in each config dir, each other project's folder entry (a link put there leads to
    another folder) and its ``memory/``; other agents' skills and prompts
    (:data:`AGENT_FOLDERS`). Bounded: :data:`MEMORY_PROJECTS` projects of
    :data:`PROJECT_ENTRIES` entries a config dir, :data:`NOTED_IN_ALL` entries in all."""

    config_dirs: tuple[Path, ...]
    home: Path
    own: frozenset[str]
    codex: Path | None = None
    """The folder ``CODEX_HOME`` names, when not ``~/.codex``: its skills and prompts too."""

    def folders(self) -> list[Path]:
        """Other agents' folders looked at (:data:`AGENT_FOLDERS`, and in the folder
        ``CODEX_HOME`` names)."""
        return home_paths(AGENT_FOLDERS, self.home, self.codex)

    def notes(self, unseen: list[str]) -> dict[Path, Signature]:
        """Each watched entry and its signature; what the bounds kept out, in ``unseen``."""
        entries: dict[Path, Signature] = {}
        left = [NOTED_IN_ALL]
        for config_dir in self.config_dirs:
            projects = 0
            for entry in listing(config_dir / "projects", PROJECT_ENTRIES, unseen):
                if _is_own(entry.name, self.own):
                    continue
                path = Path(entry.path)
                signature = _signature(path)
                if signature is None or not (
                    stat.S_ISDIR(signature[0]) or stat.S_ISLNK(signature[0])
                ):
                    continue
                projects += 1
                if projects > MEMORY_PROJECTS:
                    unseen.append(f"projects past the first {MEMORY_PROJECTS} in {config_dir}")
                    break
                entries[path] = signature
                if stat.S_ISDIR(signature[0]):
                    _note(path / "memory", entries, unseen, left=left)
        owns = home_paths([AGENTS_OWN], self.home, self.codex)
        for folder in self.folders():
            _note(folder, entries, unseen, left=left)
        return {
            path: found
            for path, found in entries.items()
            if not any(path.is_relative_to(own) for own in owns)
        }


def _is_own(name: str, own: frozenset[str]) -> bool:
    """Whether a ``projects/`` folder name is one of the run's own: the same, or, for a
    name past 200 characters, cut there as the reference agent cuts it before its hash."""
    return any(
        name == mine or (len(mine) > 200 and name.startswith(mine[:200] + "-")) for mine in own
    )


CHANGED_ENTRIES = 2_000
"""How many entries under one watched folder :func:`changed_under` looks at."""


def changed_under(entry: Path, since: float) -> tuple[list[Path], bool]:
    """``entry`` when it is a file or a link changed at or after ``since`` (less
    :data:`~airlock.sandbox.repositories.CHANGED_SLACK`); for a folder, each file or link
    under it so changed, no link followed, :data:`CHANGED_ENTRIES` entries looked at at
    most; and whether every entry was."""
    after = since - CHANGED_SLACK
    try:
        found = entry.lstat()
    except OSError:
        return [], True
    if not stat.S_ISDIR(found.st_mode):
        return ([entry] if found.st_ctime >= after else []), True
    changed: list[Path] = []
    folders = [entry]
    looked = 0
    while folders:
        cut: list[str] = []
        for child in listing(folders.pop(), CHANGED_ENTRIES - looked + 1, cut):
            looked += 1
            if looked > CHANGED_ENTRIES:
                return changed, False
            if child.is_dir(follow_symlinks=False):
                folders.append(Path(child.path))
                continue
            with contextlib.suppress(OSError):
                if child.stat(follow_symlinks=False).st_ctime >= after:
                    changed.append(Path(child.path))
        if cut and looked <= CHANGED_ENTRIES:
            return changed, False  # a folder that cannot be read
    return changed, True


def _not_checked(unseen: Iterable[str]) -> list[str]:
    """What a look after the run could not see, a line each, for the user to look at."""
    return [
        f"airlock: not checked after the run ({shown(what)}): look there for .claude, "
        ".vscode, .mcp.json, .git and the like before you start an agent, an editor or git "
        "there"
        for what in unseen
    ]


def each_step(lines: list[str], what: str, action: Callable[[], object]) -> object:
    """Run one step of making safe after a run, whatever the steps before it did: what it
    returns, or ``None`` when it failed or was interrupted (Ctrl-C while a slow one runs),
    which ``lines`` then says, so that the steps after it still run."""
    try:
        return action()
    except KeyboardInterrupt:
        lines.append(f"airlock: interrupted, did not {what}: check it yourself")
    except Exception as error:
        lines.append(f"airlock: could not {what} ({error!r}): check it yourself")
    return None


def _written_outside_only(path: Path, read_only: Mapping[Path, bool]) -> bool:
    """Whether the sandbox's rules (``read_only``; none given: not known) kept code inside
    from writing at ``path``: its folder's real path, and its own name there (never what it
    names now: a link put there inside would lead anywhere)."""
    return bool(read_only) and read_only_at(resolve(path.parent) / path.name, read_only)


def _before(path: Path) -> tuple[bytes | None, Signature | None]:
    """A state file's bytes and its entry's signature, before the run."""
    return read(path), _signature(path)


def _keep(
    lines: list[str],
    keep: Callable[[Path, bytes | None, Path], str | None],
    path: Path,
    before: tuple[bytes | None, Signature | None],
    aside: Path,
) -> None:
    """Run ``keep`` on ``path`` unless its entry is as it was (the same signature, the change
    time included: a FIFO or a link there before the run is the user's own)."""
    text, signature = before
    if _signature(path) == signature:
        return
    done = keep(path, text, aside)
    if done is not None:
        lines.append(f"airlock: {shown(done)}")
        if signature is not None and stat.S_ISREG(signature[0]):
            chmod_regular(path, stat.S_IMODE(signature[0]))  # put back with its own mode too
