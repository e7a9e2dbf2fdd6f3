"""``--report-json FILE`` never holds an earlier run's report for this one: from the command's
start it says the run has not ended (what a run killed with ``kill -9`` leaves), and a run
airlock stops before its end says why, with exit status 125; a run that ended says it is
complete."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import airlock
from tests.integration.started import killed_once_started

EARLIER = {"run": "an-earlier-run", "exit_code": 0, "complete": True}


def _report(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_a_run_killed_leaves_a_report_that_says_it_has_not_ended(
    tmp_path: Path, project: Path
) -> None:
    report = project / "report.json"
    report.write_text(json.dumps(EARLIER))
    audit_log = tmp_path / "audit.jsonl"
    killed_once_started(project, "--audit-log", str(audit_log), "--report-json", str(report))
    data = _report(report)
    assert data["run"] != EARLIER["run"] and data["complete"] is False
    assert data["exit_code"] is None
    log = tmp_path / "audit.jsonl"  # not the default log: the command names it
    assert f"airlock audit --audit-log {log} --run {data['run']}" in str(data["error"])


def test_a_run_airlock_stops_says_why_in_the_report(tmp_path: Path, project: Path) -> None:
    """The audit log cannot be taken up (its last line is no record): 125, and the report says
    so instead of "not ended"."""
    report = project / "report.json"
    report.write_text(json.dumps(EARLIER))
    log = tmp_path / "audit.jsonl"
    log.write_text("not a record\n")
    done = airlock("run", "--audit-log", str(log), "--report-json", str(report), "--", "true")
    assert done.returncode == 125, done.stderr
    data = _report(report)
    assert data["run"] != EARLIER["run"] and data["complete"] is False
    assert data["exit_code"] == 125
    assert "airlock stopped the run: audit log" in str(data["error"])
    assert "is no audit record" in str(data["error"])


def test_a_run_that_ended_says_it_is_complete(tmp_path: Path, project: Path) -> None:
    report = project / "report.json"
    report.write_text(json.dumps(EARLIER))
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--report-json", str(report),
        "--", "sh", "-c", "exit 3",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    data = _report(report)
    assert data["complete"] is True and data["exit_code"] == 3
    assert data["run"] != EARLIER["run"]


def test_a_run_refused_for_its_git_token_says_why_in_the_report(
    tmp_path: Path, project: Path
) -> None:
    """``--repo`` without a token stops the run (125) while the gateway is prepared: the report
    file says so, not the earlier run's exit status."""
    report = project / "report.json"
    report.write_text(json.dumps(EARLIER))
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--report-json", str(report),
        "--repo", "octo/widgets", "--", "true",
        env={"GH_TOKEN": "", "GITHUB_TOKEN": ""},
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    data = _report(report)
    assert data["run"] != EARLIER["run"] and data["complete"] is False
    assert data["exit_code"] == 125
