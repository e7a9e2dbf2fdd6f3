"""Table tests for every rule of the seeds and every fact of reference/."""

from __future__ import annotations

import pytest

from airlock.policy import AccountType, FlowId, Origin, Provider, Source, State, Var, decide
from airlock.policy.model import Context
from tests.policy.helpers import context, states

BEDROCK = {"CLAUDE_CODE_USE_BEDROCK": "1"}
VERTEX = {"CLAUDE_CODE_USE_VERTEX": "1"}
FOUNDRY = {"CLAUDE_CODE_USE_FOUNDRY": "1"}
HOST = {"CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST": "1"}


# --------------------------------------------------------------- the seeds' provider table

PROVIDER_TABLE = [
    # provider env, metrics, error_reporting, feedback_command, survey_rating, webfetch_preflight
    pytest.param({}, "on", "on", "on", "on", "on", id="first_party_everything_on"),
    pytest.param(
        VERTEX, "off", "off", "off", "on", "on", id="vertex_defaults_off_survey_and_preflight_on"
    ),
    pytest.param(
        BEDROCK, "off", "off", "off", "on", "on", id="bedrock_defaults_off_survey_and_preflight_on"
    ),
    pytest.param(
        FOUNDRY, "off", "off", "off", "on", "on", id="foundry_defaults_off_survey_and_preflight_on"
    ),
    pytest.param(
        {**BEDROCK, **HOST},
        "on",
        "off",
        "off",
        "on",
        "on",
        id="bedrock_managed_by_host_metrics_on_only",
    ),
    pytest.param(
        {**VERTEX, **HOST},
        "on",
        "off",
        "off",
        "on",
        "on",
        id="vertex_managed_by_host_metrics_on_only",
    ),
    pytest.param(
        {**FOUNDRY, **HOST},
        "on",
        "off",
        "off",
        "on",
        "on",
        id="foundry_managed_by_host_metrics_on_only",
    ),
    pytest.param(
        HOST, "on", "on", "on", "on", "on", id="managed_by_host_changes_nothing_first_party"
    ),
    pytest.param(
        {**BEDROCK, **HOST, "DISABLE_TELEMETRY": "1"},
        "off",
        "off",
        "off",
        "off",
        "on",
        id="managed_by_host_follows_disable_telemetry",
    ),
]


@pytest.mark.parametrize(
    ("environ", "metrics", "errors", "feedback", "survey", "preflight"), PROVIDER_TABLE
)
def test_provider_defaults(
    environ: dict[str, str], metrics: str, errors: str, feedback: str, survey: str, preflight: str
) -> None:
    """Each provider's defaults are the seeds' table."""
    got = states(environ)
    assert (got["metrics"], got["error_reporting"], got["feedback_command"]) == (
        metrics,
        errors,
        feedback,
    )
    assert (got["survey_rating"], got["webfetch_preflight"]) == (survey, preflight)
    assert got["model_requests"] == "on"


@pytest.mark.parametrize(
    ("environ", "provider"),
    [
        ({}, Provider.FIRST_PARTY),
        (BEDROCK, Provider.BEDROCK),
        (VERTEX, Provider.VERTEX),
        (FOUNDRY, Provider.FOUNDRY),
        ({**VERTEX, **BEDROCK}, Provider.BEDROCK),
        ({**VERTEX, **FOUNDRY}, Provider.VERTEX),
        ({"CLAUDE_CODE_USE_BEDROCK": "0"}, Provider.FIRST_PARTY),
        ({"CLAUDE_CODE_USE_BEDROCK": "true"}, Provider.BEDROCK),
        ({"CLAUDE_CODE_USE_BEDROCK": ""}, Provider.FIRST_PARTY),
    ],
)
def test_provider_detection(environ: dict[str, str], provider: Provider) -> None:
    """The provider comes from CLAUDE_CODE_USE_*, Bedrock first, only true values count."""
    assert decide(context(environ)).provider is provider


