"""Programs the agents' files name: read-only inside too.

Theory of operation
-------------------
The agent's settings (``settings.json`` in the config dir and in the project) and a project's
``.mcp.json`` are read-only inside, but what they name runs outside as well: a hook's
``command``, the status line's, a credential helper, an MCP server's program and the script
it is given. So does what the agents' other files name: the MCP servers of the agent's state
file (``~/.claude.json``, the user's and each project's), Codex's ``notify`` program (run
after every turn), MCP servers and hooks, Gemini's MCP servers, hooks and tool commands
(:data:`OTHER_CONFIG`, in the home, in the folder ``CODEX_HOME`` names, and at the
workspace's root), and the project files of the workspace's subfolders
(:data:`PROJECT_CONFIG`: an agent started there reads them). Those files are read-only, or
put back or set aside after the run (:mod:`airlock.sandbox.agent_state`,
:mod:`airlock.sandbox.written`), but not what they name: where such a program is somewhere
code inside could write (a ``scripts/`` folder of the project,
``~/.claude/statusline-command.sh``), the next session outside would run what was written.
So :func:`program_rules` makes each one read-only:

1. each file's command lines are gathered (:class:`Named`), with the folder their relative
   words are read from (the project's, a server's ``cwd``) and whose they are (the user's
   own, the workspace's, another project's);
2. each line is read as a shell reads it (:func:`_commands`: its operators, subshells,
   redirections; ``cd``, ``-C`` and the like move the folder), and each word that is a file
   there, or a missing path with a ``/`` (a placeholder keeps it from being made), is named
   (:func:`named_paths`);
3. those code inside could write or swap get a read-only rule, the user's own first, within
   :data:`NAMED_PROGRAMS`; what the bounds or a file that cannot be read leave out is said.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from airlock.sandbox.files import LIMIT, regular_bytes
from airlock.sandbox.paths import Kind, Mount, expand, home_paths, mount

COMMAND_KEYS = ("apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper")
"""Top-level settings whose value is a command the agent runs."""

NAMED_PROGRAMS = 100
"""At most this many paths are made read-only (the rest are said): the user's own first, then
the workspace's, then other projects' (:attr:`Named.rank`)."""

WHY = "a program the agents' settings, state or .mcp.json name: runs outside later"

OTHER_CONFIG = (".codex/config.toml", ".codex/hooks.json", ".gemini/settings.json")
"""The other agents' files, in the home and at the workspace's root, whose commands run
outside later (:func:`named_commands` reads them)."""

COMMAND_WORDS = ("command", "notify", "discoveryCommand", "callCommand")
"""The keys whose value, anywhere in one of :data:`OTHER_CONFIG`, is a command line or the
words of one."""

PROJECT_DIRS = (
    "${CLAUDE_PROJECT_DIR}",
    "$CLAUDE_PROJECT_DIR",
    "${GEMINI_PROJECT_DIR}",
    "$GEMINI_PROJECT_DIR",
    "${PWD}",
    "$PWD",
)
"""What a hook's command line writes for the project's folder (the agents' variables, the
folder it starts in; ``$(pwd)`` and git's top level are read as these before the line is
split): replaced in each word."""

WRITERS = frozenset({"mkdir", "touch", "tee", "rm", "rmdir", "mkfifo", "truncate", "chmod"})
"""Programs whose arguments are files they make or change, never programs to run: a hook's
``tee -a logs/hooks.jsonl`` names no program (a rule there would stop it writing)."""

SCRIPT_SUFFIXES = frozenset(
    {".sh", ".bash", ".zsh", ".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".php", ".lua"}
)
"""What a script's name ends with: the program a runner is given, past which come its
arguments (:func:`_program_words`)."""

COPIERS = frozenset({"cp", "mv", "ln", "install"})
"""Programs whose last argument (or the one after ``-t``) is a file or folder they write: no
program; the others they read are named (``cp scripts/pre-commit .git/hooks/`` installs one
that runs later)."""

RUNNERS = frozenset(
    {
        "env", "exec", "nice", "nohup", "command", "builtin", "time", "sudo", "doas", "xargs",
        "timeout", "stdbuf", "setsid", "ionice", "taskset",
        "sh", "bash", "zsh", "dash", "ksh", "fish", "source", ".",
        "python", "python3", "node", "deno", "bun", "ruby", "perl", "php", "lua",
        "uv", "uvx", "npx", "pnpx", "bunx", "tsx", "ts-node", "poetry", "pipx", "npm",
        "pnpm", "yarn",
    }
)  # fmt: skip
"""Programs that run the program or script named after them: up to the first word that looks
like a path, each word after one of these may be the program (:func:`_program_words`)."""

FOLDERS_KEPT = 4
"""At most this many folders a command of a line may start in, after the ``cd`` commands
that may or may not have run before it."""

FOLDER_OPTIONS = ("--directory", "--cwd", "--prefix", "-C")
"""Options that name the folder the words after them are read from (``uv --directory DIR run
server.py``, ``npm --prefix DIR``, ``make -C DIR``)."""

PROJECT_CONFIG: dict[str, tuple[str, ...]] = {
    ".claude": ("settings.json", "settings.local.json"),
    ".mcp.json": ("",),
    ".gemini": ("settings.json",),
    ".codex": ("config.toml", "hooks.json"),
}
"""A project's files that say what runs, by the entry that holds them: read in each subfolder
of the workspace that has one (an agent started there reads them, with that folder as its
project's)."""

NESTED_PROJECTS = 200
"""At most this many of those files in subfolders are read (the rest are said)."""

NESTED_BYTES = 1 << 20
"""A file among those in subfolders larger than this is not read (and said): a project's
settings are a few kilobytes."""

WORDS_LOOKED_AT = 50_000
"""At most this many words of all the command lines are looked for on disk (the rest are
said): a file naming hundreds of thousands would hold up the run's start."""

STATE_PROJECTS = 2_000
"""At most this many projects of the agent's state file are read for their MCP servers,
besides the workspace's own (the rest are said)."""

WALK_NODES = 100_000
"""At most this many values of one file are looked at by :func:`named_commands`."""


class Named(NamedTuple):
    """A command line, the folder its relative paths are read from, whether a missing relative
    path with a ``/`` it names gets a placeholder (not for the home's files, which name paths
    of whatever project the agent starts in: a placeholder in every workspace would break
    builds), and whose it is."""

    line: str
    folder: Path
    missing: bool = True
    rank: int = 1
    """Whose it is, for the bound of :data:`NAMED_PROGRAMS`: ``0`` the user's own (their
    settings, the home's files: every project runs them), ``1`` the workspace's, ``2``
    another project's."""
    project: Path | None = None
    """The project's folder its ``$CLAUDE_PROJECT_DIR`` names, when not the workspace (a
    subfolder's own settings)."""


def commands(settings: Mapping[str, Any]) -> Iterator[str]:
    """The commands one settings file names: its hooks', its status line's, its helpers'."""
    for key in COMMAND_KEYS:
        if isinstance(settings.get(key), str):
            yield settings[key]
    status = settings.get("statusLine")
    if isinstance(status, Mapping) and isinstance(status.get("command"), str):
        yield status["command"]
    hooks = settings.get("hooks")
    if not isinstance(hooks, Mapping):
        return
    for groups in hooks.values():
        for group in groups if isinstance(groups, list) else ():
            inner = group.get("hooks") if isinstance(group, Mapping) else None
            for hook in inner if isinstance(inner, list) else ():
                if isinstance(hook, Mapping) and isinstance(hook.get("command"), str):
                    yield hook["command"]


def server_commands(mcp: Mapping[str, Any]) -> Iterator[str]:
    """The command lines of a ``.mcp.json``'s servers (``command`` and ``args``)."""
    for line, _ in _servers(mcp):
        yield line


def _servers(holder: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Each server of ``holder["mcpServers"]``: its command line and its ``cwd``, if any."""
    servers = holder.get("mcpServers")
    if not isinstance(servers, Mapping):
        return
    for server in servers.values():
        if not isinstance(server, Mapping) or not isinstance(server.get("command"), str):
            continue
        args = server.get("args")
        words = [str(word) for word in args] if isinstance(args, list) else []
        cwd = server.get("cwd")
        yield shlex.join([server["command"], *words]), cwd if isinstance(cwd, str) else None


def _in(folder: Path, cwd: str | None, home: Path) -> Path:
    """The folder a command runs in: its ``cwd`` (relative to ``folder``; ``~`` the home),
    else ``folder``."""
    return expand(cwd, home, folder) if cwd else folder


def state_commands(
    state: Mapping[str, Any], workspace: Path, home: Path
) -> tuple[list[Named], int]:
    """The MCP servers of the agent's state file (``~/.claude.json``): the user's (read from
    the workspace, with no placeholders), and each project's (read from the project's folder):
    the workspace's own projects first, then at most :data:`STATE_PROJECTS` others; and how
    many projects with servers were left unread."""
    named = [Named(line, _in(workspace, cwd, home), False, 0) for line, cwd in _servers(state)]
    projects = state.get("projects")
    entries = [
        (Path(folder), entry)
        for folder, entry in (projects.items() if isinstance(projects, Mapping) else ())
        if isinstance(entry, Mapping) and Path(folder).is_absolute() and "mcpServers" in entry
    ]
    entries.sort(key=lambda item: not item[0].is_relative_to(workspace))  # the run's own first
    read = STATE_PROJECTS + sum(1 for folder, _ in entries if folder.is_relative_to(workspace))
    for folder, entry in entries[:read]:
        rank = 1 if folder.is_relative_to(workspace) else 2
        named += (Named(line, _in(folder, cwd, home), True, rank) for line, cwd in _servers(entry))
    return named, max(0, len(entries) - read)


def named_commands(data: object) -> Iterator[tuple[str, str | None]]:
    """Every command line a configuration names, whatever its layout (Codex's and Gemini's
    differ, and change), with the ``cwd`` given beside it, if any: a ``command`` that is a
    line, or a program given its ``args``, or a list of words; Codex's ``notify``, a list of
    words; Gemini's tool discovery and call commands. At most :data:`WALK_NODES` values."""
    stack, seen = [data], 0
    while stack and seen < WALK_NODES:
        value = stack.pop()
        seen += 1
        if isinstance(value, list):
            stack.extend(value)
            continue
        if not isinstance(value, Mapping):
            continue
        cwd = value.get("cwd") if isinstance(value.get("cwd"), str) else None
        for key in COMMAND_WORDS:
            words = value.get(key)
            args = value.get("args")
            if isinstance(words, str):
                line = shlex.join([words, *map(str, args)]) if isinstance(args, list) else words
                yield line, cwd
            elif isinstance(words, list) and words and all(isinstance(w, str) for w in words):
                yield shlex.join(words), cwd
        stack.extend(value.values())


_COMMENTS = re.compile(rb'"(?:\\.|[^"\\])*+(?:"|\\?\Z)|//[^\n]*|/\*.*?(?:\*/|\Z)', re.DOTALL)
"""A JSON string (kept; taken whole, never given back a character at a time, and one left
open runs to the end, a lone ``\\`` there too: so that the scan stays linear), or a comment
(``//`` to the line's end, ``/* … */``)."""


def _without_comments(raw: bytes) -> bytes:
    """JSON with comments (Gemini reads its settings so) as plain JSON."""
    return _COMMENTS.sub(lambda found: found[0] if found[0][:1] == b'"' else b" ", raw)


def _config(path: Path, limit: int | None = None) -> tuple[object, str]:
    """A JSON (comments allowed) or TOML file's content, and why it could not be read when it is
    there but cannot (``None`` and ``""`` when missing: the agent starts nothing from it)."""
    if not os.path.lexists(path):
        return None, ""
    limit = LIMIT if limit is None else limit
    raw = regular_bytes(path, limit + 1)  # a FIFO made there is passed over
    if raw is None:
        return None, "not a regular file"
    if len(raw) > limit:
        return None, f"larger than {limit:,} bytes"
    try:
        if path.suffix == ".toml":
            import tomllib  # only where a TOML file is there: its import is most of its cost

            return tomllib.loads(raw.decode("utf-8")), ""
        try:
            return json.loads(raw), ""
        except ValueError:
            return json.loads(_without_comments(raw)), ""
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        return None, f"not valid {kind} ({str(error)[:120] or type(error).__name__})"


def other_lines(
    home: Path, workspace: Path, state_files: Iterable[Path], codex: Path | None = None
) -> tuple[list[Named], list[str]]:
    """The command lines the agents' other files name (:data:`OTHER_CONFIG` in the home and at
    the workspace's root, Codex's in the folder ``CODEX_HOME`` names, the MCP servers of the
    ``state_files``), and what could not be read, in words."""
    named: list[Named] = []
    problems: list[str] = []
    for path in state_files:
        state, problem = _config(path)
        if isinstance(state, Mapping):
            found, left = state_commands(state, workspace, home)
            named += found
            if left:
                problems.append(f"{path}: the MCP servers of {left} more projects were not read")
        elif problem:
            problems.append(f"{path}: {problem}")
    files = [(path, False) for path in home_paths(OTHER_CONFIG, home, codex)]
    files += [(workspace / name, True) for name in OTHER_CONFIG]
    for path, ours in files:  # the home's name any project's paths: no placeholders
        data, problem = _config(path)
        if problem:
            problems.append(f"{path}: {problem}")
        named += (
            Named(line, _in(workspace, cwd, home), ours, 1 if ours else 0)
            for line, cwd in named_commands(data)
        )
    return named, problems


OPERATORS = "();<>|&\n"
"""The characters a shell reads as operators: a run of them ends a word (``a&&b``,
``x.sh>log``). One holding ``>`` writes to the word after it (a file, not a program), ``<<``
names the end of a here-document, ``<`` and ``<<<`` feed the command the word after it (which
may be the program: ``bash < scripts/x.sh``); a parenthesis opens or closes a subshell
(``<(…)`` too); any other ends one command and starts another (``&&``, ``||``, ``;``,
``|``, ``|&``, a new line)."""


class Command(NamedTuple):
    """One command of a line: its words, how deep in subshells it is (a ``cd`` there holds
    until the subshell ends), whether it is part of a pipeline (each part is a subshell of
    its own: a ``cd`` there moves nothing after it), and the command lines its words hold,
    read in the folder it runs in: a shell's ``-c`` script (:data:`SCRIPT_OPTION`, not a word
    of the command), and each word with a space (``eval "scripts/x.sh --fix"``,
    ``"node server.js"`` given whole), a guess: no placeholder is made from one."""

    words: list[str]
    level: int
    piped: bool
    scripts: list[tuple[str, bool]]
    """Each command line and whether it is a guess."""


SCRIPT_OPTION = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*")
"""A shell's option that takes a command line (``-c``, ``-lc``, ``-ec``): the word after it
is read as one, not as a path."""

LINE_BYTES = 16 * 1024
"""A command line longer than this is not read (and said): splitting one costs time that
grows faster than its length."""


def _lexed(line: str) -> list[str]:
    """The words and operators of a command line, as a shell reads them (quotes, escapes; a
    ``#`` inside a word is part of it). One it cannot read (a quote a comment holds: ``# don't
    block``) is read again with ``#`` starting a comment, then split at spaces."""
    for commenters in ("", "#"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=OPERATORS)
        lexer.whitespace = " \t\r"  # a new line is an operator
        lexer.whitespace_split = True
        lexer.commenters = commenters
        try:
            return list(lexer)
        except ValueError:
            continue
    return line.split()


def _commands(line: str) -> Iterator[Command]:
    """The commands of a command line (:class:`Command`), split at the shell's operators
    (:data:`OPERATORS`; backquotes read as ``$(`` and ``)``)."""
    quoted = line.split("`")
    line = "".join(  # `…` as $(…): odd pieces are inside backquotes
        piece if index == 0 else (" $( " if index % 2 else " ) ") + piece
        for index, piece in enumerate(quoted)
    )
    command: list[str] = []
    scripts: list[tuple[str, bool]] = []
    level = 0
    piped = False
    skip_next = script_next = False
    for word in _lexed(line):
        if word and all(char in OPERATORS for char in word):
            if "(" in word or ")" in word:
                yield Command(command, level, piped, scripts)
                command, scripts, piped = [], [], False
                level = max(0, level + word.count("(") - word.count(")"))
            elif ">" in word or (word.startswith("<<") and word != "<<<"):
                skip_next = True  # the file written to, or a here-document's end
            elif word in ("<", "<<<"):
                continue  # what is fed to the command: may be the program
            else:
                pipe = word in ("|", "|&")
                yield Command(command, level, piped or pipe, scripts)
                command, scripts, piped = [], [], pipe
            continue
        if skip_next:
            skip_next = False
            continue
        if script_next:
            script_next = False
            scripts.append((word, False))
            continue
        script_next = bool(SCRIPT_OPTION.fullmatch(word))
        if " " in word or "\n" in word:
            scripts.append((word, True))
        command.append(word)
    yield Command(command, level, piped, scripts)


def _is(path: Path, kind: str) -> bool:
    """Whether ``path`` is a file (``kind`` ``"file"``), a folder (``"dir"``) or anything
    (``"there"``, through links) that can be looked at: one behind a folder airlock may not
    enter is taken as no file or folder, and as there (no placeholder is made for it)."""
    try:
        if kind == "there":
            return path.exists()
        return path.is_file() if kind == "file" else path.is_dir()
    except OSError:
        return kind == "there"


def nested_lines(
    workspace: Path, named: Iterable[Path], home: Path
) -> tuple[list[Named], list[str]]:
    """The command lines of the project files (:data:`PROJECT_CONFIG`) among ``named`` (the
    entries the workspace's walk found, :func:`airlock.sandbox.repositories.scan_workspace`)
    in its subfolders, each read from its subfolder, and what could not be read, in words."""
    files = [
        entry / name if name else entry
        for entry in named
        if entry.parent != workspace and entry.name in PROJECT_CONFIG
        for name in PROJECT_CONFIG[entry.name]
    ]
    found = [path for path in files if os.path.lexists(path)]
    left = found[NESTED_PROJECTS:]
    problems = (
        [
            f"{len(left)} more project files in the workspace's subfolders than airlock "
            f"reads (the first {NESTED_PROJECTS}; the next: {', '.join(map(str, left[:2]))})"
        ]
        if left
        else []
    )
    lines: list[Named] = []
    for path in found[:NESTED_PROJECTS]:
        data, problem = _config(path, NESTED_BYTES)
        if problem:
            problems.append(f"{path}: {problem}")
        project = path.parent if path.name == ".mcp.json" else path.parent.parent
        if path.parent.name == ".claude" and isinstance(data, Mapping):
            lines += (Named(line, project, project=project) for line in commands(data))
        elif path.name == ".mcp.json" and isinstance(data, Mapping):
            lines += (Named(line, project, project=project) for line in server_commands(data))
        elif path.name != ".mcp.json":
            lines += (
                Named(line, _in(project, cwd, home), project=project)
                for line, cwd in named_commands(data)
            )
    return lines, problems


def _moved(start: Path, arguments: list[str], home: Path) -> Path:
    """Where ``cd ARGUMENTS`` (or ``pushd``) run in ``start`` moves: the folder named (its
    options left out), the home with none; ``start`` when it names no folder there (``-``,
    a missing one)."""
    named = [word for word in arguments if not word.startswith("-")]
    if not named:
        return home if not arguments else start
    target = expand(named[0], home, start)
    return target if _is(target, "dir") else start


def named_paths(
    lines: Iterable[str],
    home: Path,
    workspace: Path,
    folder: Path | None = None,
    missing: bool = True,
    budget: list[int] | None = None,
) -> list[Path]:
    """The files that these command lines name (each once, in order): a word that is a path
    (``~/…``, ``$HOME/…``, ``$CLAUDE_PROJECT_DIR/…``, ``$GEMINI_PROJECT_DIR/…``, absolute, or
    holding a ``/``), and a bare name that is a file in the folder the command runs in
    (``folder``, else the workspace: ``bash check.sh``, ``node server.js``), or in the one a
    :data:`FOLDER_OPTIONS` names before it in the same command, or a ``cd`` before it in the
    line; a path with a ``/`` that is missing too (a placeholder keeps it from being made), a
    relative one only with ``missing``. With a ``budget`` (``[words]``), it stops once that
    many words were looked at, counting down the one number across calls."""
    found: dict[Path, None] = {}
    for line in lines:
        _line(line, home, workspace, folder or workspace, missing, budget, found)
    return list(found)


SCRIPT_DEPTH = 2
"""How deep command lines held in words are read (``sh -c "bash -c '…'"``)."""


def _as_split(line: str) -> str:
    """``line`` as it is split: ``$(pwd)`` and git's top level as one word for the project's
    folder (:data:`PROJECT_DIRS`)."""
    for name in ("$(git rev-parse --show-toplevel)", "$(pwd)"):
        line = line.replace(name, "$CLAUDE_PROJECT_DIR")
    return line


def _encodable(line: str) -> bool:
    """Whether ``line`` can name a file: no lone surrogate (``\\ud800`` in a JSON file)."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _line(
    line: str,
    home: Path,
    workspace: Path,
    folder: Path,
    missing: bool,
    budget: list[int] | None,
    found: dict[Path, None],
    depth: int = 0,
    guessed: bool = False,
) -> None:
    """:func:`named_paths` for one command line, run in ``folder``; those its commands hold
    (:attr:`Command.scripts`) read in turn where each command runs, :data:`SCRIPT_DEPTH`
    deep."""
    line = _as_split(line)
    if "\0" in line or len(line) > LINE_BYTES or not _encodable(line):  # no path holds these
        return
    if budget is not None:  # splitting costs by the line's length (twice, when read again)
        budget[0] -= 1 + len(line) // 4
        if budget[0] < 0:
            return
    # where a command starts at each level of subshells: the folders a cd there may have
    # moved it to (a cd that may not run leaves it where it was too)
    starts: list[list[Path]] = [[folder]]
    for command, level, piped, scripts in _commands(line):
        del starts[level + 1 :]  # subshells ended: their cd with them
        starts += [starts[-1]] * (level + 1 - len(starts))
        for index, word in enumerate(command):
            for names, value in ((PROJECT_DIRS, workspace), (("${HOME}", "$HOME"), home)):
                for name in names:
                    word = word.replace(name, str(value))
            command[index] = word
        if command and command[0] in ("cd", "pushd"):
            if not piped:
                moved = [_moved(start, command[1:], home) for start in starts[-1]]
                starts[-1] = list(dict.fromkeys([*moved, *starts[-1]]))[:FOLDERS_KEPT]
            continue
        if budget is not None:  # the words left to look at, shared by the caller's calls
            budget[0] -= len(command)
            if budget[0] < 0:
                return
        for base in starts[-1]:
            first = base == starts[-1][0] and not guessed  # placeholders: only there
            runs_in = _name(command, base, home, missing, first, found)
            for script, guess in scripts if depth < SCRIPT_DEPTH else ():
                inner = (home, workspace, runs_in, missing, budget, found, depth + 1)
                _line(script, *inner, not first or guess)  # first: not guessed here


def _name(
    command: list[str],
    base: Path,
    home: Path,
    missing: bool,
    placeholders: bool,
    found: dict[Path, None],
) -> Path:
    """Add to ``found`` the files the words of one ``command`` name, run in ``base``
    (:func:`named_paths`), and a missing path with a ``/`` where a program stands
    (:func:`_program_words`) with ``placeholders`` (a relative one only with ``missing``);
    the files :data:`WRITERS` and :data:`COPIERS` write are none. The folder the command
    runs in, after its folder options (``-C DIR``)."""
    after_option = False
    writer = _writer(command)
    written = _written(command) if writer in COPIERS else set()
    programs = _program_words(command)
    for index, word in enumerate(command):
        option, equals, value = word.partition("=")
        if equals and option in FOLDER_OPTIONS:
            base = expand(value, home, base) if value else base
            continue
        if word.startswith("-C") and len(word) > 2 and _is(base / word[2:], "dir"):
            base = base / word[2:]  # -Ctools
            continue
        if after_option:  # the folder the option names, if it is one
            after_option = False
            if _is(named := expand(word, home, base), "dir"):
                base = named
                continue
        if word in FOLDER_OPTIONS:
            after_option = True
            continue
        if writer in WRITERS or index in written or "=" in word or not word or word[0] == "-":
            continue
        relative = not (word == "~" or word.startswith(("~/", "/")))
        path = expand(word, home, base)
        if _is(path, "file") or (
            placeholders
            and index in programs
            and (missing or not relative)
            and "/" in word
            and " " not in word
            and "\n" not in word
            and not _is(path, "there")
            and _is(path.parent, "dir")
        ):
            found.setdefault(path, None)
    return base


def _writer(command: list[str]) -> str | None:
    """The :data:`WRITERS` or :data:`COPIERS` name the command runs, if any, looked for
    before its first word that looks like a path (``LC_ALL=C tee``, ``sudo tee``)."""
    for word in command:
        if "/" in word:
            return None
        if word in WRITERS or word in COPIERS:
            return word
    return None


def _written(command: list[str]) -> set[int]:
    """Where in a :data:`COPIERS` command the file it writes stands: after ``-t``, else its
    last word."""
    for index, word in enumerate(command):
        if word in ("-t", "--target-directory") and index + 1 < len(command):
            return {index + 1}
        if word.startswith("--target-directory="):
            return {index}
    return {len(command) - 1} if command else set()


def _program_words(command: list[str]) -> set[int]:
    """Where in ``command`` a program may stand: its first word past ``NAME=value``, and after
    one of :data:`RUNNERS`, each word up to the first that looks like a path or a script
    (``timeout 10 scripts/x.sh``, ``uv run scripts/x.py``, ``sudo -u me bash x.sh``), options
    left out. The words after the program are its arguments (a file it writes, often)."""
    positions: set[int] = set()
    start = 0
    while start < len(command) and "=" in command[start] and command[start][0] != "-":
        start += 1
    for index in range(start, len(command)):
        word = command[index]
        if word.startswith("-"):
            continue
        first = not positions
        positions.add(index)
        if "/" in word or Path(word).suffix in SCRIPT_SUFFIXES:
            break
        if first and Path(word).name not in RUNNERS:
            break
    return positions


def _both_ways(paths: Iterable[Path]) -> list[Path]:
    """Each path as named (absolute, links on the way kept) and as it resolves: a program
    named through a link in a writable folder can be swapped there, one named elsewhere whose
    real path is in a writable folder can be written there."""
    return [
        way
        for path in paths
        for way in (Path(os.path.normpath(path)), Path(os.path.realpath(path)))
    ]


def program_rules(
    layers: Iterable[Mapping[str, Any]],
    home: Path,
    workspace: Path,
    opened: Iterable[Path] = (),
    state_files: Iterable[Path] = (),
    codex: Path | None = None,
    project_layers: Iterable[Mapping[str, Any]] = (),
    writable: Iterable[Path] | None = None,
    nested: Iterable[Path] = (),
) -> tuple[list[Mount], int, list[str]]:
    """Read-only rules for the files that the user's settings ``layers``, the project's
    (``project_layers``), the workspace's ``.mcp.json``, the ``state_files``' MCP servers and
    the other agents' files (:func:`other_lines`), and the project files found in the
    workspace's subfolders (``nested``: :func:`nested_lines`) name, and that code inside could
    write or swap (as named or resolved, under
    one of the ``writable`` folders, when given); at most :data:`NAMED_PROGRAMS`, the user's own
    first (:attr:`Named.rank`: a project cannot push them out), then the workspace's; how
    many more were left without one, and the files that could not be read, in words. One the
    user's own ``--rw`` names (``opened``: a server being worked on) keeps no rule."""
    named = [Named(line, workspace, True, 0) for layer in layers for line in commands(layer)]
    named += (Named(line, workspace) for layer in project_layers for line in commands(layer))
    mcp, problem = _config(workspace / ".mcp.json")
    if isinstance(mcp, Mapping):
        named += (Named(line, workspace) for line in server_commands(mcp))
    problems = [f"{workspace / '.mcp.json'}: {problem}"] if problem else []
    others, more = other_lines(home, workspace, state_files, codex)
    named += others
    problems += more
    others, more = nested_lines(workspace, nested, home)
    named += others
    problems += more
    ranks: dict[Path, int] = {}
    budget = [WORDS_LOOKED_AT]
    for item in sorted(named, key=lambda item: item.rank):  # the user's own first, as below
        if len(_as_split(item.line)) > LINE_BYTES:
            problems.append(f"a command line of {len(item.line):,} bytes was not read")
            continue
        project = item.project or workspace
        for path in named_paths([item.line], home, project, item.folder, item.missing, budget):
            ranks[path] = min(ranks.get(path, item.rank), item.rank)
        if budget[0] < 0:
            problems.append(
                f"the command lines name more than {WORDS_LOOKED_AT:,} words: the ones past "
                "those were not looked at"
            )
            break
    keep = {Path(os.path.realpath(path)) for path in opened}
    roots = None if writable is None else _both_ways(writable)
    paths = [
        path
        for path in ranks
        if Path(os.path.realpath(path)) not in keep
        and (
            roots is None
            or any(way.is_relative_to(root) for way in _both_ways([path]) for root in roots)
        )
    ]
    paths.sort(key=ranks.__getitem__)
    rules = [mount(Kind.READ, path, WHY) for path in paths[:NAMED_PROGRAMS]]
    return rules, max(0, len(paths) - NAMED_PROGRAMS), problems
