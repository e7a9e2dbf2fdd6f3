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
  ``sharedpath``, and the files their ``%include`` lines name (missing ones too: Mercurial
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
from airlock.sandbox.paths import Kind, Mount, mount, resolve
from airlock.sandbox.repositories import read_only_file

CONFIG_FILES: tuple[str, ...] = ("hgrc", "hgrc-not-shared")
"""A repository's own config files, in its ``.hg`` folder."""

HG_FILES: tuple[str, ...] = (*CONFIG_FILES, "sharedpath")
"""What in a ``.hg`` folder makes ``hg`` run code: the config files, and ``sharedpath`` (it
makes Mercurial read the config of the repository it names)."""

INCLUDES = 50
"""How many files the ``%include`` lines of one repository's config name, at most, that
:func:`hg_rules` protects."""

_INCLUDE = re.compile(r"^%include\s+(.+?)\s*$", re.MULTILINE)


def hg_rules(folders: Iterable[Path], why: str) -> Iterator[Mount]:
    """Read-only rules for what Mercurial runs in each repository whose ``.hg`` folder is one
    of ``folders``: its :data:`CONFIG_FILES` (missing or not), its ``sharedpath`` when there,
    and the files the configs include (:func:`included`)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for name in CONFIG_FILES:
            yield read_only_file(folder / name, why)
        if os.path.lexists(folder / "sharedpath"):
            yield mount(Kind.READ, folder / "sharedpath", why)
        for path in included([folder / name for name in CONFIG_FILES]):
            try:
                yield read_only_file(path, why)
            except SandboxError:  # a folder holding the sandbox's own: nothing to bind
                continue


def included(configs: Iterable[Path]) -> list[Path]:
    """The files that ``configs`` name in ``%include`` lines, and those name in turn (each
    relative to the folder of the file that names it, ``~`` and variables expanded, as
    Mercurial reads them), at most :data:`INCLUDES`; those in ``/proc`` and ``/dev`` left out
    (the sandbox's own, nothing of the host's)."""
    queue = deque(configs)
    found: dict[Path, None] = {}
    while queue and len(found) < INCLUDES:
        config = queue.popleft()
        text = read_text_or_none(config)
        if text is None or "%include" not in text:
            continue
        for value in _INCLUDE.findall(text):
            path = Path(os.path.expandvars(value)).expanduser()
            path = config.parent / path  # an absolute one stays as it is
            real = resolve(path)
            if real in found or real.is_relative_to("/proc") or real.is_relative_to("/dev"):
                continue
            found[real] = None
            queue.append(path)
            if len(found) >= INCLUDES:
                break
    return list(found)
