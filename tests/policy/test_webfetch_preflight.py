"""The engine's webfetch_preflight decision: its service, its private mode, and who decided."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.policy import FlowId, State, decide
from airlock.settings import load
from tests.conftest import write_json

SERVICE = [
    pytest.param({}, {}, "https://api.anthropic.com", "the default", id="default"),
    pytest.param(
        {"AIRLOCK_DOMAIN_SAFETY_URL": "http://127.0.0.1:9000"},
        {},
        "http://127.0.0.1:9000",
        "AIRLOCK_DOMAIN_SAFETY_URL='http://127.0.0.1:9000' from the process environment",
        id="variable",
    ),
    pytest.param(
        {},
        {"airlock": {"domainSafetyUrl": "https://safety.corp.example/"}},
        "https://safety.corp.example",
        "airlock.domainSafetyUrl='https://safety.corp.example/' in project settings",
        id="setting",
    ),
    pytest.param(
        {"AIRLOCK_DOMAIN_SAFETY_URL": "http://127.0.0.1:9000"},
        {"airlock": {"domainSafetyUrl": "https://safety.corp.example"}},
        "http://127.0.0.1:9000",
        "it wins over airlock.domainSafetyUrl in project settings",
        id="variable_wins_over_setting",
    ),
    pytest.param(
        {},
        {
            "env": {"AIRLOCK_DOMAIN_SAFETY_URL": "http://127.0.0.1:9001"},
            "airlock": {"domainSafetyUrl": "https://s.example"},
        },
        "http://127.0.0.1:9001",
        "it wins over airlock.domainSafetyUrl",
        id="settings_env_block_wins_over_setting",
    ),
]


@pytest.mark.parametrize(("environ", "settings", "service", "reason"), SERVICE)
def test_service(
    project: Path, environ: dict[str, str], settings: dict[str, object], service: str, reason: str
) -> None:
    """The variable wins over the setting, the setting over the default; the reasons say which."""
    write_json(project / ".claude" / "settings.json", settings)
    decision = decide(load(project, {"HOME": str(project.parent / "home"), **environ}).context)[
        FlowId.WEBFETCH_PREFLIGHT
    ]
    assert decision.parameters["service"] == service
    assert any(reason in text for text in decision.reasons), decision.reasons


@pytest.mark.parametrize("private", [True, False])
def test_private_mode(project: Path, private: bool) -> None:
    """airlock.webFetchPrivateMode switches the endpoint and what the flow carries."""
    write_json(project / ".claude" / "settings.json", {"airlock": {"webFetchPrivateMode": private}})
    decision = decide(load(project, {}).context)[FlowId.WEBFETCH_PREFLIGHT]
    assert decision.parameters["private_mode"] is private
    assert ("domain_hashes" in decision.destination) is private
    assert ("never the hostname" in decision.what) is private


def test_nonessential_opt_out_keeps_preflight(project: Path) -> None:
    """CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC leaves the preflight on."""
    decision = decide(load(project, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}).context)[
        FlowId.WEBFETCH_PREFLIGHT
    ]
    assert decision.state is State.ON


def test_invalid_service_setting_reported(project: Path) -> None:
    """A domainSafetyUrl that is not an http(s) URL is reported and not used."""
    write_json(project / ".claude" / "settings.json", {"airlock": {"domainSafetyUrl": "ftp://x"}})
    loaded = load(project, {})
    assert loaded.problems_for("airlock.domainSafetyUrl")
    assert (
        decide(loaded.context)[FlowId.WEBFETCH_PREFLIGHT].parameters["service"]
        == "https://api.anthropic.com"
    )
