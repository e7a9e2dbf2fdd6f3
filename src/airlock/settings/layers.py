"""Settings files as layers: finding, reading and merging them, in the order of precedence.

A :class:`Layer` is one file (managed settings are one layer: the main file and its drop-ins,
merged), with what it says and what is wrong with it. :func:`read_layers` reads every file
that exists, in :data:`LAYER_ORDER`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock._kinds import file_kind
from airlock.policy.model import Origin, Source
from airlock.settings.validation import Problem, shown, validate

MAX_SETTINGS_BYTES = 4 * 1024 * 1024
"""A settings file larger than this is refused rather than read."""

MAX_SETTINGS_DEPTH = 100
"""A settings file with objects and lists nested deeper than this is refused rather than read
(the reference agent's deepest key is five levels down): reading or showing one would
overflow Python's stack."""

WRITTEN_TWICE = (  # a problem of a key (its path)
    "written more than once in one object: a JSON reader keeps one of them only (the agent, "
    "the last), so what the other says would be lost unseen (a restriction, an opt-out); "
    "write the key once"
)

MAX_SAID = 20
"""At most this many keys written twice, or holding half a surrogate pair, are named for one
file (then how many more there are)."""

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
"""How a settings file is opened: through links, as the agent opens it, but never waiting on a
FIFO, never taking a terminal."""

MANAGED_DIR_VARIABLE = "AIRLOCK_MANAGED_SETTINGS_DIR"
LINUX_MANAGED_DIR = Path("/etc/claude-code")
MACOS_MANAGED_DIR = Path("/Library/Application Support/ClaudeCode")

LAYER_ORDER = (
    Source.MANAGED,
    Source.COMMAND_LINE,
    Source.PROJECT_LOCAL,
    Source.PROJECT,
    Source.USER,
)
"""The settings files, highest precedence first: :func:`read_layers` reads them in this order."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One settings file: where it is, what it says, and what is wrong with it."""

    origin: Origin
    data: Mapping[str, Any]
    problems: tuple[Problem, ...] = ()
    readable: bool = True
    """Whether the file could be read as a JSON object at all. When not (not valid JSON, too
    large, not a regular file, a key written twice in one object, …: see :func:`parse_layer`)
    none of it is in effect, not even what can only restrict, and what it would take away
    cannot be told."""

    @property
    def valid(self) -> bool:
        return not self.problems


def unreadable(origin: Origin, why: str, value: str = "") -> Layer:
    """The layer of a settings file that could not be read: nothing in it, and why."""
    return Layer(origin, {}, (Problem(origin.path or "<settings>", "", value, why),), False)


def read_layer(path: Path, source: Source) -> Layer | None:
    """Read one settings file; ``None`` when it does not exist."""
    origin = Origin(source, str(path))
    raw, why = settings_bytes(path)
    if why:
        return unreadable(origin, why)
    if not raw or _blank(raw):  # no settings, as the agent reads one (airlock run's placeholder)
        return None
    return parse_layer(raw, origin)


def _blank(raw: bytes) -> bool:
    """Whether a file holds only white space (and byte order marks): the agent reads it as no
    settings (it trims the text first, as JavaScript's ``trim`` does: Unicode white space and
    U+FEFF), not as JSON that is not valid."""
    first = raw.lstrip()[:1]
    if first < b"\x80":  # ASCII white space only (b""), or a character that is none
        return not first
    return not raw.decode("utf-8", "replace").replace("\ufeff", " ").strip()


def settings_bytes(path: Path) -> tuple[bytes | None, str]:
    """The bytes of the settings file at ``path``, or why it cannot be read; ``None`` and
    ``""`` when there is none (nothing there, a link to nothing, an empty folder).

    What is not a regular file (a FIFO, a device: code in a workspace can make one there) is
    refused before it is read, never waited on; at most one byte beyond the bound is read.
    The sandbox's readers (``airlock.sandbox.files``) say no more than ``None`` for all of
    these, and settings do not import a capability: hence this one.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode) and _empty_folder(path):
            return None, ""  # no settings in it: what `airlock run` keeps at a missing file
        why = _not_regular(mode)  # a device is not even opened
        if why:
            return None, why
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return None, ""
    except OSError as error:
        return None, f"cannot be read: {error.strerror or error}"
    try:
        why = _not_regular(os.fstat(fd).st_mode)  # what was opened, whatever came since
        if why:
            return None, why
        raw = _read_at_most(fd, MAX_SETTINGS_BYTES + 1)
    except OSError as error:
        return None, f"cannot be read: {error.strerror or error}"
    finally:
        os.close(fd)
    if len(raw) > MAX_SETTINGS_BYTES:
        return None, f"file larger than {MAX_SETTINGS_BYTES} bytes: refused"
    return raw, ""


def _not_regular(mode: int) -> str:
    """Why a file of ``mode`` cannot be read as settings; ``""`` for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    return f"cannot be read: not a regular file ({file_kind(mode)})"


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _empty_folder(path: Path) -> bool:
    """An empty folder stands where a settings file goes. While ``airlock run`` works it keeps
    one at each missing settings file it protects in the workspace, and an empty file at each
    in the agent's config dir (its sandbox's mount points, so that code inside cannot make the
    file); another command meanwhile reads either as no file at all."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def parse_layer(raw: bytes | str, origin: Origin) -> Layer:
    """Parse and validate the text of one settings file.

    JSON as the reference agent reads it (``JSON.parse``, after one byte-order mark), and
    where that is ambiguous, refused (the file cannot be read: see :attr:`Layer.readable`):

    - a key written twice in one object: every JSON reader keeps one value only (the agent,
      the last), so what the other says would be lost unseen: a ``denyRead`` list, the
      ``env`` block of an opt-out;
    - ``NaN``, ``Infinity``, ``-Infinity``: not JSON (Python's reader takes them, the agent's
      does not);
    - a string holding half of a UTF-16 surrogate pair alone (``"\\ud800"``; its UTF-8 bytes
      are not UTF-8, refused as such): no character, so what the path, host or variable is
      cannot be told (nor written to a terminal or a JSON report).

    Keys are compared exactly, as the agent compares them: ``Sandbox`` is not ``sandbox``,
    and two spellings of one name in Unicode are two keys.
    """
    too_deep = f"nested too deeply (more than {MAX_SETTINGS_DEPTH} levels of objects and lists)"
    repeated: list[tuple[dict[str, Any], list[str]]] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) < len(pairs):  # rare: the keys are counted only then
            counts: dict[str, int] = {}
            for key, _ in pairs:
                counts[key] = counts.get(key, 0) + 1
            repeated.append((found, [key for key, count in counts.items() if count > 1]))
        return found

    try:
        text = raw.decode(json.detect_encoding(raw)) if isinstance(raw, bytes) else raw
        data = json.loads(text, object_pairs_hook=unique_keys, parse_constant=_not_a_number)
    except RecursionError:  # the parser's own stack: thousands of levels
        return unreadable(origin, too_deep)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        return unreadable(origin, f"not valid JSON ({where}: {error.msg}{_hint(error)})")
    except _NotJson as error:
        return unreadable(origin, f"not valid JSON ({_located(text, error.literal)})")
    except ValueError as error:  # not UTF-8, or an integer of more digits than Python converts
        said = str(error).split("; use sys.set_int_max_str_digits()")[0]  # not the user's to do
        return unreadable(origin, f"not valid JSON ({said})")
    if _deeper_than(data, MAX_SETTINGS_DEPTH):
        return unreadable(origin, too_deep)
    if not isinstance(data, dict):
        return unreadable(origin, "expected a JSON object at the top level", shown(data))
    where = origin.path or "<settings>"
    problems = [
        Problem(where, _key_path(at, key), "", WRITTEN_TWICE)
        for at, found in _places(data, {id(found): keys for found, keys in repeated})
        for key in found
    ]
    if not isinstance(raw, bytes) or _half_pair_escaped(text):
        problems += [
            Problem(where, _key_path(at, key), "", _half_a_pair(key))
            for at, key in _half_pairs(data)
        ]
    if problems:
        return Layer(origin, {}, tuple(_at_most(problems, MAX_SAID, where)), False)
    return Layer(origin, data, tuple(validate(data, where)))


class _NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` where a value goes: Python's reader takes them."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _not_a_number(literal: str) -> Any:
    raise _NotJson(literal)


_LITERAL_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _located(text: str, literal: str) -> str:
    """Where ``literal`` (``NaN``, …) first stands outside a string in ``text``, and why it
    is refused. The parser stopped at it, so all before it is JSON: strings are skipped
    whole, and the first literal outside one is it."""
    said = f"{literal} is not JSON: write a number, or a string"
    for match in _LITERAL_OR_STRING.finditer(text):
        if match.group(1) is not None:
            position = match.start(1)
            line = text.count("\n", 0, position) + 1
            column = position - text.rfind("\n", 0, position)
            return f"line {line} column {column}: {said}"
    return said


def _hint(error: json.JSONDecodeError) -> str:
    """What a mistake often made in settings files looks like to the parser, in words."""
    at = error.doc[error.pos : error.pos + 2]
    if at in ("//", "/*"):
        return ": comments are not JSON (the agent cannot read this file either)"
    before = error.doc[: error.pos].rstrip()
    if at[:1] in ("}", "]") and before.endswith(","):
        return ": a comma before a closing bracket is not JSON"
    return ""


def _places(
    data: Any, wanted: Mapping[int, list[str]]
) -> Iterator[tuple[tuple[str | int, ...], list[str]]]:
    """Each object of ``data`` whose ``id`` is in ``wanted``, by its path, with its entry
    (one level at a time, never recursing; nothing walked when nothing is wanted)."""
    if not wanted:
        return
    level: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while level:
        deeper: list[tuple[tuple[str | int, ...], Any]] = []
        for at, value in level:
            if type(value) is dict:
                if id(value) in wanted:
                    yield at, wanted[id(value)]
                deeper += [((*at, key), child) for key, child in value.items()]
            elif type(value) is list:
                deeper += [((*at, place), child) for place, child in enumerate(value)]
        level = deeper


_HALF_PAIR = re.compile("[\ud800-\udfff]")
_PAIR_ESCAPED = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_HALF_ESCAPED = re.compile(r"\\u[dD][89a-fA-F]")


def _half_pair_escaped(text: str) -> bool:
    """Whether the JSON ``text`` (a file read as UTF-8, which holds no half of a surrogate pair
    itself) writes one alone as an escape (``\\ud800``): the only way one comes in. Found in
    the text, at the speed of a search: with every escaped backslash taken out (left to
    right, as the parser reads them), every backslash left starts an escape, and once whole
    pairs are taken out too, any escape of a half left is alone. Only then are the strings
    looked at one by one (:func:`_half_pairs`), to name where."""
    if "\\" not in text or not _HALF_ESCAPED.search(text):  # no escape of a half at all
        return False
    return _HALF_ESCAPED.search(_PAIR_ESCAPED.sub("", text.replace("\\\\", ""))) is not None


def _half_pairs(data: Any) -> Iterator[tuple[tuple[str | int, ...], str | None]]:
    """Each place in ``data`` where a key or a string holds half of a surrogate pair: the
    path to the object or list, and the key (``None`` for a string value at that path)."""
    level: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while level:
        deeper: list[tuple[tuple[str | int, ...], Any]] = []
        for at, value in level:
            if type(value) is str:
                if _HALF_PAIR.search(value):
                    yield at, None
            elif type(value) is dict:
                for key, child in value.items():
                    if _HALF_PAIR.search(key):
                        yield at, key
                    deeper.append(((*at, key), child))
            elif type(value) is list:
                deeper += [((*at, place), child) for place, child in enumerate(value)]
        level = deeper


def _key_path(at: tuple[str | int, ...], key: str | None) -> str:
    """``sandbox.filesystem.denyRead[2]``: where a value is, as problems name keys; halves of
    surrogate pairs written as escapes (``\\ud800``), never as themselves."""
    text = ""
    for part in (*at, key) if key is not None else at:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _half_a_pair(key: str | None) -> str:
    what = "the key" if key is not None else "the string"
    return (
        f"{what} holds half of a UTF-16 surrogate pair (written \\ud800 to \\udfff, "
        "alone), which is no character: what it names cannot be told; write the character "
        "itself"
    )


def _at_most(problems: list[Problem], most: int, where: str) -> list[Problem]:
    if len(problems) <= most:
        return problems
    more = len(problems) - most
    return [*problems[:most], Problem(where, "", "", f"and {more} more like these")]


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether objects and lists nest in ``data`` more than ``limit`` levels (one level at a
    time, never recursing; only containers are kept from one level to the next, which on a
    large file costs a third of keeping every value)."""
    level = [data] if type(data) is dict or type(data) is list else []
    for _ in range(limit):
        if not level:
            return False
        deeper = []
        for value in level:
            for child in value.values() if type(value) is dict else value:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return bool(level)


def merge(lower: Mapping[str, Any], higher: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two settings objects: scalars from ``higher``, lists unioned, objects merged."""
    merged = dict(lower)
    for key, value in higher.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = merge(below, value)
        elif isinstance(value, list) and isinstance(below, list):
            merged[key] = below + [item for item in value if item not in below]
        else:
            merged[key] = value
    return merged


def managed_dir(environ: Mapping[str, str]) -> Path:
    """Where managed settings live on this machine (overridable for tests)."""
    if environ.get(MANAGED_DIR_VARIABLE):
        return Path(environ[MANAGED_DIR_VARIABLE])
    return platform_managed_dir()


def platform_managed_dir() -> Path:
    """Where the agent itself reads managed settings on this platform."""
    return MACOS_MANAGED_DIR if sys.platform == "darwin" else LINUX_MANAGED_DIR


def managed_set_aside(environ: Mapping[str, str]) -> Problem | None:
    """The notice that ``AIRLOCK_MANAGED_SETTINGS_DIR`` names another folder while this
    platform's own (:func:`platform_managed_dir`) holds managed settings: airlock then reads
    the variable's, but the agent still reads and applies the platform's, so what airlock
    decides, predicts and lets out could be other than what the organisation set. ``None``
    when the variable is unset, names the platform's folder, or that folder holds no managed
    settings file."""
    moved = environ.get(MANAGED_DIR_VARIABLE)
    platform = platform_managed_dir()
    if not moved or _same_folder(Path(moved), platform):
        return None
    drop_ins = platform / "managed-settings.d"
    try:
        held = (platform / "managed-settings.json").exists() or (
            drop_ins.is_dir()
            and any(p.suffix == ".json" and not p.name.startswith(".") for p in drop_ins.iterdir())
        )
    except OSError:  # unreadable: it may hold them
        held = True
    if not held:
        return None
    return Problem(
        str(platform),
        "",
        f"{MANAGED_DIR_VARIABLE}={moved}",
        f"the organisation's managed settings here are not read: {MANAGED_DIR_VARIABLE} names "
        "another folder, but the agent itself reads and applies these, so what airlock decides "
        f"may differ from what it does; unset {MANAGED_DIR_VARIABLE} to read them",
    )


def _same_folder(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return one == other


def read_managed(directory: Path) -> Layer | None:
    """Managed settings: the main file then the drop-in folder, merged into one layer.

    Within managed sources a later scalar wins, lists union, objects merge.
    """
    paths = [directory / "managed-settings.json"]
    drop_ins = directory / "managed-settings.d"
    if drop_ins.is_dir():
        paths += sorted(
            p for p in drop_ins.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
        )
    layers = [
        layer for layer in (read_layer(p, Source.MANAGED) for p in paths) if layer is not None
    ]
    if not layers:
        return None
    data: dict[str, Any] = {}
    for layer in layers:
        if layer.valid:
            data = merge(data, layer.data)
    problems = tuple(problem for layer in layers for problem in layer.problems)
    shown = ", ".join(str(p) for p in paths if p.exists())
    readable = all(layer.readable for layer in layers)
    return Layer(Origin(Source.MANAGED, shown or str(directory)), data, problems, readable)


def config_dir(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """``$CLAUDE_CONFIG_DIR``, else ``~/.claude``."""
    if environ.get("CLAUDE_CONFIG_DIR"):
        return Path(environ["CLAUDE_CONFIG_DIR"]).expanduser()
    base = home if home is not None else Path(environ.get("HOME") or Path.home())
    return base / ".claude"


def read_layers(
    cwd: Path, home: Path, environ: Mapping[str, str], settings_file: Path | str | None
) -> Iterator[Layer]:
    """Every settings file that exists, in :data:`LAYER_ORDER`."""
    readers: dict[Source, Callable[[], Layer | None]] = {
        Source.MANAGED: lambda: read_managed(managed_dir(environ)),
        Source.COMMAND_LINE: lambda: (
            None if settings_file is None else command_line_layer(settings_file)
        ),
        Source.PROJECT_LOCAL: lambda: read_layer(
            cwd / ".claude" / "settings.local.json", Source.PROJECT_LOCAL
        ),
        Source.PROJECT: lambda: read_layer(cwd / ".claude" / "settings.json", Source.PROJECT),
        Source.USER: lambda: read_layer(home / "settings.json", Source.USER),
    }
    for source in LAYER_ORDER:
        layer = readers[source]()
        if layer is not None:
            yield layer


def command_line_layer(settings_file: Path | str) -> Layer:
    text = str(settings_file)
    if text.lstrip().startswith("{"):
        return parse_layer(text, Origin(Source.COMMAND_LINE, "--settings (inline JSON)"))
    layer = read_layer(Path(text), Source.COMMAND_LINE)
    if layer is None:  # nothing there, or nothing in it (an empty file, an empty folder)
        path = Path(text)
        if path.is_file():
            said = "--settings file is empty: no settings in it"
        elif path.is_dir():
            said = "--settings names an empty folder, not a settings file"
        else:
            said = "--settings file does not exist"
        problem = Problem(text, "", "", said)
        return Layer(Origin(Source.COMMAND_LINE, text), {}, (problem,))
    return layer


def lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def problems_for(layers: tuple[Layer, ...], key: str) -> tuple[Problem, ...]:
    path = tuple(key.split("."))
    return tuple(
        problem
        for layer in layers
        if not layer.valid and (not layer.data or lookup(layer.data, path)[0])
        for problem in layer.problems
    )
