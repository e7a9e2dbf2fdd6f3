"""The I/O edge of the policy: find and read settings files and the environment.

Precedence, highest first (written once, here, in :data:`LAYER_ORDER`):

1. managed settings: ``managed-settings.json`` then ``managed-settings.d/*.json`` (alphabetical,
   hidden and non-``.json`` files ignored) in ``$AIRLOCK_MANAGED_SETTINGS_DIR``, else
   ``/etc/claude-code`` (Linux) or ``/Library/Application Support/ClaudeCode`` (macOS);
2. ``--settings FILE`` on the command line;
3. ``<project>/.claude/settings.local.json``;
4. ``<project>/.claude/settings.json``;
5. ``<config dir>/settings.json``, the config dir being ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``.

Scalars: the highest file that sets a valid value wins. Lists (``permissions.allow`` …) are
unioned; objects merge key by key. Each file's ``env`` block and the process environment are
kept side by side with their origins; ``policy.variables`` says how each variable counts.

A file that cannot be parsed, or that holds a value of the wrong kind, is reported (path, key,
value, what was expected; every problem at once) and nothing in it takes effect, except what
can only restrict: the opt-outs in its ``env`` block and its ``deny`` and ``ask`` rules. A
managed file that cannot be used makes the engine fail closed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlock.policy.model import (
    AccountType,
    Context,
    Origin,
    Permissions,
    Rule,
    Setting,
    Source,
    Var,
)
from airlock.policy.services import resolve_collector_url
from airlock.policy.variables import VARIABLES, Kind

MAX_SETTINGS_BYTES = 4 * 1024 * 1024
"""A settings file larger than this is refused rather than read."""

MANAGED_DIR_VARIABLE = "AIRLOCK_MANAGED_SETTINGS_DIR"
LINUX_MANAGED_DIR = Path("/etc/claude-code")
MACOS_MANAGED_DIR = Path("/Library/Application Support/ClaudeCode")
STATE_FILE = "airlock/state.json"
"""Remembered answers (``Don't ask again``), relative to the config dir."""

LAYER_ORDER = (
    Source.MANAGED,
    Source.COMMAND_LINE,
    Source.PROJECT_LOCAL,
    Source.PROJECT,
    Source.USER,
)
"""The settings files, highest precedence first: :func:`load` reads them in this order."""


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one settings file."""

    path: str
    key: str
    value: str
    expected: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "key": self.key, "value": self.value, "expected": self.expected}

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        got = f" (got {self.value})" if self.value else ""
        return f"{where}: {self.expected}{got}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- validators

Validator = Callable[[Any], str | None]
"""Returns what was expected when the value is wrong, else ``None``."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _expect_bool(value: Any) -> str | None:
    return (
        None
        if isinstance(value, bool)
        else f"expected true or false, but received {_type_name(value)}"
    )


def _whole_number_at_least_1(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a whole number of days, but received {_type_name(value)}"
    if isinstance(value, float) and not value.is_integer():
        return "expected a whole number of days"
    if value < 1:
        return "must be a whole number greater than or equal to 1 (0 would be ambiguous: refused)"
    return None


def _probability(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number between 0 and 1, but received {_type_name(value)}"
    if not 0 <= value <= 1:
        return "must be between 0 and 1"
    return None


def _string_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"expected a list of strings, but received {_type_name(value)}"
    return None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return "expected an http:// or https:// URL"
    return None


def _one_of(*choices: str) -> Validator:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"expected one of {', '.join(choices)}"

    return check


def _redaction(value: Any) -> str | None:
    # A kind is written into ``[REDACTED:<kind>]`` markers: lower-case letters, digits and _.
    kind_characters = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
    if not isinstance(value, dict):
        return f"expected an object with 'rules' and 'allow', but received {_type_name(value)}"
    unknown = set(value) - {"rules", "allow"}
    if unknown:
        return f"unknown keys {sorted(unknown)}; expected 'rules' and 'allow'"
    rules = value.get("rules", [])
    if not isinstance(rules, list) or not all(
        isinstance(rule, dict)
        and isinstance(rule.get("kind"), str)
        and isinstance(rule.get("pattern"), str)
        and all(isinstance(rule.get(k, ""), str) for k in ("keyword",))
        for rule in rules
    ):
        return 'rules: expected a list of {"kind": str, "pattern": str, "keyword": str}'
    for rule in rules:
        unknown = set(rule) - {"kind", "pattern", "keyword"}
        if unknown:
            return f"rules: unknown keys {sorted(unknown)}; expected 'kind', 'pattern', 'keyword'"
        if not rule["kind"] or not set(rule["kind"]) <= kind_characters:
            return (
                f"rules: kind {rule['kind']!r} may hold only lower-case letters, digits and _ "
                "(it is written into [REDACTED:<kind>] markers)"
            )
        if not rule["pattern"]:
            return f"rules: the pattern of kind {rule['kind']!r} is empty"
    return _string_list(value.get("allow", []))


TOP_LEVEL_KEYS: dict[str, Validator] = {
    "cleanupPeriodDays": _whole_number_at_least_1,
    "feedbackSurveyRate": _probability,
    "skipWebFetchPreflight": _expect_bool,
    "autoUpdates": _expect_bool,
}
"""Keys of the reference agent that airlock reads. Other keys are the agent's and pass through."""

AIRLOCK_KEYS: dict[str, Validator] = {
    "accountType": _one_of(
        *(kind.value for kind in AccountType if kind is not AccountType.UNKNOWN)
    ),
    "modelImprovement": _expect_bool,
    "zeroDataRetention": _expect_bool,
    "productFeedbackDisabled": _expect_bool,
    "developmentPartnerProgram": _expect_bool,
    "gateway": _expect_bool,
    "collectorUrl": _http_url,
    "domainSafetyUrl": _http_url,
    "webFetchPrivateMode": _expect_bool,
    "redaction": _redaction,
}
"""airlock's own keys, under ``"airlock": {…}`` in any settings file (see the README)."""

PERMISSION_LISTS = ("allow", "ask", "deny")


def validate(data: Mapping[str, Any], path: str) -> list[Problem]:
    """Every problem in one parsed settings file, in one pass."""
    problems: list[Problem] = []

    def check(key: str, value: Any, validator: Validator) -> None:
        expected = validator(value)
        if expected is not None:
            problems.append(Problem(path, key, _shown(value), expected))

    for key, validator in TOP_LEVEL_KEYS.items():
        if key in data:
            check(key, data[key], validator)
    if "env" in data:
        env = data["env"]
        if not isinstance(env, dict):
            problems.append(Problem(path, "env", _shown(env), "expected an object of strings"))
        else:
            for name, value in env.items():
                if not isinstance(value, str):
                    problems.append(
                        Problem(
                            path,
                            f"env.{name}",
                            _shown(value),
                            f"expected a string, but received {_type_name(value)}",
                        )
                    )
    if "permissions" in data:
        permissions = data["permissions"]
        if not isinstance(permissions, dict):
            problems.append(Problem(path, "permissions", _shown(permissions), "expected an object"))
        else:
            for name in PERMISSION_LISTS:
                if name in permissions:
                    check(f"permissions.{name}", permissions[name], _string_list)
    if "airlock" in data:
        ours = data["airlock"]
        if not isinstance(ours, dict):
            problems.append(Problem(path, "airlock", _shown(ours), "expected an object"))
        else:
            for key, value in ours.items():
                known = AIRLOCK_KEYS.get(key)
                if known is None:
                    expected = "unknown key; expected one of " + ", ".join(AIRLOCK_KEYS)
                    problems.append(Problem(path, f"airlock.{key}", "", expected))
                else:
                    check(f"airlock.{key}", value, known)
    if "sandbox" in data:
        problems += _sandbox_problems(data["sandbox"], path)
    return problems


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True, slots=True)
class Layer:
    """One settings file: where it is, what it says, and what is wrong with it."""

    origin: Origin
    data: Mapping[str, Any]
    problems: tuple[Problem, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


def read_layer(path: Path, source: Source) -> Layer | None:
    """Read one settings file; ``None`` when it does not exist."""
    origin = Origin(source, str(path))
    try:
        if path.stat().st_size > MAX_SETTINGS_BYTES:
            return Layer(
                origin,
                {},
                (
                    Problem(
                        str(path), "", "", f"file larger than {MAX_SETTINGS_BYTES} bytes: refused"
                    ),
                ),
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        return Layer(
            origin, {}, (Problem(str(path), "", "", f"cannot be read: {error.strerror or error}"),)
        )
    return parse_layer(raw, origin)


def parse_layer(raw: bytes | str, origin: Origin) -> Layer:
    """Parse and validate the text of one settings file."""
    path = origin.path or "<settings>"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        where = (
            f"line {error.lineno} column {error.colno}: "
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        return Layer(origin, {}, (Problem(path, "", "", f"not valid JSON ({where}{message})"),))
    if not isinstance(data, dict):
        return Layer(
            origin,
            {},
            (Problem(path, "", _shown(data), "expected a JSON object at the top level"),),
        )
    return Layer(origin, data, tuple(validate(data, path)))


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
    return Layer(Origin(Source.MANAGED, shown or str(directory)), data, problems)


def config_dir(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """``$CLAUDE_CONFIG_DIR``, else ``~/.claude``."""
    if environ.get("CLAUDE_CONFIG_DIR"):
        return Path(environ["CLAUDE_CONFIG_DIR"]).expanduser()
    base = home if home is not None else Path(environ.get("HOME") or Path.home())
    return base / ".claude"


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class RedactionRule:
    """One rule of ``airlock.redaction.rules``, as written in a settings file."""

    kind: str
    pattern: str
    keyword: str = ""


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    """``airlock.redaction`` of every usable settings file, merged (lists unioned)."""

    rules: tuple[RedactionRule, ...] = ()
    """Rules added after the built-in table, lowest precedence first (as merged)."""
    allow: tuple[str, ...] = ()
    """Values never redacted."""
    files: tuple[str, ...] = ()
    """The settings files that add rules, highest precedence first (to name them in errors)."""
    problems: tuple[Problem, ...] = ()
    """Problems that leave ``airlock.redaction`` undetermined (a file that sets it, or may set
    it, cannot be used): redacting without the rules the user wrote would let through what
    they meant to hide, so a redactor refuses to run while there are any."""


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """Where feedback bundles and survey ratings go: ``AIRLOCK_COLLECTOR_URL`` (environment or
    a settings ``env`` block), else ``airlock.collectorUrl``; ``url`` is ``None`` when unset."""

    url: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class Loaded:
    """Everything read: the layers, every problem, the engine's context and where things are."""

    context: Context
    layers: tuple[Layer, ...]
    config_dir: Path
    project_dir: Path
    merged: Mapping[str, Any] = field(default_factory=dict)
    """The valid layers merged. Prefer the typed values below; this goes once nothing reads it."""
    redaction: RedactionSettings = RedactionSettings()
    collector: CollectorSettings = CollectorSettings(None, Origin(Source.DEFAULT))

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(problem for layer in self.layers for problem in layer.problems)

    @property
    def managed_invalid(self) -> bool:
        return bool(self.context.managed_invalid)

    def airlock(self, key: str) -> Any:
        """A validated value of our own key ``airlock.<key>``, or ``None``.

        Prefer :attr:`redaction` and :attr:`collector`; this goes once nothing reads it.
        """
        ours = self.merged.get("airlock")
        return ours.get(key) if isinstance(ours, dict) else None

    def problems_for(self, key: str) -> tuple[Problem, ...]:
        """Problems that leave ``key`` undetermined.

        Nothing in an unusable file takes effect, so ``key`` is undetermined when any file that
        sets it has a problem (with ``key`` or any other key), or when a file could not be read
        or parsed at all (it may have set it).
        """
        return _problems_for(self.layers, key)


def _problems_for(layers: tuple[Layer, ...], key: str) -> tuple[Problem, ...]:
    path = tuple(key.split("."))
    return tuple(
        problem
        for layer in layers
        if not layer.valid and (not layer.data or _lookup(layer.data, path)[0])
        for problem in layer.problems
    )


_SETTINGS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any] | None]] = {
    "account_type": (("airlock", "accountType"), AccountType),
    "model_improvement": (("airlock", "modelImprovement"), None),
    "zero_data_retention": (("airlock", "zeroDataRetention"), None),
    "product_feedback_disabled": (("airlock", "productFeedbackDisabled"), None),
    "development_partner_program": (("airlock", "developmentPartnerProgram"), None),
    "gateway": (("airlock", "gateway"), None),
    "cleanup_period_days": (("cleanupPeriodDays",), int),
    "feedback_survey_rate": (("feedbackSurveyRate",), float),
    "skip_webfetch_preflight": (("skipWebFetchPreflight",), None),
    "domain_safety_url": (("airlock", "domainSafetyUrl"), None),
    "webfetch_private_mode": (("airlock", "webFetchPrivateMode"), None),
    "auto_updates": (("autoUpdates",), None),
    "collector_url": (("airlock", "collectorUrl"), None),
}
"""Each setting of the engine's :class:`Context`: its key path in a settings file and how to
convert the (validated) value. A setting no usable file sets keeps the Context's default."""


def load(
    cwd: Path,
    environ: Mapping[str, str],
    settings_file: Path | str | None = None,
) -> Loaded:
    """Read every settings source for a session in ``cwd`` and build the engine's context."""
    home = config_dir(environ)
    layers = tuple(_layers(cwd, home, environ, settings_file))
    usable = [layer for layer in layers if layer.valid]
    merged: dict[str, Any] = {}
    for layer in reversed(usable):
        merged = merge(merged, layer.data)
    found = {
        name: setting
        for name, (path, convert) in _SETTINGS.items()
        if (setting := _setting(usable, path, convert)) is not None
    }
    context = Context(
        env=_variables(layers, environ),
        transcript_share_declined=_declined(home),
        permissions=_permissions(layers),
        managed_invalid=tuple(
            layer.origin.path or "managed settings"
            for layer in layers
            if layer.origin.source is Source.MANAGED and not layer.valid
        ),
        cleanup_period_days_by_file=tuple(
            Setting(int(value), layer.origin)
            for layer in usable
            for known, value in (_lookup(layer.data, ("cleanupPeriodDays",)),)
            if known
        ),
        **found,
    )
    collector = resolve_collector_url(context)
    return Loaded(
        context,
        layers,
        home,
        cwd,
        merged,
        redaction=_redaction_settings(layers, merged),
        collector=CollectorSettings(collector.value, collector.origin),
    )


def _layers(
    cwd: Path, home: Path, environ: Mapping[str, str], settings_file: Path | str | None
) -> Iterator[Layer]:
    """Every settings file that exists, in :data:`LAYER_ORDER`."""
    readers: dict[Source, Callable[[], Layer | None]] = {
        Source.MANAGED: lambda: read_managed(managed_dir(environ)),
        Source.COMMAND_LINE: lambda: (
            None if settings_file is None else _command_line_layer(settings_file)
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


def _redaction_settings(layers: tuple[Layer, ...], merged: Mapping[str, Any]) -> RedactionSettings:
    problems = _problems_for(layers, "airlock.redaction")
    found, value = _lookup(merged, ("airlock", "redaction"))
    if problems or not found:
        return RedactionSettings(problems=problems)
    rules = [
        RedactionRule(str(rule["kind"]), str(rule["pattern"]), str(rule.get("keyword", "")))
        for rule in value.get("rules", [])
    ]
    files = []
    for layer in layers:
        known, theirs = _lookup(layer.data, ("airlock", "redaction"))
        if known and any(rule in value.get("rules", []) for rule in theirs.get("rules", [])):
            files.append(layer.origin.path or layer.origin.describe())
    return RedactionSettings(
        rules=tuple(rules),
        allow=tuple(str(item) for item in value.get("allow", [])),
        files=tuple(files),
    )


def _command_line_layer(settings_file: Path | str) -> Layer:
    text = str(settings_file)
    if text.lstrip().startswith("{"):
        return parse_layer(text, Origin(Source.COMMAND_LINE, "--settings (inline JSON)"))
    layer = read_layer(Path(text), Source.COMMAND_LINE)
    if layer is None:
        problem = Problem(text, "", "", "--settings file does not exist")
        return Layer(Origin(Source.COMMAND_LINE, text), {}, (problem,))
    return layer


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _setting(
    layers: list[Layer], path: tuple[str, ...], convert: Callable[[Any], Any] | None
) -> Setting[Any] | None:
    """The value of the highest layer that sets ``path``, or ``None`` when none does."""
    for layer in layers:
        found, value = _lookup(layer.data, path)
        if found:
            return Setting(convert(value) if convert else value, layer.origin)
    return None


def _variables(layers: tuple[Layer, ...], environ: Mapping[str, str]) -> dict[str, Var]:
    """Every variable the engine reads, with each value and origin, highest precedence first.

    From a file that cannot be used, only opt-outs are kept: a typo elsewhere in a file must
    not silently undo the opt-out it also holds.
    """
    values: dict[str, list[tuple[str, Origin]]] = {}
    for layer in layers:
        env = layer.data.get("env")
        if not isinstance(env, dict):
            continue
        for name, value in env.items():
            kind = VARIABLES.get(name)
            if kind is None:
                continue
            if not layer.valid and kind not in (Kind.NON_EMPTY, Kind.BOOLEAN):
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            values.setdefault(name, []).append((text, layer.origin))
    for name in VARIABLES:
        if name in environ:
            values.setdefault(name, []).append((environ[name], Origin(Source.ENVIRONMENT)))
    return {name: Var(name, tuple(found)) for name, found in values.items()}


def _permissions(layers: tuple[Layer, ...]) -> Permissions:
    lists: dict[str, list[Rule]] = {name: [] for name in PERMISSION_LISTS}
    for layer in layers:
        permissions = layer.data.get("permissions")
        if not isinstance(permissions, dict):
            continue
        for name in PERMISSION_LISTS:
            if not layer.valid and name == "allow":
                continue  # an unusable file may only restrict
            rules = permissions.get(name)
            if isinstance(rules, list):
                lists[name] += [Rule(text, layer.origin) for text in rules if isinstance(text, str)]
    return Permissions(tuple(lists["allow"]), tuple(lists["ask"]), tuple(lists["deny"]))


def _declined(home: Path) -> Setting[bool]:
    path = home / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Setting(False, Origin(Source.DEFAULT))
    if isinstance(state, dict) and state.get("transcriptShareDeclined") is True:
        return Setting(True, Origin(Source.STATE, str(path)))
    return Setting(False, Origin(Source.DEFAULT))


def load_here(settings_file: Path | str | None = None) -> Loaded:
    """:func:`load` for this process: its working directory and environment."""
    return load(Path.cwd(), os.environ, settings_file)


# --------------------------------------------------------------------------- sandbox.* (airlock run)
#
# The reference agent's ``sandbox`` block, as ``airlock run`` reads it. Only the keys below are
# validated; the agent's other sandbox keys pass through untouched.

SANDBOX_FILESYSTEM_LISTS = ("allowWrite", "denyWrite", "denyRead")
SANDBOX_NETWORK_LISTS = ("allowedDomains", "deniedDomains")
SANDBOX_RESTRICTING = frozenset({"denyWrite", "denyRead", "deniedDomains"})
"""What an unusable file still contributes: entries that can only take access away."""


def _sandbox_path_list(value: Any) -> str | None:
    wrong = _string_list(value)
    if wrong is not None:
        return wrong
    for item in value:
        if not item.strip() or "\x00" in item:
            return (
                f"entry {item!r}: expected a path (//absolute, ~/home, /settings dir, ./relative)"
            )
    return None


def _sandbox_problems(sandbox: Any, path: str) -> list[Problem]:
    if not isinstance(sandbox, dict):
        return [Problem(path, "sandbox", _shown(sandbox), "expected an object")]
    problems: list[Problem] = []
    for block, lists, validator in (
        ("filesystem", SANDBOX_FILESYSTEM_LISTS, _sandbox_path_list),
        ("network", SANDBOX_NETWORK_LISTS, _string_list),
    ):
        if block not in sandbox:
            continue
        value = sandbox[block]
        if not isinstance(value, dict):
            problems.append(Problem(path, f"sandbox.{block}", _shown(value), "expected an object"))
            continue
        for name in lists:
            if name in value:
                expected = validator(value[name])
                if expected is not None:
                    key = f"sandbox.{block}.{name}"
                    problems.append(Problem(path, key, _shown(value[name]), expected))
        if block == "network" and "allowManagedDomainsOnly" in value:
            expected = _expect_bool(value["allowManagedDomainsOnly"])
            if expected is not None:
                key = "sandbox.network.allowManagedDomainsOnly"
                problems.append(
                    Problem(path, key, _shown(value["allowManagedDomainsOnly"]), expected)
                )
    return problems


@dataclass(frozen=True, slots=True)
class SandboxEntry:
    """One entry of a ``sandbox`` list, with the file it came from."""

    text: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """The ``sandbox`` block of every settings file, merged: lists unioned, highest file first.

    From a file with problems only :data:`SANDBOX_RESTRICTING` entries count. When managed
    settings set ``allowManagedDomainsOnly``, allowed domains come from managed settings only.
    """

    allow_write: tuple[SandboxEntry, ...] = ()
    deny_write: tuple[SandboxEntry, ...] = ()
    deny_read: tuple[SandboxEntry, ...] = ()
    allowed_domains: tuple[SandboxEntry, ...] = ()
    denied_domains: tuple[SandboxEntry, ...] = ()
    managed_domains_only: bool = False


def sandbox_settings(loaded: Loaded) -> SandboxSettings:
    """The ``sandbox`` settings in force for ``loaded`` (see :class:`SandboxSettings`)."""
    lists: dict[str, list[SandboxEntry]] = {}
    managed_only = False
    for layer in loaded.layers:
        sandbox = layer.data.get("sandbox")
        if not isinstance(sandbox, dict):
            continue
        network = sandbox.get("network")
        if layer.origin.source is Source.MANAGED and layer.valid and isinstance(network, dict):
            managed_only = managed_only or network.get("allowManagedDomainsOnly") is True
        for block, names in (
            ("filesystem", SANDBOX_FILESYSTEM_LISTS),
            ("network", SANDBOX_NETWORK_LISTS),
        ):
            found = sandbox.get(block)
            if not isinstance(found, dict):
                continue
            for name in names:
                entries = found.get(name)
                if not isinstance(entries, list) or not (
                    layer.valid or name in SANDBOX_RESTRICTING
                ):
                    continue
                known = lists.setdefault(name, [])
                seen = {entry.text for entry in known}
                known += [
                    SandboxEntry(text, layer.origin)
                    for text in entries
                    if isinstance(text, str) and text.strip() and text not in seen
                ]
    if managed_only:
        lists["allowedDomains"] = [
            entry
            for entry in lists.get("allowedDomains", [])
            if entry.origin.source is Source.MANAGED
        ]
    found = {name: tuple(entries) for name, entries in lists.items()}
    return SandboxSettings(
        found.get("allowWrite", ()),
        found.get("denyWrite", ()),
        found.get("denyRead", ()),
        found.get("allowedDomains", ()),
        found.get("deniedDomains", ()),
        managed_only,
    )


def sandbox_path(entry: SandboxEntry, home: Path, cwd: Path, environ: Mapping[str, str]) -> Path:
    """What a ``sandbox.filesystem`` path names, by its prefix, as the reference agent reads it.

    ``//x`` is the absolute ``/x``; ``~/x`` is under the home; ``/x`` is under the folder of
    the settings file that says it (the managed settings folder for managed settings, the
    project for inline ``--settings``); ``./x`` and ``x`` are under the project (``cwd``).
    """
    text = entry.text
    if text.startswith("//"):
        return Path("/" + text.lstrip("/"))
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    if text.startswith("/"):
        return _settings_folder(entry.origin, cwd, environ) / text.lstrip("/")
    return cwd / text


def _settings_folder(origin: Origin, cwd: Path, environ: Mapping[str, str]) -> Path:
    if origin.source is Source.MANAGED:
        return managed_dir(environ)
    if origin.path is None or origin.path.startswith("--settings"):
        return cwd
    return Path(origin.path).parent
