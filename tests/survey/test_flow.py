"""The survey as the engine allows it: plan, rating delivery (collector or OTLP), follow-up."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airlock.errors import RefusedError, UsageError
from airlock.policy import decide
from airlock.policy.model import FlowId, State
from airlock.settings import load
from airlock.survey import (
    Rating,
    offers_share,
    plan,
    read_state,
    record_rating,
    remember_declined,
)
from tests.feedback.servers import collector, otlp_receiver
from tests.survey.settings import ask_every_session

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SESSION = "5b0e9a70-3f1c-4a8e-9a55-6c1d2f0e7b11"


def decisions_for(project: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    return decide(load(project, {**os.environ, **env}).context)


def test_plan_uses_engine_rate(project: Path, home: Path) -> None:
    """The plan takes the engine's rate; at rate 1 every session is asked."""
    ask_every_session(project)
    chosen = plan(decisions_for(project, {"HOME": str(home)}), SESSION)
    assert chosen.asked and chosen.rate == 1.0 and chosen.state is State.ON


@pytest.mark.parametrize(
    "env",
    [
        {"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"},
        {"DISABLE_TELEMETRY": "1"},
        {"DO_NOT_TRACK": "1"},
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
        },
    ],
    ids=["disabled", "telemetry_off", "dnt", "nonessential", "otel_without_endpoint"],
)
def test_plan_refused_when_off_names_the_variable(
    project: Path, home: Path, env: dict[str, str]
) -> None:
    """With the survey off, plan refuses and the message names the variable that did it."""
    with pytest.raises(RefusedError) as error:
        plan(decisions_for(project, {"HOME": str(home), **env}), SESSION)
    assert next(iter(env)) in str(error.value)


def test_rating_posted_alone_to_collector(project: Path, home: Path) -> None:
    """State on: the rating reaches the collector with no session id and the day only."""
    decisions = decisions_for(project, {"HOME": str(home)})
    with collector() as server:
        where = record_rating(
            decisions, Rating.BAD, collector=server.url, now=NOW, version="0.1.0", sleep=time.sleep
        )
    assert where.endswith("/v1/survey-ratings")
    (body,) = server.stored.values()
    payload = json.loads(body)
    assert payload == {"rating": "bad", "day": "2026-11-23", "client": "airlock/0.1.0"}
    assert SESSION not in body.decode()


def test_rating_without_collector_is_a_usage_error(project: Path, home: Path) -> None:
    """State on and no collector configured: a clear error, nothing sent."""
    with pytest.raises(UsageError, match="AIRLOCK_COLLECTOR_URL"):
        record_rating(
            decisions_for(project, {"HOME": str(home)}),
            Rating.GOOD,
            collector=None,
            now=NOW,
            version="0.1.0",
            sleep=time.sleep,
        )


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]
)
def test_otel_only_rating_reaches_real_otlp_receiver(
    project: Path, home: Path, variable: str
) -> None:
    """otel_only: one OTLP log record with the rating alone arrives at the user's endpoint."""
    with otlp_receiver() as receiver, collector() as server:
        value = (
            receiver.url
            if variable == "OTEL_EXPORTER_OTLP_ENDPOINT"
            else receiver.url + "/custom/logs"
        )
        env = {
            "HOME": str(home),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            variable: value,
        }
        decisions = decisions_for(project, env)
        assert decisions[FlowId.SURVEY_RATING].state is State.OTEL_ONLY
        record_rating(
            decisions, Rating.GOOD, collector=server.url, now=NOW, version="0.1.0", sleep=time.sleep
        )
    expected_path = "/v1/logs" if variable == "OTEL_EXPORTER_OTLP_ENDPOINT" else "/custom/logs"
    assert receiver.requests == [expected_path]
    (record,) = receiver.records
    assert record["event_name"] == "airlock.survey.rating"
    assert record["body"] == "Good"
    assert record["attributes"] == {"survey.rating": "good"}
    assert server.attempts == []  # nowhere else
    assert offers_share(decisions, Rating.GOOD) is False


@pytest.fixture
def socket_events() -> Iterator[list[str]]:
    """Every socket audit event raised while the test body runs."""
    events: list[str] = []
    active = [True]

    def hook(event: str, args: object) -> None:
        if active[0] and event.startswith("socket."):
            events.append(event)

    sys.addaudithook(hook)
    yield events
    active[0] = False


def test_flow_off_touches_no_socket(project: Path, home: Path, socket_events: list[str]) -> None:
    """With the survey off, the whole CLI run opens, connects and sends on no socket at all."""
    from airlock.cli.main import main

    with otlp_receiver() as receiver:
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.json").write_text(
            json.dumps(
                {
                    "env": {
                        "DISABLE_TELEMETRY": "1",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                        "AIRLOCK_COLLECTOR_URL": receiver.url,
                    }
                }
            )
        )
        socket_events.clear()
        code = main(["survey", SESSION, "--rating", "good"])
        seen = list(socket_events)
    assert code == 3
    assert seen == []
    assert receiver.requests == []


def test_dont_ask_again_is_remembered(project: Path, home: Path) -> None:
    """After "Don't ask again" the engine turns transcript_share off, naming the state file."""
    env = {"HOME": str(home)}
    config = home / ".claude"
    assert offers_share(decisions_for(project, env), Rating.BAD)
    state = config / "airlock" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"other": 1}')
    remember_declined(config)
    assert read_state(config) == {"other": 1, "transcriptShareDeclined": True}
    assert state.stat().st_mode & 0o777 == 0o600
    decisions = decisions_for(project, env)
    share = decisions[FlowId.TRANSCRIPT_SHARE]
    assert share.state is State.OFF
    assert any(str(state) in reason for reason in share.reasons)
    assert not offers_share(decisions, Rating.BAD)


def test_dismiss_never_offers_the_follow_up(project: Path, home: Path) -> None:
    """A dismissed survey asks nothing more."""
    assert not offers_share(decisions_for(project, {"HOME": str(home)}), Rating.DISMISS)