def test_gateway_is_a_provider_of_its_own() -> None:
    """airlock.gateway makes a gateway session: metrics as first-party, share as local archive."""
    decisions = decide(context(gateway=True))
    assert decisions.provider is Provider.GATEWAY
    assert decisions[FlowId.METRICS].state is State.ON
    assert decisions[FlowId.TRANSCRIPT_SHARE].state is State.LOCAL_ARCHIVE


# --------------------------------------------------------------- opt-outs

NONESSENTIAL_OFF = (
    "metrics",
    "error_reporting",
    "feedback_command",
    "survey_rating",
    "transcript_share",
    "auto_update",
)

OPT_OUTS = [
    pytest.param(
        {"DISABLE_TELEMETRY": "1"},
        {"metrics", "survey_rating", "transcript_share"},
        id="disable_telemetry",
    ),
    pytest.param(
        {"DO_NOT_TRACK": "1"}, {"metrics", "survey_rating", "transcript_share"}, id="do_not_track"
    ),
    pytest.param(
        {"DISABLE_ERROR_REPORTING": "1"}, {"error_reporting"}, id="disable_error_reporting"
    ),
    pytest.param(
        {"DISABLE_FEEDBACK_COMMAND": "1"}, {"feedback_command"}, id="disable_feedback_command"
    ),
    pytest.param(
        {"DISABLE_BUG_COMMAND": "1"}, {"feedback_command"}, id="older_disable_bug_command"
    ),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"},
        {"survey_rating", "transcript_share"},
        id="disable_survey",
    ),
    pytest.param({"DISABLE_AUTOUPDATER": "1"}, {"auto_update"}, id="disable_autoupdater"),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        set(NONESSENTIAL_OFF),
        id="nonessential_all_but_preflight",
    ),
]


@pytest.mark.parametrize(("environ", "off"), OPT_OUTS)
def test_each_opt_out_turns_off_exactly_its_flows(environ: dict[str, str], off: set[str]) -> None:
    """An opt-out turns off its own flows and no other."""
    got = states(environ)
    assert {flow for flow, state in got.items() if state == "off"} == off
    assert got["webfetch_preflight"] == "on"


def test_opt_out_reason_names_variable_and_source() -> None:
    """The reason for an opt-out names the variable, its value and where it was set."""
    decision = decide(context({"DISABLE_TELEMETRY": "1"}))[FlowId.METRICS]
    assert any("DISABLE_TELEMETRY='1' in the process environment" in r for r in decision.reasons)


# --------------------------------------------------------------- truthiness (observed)

TRUTHINESS = [
    pytest.param("DISABLE_TELEMETRY", "1", True, id="telemetry_1"),
    pytest.param("DISABLE_TELEMETRY", "0", True, id="telemetry_0_still_disables"),
    pytest.param("DISABLE_TELEMETRY", "false", True, id="telemetry_false_still_disables"),
    pytest.param("DISABLE_TELEMETRY", "", False, id="telemetry_empty_is_unset"),
    pytest.param(
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "0", True, id="nonessential_0_still_disables"
    ),
    pytest.param(
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "", False, id="nonessential_empty_is_unset"
    ),
    pytest.param("DO_NOT_TRACK", "1", True, id="dnt_1_disables"),
    pytest.param("DO_NOT_TRACK", "0", False, id="dnt_0_does_not"),
    pytest.param("DO_NOT_TRACK", "true", True, id="dnt_true_disables"),
    pytest.param("DO_NOT_TRACK", "", False, id="dnt_empty_does_not"),
]


@pytest.mark.parametrize(("name", "value", "metrics_off"), TRUTHINESS)
def test_how_each_variable_counts_as_set(name: str, value: str, metrics_off: bool) -> None:
    """DISABLE_TELEMETRY and NONESSENTIAL count with any non-empty value; DO_NOT_TRACK is a boolean."""
    state = decide(context({name: value}))[FlowId.METRICS].state
    assert (state is State.OFF) is metrics_off


