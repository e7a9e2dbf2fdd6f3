"""User rules in settings: checked when settings are read, refused cleanly when unusable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airlock.errors import SettingsError
from airlock.redact import Redactor, Rule
from airlock.settings import load, validate
from tests.cli import airlock

GITHUB = "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"


def _settings(project: Path, data: dict[str, Any] | str) -> Path:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"airlock": {"redaction": {"rules": list(rules)}}}


@pytest.mark.parametrize(
    ("kind", "valid"),
    [("acme", True), ("acme_2", True), ("Bad Kind!", False), ("ACME", False), ("", False)],
)
def test_the_settings_validator_checks_rule_kinds(kind: str, valid: bool) -> None:
    """A rule's kind may hold only lower-case letters, digits and _ (it goes into markers)."""
    problems = validate(_rules({"kind": kind, "pattern": "acme-[0-9]+"}), "s.json")
    assert (not problems) is valid
    if not valid:
        assert problems[0].key == "airlock.redaction"
        assert "lower-case letters, digits and _" in problems[0].expected


def test_a_bad_kind_given_to_the_library_is_refused() -> None:
    """The library checks kinds too: no marker like [REDACTED:Bad Kind!] can be produced."""
    with pytest.raises(SettingsError, match="Bad Kind!"):
        Redactor(extra_rules=[Rule("Bad Kind!", "acme-[0-9]+", "")])


def test_an_invalid_pattern_gives_one_clean_message_naming_file_kind_and_problem(
    project: Path,
) -> None:
    """No library log lines, no bytes repr: the file, the kind and what is wrong, then exit 2."""
    path = _settings(project, _rules({"kind": "acme", "pattern": "acme-(["}))
    result = airlock("redact", "-", stdin=b"acme-1\n", cwd=project, text=False)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert "'acme'" in lines[0]
    assert "missing ]" in lines[0]
    for noise in ("absl", "re2.cc", "WARNING", "b'"):
        assert noise not in lines[0]


@pytest.mark.parametrize(
    "contents",
    [
        # The rule itself is wrong.
        _rules({"kind": "Bad Kind!", "pattern": "acme-[0-9]+"}),
        # Another key of the same file is wrong: nothing in the file is in effect.
        {**_rules({"kind": "acme", "pattern": "acme-[0-9]+"}), "cleanupPeriodDays": -1},
        # The file is not JSON: it may have set rules.
        '{"airlock": {"redaction": {"rules": [{"kind": "acme", "pattern": "acme-[0-9]+"}]}},',
    ],
    ids=["bad-kind", "other-key-invalid", "not-json"],
)
def test_unusable_redaction_settings_are_refused_naming_the_file(
    project: Path, contents: dict[str, Any] | str
) -> None:
    """redact never runs silently without the user's rules: exit 2, the file named, no output."""
    path = _settings(project, contents)
    result = airlock("redact", "-", stdin=f"acme-123 {GITHUB}\n".encode(), cwd=project, text=False)
    assert result.returncode == 2
    assert result.stdout == b""
    assert f"airlock redact: airlock.redaction cannot be read from {path}".encode() in result.stderr


def test_the_library_refuses_unusable_redaction_settings(project: Path, home: Path) -> None:
    """Redactor.from_loaded raises a SettingsError naming the file, for every caller."""
    path = _settings(
        project, {**_rules({"kind": "acme", "pattern": "acme-[0-9]+"}), "cleanupPeriodDays": 0}
    )
    loaded = load(project, {"HOME": str(home)})
    with pytest.raises(SettingsError, match=str(path)):
        Redactor.from_loaded(loaded)
