"""Loading: every settings source and the environment, to the engine's context and the typed
values the capabilities take (redaction rules, the collector URL)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
from airlock.settings.layers import (
    Layer,
    config_dir,
    lookup,
    managed_set_aside,
    merge,
    problems_for,
    read_layers,
    settings_bytes,
)
from airlock.settings.validation import PERMISSION_LISTS, PERMISSION_RESTRICTING, Problem

STATE_FILE = "airlock/state.json"
"""Remembered answers (``Don't ask again``), relative to the config dir."""


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
    redaction: RedactionSettings = RedactionSettings()
    collector: CollectorSettings = CollectorSettings(None, Origin(Source.DEFAULT))
    managed_set_aside: Problem | None = None
    """The platform's managed settings, when ``AIRLOCK_MANAGED_SETTINGS_DIR`` names another
    folder (:func:`airlock.settings.layers.managed_set_aside`): said with the problems."""

    @property
    def inspect_hosts(self) -> tuple[str, ...]:
        """``airlock.inspect``: the hosts whose TLS ``airlock run`` reads, as it takes them
        (:func:`airlock.settings.sandbox.inspect_setting`: every readable file's, a lone
        string as one host)."""
        from airlock.settings.sandbox import inspect_setting

        return inspect_setting(self).hosts

    @property
    def problems(self) -> tuple[Problem, ...]:
        aside = () if self.managed_set_aside is None else (self.managed_set_aside,)
        return aside + tuple(problem for layer in self.layers for problem in layer.problems)

    @property
    def managed_invalid(self) -> bool:
        return bool(self.context.managed_invalid)

    def problems_for(self, key: str) -> tuple[Problem, ...]:
        """Problems that leave ``key`` undetermined.

        Nothing in an unusable file takes effect, so ``key`` is undetermined when any file that
        sets it has a problem (with ``key`` or any other key), or when a file could not be read
        or parsed at all (it may have set it).
        """
        return problems_for(self.layers, key)


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
    layers = tuple(read_layers(cwd, home, environ, settings_file))
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
            for known, value in (lookup(layer.data, ("cleanupPeriodDays",)),)
            if known
        ),
        cleanup_period_days_problems=tuple(
            str(problem) for problem in problems_for(layers, "cleanupPeriodDays")
        ),
        **found,
    )
    collector = resolve_collector_url(context)
    return Loaded(
        context,
        layers,
        home,
        cwd,
        redaction=_redaction_settings(layers, merged),
        collector=CollectorSettings(collector.value, collector.origin),
        managed_set_aside=managed_set_aside(environ),
    )


def _redaction_settings(layers: tuple[Layer, ...], merged: Mapping[str, Any]) -> RedactionSettings:
    problems = problems_for(layers, "airlock.redaction")
    found, value = lookup(merged, ("airlock", "redaction"))
    if problems or not found:
        return RedactionSettings(problems=problems)
    rules = [
        RedactionRule(str(rule["kind"]), str(rule["pattern"]), str(rule.get("keyword", "")))
        for rule in value.get("rules", [])
    ]
    files = []
    for layer in layers:
        known, theirs = lookup(layer.data, ("airlock", "redaction"))
        if known and any(rule in value.get("rules", []) for rule in theirs.get("rules", [])):
            files.append(layer.origin.path or layer.origin.describe())
    return RedactionSettings(
        rules=tuple(rules),
        allow=tuple(str(item) for item in value.get("allow", [])),
        files=tuple(files),
    )


def _setting(
    layers: list[Layer], path: tuple[str, ...], convert: Callable[[Any], Any] | None
) -> Setting[Any] | None:
    """The value of the highest layer that sets ``path``, or ``None`` when none does."""
    for layer in layers:
        found, value = lookup(layer.data, path)
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
            if isinstance(rules, str) and name in PERMISSION_RESTRICTING:
                rules = [rules]  # one rule, not a list: it can only restrict, so it counts
            if isinstance(rules, list):
                lists[name] += [Rule(text, layer.origin) for text in rules if isinstance(text, str)]
    return Permissions(tuple(lists["allow"]), tuple(lists["ask"]), tuple(lists["deny"]))


def _declined(home: Path) -> Setting[bool]:
    path = home / STATE_FILE
    raw, _ = settings_bytes(path)  # never waiting on a FIFO made there
    try:
        state = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        return Setting(False, Origin(Source.DEFAULT))
    if isinstance(state, dict) and state.get("transcriptShareDeclined") is True:
        return Setting(True, Origin(Source.STATE, str(path)))
    return Setting(False, Origin(Source.DEFAULT))


def load_here(settings_file: Path | str | None = None) -> Loaded:
    """:func:`load` for this process: its working directory and environment."""
    return load(Path.cwd(), os.environ, settings_file)
