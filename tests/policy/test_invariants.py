"""Property tests: invariants that hold for every configuration, not just the tabled ones."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.policy import AccountType, Context, FlowId, Origin, Setting, Source, State, Var, decide
from airlock.policy.variables import VARIABLES, Kind
from airlock.settings import merge

ORIGINS = [
    Origin(Source.ENVIRONMENT),
    Origin(Source.USER, "/h/.claude/settings.json"),
    Origin(Source.PROJECT, "/p/.claude/settings.json"),
    Origin(Source.MANAGED, "/etc/claude-code/managed-settings.json"),
]
VALUES = ["", "0", "1", "true", "false", "yes", "no", "on", "off", "x", "http://127.0.0.1:4318"]
OPT_OUTS = [name for name, kind in VARIABLES.items() if kind in (Kind.NON_EMPTY, Kind.BOOLEAN)]

entries = st.lists(st.tuples(st.sampled_from(VALUES), st.sampled_from(ORIGINS)), max_size=3)
environments = st.dictionaries(st.sampled_from(sorted(VARIABLES)), entries, max_size=8)


def _setting(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Setting[Any]]:
    return values.map(lambda value: Setting(value, ORIGINS[1]))


contexts = st.builds(
    lambda env, **fields: Context(env={n: Var(n, tuple(v)) for n, v in env.items()}, **fields),
    environments,
    account_type=_setting(st.sampled_from(list(AccountType))),
    model_improvement=_setting(st.sampled_from([None, True, False])),
    zero_data_retention=_setting(st.booleans()),
    product_feedback_disabled=_setting(st.booleans()),
    development_partner_program=_setting(st.booleans()),
    gateway=_setting(st.booleans()),
    cleanup_period_days=_setting(st.integers(1, 3650)),
    feedback_survey_rate=_setting(st.one_of(st.none(), st.floats(0, 1))),
    skip_webfetch_preflight=_setting(st.booleans()),
    auto_updates=_setting(st.booleans()),
    transcript_share_declined=_setting(st.booleans()),
    managed_invalid=st.sampled_from([(), ("/etc/claude-code/managed-settings.json",)]),
)


def _with(context: Context, name: str, value: str, origin: Origin) -> Context:
    var = context.var(name)
    env = dict(context.env)
    env[name] = Var(name, (*var.values, (value, origin)))
    return Context(**{**{f: getattr(context, f) for f in Context.__match_args__}, "env": env})


@settings(max_examples=300, deadline=None)
@given(
    contexts,
    st.sampled_from(OPT_OUTS),
    st.sampled_from(["1", "true", "yes"]),
    st.sampled_from(ORIGINS),
)
def test_adding_an_opt_out_never_turns_a_flow_on(
    context: Context, name: str, value: str, origin: Origin
) -> None:
    """Whatever else is set, adding an opt-out anywhere never switches an off flow on."""
    before = decide(context)
    after = decide(_with(context, name, value, origin))
    for flow in FlowId:
        if before[flow].state is State.OFF:
            assert after[flow].state is State.OFF, (flow, name)


@settings(max_examples=300, deadline=None)
@given(contexts, st.sampled_from(ORIGINS))
def test_nonessential_off_turns_every_nonessential_flow_off(
    context: Context, origin: Origin
) -> None:
    """With CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC set, nothing non-essential reaches the vendor."""
    decisions = decide(_with(context, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1", origin))
    for flow in (
        FlowId.METRICS,
        FlowId.ERROR_REPORTING,
        FlowId.FEEDBACK_COMMAND,
        FlowId.TRANSCRIPT_SHARE,
        FlowId.AUTO_UPDATE,
    ):
        assert decisions[flow].state is State.OFF, flow
    assert decisions[FlowId.SURVEY_RATING].state in (State.OFF, State.OTEL_ONLY)


@settings(max_examples=300, deadline=None)
@given(contexts)
def test_only_skip_webfetch_preflight_turns_the_preflight_off(context: Context) -> None:
    """The preflight is off exactly when skipWebFetchPreflight is true (and not failing closed)."""
    off = decide(context)[FlowId.WEBFETCH_PREFLIGHT].state is State.OFF
    assert off == (context.skip_webfetch_preflight.value and not context.managed_invalid)


@settings(max_examples=200, deadline=None)
@given(contexts)
def test_decisions_are_explained_and_deterministic(context: Context) -> None:
    """Every decision has reasons, and deciding twice gives the same answer."""
    first, second = decide(context), decide(context)
    assert first == second
    assert all(decision.reasons for decision in first)


@settings(max_examples=200, deadline=None)
@given(contexts)
def test_transcript_share_never_leaves_under_zdr_or_otel_only(context: Context) -> None:
    """No transcript is shared under ZDR, with feedback disabled, or when the survey is otel_only."""
    decisions = decide(context)
    share = decisions[FlowId.TRANSCRIPT_SHARE].state
    if (
        context.zero_data_retention.value
        or context.product_feedback_disabled.value
        or decisions[FlowId.SURVEY_RATING].state is not State.ON
    ):
        assert share is State.OFF


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
settings_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)


@given(settings_objects)
def test_merging_an_empty_layer_is_a_no_op(data: dict[str, Any]) -> None:
    """Merging with an empty settings file changes nothing, from either side."""
    assert merge(data, {}) == data
    assert merge({}, data) == data


@given(settings_objects, settings_objects)
def test_higher_layer_scalars_win(lower: dict[str, Any], higher: dict[str, Any]) -> None:
    """Every scalar of the higher layer is in the merge as it was."""
    merged = merge(lower, higher)
    for key, value in higher.items():
        if not isinstance(value, dict | list):
            assert merged[key] == value
