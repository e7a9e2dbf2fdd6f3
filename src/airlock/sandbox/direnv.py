"""What a project's ``.envrc`` makes direnv read besides itself: read-only inside.

Theory of operation
-------------------
direnv runs a folder's ``.envrc`` in the user's shell when they enter the folder, once they
have allowed that content: a changed ``.envrc`` is refused until allowed again (and the
workspace's own is read-only inside, a subfolder's set aside when changed:
:mod:`airlock.sandbox.written`). What an allowed ``.envrc`` reads in turn is not checked by
direnv: a ``.envrc.local`` it sources, the ``.env`` its ``dotenv`` loads (variables such as
``PROMPT_COMMAND`` or ``BASH_ENV`` run code too), the ``shell.nix`` or ``flake.nix`` whose
shell hook ``use nix`` runs. Code inside would write there for the user's shell to run
outside later.

:func:`envrc_rules` reads each ``.envrc`` the workspace's walk met at the run's start (the
root's and the subfolders'), finds the files its commands read (:data:`READERS`, in command
position: at a line's start, after ``;``, ``&&``, ``||``, ``then``, ``do``…) as direnv would
(relative to the ``.envrc``'s folder, ``$HOME`` and ``$PWD`` expanded; an argument with
another variable in it cannot be told and is left), follows those that are scripts in turn,
and makes each read-only inside, missing ones too (an empty file stands there where the
folder exists: direnv's ``_if_exists`` forms read nothing from it).

The folders an ``.envrc`` puts on the user's ``PATH`` (``PATH_add``, ``path_add PATH``,
``load_prefix``, ``layout node`` and ``layout go``: :func:`path_folders`) stay writable: a
build writes there all the time (``node_modules/.bin``). What would run in place of a
command the user types is looked at instead: :class:`PathFolders` notes them before the run,
and after it sets aside each program made or changed there whose name is a command the
user's ``PATH`` finds elsewhere (a ``bin/git``, a ``node_modules/.bin/ls``).

A new program there under a name no command has yet stays (a build makes them), and the run
names it: it runs when the user types its name in that folder. Not covered: what
``source_up`` would find in a folder where there is nothing yet.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from airlock.errors import SandboxError
from airlock.sandbox.files import read_text_or_none
from airlock.sandbox.paths import Mount, resolve
from airlock.sandbox.repositories import read_only_file

READERS = frozenset(
    {
        "PATH_add",
        "path_add",
        "load_prefix",
        "layout",
        "source_env",
        "source_env_if_exists",
        "source",
        ".",
        "dotenv",
        "dotenv_if_exists",
        "use",
        "use_nix",
        "use_flake",
        "source_up",
        "source_up_if_exists",
    }
)
"""direnv's commands (and the shell's) that read a file of the project and run or load it."""

PATH_COMMANDS = frozenset({"PATH_add", "path_add", "load_prefix", "layout"})
"""Of :data:`READERS`, those that put a folder on ``PATH`` rather than read a file."""

PATH_ENTRIES = 5_000
"""How many entries of the folders on ``PATH`` :class:`PathFolders` notes at most, in all."""

COMMAND_POSITION = frozenset({";", "&&", "||", "|", "&", "then", "do", "else", "{", "(", "!"})
"""Tokens after which a word is a command's name."""

FILES = 200
"""How many files the ``.envrc`` files of one run read, at most, that get a rule (the run
says when there are more)."""

LIMIT = 256 << 10
"""The size of a ``.envrc`` (or a script it sources) read, at most."""

_VARIABLE = re.compile(r"\$(\w+|\{\w+\})")


def envrc_rules(envrcs: Iterable[Path], home: Path, why: str) -> tuple[list[Mount], bool]:
    """Read-only rules for the files each of ``envrcs`` reads (:func:`read_by`), and whether
    they read more than :data:`FILES` (the caller says so: those past it have no rule)."""
    found = read_by(envrcs, home)
    rules = []
    for path in found:
        try:
            rules.append(read_only_file(path, why))
        except SandboxError:  # a folder holding the sandbox's own: nothing to bind
            continue
    return rules, len(found) >= FILES


def read_by(envrcs: Iterable[Path], home: Path) -> list[Path]:
    """The files ``envrcs`` read through :data:`READERS`, and those the scripts among them
    read in turn, at most :data:`FILES`: each as named (resolved where it is read), in the
    order found."""
    return [path for path, _ in _read_by(envrcs, home)]


