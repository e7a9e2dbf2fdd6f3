"""A URL's password never reaches a reason: reasons go to the screen, the audit log and, in a
refusal, into the sandbox, where the variable itself was kept out for that password."""

from __future__ import annotations

import dataclasses

import pytest

from airlock.policy import decide
from airlock.policy.variables import shown
from tests.policy.helpers import context

PASSWORD = "hunter2secret"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://svc:hunter2@gw.example/x?y=1", "https://svc:***@gw.example/x?y=1"),
        ("http://a:b@[::1]:8/p#f", "http://a:***@[::1]:8/p#f"),
        ("https://u@gw.example", "https://u@gw.example"),
        ("https://gw.example/p@x:y", "https://gw.example/p@x:y"),
        ("https://a:b:c@h", "https://a:***@h"),
        ("plain words", "plain words"),
    ],
)
def test_shown_masks_a_urls_password_only(value: str, expected: str) -> None:
    assert shown(value) == expected


@pytest.mark.parametrize(
    ("environ", "settings"),
    [
        ({"ANTHROPIC_BASE_URL": f"https://svc:{PASSWORD}@llm-gw.corp.example"}, {}),
        ({"AIRLOCK_DOMAIN_SAFETY_URL": f"https://ds:{PASSWORD}@ds.corp.example/"}, {}),
        ({}, {"domain_safety_url": f"https://ds:{PASSWORD}@ds.corp.example"}),
        (
            {
                "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"https://o:{PASSWORD}@otel.corp.example",
            },
            {},
        ),
    ],
    ids=["base_url", "domain_safety_variable", "domain_safety_setting", "otel_endpoint"],
)
def test_no_decision_quotes_a_urls_password(
    environ: dict[str, str], settings: dict[str, object]
) -> None:
    decisions = decide(context(environ, **settings))
    for decision in decisions:
        said = repr(
            [decision.reasons, decision.destination, dataclasses.asdict(decision.retention)]
        )
        assert PASSWORD not in said, decision.id
