"""The git config files the sandbox shows, searched for the git gateway's token before a run.

With ``--repo``, git inside reaches the code host through the gateway, which adds the token
outside. A checkout made with the token leaves it in a file code inside can read:
actions/checkout (``persist-credentials``, on by default) writes
``http.https://github.com/.extraheader = AUTHORIZATION: basic <base64 of
x-access-token:TOKEN>``, ``git clone https://TOKEN@github.com/…`` keeps it in the remote's URL,
CI recipes put ``url."https://TOKEN@github.com/".insteadOf`` in ``~/.gitconfig``.
:func:`token_in_git_configs` looks for it, in every form the gateway replaces in answers
(:func:`~airlock.egress.gateway.secret_pattern`), in the files :func:`git_configs` names and
those they include (:func:`~airlock.sandbox.repositories.include_rules`' reader). Each is read
through links, as git reads it, regular files only, :data:`CONFIG_LIMIT` bytes at most; a
larger one, more than :data:`CONFIGS` files, or more than :data:`MODULE_FOLDERS` folders of
submodules cannot be searched whole, and stops the run too (fail closed).
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from airlock.sandbox.files import regular_bytes
from airlock.sandbox.repositories import (
    common_folder,
    enclosing_git,
    git_folder_of,
    included_configs,
    user_configs,
)

CONFIG_LIMIT = 4 << 20
"""The largest git config file searched (one larger stops the run: it cannot be searched whole)."""

CONFIGS = 200
"""The most config files searched, included ones too."""

MODULE_FOLDERS = 2_000
"""The most folders looked through under a git folder's ``modules/`` (submodules' git folders)."""

NOT_MODULES = frozenset({"objects", "refs", "logs", "hooks", "info", "lfs"})
"""Folders of a git folder that hold no submodule's config: not looked through."""

_SECTION = re.compile(rb'^\s*\[\s*([^\]\s"]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]')
_KEY = re.compile(rb"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=|$)")


def git_configs(workspace: Path, environ: Mapping[str, str]) -> list[Path]:
    """The git config files the sandbox shows, includes aside: the repository's (``GIT_DIR``'s,
    the one the workspace is in further up, the workspace's ``.git``; each with its
    ``config.worktree``, a linked worktree's common folder's, and its submodules' under
    ``modules/``), then the user's and the system's: ``GIT_CONFIG_GLOBAL``, ``~/.gitconfig``,
    ``$XDG_CONFIG_HOME/git/config``, ``~/.config/git/config``, ``GIT_CONFIG_SYSTEM``,
    ``/etc/gitconfig``, whatever ``GIT_CONFIG_NOSYSTEM`` says (code inside reads a file
    without git).

    Raises:
        ValueError: a git folder's ``modules/`` holds more than :data:`MODULE_FOLDERS` folders.
    """
    home = Path(environ.get("HOME") or Path.home())
    git_dir = [Path(environ["GIT_DIR"])] if environ.get("GIT_DIR") else []
    configs: list[Path] = []
    for dot_git in (*git_dir, *enclosing_git(workspace), workspace / ".git"):
        git_folder = git_folder_of(dot_git)
        common = common_folder(git_folder) if git_folder is not None else None
        for folder in (git_folder, common):
            if folder is not None:
                for repository in (folder, *_module_folders(folder)):
                    configs += [repository / "config", repository / "config.worktree"]
    loose = {
        name: value
        for name, value in environ.items()
        if name not in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")
    }
    for given in (environ, loose, {}):  # as set, then git's defaults too
        configs += user_configs(home, given)
    return list(dict.fromkeys(configs))


def _module_folders(git_folder: Path) -> Iterator[Path]:
    """The folders under ``git_folder/modules`` (submodules' git folders, nested ones too),
    links not followed, :data:`NOT_MODULES` not entered.

    Raises:
        ValueError: more than :data:`MODULE_FOLDERS` of them.
    """
    for count, (folder, names, _) in enumerate(os.walk(git_folder / "modules"), 1):
        if count > MODULE_FOLDERS:
            raise ValueError(
                f"{git_folder / 'modules'}: more than {MODULE_FOLDERS} folders of submodules, "
                "too many to search for the token"
            )
        names[:] = [name for name in names if name not in NOT_MODULES]
        yield Path(folder)


def token_in_git_configs(
    workspace: Path, environ: Mapping[str, str], holds_token: Callable[[bytes], bool]
) -> list[str]:
    """Where the git config files the sandbox shows (:func:`git_configs`, and what they
    include) hold the token (``holds_token``), each as ``FILE, line N (KEY)`` (the key left
    out when it holds the token itself: a ``url.<URL>.insteadOf``'s), or why a file could not
    be searched; empty when none does."""
    home = Path(environ.get("HOME") or Path.home())
    try:
        queue = deque(git_configs(workspace, environ))
    except ValueError as error:
        return [str(error)]
    found: list[str] = []
    seen: set[Path] = set()
    while queue:
        config = queue.popleft()
        real = Path(os.path.realpath(config))
        if real in seen or real.is_relative_to("/proc") or real.is_relative_to("/dev"):
            continue
        if len(seen) == CONFIGS:
            return [*found, f"{config}: more than {CONFIGS} git config files, too many to search"]
        seen.add(real)
        data = regular_bytes(config, CONFIG_LIMIT + 1)
        if data is None:  # missing, or no regular file: git reads nothing there either
            continue
        if len(data) > CONFIG_LIMIT:
            found.append(f"{config}: larger than {CONFIG_LIMIT >> 20} MB, too large to search")
            continue
        found += [f"{config}, {where}" for where in _holding(data, holds_token)]
        queue.extend(included_configs(config, home))
    return found


def _holding(data: bytes, holds_token: Callable[[bytes], bool]) -> Iterator[str]:
    """``line N (KEY)`` for each line of a git config's ``data`` that holds the token."""
    section = b""
    for number, line in enumerate(data.split(b"\n"), 1):
        header = _SECTION.match(line)
        if header is not None:
            name, sub = header[1].lower(), header[2]
            section = name + b"." + sub.replace(b"\\", b"") if sub is not None else name
        if not holds_token(line):
            continue
        key = _KEY.match(line[header.end() :] if header is not None else line)
        full = section + b"." + key[1].lower() if key is not None and section else b""
        if full and not holds_token(full):
            yield f"line {number} ({full.decode('utf-8', 'replace')})"
        else:
            yield f"line {number}"