@pytest.mark.parametrize(
    ("value", "off"),
    [("1", True), ("true", True), ("0", False), ("false", False), ("", False)],
)
def test_disable_feedback_command_values(value: str, off: bool) -> None:
    """DISABLE_FEEDBACK_COMMAND=1 turns /feedback off; 0 and empty do not."""
    state = decide(context({"DISABLE_FEEDBACK_COMMAND": value}))[FlowId.FEEDBACK_COMMAND].state
    assert (state is State.OFF) is off


def _env_from(*entries: tuple[str, str, Origin]) -> Context:
    values: dict[str, list[tuple[str, Origin]]] = {}
    for name, value, origin in entries:
        values.setdefault(name, []).append((value, origin))
    return Context(env={name: Var(name, tuple(found)) for name, found in values.items()})


def test_opt_out_in_either_place_wins() -> None:
    """An opt-out in a settings env block is not undone by an empty process variable, and vice versa."""
    project = Origin(Source.PROJECT, "/p/.claude/settings.json")
    env = Origin(Source.ENVIRONMENT)
    from_settings = _env_from(("DISABLE_TELEMETRY", "1", project), ("DISABLE_TELEMETRY", "", env))
    from_environment = _env_from(
        ("DISABLE_TELEMETRY", "", project), ("DISABLE_TELEMETRY", "1", env)
    )
    assert decide(from_settings)[FlowId.METRICS].state is State.OFF
    assert decide(from_environment)[FlowId.METRICS].state is State.OFF


def test_switch_takes_the_highest_source_and_empty_cancels() -> None:
    """For a switch, the settings env block beats the process env, and '' there cancels it."""
    project = Origin(Source.PROJECT, "/p/.claude/settings.json")
    env = Origin(Source.ENVIRONMENT)
    cancelled = _env_from(
        ("CLAUDE_CODE_USE_BEDROCK", "", project), ("CLAUDE_CODE_USE_BEDROCK", "1", env)
    )
    chosen = _env_from(("CLAUDE_CODE_USE_VERTEX", "1", project))
    assert decide(cancelled).provider is Provider.FIRST_PARTY
    assert decide(chosen).provider is Provider.VERTEX


# --------------------------------------------------------------- survey

SURVEY = [
    pytest.param({}, {}, "on", id="default_on"),
    pytest.param(BEDROCK, {}, "on", id="on_regardless_of_provider"),
    pytest.param({"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"}, {}, "off", id="disable_survey"),
    pytest.param({"DISABLE_TELEMETRY": "1"}, {}, "off", id="telemetry_off"),
    pytest.param({"DO_NOT_TRACK": "1"}, {}, "off", id="dnt_off"),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, {}, "off", id="nonessential_off"
    ),
    pytest.param(
        {"CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1"},
        {},
        "on",
        id="otel_flag_alone_changes_nothing",
    ),
    pytest.param(
        {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        },
        {},
        "otel_only",
        id="otel_brings_it_back_with_collector",
    ),
    pytest.param(
        {
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:4318/v1/logs",
        },
        {},
        "otel_only",
        id="otel_logs_endpoint_counts",
    ),
    pytest.param(
        {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
        },
        {},
        "off",
        id="otel_without_collector_no_survey",
    ),
    pytest.param(
        {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        },
        {},
        "off",
        id="disable_survey_beats_otel",
    ),
    pytest.param({}, {"feedback_survey_rate": 0.0}, "off", id="rate_zero_never"),
    pytest.param(
        {
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        },
        {"feedback_survey_rate": 0.0},
        "off",
        id="rate_zero_also_in_otel_mode",
    ),
]


@pytest.mark.parametrize(("environ", "settings", "state"), SURVEY)
def test_survey_rules(environ: dict[str, str], settings: dict[str, float], state: str) -> None:
    """The survey runs regardless of provider and obeys every documented switch."""
    assert states(environ, **settings)["survey_rating"] == state


