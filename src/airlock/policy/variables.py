"""How each environment variable counts as set.

Theory of operation
-------------------
A variable can be set in the process environment and in the ``env`` block of any settings
file. The rule for reading it depends on what it does:

* **Opt-outs** switch a flow off. An opt-out set in *any* source takes effect, and no source can
  switch back on what another switched off (``reference/observed.md``). This goes one step
  beyond the reference: an empty string in a project's ``env`` block does not cancel an opt-out
  from your own settings or shell, because a repository you clone must not be able to turn
  telemetry back on.

  - ``NON_EMPTY`` opt-outs count with any non-empty value, ``0`` and ``false`` included
    (``DISABLE_TELEMETRY``, ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``, …).
  - ``BOOLEAN`` opt-outs count unless the value is empty or one of ``0``, ``false``, ``no``,
    ``off`` (``DO_NOT_TRACK``: ``1`` disables, ``0`` does not).

* **Switches** select or re-enable something (``CLAUDE_CODE_USE_BEDROCK``, …). The first value
  in precedence order decides (settings ``env`` blocks over the process environment, managed
  first), an empty string meaning unset; only ``1``, ``true``, ``yes`` and ``on`` count.

* **Values** (an endpoint, a URL) are read like switches, without the truthiness test.
"""

from __future__ import annotations

from enum import Enum

from airlock.policy.model import Context, Origin


class Kind(Enum):
    NON_EMPTY = "any non-empty value"
    BOOLEAN = "a true value (not 0/false/no/off)"
    SWITCH = "1/true/yes/on"
    VALUE = "a value"


VARIABLES: dict[str, Kind] = {
    # opt-outs
    "DISABLE_TELEMETRY": Kind.NON_EMPTY,
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": Kind.NON_EMPTY,
    "DISABLE_ERROR_REPORTING": Kind.NON_EMPTY,
    "DISABLE_AUTOUPDATER": Kind.NON_EMPTY,
    "DO_NOT_TRACK": Kind.BOOLEAN,
    "DISABLE_FEEDBACK_COMMAND": Kind.BOOLEAN,
    "DISABLE_BUG_COMMAND": Kind.BOOLEAN,
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": Kind.BOOLEAN,
    # switches
    "CLAUDE_CODE_USE_BEDROCK": Kind.SWITCH,
    "CLAUDE_CODE_USE_VERTEX": Kind.SWITCH,
    "CLAUDE_CODE_USE_FOUNDRY": Kind.SWITCH,
    "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST": Kind.SWITCH,
    "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": Kind.SWITCH,
    # values
    "ANTHROPIC_BASE_URL": Kind.VALUE,
    "ANTHROPIC_BEDROCK_BASE_URL": Kind.VALUE,
    "AWS_REGION": Kind.VALUE,
    "AWS_DEFAULT_REGION": Kind.VALUE,
    "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION": Kind.VALUE,
    "ANTHROPIC_VERTEX_BASE_URL": Kind.VALUE,
    "ANTHROPIC_FOUNDRY_BASE_URL": Kind.VALUE,
    "ANTHROPIC_FOUNDRY_RESOURCE": Kind.VALUE,
    "OTEL_EXPORTER_OTLP_ENDPOINT": Kind.VALUE,
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": Kind.VALUE,
    "AIRLOCK_DOMAIN_SAFETY_URL": Kind.VALUE,
    "AIRLOCK_COLLECTOR_URL": Kind.VALUE,
}
"""Every variable the engine reads, with the rule that says when it counts as set."""

_FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def _counts(kind: Kind, value: str) -> bool:
    text = value.strip().lower()
    if kind is Kind.NON_EMPTY:
        return value != ""
    if kind is Kind.BOOLEAN:
        return is_set(value)
    if kind is Kind.SWITCH:
        return text in _TRUE_WORDS
    return value != ""


def is_set(value: str) -> bool:
    """Whether a boolean variable's ``value`` turns it on, as the agent reads one: anything but
    empty, ``0``, ``false``, ``no`` or ``off`` (any case, blanks around)."""
    text = value.strip().lower()
    return text != "" and text not in _FALSE_WORDS


def _say(name: str, value: str, origin: Origin) -> str:
    return f"{name}={shown(value)!r} in {origin.describe()}"


def shown(value: str) -> str:
    """``value`` as a reason quotes it: a URL's password replaced by ``***``.

    A reason reaches the user's screen, the audit log, and, in a refusal, the sandbox, where
    the variable itself was not passed because of that password
    (``https://svc:hunter2@gw.example`` → ``https://svc:***@gw.example``)."""
    scheme, separator, rest = value.partition("://")
    if not separator:
        return value
    end = min((rest.find(mark) for mark in "/?#" if mark in rest), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return value
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}{rest[end:]}"


def opt_out(context: Context, name: str) -> tuple[str, ...]:
    """Every place where the opt-out ``name`` is set, in words; empty when it is not set."""
    kind = VARIABLES[name]
    if kind not in (Kind.NON_EMPTY, Kind.BOOLEAN):  # pragma: no cover - table misuse
        raise ValueError(f"{name} is not an opt-out variable (it is read as {kind.value})")
    return tuple(
        _say(name, value, origin)
        for value, origin in context.var(name).values
        if _counts(kind, value)
    )


def first(context: Context, name: str) -> tuple[str, Origin] | None:
    """The deciding value of a switch or value variable and its origin, or ``None`` when unset."""
    for value, origin in context.var(name).values:
        return (value, origin) if value != "" else None
    return None


def switch(context: Context, name: str) -> str | None:
    """Describe the switch ``name`` when it is on, else ``None``."""
    found = first(context, name)
    if found is None or not _counts(VARIABLES[name], found[0]):
        return None
    return _say(name, found[0], found[1])
