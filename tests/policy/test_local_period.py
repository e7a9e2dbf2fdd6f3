"""The local transcript retention period, and the rule that a project's own settings file
may not quietly shorten it for every project."""

from __future__ import annotations

import pytest

from airlock.policy import Context, FlowId, Origin, Setting, Source, decide
from airlock.policy.retention import local_period

PROJECT = Origin(Source.PROJECT, "/work/repo/.claude/settings.json")
LOCAL = Origin(Source.PROJECT_LOCAL, "/work/repo/.claude/settings.local.json")
USER = Origin(Source.USER, "/home/u/.claude/settings.json")
MANAGED = Origin(Source.MANAGED, "/etc/claude-code/managed-settings.json")
CLI = Origin(Source.COMMAND_LINE, "/tmp/s.json")


def _context(*by_file: Setting[int]) -> Context:
    if not by_file:
        return Context()
    return Context(cleanup_period_days=by_file[0], cleanup_period_days_by_file=by_file)


CASES = [
    pytest.param((), 30, None, id="default_is_not_suspect"),
    pytest.param((Setting(7, USER),), 7, None, id="user_file_may_shorten"),
    pytest.param((Setting(3, MANAGED),), 3, None, id="managed_file_may_shorten"),
    pytest.param((Setting(60, PROJECT),), 60, None, id="project_may_lengthen"),
    pytest.param((Setting(30, PROJECT),), 30, None, id="project_equal_to_default"),
    pytest.param(
        (Setting(3, PROJECT),),
        3,
        "shorter than the 30 days of the default",
        id="project_below_default",
    ),
    pytest.param(
        (Setting(3, LOCAL), Setting(10, USER)),
        3,
        f"shorter than the 10 days of user settings {USER.path}",
        id="local_file_below_user",
    ),
    pytest.param((Setting(3, PROJECT), Setting(2, USER)), 3, None, id="project_above_user"),
    pytest.param(
        (Setting(5, PROJECT), Setting(9, CLI), Setting(2, USER)),
        5,
        f"shorter than the 9 days of --settings file {CLI.path}",
        id="the_highest_trusted_file_is_the_baseline",
    ),
]


@pytest.mark.parametrize(("by_file", "days", "suspect"), CASES)
def test_local_period(by_file: tuple[Setting[int], ...], days: int, suspect: str | None) -> None:
    """The period is the highest file's; it is suspect only when a project's own file sets it
    below what managed, --settings and user files (or the default) would give."""
    period = local_period(_context(*by_file))
    assert period.days == days
    if suspect is None:
        assert period.shortened_by_project is None
    else:
        assert period.shortened_by_project is not None
        assert suspect in period.shortened_by_project
        assert "applies to the sessions of every project" in period.shortened_by_project


@pytest.mark.parametrize(("by_file", "days", "suspect"), CASES)
def test_the_decision_carries_the_period(
    by_file: tuple[Setting[int], ...], days: int, suspect: str | None
) -> None:
    """local_transcripts carries the days, the reason among its reasons, and the warning in its
    parameters only when there is one."""
    context = _context(*by_file)
    decision = decide(context)[FlowId.LOCAL_TRANSCRIPTS]
    period = local_period(context)
    assert decision.parameters["cleanup_period_days"] == days
    assert period.reason in decision.reasons
    assert decision.parameters.get("shortened_by_project") == period.shortened_by_project
    assert ("shortened_by_project" in decision.parameters) is (suspect is not None)


BROKEN = "/work/repo/.claude/settings.json: autoUpdates: expected true or false (got 1)"


@pytest.mark.parametrize(
    ("days", "problems", "undetermined"),
    [
        pytest.param(Setting(7, USER), (), False, id="readable_settings"),
        pytest.param(Setting(7, USER), (BROKEN,), True, id="a_file_that_may_set_it_is_broken"),
        pytest.param(Setting(30), (BROKEN,), True, id="default_with_a_broken_file"),
        pytest.param(Setting(3, MANAGED), (BROKEN,), False, id="managed_settings_decide"),
    ],
)
def test_an_unreadable_period_is_undetermined(
    days: Setting[int], problems: tuple[str, ...], undetermined: bool
) -> None:
    """The period is undetermined when a file that sets it, or may, cannot be used, unless
    managed settings set it; the reason names every problem."""
    context = Context(cleanup_period_days=days, cleanup_period_days_problems=problems)
    period = local_period(context)
    assert (period.undetermined is not None) is undetermined
    if period.undetermined is not None:
        assert BROKEN in period.undetermined
        assert "cleanupPeriodDays" in period.undetermined
