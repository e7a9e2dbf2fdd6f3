"""``airlock feedback`` and ``airlock survey`` as real subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from airlock.feedback import Issue, issue_link
from airlock.feedback.issue import CUT_NOTE
from tests.cli import airlock
from tests.feedback.servers import collector
from tests.feedback.sessionfiles import GITHUB_TOKEN, make_session

SID = "0d1e2f3a-4b5c-4d6e-9f70-8192a3b4c5d6"


def test_dry_run_json_prints_manifest(config_dir: Path) -> None:
    """Contract: `airlock feedback SESSION --dry-run --json` prints the manifest, writes nothing."""
    make_session(config_dir, SID)
    result = airlock("feedback", SID, "--dry-run", "--json", "--description", f"key {GITHUB_TOKEN}")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["session"] == SID
    assert {"files", "redactions", "retention", "airlock_version", "bundle_id"} <= set(manifest)
    assert GITHUB_TOKEN not in result.stdout
    assert not (config_dir / "feedback-bundles").exists()


def test_feedback_off_says_which_setting(config_dir: Path) -> None:
    """With DISABLE_FEEDBACK_COMMAND the command exits 3 and names the variable."""
    make_session(config_dir, SID)
    result = airlock("feedback", SID, "--dry-run", env={"DISABLE_FEEDBACK_COMMAND": "1"})
    assert result.returncode == 3
    assert "DISABLE_FEEDBACK_COMMAND" in result.stderr


def test_feedback_uploads_to_collector_from_settings(config_dir: Path, project: Path) -> None:
    """The collector URL comes from airlock.collectorUrl; the bundle arrives, stored once."""
    make_session(config_dir, SID)
    with collector() as server:
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.json").write_text(
            json.dumps({"airlock": {"collectorUrl": server.url}})
        )
        result = airlock(
            "feedback", "--json", "--issue", "link", "--description", f"leaked {GITHUB_TOKEN}"
        )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["delivered"]["receipt"]["status"] == 201
    assert list(server.stored) == [data["bundle_id"]]
    assert data["issue"].startswith("https://github.com/")
    assert GITHUB_TOKEN not in data["issue"] and "REDACTED" in data["issue"]
    assert GITHUB_TOKEN.encode() not in b"".join(server.stored.values())


def test_feedback_local_flag_archives(config_dir: Path) -> None:
    """--local keeps the bundle here and prints its path and how to forward it."""
    make_session(config_dir, SID)
    result = airlock("feedback", SID, "--local")
    assert result.returncode == 0, result.stderr
    (bundle,) = (config_dir / "feedback-bundles").iterdir()
    assert bundle.name in result.stdout.replace("\n", "")
    assert "forward" in result.stdout


def test_survey_rating_and_never_remembered(config_dir: Path, project: Path) -> None:
    """A scripted survey: rating sent alone, "never" remembered, the next run offers no share."""
    make_session(config_dir, SID)
    (project / ".claude").mkdir()
    with collector() as server:
        (project / ".claude" / "settings.json").write_text(
            json.dumps({"feedbackSurveyRate": 1, "airlock": {"collectorUrl": server.url}})
        )
        first = airlock("survey", SID, "--rating", "bad", "--share", "never", "--json")
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["share"] == "never"
        second = airlock("survey", SID, "--rating", "bad", "--share", "yes", "--json")
    assert second.returncode == 3
    assert "Don't ask again" in second.stderr
    assert len(server.stored) == 2  # the two ratings; no bundle
    assert all(b'"rating"' in body for body in server.stored.values())


def test_survey_yes_uploads_shared_transcript(config_dir: Path, project: Path) -> None:
    """Yes to the follow-up uploads a redacted bundle as a shared transcript, apart from the rating."""
    make_session(config_dir, SID)
    (project / ".claude").mkdir()
    with collector() as server:
        (project / ".claude" / "settings.json").write_text(
            json.dumps({"feedbackSurveyRate": 1, "airlock": {"collectorUrl": server.url}})
        )
        result = airlock("survey", SID, "--rating", "fine", "--share", "yes", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["bundle"]["kind"] == "shared_transcript"
    rating_paths = [p for p in server.attempts if p.endswith("survey-ratings")]
    assert len(rating_paths) == 1 and len(server.stored) == 2
    rating = next(b for b in server.stored.values() if b.startswith(b"{"))
    assert SID.encode() not in rating


def test_survey_check_not_sampled(config_dir: Path, project: Path) -> None:
    """At rate 0 the survey is off; at a tiny rate an unlucky session is not asked (exit 1)."""
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text(json.dumps({"feedbackSurveyRate": 1e-9}))
    result = airlock("survey", SID, "--check", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["plan"]["asked"] is False


def test_issue_link_fits_limit() -> None:
    """A long body is cut, with a note, so the link stays within the limit; the title is kept."""
    issue = Issue("Crash on start", "word " * 5000)
    link = issue_link(issue, limit=2000)
    assert len(link) <= 2000
    query = parse_qs(urlsplit(link).query)
    assert query["title"] == ["Crash on start"]
    assert query["body"][0].endswith(CUT_NOTE)
    short = issue_link(Issue("t", "b"))
    assert parse_qs(urlsplit(short).query)["body"] == ["b"]


def test_survey_without_collector_fails_before_asking(config_dir: Path, project: Path) -> None:
    """State on with no collector: exit 2 naming the setting, before any question is asked."""
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text(json.dumps({"feedbackSurveyRate": 1}))
    result = airlock("survey", SID)
    assert result.returncode == 2
    assert "airlock.collectorUrl" in result.stderr
    assert "How is Claude" not in result.stdout


def test_default_session_is_this_projects_and_issue_names_no_path(
    config_dir: Path, project: Path, home: Path
) -> None:
    """Without SESSION the newest session of this project is bundled; the issue has no local path."""
    ours = make_session(config_dir, SID, project="-here", cwd=str(project))
    for path in (ours.transcript, ours.subagent, ours.raw_log):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    make_session(config_dir, "11111111-2222-4333-8444-555555555555", cwd="/elsewhere")
    result = airlock("feedback", "--local", "--json", "--issue", "text")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["session"] == SID
    assert str(home) not in data["issue"] and "local archive" in data["issue"]
