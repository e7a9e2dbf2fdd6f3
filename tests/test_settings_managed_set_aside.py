"""``AIRLOCK_MANAGED_SETTINGS_DIR`` moves where airlock reads managed settings; the agent itself
still reads the platform's own folder. When that folder holds managed settings, airlock says
loudly that they are not read, so an organisation's policy never stops applying to what
airlock decides without a word. (The platform's folder is a temporary one here: the tests do
not write ``/etc``.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airlock.cli._common import report_problems
from airlock.settings import layers, load
from tests.conftest import write_json


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This platform's managed settings folder, as the agent reads it, in a temporary place."""
    folder = tmp_path / "etc-claude-code"
    folder.mkdir()
    monkeypatch.setattr(layers, "LINUX_MANAGED_DIR", folder)
    monkeypatch.setattr(layers, "MACOS_MANAGED_DIR", folder)
    return folder


@pytest.mark.parametrize("where", ["managed-settings.json", "managed-settings.d/10-org.json"])
def test_managed_settings_the_variable_sets_aside_are_said_loudly(
    platform: Path, project: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The platform's file is named, with the variable, and the head says it is not read."""
    (platform / where).parent.mkdir(parents=True, exist_ok=True)
    write_json(platform / where, {"env": {"DISABLE_TELEMETRY": "1"}})
    loaded = load(project, dict(os.environ))
    aside = loaded.managed_set_aside
    assert aside is not None and aside.path == str(platform)
    assert "AIRLOCK_MANAGED_SETTINGS_DIR=" in aside.value
    assert aside in loaded.problems
    report_problems(loaded)
    said = capsys.readouterr().err
    assert "MANAGED SETTINGS NOT READ" in said and str(platform) in said
    assert "the agent itself reads and applies these" in said


def test_nothing_is_said_when_the_platform_holds_none(
    platform: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty platform folder, or one with other files only, is not worth a word."""
    (platform / "managed-settings.d").mkdir()
    (platform / "managed-settings.d" / ".hidden.json").write_text("{}")
    (platform / "README").write_text("x")
    loaded = load(project, dict(os.environ))
    assert loaded.managed_set_aside is None and not loaded.problems
    report_problems(loaded)
    assert capsys.readouterr().err == ""


def test_the_variable_naming_the_platform_folder_sets_nothing_aside(
    platform: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pointing the variable at the platform's own folder reads it: nothing is set aside."""
    write_json(platform / "managed-settings.json", {"env": {"DISABLE_TELEMETRY": "1"}})
    monkeypatch.setenv("AIRLOCK_MANAGED_SETTINGS_DIR", str(platform) + "/")
    loaded = load(project, dict(os.environ))
    assert loaded.managed_set_aside is None
    assert not loaded.problems


def test_without_the_variable_the_platform_folder_is_read(
    platform: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, the platform's managed settings are airlock's: nothing set aside, they apply."""
    write_json(platform / "managed-settings.json", {"env": {"DISABLE_TELEMETRY": "1"}})
    monkeypatch.delenv("AIRLOCK_MANAGED_SETTINGS_DIR")
    loaded = load(project, dict(os.environ))
    assert loaded.managed_set_aside is None
    assert str(platform) in str(loaded.layers[0].origin.path)
