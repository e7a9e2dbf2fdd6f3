"""Settings loading against real files: precedence, merging, env blocks, problems, fail closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airlock.policy import FlowId, Source, State, decide
from airlock.settings import load
from tests.conftest import write_json


def _load(project: Path, environ: dict[str, str] | None = None, settings_file: str | None = None):  # type: ignore[no-untyped-def]
    return load(project, {**os.environ, **(environ or {})}, settings_file)


LAYERS = [
    pytest.param(["user"], "user", id="user_alone"),
    pytest.param(["user", "project"], "project", id="project_beats_user"),
    pytest.param(["user", "project", "local"], "local", id="local_beats_project"),
    pytest.param(["user", "project", "local", "cli"], "cli", id="command_line_beats_local"),
    pytest.param(
        ["user", "project", "local", "cli", "managed"], "managed", id="managed_beats_everything"
    ),
    pytest.param(["managed", "user"], "managed", id="managed_beats_user"),
]


@pytest.mark.parametrize(("present", "winner"), LAYERS)
def test_precedence(
    present: list[str],
    winner: str,
    project: Path,
    config_dir: Path,
    managed_dir: Path,
    tmp_path: Path,
) -> None:
    """The highest settings file that sets a key wins: managed, --settings, local, project, user."""
    days = {"user": 1, "project": 2, "local": 3, "cli": 4, "managed": 5}
    paths = {
        "user": config_dir / "settings.json",
        "project": project / ".claude" / "settings.json",
        "local": project / ".claude" / "settings.local.json",
        "cli": tmp_path / "cli.json",
        "managed": managed_dir / "managed-settings.json",
    }
    for name in present:
        write_json(paths[name], {"cleanupPeriodDays": days[name]})
    loaded = _load(project, settings_file=str(paths["cli"]) if "cli" in present else None)
    setting = loaded.context.cleanup_period_days
    assert setting.value == days[winner]
    assert setting.origin.path is not None and str(paths[winner]) in setting.origin.path


def test_claude_config_dir_moves_user_settings(project: Path, tmp_path: Path) -> None:
    """CLAUDE_CONFIG_DIR replaces ~/.claude."""
    elsewhere = tmp_path / "elsewhere"
    write_json(elsewhere / "settings.json", {"cleanupPeriodDays": 9})
    loaded = _load(project, {"CLAUDE_CONFIG_DIR": str(elsewhere)})
    assert loaded.config_dir == elsewhere
    assert loaded.context.cleanup_period_days.value == 9


def test_permission_lists_union_across_files(project: Path, config_dir: Path) -> None:
    """permissions lists combine across files, each rule keeping its file."""
    write_json(config_dir / "settings.json", {"permissions": {"allow": ["WebFetch(domain:a.com)"]}})
    write_json(
        project / ".claude" / "settings.json",
        {"permissions": {"allow": ["WebFetch(domain:b.com)"], "deny": ["WebFetch(domain:c.com)"]}},
    )
    permissions = _load(project).context.permissions
    assert {rule.text for rule in permissions.allow} == {
        "WebFetch(domain:a.com)",
        "WebFetch(domain:b.com)",
    }
    assert [rule.origin.source for rule in permissions.deny] == [Source.PROJECT]


def test_objects_merge_key_by_key(project: Path, config_dir: Path) -> None:
    """Nested objects merge: each file contributes its own keys."""
    write_json(
        config_dir / "settings.json", {"airlock": {"accountType": "pro", "modelImprovement": True}}
    )
    write_json(project / ".claude" / "settings.json", {"airlock": {"modelImprovement": False}})
    loaded = _load(project)
    assert loaded.context.account_type.value.value == "pro"
    assert loaded.context.model_improvement.value is False


def test_managed_drop_ins_alphabetical_hidden_ignored(project: Path, managed_dir: Path) -> None:
    """managed-settings.d/*.json apply after the main file, alphabetically; hidden and non-JSON files are ignored."""
    write_json(
        managed_dir / "managed-settings.json",
        {"cleanupPeriodDays": 10, "permissions": {"deny": ["WebFetch(domain:x.com)"]}},
    )
    write_json(managed_dir / "managed-settings.d" / "20-b.json", {"cleanupPeriodDays": 20})
    write_json(
        managed_dir / "managed-settings.d" / "10-a.json",
        {"cleanupPeriodDays": 15, "permissions": {"deny": ["WebFetch(domain:y.com)"]}},
    )
    write_json(managed_dir / "managed-settings.d" / ".30-hidden.json", {"cleanupPeriodDays": 99})
    (managed_dir / "managed-settings.d" / "40-notes.txt").write_text('{"cleanupPeriodDays": 98}')
    context = _load(project).context
    assert context.cleanup_period_days.value == 20
    assert {rule.text for rule in context.permissions.deny} == {
        "WebFetch(domain:x.com)",
        "WebFetch(domain:y.com)",
    }


def test_env_block_opt_out_applies(project: Path) -> None:
    """An opt-out in a project's env block turns the flow off and names the file."""
    path = write_json(project / ".claude" / "settings.json", {"env": {"DISABLE_TELEMETRY": "1"}})
    decision = decide(_load(project).context)[FlowId.METRICS]
    assert decision.state is State.OFF
    assert any(str(path) in reason for reason in decision.reasons)


def test_project_cannot_cancel_the_users_opt_out(project: Path, config_dir: Path) -> None:
    """An empty string in a project's env block does not undo the user's opt-out."""
    write_json(config_dir / "settings.json", {"env": {"DISABLE_TELEMETRY": "1"}})
    write_json(project / ".claude" / "settings.json", {"env": {"DISABLE_TELEMETRY": ""}})
    assert decide(_load(project).context)[FlowId.METRICS].state is State.OFF


def test_process_environment_opt_out_applies(project: Path) -> None:
    """DO_NOT_TRACK=1 in the process environment turns metrics off."""
    assert decide(_load(project, {"DO_NOT_TRACK": "1"}).context)[FlowId.METRICS].state is State.OFF


def test_provider_from_settings_env(project: Path) -> None:
    """CLAUDE_CODE_USE_BEDROCK in a settings env block selects Bedrock."""
    write_json(project / ".claude" / "settings.json", {"env": {"CLAUDE_CODE_USE_BEDROCK": "1"}})
    assert decide(_load(project).context).provider.value == "bedrock"


INVALID = [
    pytest.param({"cleanupPeriodDays": "30"}, "cleanupPeriodDays", "number", id="days_as_string"),
    pytest.param(
        {"cleanupPeriodDays": 0}, "cleanupPeriodDays", "greater than or equal to 1", id="days_zero"
    ),
    pytest.param(
        {"cleanupPeriodDays": -5},
        "cleanupPeriodDays",
        "greater than or equal to 1",
        id="days_negative",
    ),
    pytest.param(
        {"cleanupPeriodDays": 2.5}, "cleanupPeriodDays", "whole number", id="days_fraction"
    ),
    pytest.param(
        {"feedbackSurveyRate": 1.5}, "feedbackSurveyRate", "between 0 and 1", id="rate_above_one"
    ),
    pytest.param({"feedbackSurveyRate": True}, "feedbackSurveyRate", "number", id="rate_boolean"),
    pytest.param(
        {"skipWebFetchPreflight": "yes"}, "skipWebFetchPreflight", "true or false", id="skip_string"
    ),
    pytest.param(
        {"env": {"DISABLE_TELEMETRY": 1}}, "env.DISABLE_TELEMETRY", "string", id="env_number"
    ),
    pytest.param(
        {"permissions": {"allow": "WebFetch"}},
        "permissions.allow",
        "list of strings",
        id="allow_not_list",
    ),
    pytest.param(
        {"airlock": {"accountType": "platinum"}},
        "airlock.accountType",
        "one of",
        id="bad_account_type",
    ),
    pytest.param(
        {"airlock": {"zeroDataRetension": True}},
        "airlock.zeroDataRetension",
        "unknown key",
        id="typo_in_our_key",
    ),
]


@pytest.mark.parametrize(("data", "key", "expected"), INVALID)
def test_invalid_value_reported_with_path_key_and_expectation(
    data: dict[str, object], key: str, expected: str, project: Path
) -> None:
    """A wrong value is reported with the file's path, the key, the value and what was expected."""
    path = write_json(project / ".claude" / "settings.json", data)
    problems = _load(project).problems
    assert len(problems) == 1
    text = str(problems[0])
    assert str(path) in text and key in text and expected in text


def test_every_problem_reported_at_once_and_other_files_apply(
    project: Path, config_dir: Path
) -> None:
    """All problems of all files come in one pass; a valid file still applies."""
    write_json(
        project / ".claude" / "settings.json", {"cleanupPeriodDays": "x", "feedbackSurveyRate": 7}
    )
    (project / ".claude" / "settings.local.json").write_text("{ not json")
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": 12})
    loaded = _load(project)
    assert {p.key for p in loaded.problems} == {"cleanupPeriodDays", "feedbackSurveyRate", ""}
    assert any("not valid JSON (line 1 column 3" in str(p) for p in loaded.problems)
    assert loaded.context.cleanup_period_days.value == 12
    assert loaded.problems_for("cleanupPeriodDays")


def test_invalid_file_applies_nothing_but_its_opt_outs(project: Path) -> None:
    """Nothing in an invalid file takes effect, except opt-outs and deny rules, which only restrict."""
    write_json(
        project / ".claude" / "settings.json",
        {
            "cleanupPeriodDays": "bad",
            "skipWebFetchPreflight": True,
            "env": {"DISABLE_TELEMETRY": "1", "CLAUDE_CODE_USE_BEDROCK": "1"},
            "permissions": {
                "allow": ["WebFetch(domain:a.com)"],
                "deny": ["WebFetch(domain:b.com)"],
            },
        },
    )
    context = _load(project).context
    decisions = decide(context)
    assert decisions[FlowId.METRICS].state is State.OFF
    assert decisions.provider.value == "first_party"
    assert decisions[FlowId.WEBFETCH_PREFLIGHT].state is State.ON
    assert [r.text for r in context.permissions.deny] == ["WebFetch(domain:b.com)"]
    assert context.permissions.allow == ()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{ broken", id="not_json"),
        pytest.param('{"cleanupPeriodDays": "x"}', id="bad_value"),
        pytest.param("[]", id="not_an_object"),
    ],
)
def test_invalid_managed_settings_fail_closed(
    content: str, project: Path, managed_dir: Path, config_dir: Path
) -> None:
    """An unusable managed file turns every optional flow off, whatever the user's files say."""
    (managed_dir / "managed-settings.json").write_text(content)
    write_json(config_dir / "settings.json", {"skipWebFetchPreflight": True})
    loaded = _load(project)
    decisions = decide(loaded.context)
    assert loaded.managed_invalid and decisions.fail_closed
    for flow in (
        FlowId.METRICS,
        FlowId.ERROR_REPORTING,
        FlowId.FEEDBACK_COMMAND,
        FlowId.SURVEY_RATING,
        FlowId.TRANSCRIPT_SHARE,
        FlowId.AUTO_UPDATE,
    ):
        assert decisions[flow].state is State.OFF
    assert decisions[FlowId.WEBFETCH_PREFLIGHT].state is State.ON


def test_unreadable_settings_file_is_reported(project: Path) -> None:
    """A settings path that cannot be read (a directory with something in it here) is a
    problem, not a crash."""
    (project / ".claude" / "settings.json" / "something").mkdir(parents=True)
    problems = _load(project).problems
    assert len(problems) == 1 and "cannot be read" in str(problems[0])


def test_an_empty_folder_at_a_settings_file_is_no_file(project: Path, home: Path) -> None:
    """What a running ``airlock run`` keeps at a missing settings file it protects (an empty
    folder, its sandbox's mount point) reads as no file: no problem for other commands."""
    (project / ".claude" / "settings.json").mkdir(parents=True)
    (home / ".claude" / "settings.json").mkdir(parents=True)
    loaded = _load(project)
    assert loaded.problems == ()
    assert not loaded.managed_invalid


def test_an_empty_settings_file_is_no_settings(project: Path, home: Path) -> None:
    """As the agent reads one (and what a running ``airlock run`` keeps at a missing one in
    the config dir): no settings, no problem; one holding only white space or a byte order
    mark too (the agent trims the text first). One holding anything else is read, and wrong."""
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_bytes(b"")
    (project / ".claude").mkdir()
    local = project / ".claude" / "settings.local.json"
    local.write_bytes(b"")
    loaded = _load(project)
    assert loaded.problems == () and not loaded.managed_invalid
    for blank in (b" ", b"\n\t \r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", "\u00a0\u2028".encode()):
        local.write_bytes(blank)
        assert _load(project).problems == (), blank
    for text in (b" x", b"\xef\xbb\xbfnull"):
        local.write_bytes(text)
        assert _load(project).problems, text


def test_inline_json_settings_and_missing_settings_file(project: Path, tmp_path: Path) -> None:
    """--settings takes inline JSON; a --settings file that does not exist is reported."""
    assert (
        _load(project, settings_file='{"cleanupPeriodDays": 3}').context.cleanup_period_days.value
        == 3
    )
    problems = _load(project, settings_file=str(tmp_path / "missing.json")).problems
    assert "does not exist" in str(problems[0])


def test_dont_ask_again_is_read_from_state(project: Path, config_dir: Path) -> None:
    """A remembered "Don't ask again" turns the transcript-share follow-up off."""
    write_json(config_dir / "airlock" / "state.json", {"transcriptShareDeclined": True})
    decision = decide(_load(project).context)[FlowId.TRANSCRIPT_SHARE]
    assert decision.state is State.OFF
    assert any("Don't ask again" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("files", "undetermined"),
    [
        pytest.param(
            {"user": {"cleanupPeriodDays": 365, "feedbackSurveyRate": 2}},
            True,
            id="same_file_other_key_bad",
        ),
        pytest.param({"user": {"cleanupPeriodDays": "x"}}, True, id="the_key_itself_bad"),
        pytest.param(
            {"project": {"feedbackSurveyRate": 2}, "user": {"cleanupPeriodDays": 9}},
            False,
            id="other_file_bad",
        ),
        pytest.param({"project": "{ broken"}, True, id="unparseable_file_may_have_set_it"),
        pytest.param({"user": {"cleanupPeriodDays": 9}}, False, id="all_valid"),
    ],
)
def test_problems_for_a_key(
    files: dict[str, object], undetermined: bool, project: Path, config_dir: Path
) -> None:
    """A key is undetermined when a file that sets it, or may set it, cannot be used; the
    engine's context carries those problems for cleanupPeriodDays."""
    paths = {"user": config_dir / "settings.json", "project": project / ".claude" / "settings.json"}
    for name, data in files.items():
        if isinstance(data, str):
            paths[name].parent.mkdir(parents=True, exist_ok=True)
            paths[name].write_text(data)
        else:
            write_json(paths[name], data)
    loaded = _load(project)
    assert bool(loaded.problems_for("cleanupPeriodDays")) is undetermined
    problems = tuple(str(problem) for problem in loaded.problems_for("cleanupPeriodDays"))
    assert loaded.context.cleanup_period_days_problems == problems
