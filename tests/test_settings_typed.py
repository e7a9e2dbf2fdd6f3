"""The typed values the settings hand to capabilities: redaction rules, the collector URL, the
order the files are read in, and every file's retention period for the engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airlock.policy import Source
from airlock.settings import (
    LAYER_ORDER,
    CollectorSettings,
    Loaded,
    RedactionRule,
    RedactionSettings,
    load,
)
from tests.conftest import write_json

RULE_A = {"kind": "acme", "pattern": "ACME-[0-9]{8}"}
RULE_B = {"kind": "globex", "pattern": "GX_[A-Z]{10}", "keyword": "GX_"}


def _load(project: Path, environ: dict[str, str] | None = None) -> Loaded:
    return load(project, {**os.environ, **(environ or {})})


def test_redaction_rules_of_every_file_merge_in_order(project: Path, config_dir: Path) -> None:
    """Rules and allowed values of every usable file are unioned, lowest precedence first,
    and the files that add rules are named, highest precedence first."""
    user = config_dir / "settings.json"
    shared = project / ".claude" / "settings.json"
    write_json(user, {"airlock": {"redaction": {"rules": [RULE_A], "allow": ["x"]}}})
    write_json(shared, {"airlock": {"redaction": {"rules": [RULE_B, RULE_A], "allow": ["y"]}}})
    assert _load(project).redaction == RedactionSettings(
        rules=(
            RedactionRule("acme", "ACME-[0-9]{8}"),
            RedactionRule("globex", "GX_[A-Z]{10}", "GX_"),
        ),
        allow=("x", "y"),
        files=(str(shared), str(user)),
    )


def test_no_redaction_settings_give_the_empty_value(project: Path) -> None:
    """Without airlock.redaction anywhere, there are no extra rules and no problems."""
    assert _load(project).redaction == RedactionSettings()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"airlock": {"redaction": {"rules": [{"kind": "A!"}]}}}', id="bad_rule"),
        pytest.param("{not json", id="unparseable_file"),
        pytest.param(
            '{"cleanupPeriodDays": 0, "airlock": {"redaction": {"rules": []}}}',
            id="other_key_wrong",
        ),
    ],
)
def test_an_unusable_file_leaves_redaction_undetermined(project: Path, text: str) -> None:
    """A file that sets (or may set) airlock.redaction and cannot be used gives no rules and
    names its problems, so the redactor can refuse rather than run without them."""
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    settings = _load(project).redaction
    assert settings.rules == ()
    assert settings.problems
    assert {problem.path for problem in settings.problems} == {str(path)}


COLLECTOR = [
    pytest.param({}, None, None, Source.DEFAULT, id="unset"),
    pytest.param({}, "https://c.example", "https://c.example", Source.PROJECT, id="setting"),
    pytest.param(
        {"AIRLOCK_COLLECTOR_URL": "http://127.0.0.1:9"},
        "https://c.example",
        "http://127.0.0.1:9",
        Source.ENVIRONMENT,
        id="variable_beats_setting",
    ),
    pytest.param(
        {"AIRLOCK_COLLECTOR_URL": ""},
        "https://c.example",
        "https://c.example",
        Source.PROJECT,
        id="empty_variable_leaves_the_setting",
    ),
]


@pytest.mark.parametrize(("environ", "setting", "url", "source"), COLLECTOR)
def test_the_collector_url_is_resolved(
    project: Path, environ: dict[str, str], setting: str | None, url: str | None, source: Source
) -> None:
    """AIRLOCK_COLLECTOR_URL wins over airlock.collectorUrl, an empty one counting as unset;
    the origin says where the URL came from."""
    if setting is not None:
        write_json(project / ".claude" / "settings.json", {"airlock": {"collectorUrl": setting}})
    collector = _load(project, environ).collector
    assert isinstance(collector, CollectorSettings)
    assert (collector.url, collector.origin.source) == (url, source)


def test_files_are_read_in_the_declared_precedence(
    project: Path, config_dir: Path, managed_dir: Path, tmp_path: Path
) -> None:
    """The layers come out in LAYER_ORDER, whatever order the files were written in."""
    write_json(config_dir / "settings.json", {})
    write_json(project / ".claude" / "settings.json", {})
    write_json(project / ".claude" / "settings.local.json", {})
    write_json(managed_dir / "managed-settings.json", {})
    write_json(tmp_path / "cli.json", {})
    loaded = load(project, dict(os.environ), str(tmp_path / "cli.json"))
    assert tuple(layer.origin.source for layer in loaded.layers) == LAYER_ORDER


def test_every_file_s_retention_period_reaches_the_engine(project: Path, config_dir: Path) -> None:
    """cleanupPeriodDays of each usable file is passed on with its file, highest first; an
    unusable file's is not."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": 14.0})
    write_json(project / ".claude" / "settings.json", {"cleanupPeriodDays": 3})
    write_json(
        project / ".claude" / "settings.local.json", {"cleanupPeriodDays": 2, "autoUpdates": 1}
    )
    by_file = _load(project).context.cleanup_period_days_by_file
    assert [(s.value, s.origin.source) for s in by_file] == [(3, Source.PROJECT), (14, Source.USER)]
