"""What a settings file may hold: every problem of one parsed file, in one pass.

A validator returns what was expected when a value is wrong, else ``None``; :func:`validate`
runs the tables below (the reference agent's keys we read, our own ``airlock.*`` keys, the
``permissions`` lists and the ``sandbox`` block) and reports each problem with its path and key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airlock._words import with_article
from airlock.policy.model import AccountType


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


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


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
    if not isinstance(value, list):
        return f"expected a list of strings, but received {_type_name(value)}"
    for place, item in enumerate(value):
        if not isinstance(item, str):  # the list is right, one entry is not
            named = _type_name(item)  # "null" takes no article
            named = named if named == "null" else with_article(named)
            return f"expected a list of strings, but entry {place + 1} is {named}"
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


_LONE_ENTRY_TAKEN = "taken as a list of that one entry, as it can only restrict"
"""Said of a restricting list written as one string: the entry is in effect."""


def _lone_entry(validator: Validator) -> Validator:
    """``validator`` for a list that can only restrict: one string is the list of that entry
    (it is in effect, and reported as a problem that says so), checked as such."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return validator(value)
        wrong = validator([value])
        if wrong is not None:
            return wrong
        return f"expected a list of strings, but received string: {_LONE_ENTRY_TAKEN}"

    return check


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
    "inspect": _lone_entry(_string_list),  # it can only restrict: a lone string is one host
}
"""airlock's own keys, under ``"airlock": {…}`` in any settings file (see the README)."""

PERMISSION_LISTS = ("allow", "ask", "deny")
PERMISSION_RESTRICTING = frozenset({"ask", "deny"})
"""Permission lists that can only take access away: taken from a file with problems, and
a lone rule written as a string is taken as a one-item list (see :func:`_lone_entry`)."""


def validate(data: Mapping[str, Any], path: str) -> list[Problem]:
    """Every problem in one parsed settings file, in one pass."""
    problems: list[Problem] = []

    def check(key: str, value: Any, validator: Validator) -> None:
        expected = validator(value)
        if expected is not None:
            problems.append(Problem(path, key, shown(value), expected))

    for key, validator in TOP_LEVEL_KEYS.items():
        if key in data:
            check(key, data[key], validator)
    if "env" in data:
        env = data["env"]
        if not isinstance(env, dict):
            problems.append(Problem(path, "env", shown(env), "expected an object of strings"))
        else:
            for name, value in env.items():
                if not isinstance(value, str):
                    problems.append(
                        Problem(
                            path,
                            f"env.{name}",
                            shown(value),
                            f"expected a string, but received {_type_name(value)}",
                        )
                    )
    if "permissions" in data:
        permissions = data["permissions"]
        if not isinstance(permissions, dict):
            problems.append(Problem(path, "permissions", shown(permissions), "expected an object"))
        else:
            for name in PERMISSION_LISTS:
                if name in permissions:
                    restricting = name in PERMISSION_RESTRICTING
                    validator = _lone_entry(_string_list) if restricting else _string_list
                    check(f"permissions.{name}", permissions[name], validator)
    if "airlock" in data:
        ours = data["airlock"]
        if not isinstance(ours, dict):
            problems.append(Problem(path, "airlock", shown(ours), "expected an object"))
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


# ``sandbox.*`` (airlock run):
#
# The reference agent's ``sandbox`` block, as ``airlock run`` reads it. Only the keys below are
# validated; the agent's other sandbox keys pass through untouched.

SANDBOX_FILESYSTEM_LISTS = ("allowWrite", "denyWrite", "denyRead")
SANDBOX_NETWORK_LISTS = ("allowedDomains", "deniedDomains")
SANDBOX_RESTRICTING = frozenset({"denyWrite", "denyRead", "deniedDomains"})
"""What an unusable file still contributes: entries that can only take access away. One
written as a lone string is taken as a one-item list; the widening lists never are."""


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


def _domain_list(value: Any) -> str | None:
    wrong = _string_list(value)
    if wrong is not None:
        return wrong
    for item in value:
        if not item.strip():
            return f"entry {item!r}: expected a host such as example.com or *.example.com"
    return None


def _sandbox_problems(sandbox: Any, path: str) -> list[Problem]:
    if not isinstance(sandbox, dict):
        return [Problem(path, "sandbox", shown(sandbox), "expected an object")]
    problems: list[Problem] = []
    for block, lists, validator in (
        ("filesystem", SANDBOX_FILESYSTEM_LISTS, _sandbox_path_list),
        ("network", SANDBOX_NETWORK_LISTS, _domain_list),
    ):
        if block not in sandbox:
            continue
        value = sandbox[block]
        if not isinstance(value, dict):
            problems.append(Problem(path, f"sandbox.{block}", shown(value), "expected an object"))
            continue
        for name in lists:
            if name in value:
                checked = _lone_entry(validator) if name in SANDBOX_RESTRICTING else validator
                expected = checked(value[name])
                if expected is not None:
                    key = f"sandbox.{block}.{name}"
                    problems.append(Problem(path, key, shown(value[name]), expected))
        if block == "network" and "allowManagedDomainsOnly" in value:
            expected = _expect_bool(value["allowManagedDomainsOnly"])
            if expected is not None:
                key = "sandbox.network.allowManagedDomainsOnly"
                problems.append(
                    Problem(path, key, shown(value["allowManagedDomainsOnly"]), expected)
                )
    return problems