def _read_by(envrcs: Iterable[Path], home: Path) -> list[tuple[Path, bool]]:
    """:func:`read_by`, each with whether it is a script (sourced)."""
    queue = deque(path for path in envrcs if path.is_file())
    seen = {resolve(path) for path in queue}
    found: list[tuple[Path, bool]] = []
    while queue and len(found) < FILES:
        script = queue.popleft()
        text = read_text_or_none(script, LIMIT)
        if text is None:
            continue
        if script.suffix == ".nix":  # Nix source, not a shell script
            reads: Iterable[tuple[Path, bool]] = _nix_imports(text, script.parent)
        else:
            reads = _reads(text, script.parent, home)
        for path, is_script in reads:
            real = resolve(path)
            if real in seen or real.is_relative_to("/proc") or real.is_relative_to("/dev"):
                continue
            seen.add(real)
            found.append((path, is_script))
            if is_script or path.suffix == ".nix":  # what a Nix file imports is read too
                queue.append(path)
            if len(found) >= FILES:
                break
    return found


_NIX_PATH = re.compile(r"(?<![\w.:/-])(\.{1,2}/[\w.+/-]*[\w+-])")
"""A relative path in Nix source (``./nix/shell.nix``, ``../common``)."""


def _nix_imports(text: str, folder: Path) -> list[tuple[Path, bool]]:
    """The files a Nix file names by a relative path (``import ./nix/devshell.nix``, a
    ``shellHook`` read with ``builtins.readFile ./hook.sh``); a folder stands for its
    ``default.nix``. None is a shell script of direnv's: their own imports are followed."""
    found: list[tuple[Path, bool]] = []
    for match in _NIX_PATH.finditer(text):
        path = folder / match.group(1)
        if path.is_dir():
            path = path / "default.nix"
        if path.is_file():
            found.append((path, False))
    return found


def path_folders(envrcs: Iterable[Path], home: Path) -> list[Path]:
    """The folders ``envrcs`` (and the scripts they source, :func:`read_by`) put on ``PATH``:
    ``PATH_add DIR…``, ``path_add PATH DIR…``, ``load_prefix DIR`` (its ``bin`` and
    ``sbin``), ``layout node`` (``node_modules/.bin``) and ``layout go`` (``bin``)."""
    scripts = [path for path in envrcs if path.is_file()]
    scripts += [path for path, is_script in _read_by(scripts, home) if is_script]
    found: dict[Path, None] = {}
    for script in scripts:
        text = read_text_or_none(script, LIMIT)
        if text is not None:
            found.update(dict.fromkeys(_path_folders_of(text, script.parent, home)))
    return list(found)


def _path_folders_of(text: str, folder: Path, home: Path) -> list[Path]:
    """The folders one script in ``folder`` puts on ``PATH``."""
    return [
        path
        for command, words in _commands(text)
        if command in PATH_COMMANDS
        for path in _on_path(command, words, folder, home)
    ]


def _on_path(command: str, words: list[str], folder: Path, home: Path) -> list[Path]:
    if command == "layout":
        kind = words[0] if words else ""
        return {"node": [folder / "node_modules" / ".bin"], "go": [folder / "bin"]}.get(kind, [])
    if command == "path_add":
        if not words or words[0] != "PATH":
            return []
        words = words[1:]
    paths = [_path(word, folder, home) for word in words]
    named = [path for path in paths if path is not None]
    if command == "load_prefix":
        return [prefix / part for prefix in named[:1] for part in ("bin", "sbin")]
    return named


def _reads(text: str, folder: Path, home: Path) -> Iterator[tuple[Path, bool]]:
    """Each file a script in ``folder`` reads, and whether it is a script itself."""
    for command, words in _commands(text):
        if command in PATH_COMMANDS:
            continue
        if command in ("use", "use_nix") and {"-p", "--packages"} & set(words):
            continue  # a shell of packages: no file of the project
        arguments = [word for word in words if not word.startswith("-")]
        given = [_path(argument, folder, home) for argument in arguments]
        paths = [path for path in given if path is not None]
        if len(paths) < len(given):
            continue  # a variable that cannot be told: nothing sure to protect
        if command in ("source_env", "source_env_if_exists"):
            for path in paths[:1]:
                yield (path / ".envrc" if path.is_dir() else path), True
        elif command in ("source", "."):
            yield from ((path, True) for path in paths[:1])
            if arguments and "/" not in arguments[0]:  # the shell looks on PATH first
                for on_path in _path_folders_of(text, folder, home):
                    yield on_path / arguments[0], True
        elif command in ("dotenv", "dotenv_if_exists"):
            yield (paths[0] if paths else folder / ".env"), False
        elif command in ("source_up", "source_up_if_exists"):
            name = arguments[0] if arguments and "/" not in arguments[0] else ".envrc"
            for parent in folder.parents:
                if (parent / name).is_file():
                    yield parent / name, True
                    break
        else:
            yield from _nix(command, arguments, paths, folder)


