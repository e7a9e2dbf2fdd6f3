"""Mercurial repositories in the workspace: what ``hg`` would run outside later, read-only inside.

Theory of operation
-------------------
Mercurial runs what a repository's config says (``[hooks]``, ``[extensions]`` loaded from a
path, shell aliases) for any ``hg`` command in its work tree, a shell prompt's included. The
config is ``.hg/hgrc``, and ``.hg/hgrc-not-shared`` in a share-safe repository; a repository
whose ``.hg/sharedpath`` names another one reads that one's config too; ``%include`` lines
pull in other files.

* **Repositories there at the start.** The walk of the workspace at the run's start
  (:func:`airlock.sandbox.repositories.scan_workspace`) notes every ``.hg`` folder, the root's
  and nested ones alike, and does not enter them (a store holds thousands of folders).
  :func:`hg_rules` makes their :data:`CONFIG_FILES` read-only inside, missing ones too (an
  empty file stands there: Mercurial reads it as an empty config), an existing
  ``sharedpath`` and the config of the repository it names (wherever it is: read-only with
  the rest of the system, but not under a ``--rw`` given to commit there), and the files their ``%include`` lines name (missing ones too: Mercurial
  passes over a missing one, which code inside could otherwise make).
* **Made or changed during the run.** The same walk after the run notes :data:`HG_FILES` of
  every ``.hg`` folder, and what is new or changed where no read-only rule stood (a
  repository made inside, a ``sharedpath`` added) is set aside with the other settings
  written inside (:mod:`airlock.sandbox.written`).
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from airlock.errors import SandboxError
from airlock.sandbox.files import read_text_or_none
from airlock.sandbox.paths import Kind, Mount, mount, resolve, sandbox_own_in
from airlock.sandbox.programs import named_paths
from airlock.sandbox.repositories import read_only_file, unmade_on_the_way

CONFIG_FILES: tuple[str, ...] = ("hgrc", "hgrc-not-shared")
"""A repository's own config files, in its ``.hg`` folder."""

HG_FILES: tuple[str, ...] = (*CONFIG_FILES, "sharedpath")
"""What in a ``.hg`` folder makes ``hg`` run code: the config files, and ``sharedpath`` (it
makes Mercurial read the config of the repository it names)."""

PROGRAMS = 50
"""How many files the hooks and extensions of one repository name, at most, that
:func:`hg_rules` makes read-only."""

INCLUDES = 50
"""How many files the ``%include`` lines of one repository's config name, at most, that
:func:`hg_rules` protects."""

LIMIT = 256 << 10
"""The size of a config read, at most."""

_INCLUDE = re.compile(r"^%include\s+(.+?)\s*$", re.MULTILINE)


def hg_rules(folders: Iterable[Path], why: str, home: Path) -> Iterator[Mount]:
    """Read-only rules for what Mercurial runs in each repository whose ``.hg`` folder is one
    of ``folders``: its :data:`CONFIG_FILES` (missing or not), its ``sharedpath`` when there
    and the config of the repository it names (:func:`shared_source`), the files the configs
    include (:func:`included`), and the programs their hooks and extensions name
    (:func:`programs`)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        configs = [folder / name for name in CONFIG_FILES]
        if os.path.lexists(folder / "sharedpath"):
            yield mount(Kind.READ, folder / "sharedpath", why)
            source = shared_source(folder)
            named = shared_named(folder)
            if named is not None:
                yield from unmade_on_the_way(
                    named, f"{why}: on the way to the repository a sharedpath names"
                )
            if source is not None:  # a share reads its source's config (share-safe)
                configs.append(source / "hgrc")
            elif named is not None and not os.path.lexists(resolve(named)):
                yield mount(Kind.READ, named, f"{why}: the repository a sharedpath names")
        for config in configs:
            yield read_only_file(config, why)
        more = included(configs)
        for path in more:
            try:
                yield read_only_file(path, why)
            except SandboxError:  # a folder holding the sandbox's own: nothing to bind
                continue
        for path in programs([*configs, *more], folder.parent, home)[:PROGRAMS]:
            try:
                yield mount(Kind.READ, path, why)
            except SandboxError:
                continue


def programs(configs: Iterable[Path], root: Path, home: Path) -> list[Path]:
    """The files the ``[hooks]`` and ``[extensions]`` of ``configs`` name, in the repository
    at ``root`` (where hooks run): a hook's command line's programs and scripts
    (:func:`airlock.sandbox.programs.named_paths`), a ``python:FILE:function`` hook's file, an
    extension's file."""
    lines: list[str] = []
    files: list[Path] = []
    for config in configs:
        for section, value in _entries(read_text_or_none(config, LIMIT) or ""):
            if section == "hooks" and value.startswith("python:"):
                files.append(root / Path(value[len("python:") :].rpartition(":")[0]).expanduser())
            elif section == "hooks":
                lines.append(value)
            elif section == "extensions" and value and not value.startswith("!"):
                files.append(root / Path(os.path.expandvars(value)).expanduser())
    named = [path for path in files if path.is_file()]
    return list(dict.fromkeys([*named, *named_paths(lines, home, root)]))


def _entries(text: str) -> Iterator[tuple[str, str]]:
    """Each ``(section, value)`` of a Mercurial config (continuation lines joined)."""
    section, value = "", None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and value is not None:
            value += " " + line.strip()
            continue
        if value is not None:
            yield section, value
            value = None
        stripped = line.strip()
        if not stripped or stripped[0] in "#;%":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif "=" in stripped:
            value = stripped.partition("=")[2].strip()
    if value is not None:
        yield section, value


def shared_source(folder: Path) -> Path | None:
    """The ``.hg`` folder of the repository a share's ``sharedpath`` names (relative to the
    share's ``.hg``), when it is one; ``None`` otherwise."""
    source = shared_named(folder)
    if source is None:
        return None
    return source if source.is_dir() and not sandbox_own_in(resolve(source)) else None


def shared_named(folder: Path) -> Path | None:
    """What a share's ``sharedpath`` names, as written, whether it is there or not; ``None``
    when it names nothing. One that is missing has an empty read-only folder standing there
    where code inside could make it (:func:`hg_rules`): made inside, with an ``hgrc`` of its
    own (``[hooks]``), the user's next ``hg status`` in the share would run it outside."""
    text = read_text_or_none(folder / "sharedpath")
    if not text or not text.strip():
        return None
    return folder / text.strip()


def included(configs: Iterable[Path]) -> list[Path]:
    """The files that ``configs`` name in ``%include`` lines, and those name in turn (each
    relative to the folder of the file that names it, ``~`` and variables expanded, as
    Mercurial reads them), at most :data:`INCLUDES`, each as named (a rule on it stands on
    what the links on the way name, and they are put back after the run); those in ``/proc``
    and ``/dev`` left out (the sandbox's own, nothing of the host's)."""
    queue = deque(configs)
    found: dict[Path, Path] = {}  # what each names, resolved: as named (links are put back)
    while queue and len(found) < INCLUDES:
        config = queue.popleft()
        text = read_text_or_none(config, LIMIT)
        if text is None or "%include" not in text:
            continue
        for value in _INCLUDE.findall(text):
            path = Path(os.path.expandvars(value)).expanduser()
            path = config.parent / path  # an absolute one stays as it is
            real = resolve(path)
            if real in found or real.is_relative_to("/proc") or real.is_relative_to("/dev"):
                continue
            found[real] = path
            queue.append(path)
            if len(found) >= INCLUDES:
                break
    return list(found.values())