@pytest.mark.parametrize(
    ("environ", "settings", "rate"),
    [
        ({}, {}, 0.05),
        (BEDROCK, {}, 0.005),
        (VERTEX, {}, 0.005),
        ({}, {"feedback_survey_rate": 0.25}, 0.25),
    ],
)
def test_survey_rate(environ: dict[str, str], settings: dict[str, float], rate: float) -> None:
    """feedbackSurveyRate sets the chance; unset on cloud providers it is the built-in 0.005."""
    assert decide(context(environ, **settings))[FlowId.SURVEY_RATING].parameters["rate"] == rate


def test_otel_only_goes_to_the_users_collector() -> None:
    """In otel_only mode the destination is the configured collector, not the vendor."""
    environ = {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
    }
    decision = decide(context(environ))[FlowId.SURVEY_RATING]
    assert "127.0.0.1:4318" in decision.destination
    assert "anthropic" not in decision.destination.lower()


# --------------------------------------------------------------- transcript share

SHARE = [
    pytest.param({}, {}, "upload", id="first_party_uploads"),
    pytest.param(BEDROCK, {}, "local_archive", id="bedrock_local_archive"),
    pytest.param(VERTEX, {}, "local_archive", id="vertex_local_archive"),
    pytest.param(FOUNDRY, {}, "local_archive", id="foundry_local_archive"),
    pytest.param({}, {"gateway": True}, "local_archive", id="gateway_local_archive"),
    pytest.param({}, {"zero_data_retention": True}, "off", id="zdr_never"),
    pytest.param({}, {"product_feedback_disabled": True}, "off", id="org_disabled_feedback_never"),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, {}, "off", id="nonessential_never"
    ),
    pytest.param(
        {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        },
        {},
        "off",
        id="otel_only_never",
    ),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"}, {}, "off", id="no_survey_no_follow_up"
    ),
    pytest.param({}, {"transcript_share_declined": True}, "off", id="dont_ask_again_remembered"),
    pytest.param(BEDROCK, {"zero_data_retention": True}, "off", id="zdr_beats_local_archive"),
]


@pytest.mark.parametrize(("environ", "settings", "state"), SHARE)
def test_transcript_share_rules(
    environ: dict[str, str], settings: dict[str, bool], state: str
) -> None:
    """The follow-up is upload, local archive or never, exactly as the seeds say."""
    assert states(environ, **settings)["transcript_share"] == state


@pytest.mark.parametrize(
    ("settings", "off"),
    [
        ({"zero_data_retention": True}, True),
        ({"product_feedback_disabled": True}, True),
        ({}, False),
    ],
)
def test_feedback_command_respects_organisation(settings: dict[str, bool], off: bool) -> None:
    """ZDR and an organisation that disabled product feedback turn /feedback off too."""
    assert (states(**settings)["feedback_command"] == "off") is off


# --------------------------------------------------------------- preflight, auto update, local