def _nix(
    command: str, arguments: list[str], paths: list[Path], folder: Path
) -> Iterator[tuple[Path, bool]]:
    """What ``use nix`` and ``use flake`` evaluate (their shell hook runs in the user's
    shell): the files named, else ``shell.nix`` and ``default.nix``; a flake's ``flake.nix``
    and ``flake.lock``, in the folder its reference names (``.#shell``: this one)."""
    kind = command.removeprefix("use_") if command != "use" else (arguments or [""])[0]
    rest = paths[1:] if command == "use" else paths
    words = arguments[1:] if command == "use" else arguments
    if kind == "nix":
        for path in rest or [folder / "shell.nix", folder / "default.nix"]:
            yield path, False
    elif kind == "flake":
        reference = (words[0] if words else ".").split("#")[0] or "."
        if ":" in reference and not reference.startswith("path:"):
            return  # a flake elsewhere (github:…): not the project's
        place = folder / reference.removeprefix("path:")
        yield place / "flake.nix", False
        yield place / "flake.lock", False


def _commands(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each command of :data:`READERS` in ``text`` and its words up to the command's end (a
    line's end, or one of :data:`COMMAND_POSITION`), line by line as the shell reads them: a
    line ending in ``\\`` goes on, and so does a quote left open (up to :data:`LIMIT`)."""
    pending = ""
    for line in text.splitlines():
        pending += line + "\n"
        if line.endswith("\\"):
            pending = pending[:-2]
            continue
        try:
            tokens = _tokens(pending)
        except ValueError:  # a quote still open: the command goes on on the next line
            if len(pending) < LIMIT:
                continue
            tokens = []
        pending = ""
        yield from _readers(tokens)


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}!")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _readers(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    position = True  # a line starts with a command
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if position and token in READERS:
            end = index + 1
            while end < len(tokens) and tokens[end] not in COMMAND_POSITION:
                end += 1
            yield token, tokens[index + 1 : end]
            index = end
            continue
        position = token in COMMAND_POSITION
        index += 1


def _path(word: str, folder: Path, home: Path) -> Path | None:
    """``word`` as a path read in ``folder`` (``~``, ``$HOME`` and ``$PWD`` expanded); ``None``
    when it holds another variable or a command's output."""
    if "`" in word or "$(" in word:
        return None
    known = {"HOME": str(home), "PWD": str(folder)}

    def expand(match: re.Match[str]) -> str:
        name = match.group(1).strip("{}")
        return known.get(name, "\0")

    text = _VARIABLE.sub(expand, word)
    if "\0" in text or "$" in text:
        return None
    if text == "~" or text.startswith("~/"):
        text = str(home) + text[1:]
    return folder / text  # an absolute one stays as it is


class PathFolders:
    """The programs in the folders an ``.envrc`` puts on ``PATH`` (:func:`path_folders`), as
    they were before the run; :meth:`shadowing` finds those made or changed since whose name
    the user's ``PATH`` (less these folders) finds too: they would run in its place."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = list(folders)  # a missing one may be made during the run
        self.before: dict[Path, tuple[int, int, int] | None] = {}
        left = PATH_ENTRIES
        for folder in self.folders:
            for path in _entries(folder, left):
                self.before[path] = _identity(path)
                left -= 1

    def changed(self, search_path: str) -> list[tuple[Path, str | None]]:
        """Each entry made or changed in the folders since :meth:`__init__`, with the command
        of ``search_path`` (the user's ``PATH``) it would run in place of; ``None`` for a
        program under a name no command has there (what is not a program is left out)."""
        ours = {os.path.realpath(folder) for folder in self.folders}
        elsewhere = os.pathsep.join(
            part
            for part in search_path.split(os.pathsep)
            if part and os.path.realpath(part) not in ours
        )
        found: list[tuple[Path, str | None]] = []
        for folder in self.folders:
            for path in _entries(folder, PATH_ENTRIES):
                if self.before.get(path) == _identity(path):
                    continue
                command = shutil.which(path.name, path=elsewhere)
                if command is not None or os.access(path, os.X_OK):
                    found.append((path, command))
        return found


def _entries(folder: Path, limit: int) -> list[Path]:
    found: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(found) >= limit:
                    break
                if not entry.is_dir():
                    found.append(Path(entry.path))
    except OSError:
        pass
    return found


def _identity(path: Path) -> tuple[int, int, int] | None:
    """A program's inode, size and change time, not following a link (``None``: gone)."""
    try:
        found = path.lstat()
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_ctime_ns)
