"""Settings files as layers: finding, reading and merging them, in the order of precedence.

A :class:`Layer` is one file (managed settings are one layer: the main file and its drop-ins,
merged), with what it says and what is wrong with it. :func:`read_layers` reads every file
that exists, in :data:`LAYER_ORDER`.
"""

from __future__ import annotations

import json
import os
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
    large, not a regular file, …) none of it is in effect, not even what can only restrict,
    and what it would take away cannot be told."""

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
    if not raw:  # no settings, as the agent reads an empty file (airlock run's placeholder)
        return None
    return parse_layer(raw, origin)


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
    """Parse and validate the text of one settings file."""
    too_deep = f"nested too deeply (more than {MAX_SETTINGS_DEPTH} levels of objects and lists)"
    try:
        data = json.loads(raw)
    except RecursionError:  # the parser's own stack: thousands of levels
        return unreadable(origin, too_deep)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        return unreadable(origin, f"not valid JSON ({where}: {error.msg})")
    except ValueError as error:  # not UTF-8, or an integer of more digits than Python converts
        return unreadable(origin, f"not valid JSON ({error})")
    if _deeper_than(data, MAX_SETTINGS_DEPTH):
        return unreadable(origin, too_deep)
    if not isinstance(data, dict):
        return unreadable(origin, "expected a JSON object at the top level", shown(data))
    return Layer(origin, data, tuple(validate(data, origin.path or "<settings>")))


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether objects and lists nest in ``data`` more than ``limit`` levels (one level at a
    time, never recursing)."""
    level = [data]
    for _ in range(limit + 1):
        containers = [value for value in level if isinstance(value, dict | list)]
        if not containers:
            return False
        level = [
            child
            for value in containers
            for child in (value.values() if isinstance(value, dict) else value)
        ]
    return True


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
    return MACOS_MANAGED_DIR if sys.platform == "darwin" else LINUX_MANAGED_DIR


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