@pytest.mark.parametrize(
    ("environ", "settings", "state"),
    [
        ({}, {}, "on"),
        ({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, {}, "on"),
        (FOUNDRY, {}, "on"),
        ({"DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}, {}, "on"),
        ({}, {"skip_webfetch_preflight": True}, "off"),
    ],
)
def test_webfetch_preflight(environ: dict[str, str], settings: dict[str, bool], state: str) -> None:
    """Only skipWebFetchPreflight turns the preflight off."""
    assert states(environ, **settings)["webfetch_preflight"] == state


def test_auto_updates_setting_false_turns_auto_update_off() -> None:
    """autoUpdates: false in settings turns update checks off, naming the file."""
    decision = decide(context(auto_updates=False))[FlowId.AUTO_UPDATE]
    assert decision.state is State.OFF
    assert any("autoUpdates is false" in r and "settings.json" in r for r in decision.reasons)


def test_local_transcripts_retention_follows_cleanup_period() -> None:
    """local_transcripts reports cleanupPeriodDays, default 30."""
    assert decide(context())[FlowId.LOCAL_TRANSCRIPTS].retention.days == 30
    decision = decide(context(cleanup_period_days=7))[FlowId.LOCAL_TRANSCRIPTS]
    assert decision.retention.days == 7
    assert decision.parameters["cleanup_period_days"] == 7


# --------------------------------------------------------------- retention and training

RETENTION = [
    pytest.param(
        {},
        {"account_type": AccountType.PRO, "model_improvement": True},
        1825,
        "yes",
        id="consumer_improve_5y",
    ),
    pytest.param(
        {},
        {"account_type": AccountType.MAX, "model_improvement": False},
        30,
        "no",
        id="consumer_no_30d",
    ),
    pytest.param({}, {"account_type": AccountType.TEAM}, 30, "never", id="commercial_30d"),
    pytest.param(
        {},
        {"account_type": AccountType.ENTERPRISE, "zero_data_retention": True},
        0,
        "never",
        id="zdr_nothing",
    ),
    pytest.param(
        {},
        {"account_type": AccountType.API, "development_partner_program": True},
        30,
        "yes",
        id="dpp_first_party_trains",
    ),
    pytest.param(
        BEDROCK,
        {"account_type": AccountType.ENTERPRISE, "development_partner_program": True},
        None,
        "never",
        id="dpp_never_on_bedrock",
    ),
    pytest.param(
        VERTEX, {"development_partner_program": True}, None, "never", id="dpp_never_on_vertex"
    ),
    pytest.param(FOUNDRY, {}, 30, "never", id="foundry_commercial_30d"),
]


@pytest.mark.parametrize(("environ", "settings", "days", "training"), RETENTION)
def test_model_request_retention_and_training(
    environ: dict[str, str], settings: dict[str, object], days: int | None, training: str
) -> None:
    """Retention and training use follow the account, the choice, ZDR and the DPP."""
    decision = decide(context(environ, **settings))[FlowId.MODEL_REQUESTS]
    assert decision.retention.days == days
    assert decision.training.startswith(training)


@pytest.mark.parametrize(
    ("flow", "days", "training"),
    [
        (FlowId.FEEDBACK_COMMAND, 1825, "may be used"),
        (FlowId.TRANSCRIPT_SHARE, 183, "never"),
        (FlowId.SURVEY_RATING, 30, "never"),
    ],
)
def test_fixed_retention_classes(flow: FlowId, days: int, training: str) -> None:
    """/feedback is kept 5 years, shared transcripts 6 months; survey answers never train."""
    decision = decide(context(account_type=AccountType.PRO, model_improvement=True))[flow]
    assert decision.retention.days == days
    assert decision.training.startswith(training)


# --------------------------------------------------------------- fail closed


def test_invalid_managed_settings_fail_closed() -> None:
    """With unusable managed settings every optional flow is off and the preflight stays on."""
    decisions = decide(Context(managed_invalid=("/etc/claude-code/managed-settings.json",)))
    assert decisions.fail_closed
    got = {str(d.id): str(d.state) for d in decisions}
    for flow in NONESSENTIAL_OFF:
        assert got[flow] == "off", flow
    assert got["webfetch_preflight"] == "on"
    assert got["model_requests"] == "on"
    assert any("failing closed" in r for r in decisions[FlowId.METRICS].reasons)


def test_every_flow_is_decided_once_in_order() -> None:
    """decide returns one decision per flow id, in the order of FlowId."""
    assert [d.id for d in decide(Context())] == list(FlowId)


def test_every_decision_has_reasons_and_fields() -> None:
    """Every decision says why, where, what and for how long."""
    for decision in decide(context(BEDROCK)):
        assert (
            decision.reasons
            and decision.destination
            and decision.what
            and decision.retention.summary
        )


def test_operational_data_on_bedrock_is_kept_under_commercial_terms() -> None:
    """Metrics still go to the vendor on Bedrock (managed by host): 30 days, not the cloud's terms."""
    decision = decide(context({**BEDROCK, **HOST}))[FlowId.METRICS]
    assert decision.retention.days == 30


def test_zero_data_retention_keeps_no_survey_rating() -> None:
    """Under ZDR the survey still runs, but its rating is not persisted."""
    decision = decide(context(zero_data_retention=True))[FlowId.SURVEY_RATING]
    assert decision.state is State.ON
    assert decision.retention.days == 0
