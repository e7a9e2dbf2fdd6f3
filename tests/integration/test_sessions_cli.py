"""``airlock sessions`` as a real subprocess, on generated config dirs, with real settings files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli import airlock
from tests.conftest import write_json
from tests.sessions.trees import make_session, snapshot

NOW = datetime.now(UTC)


def test_list_json_contract(config_dir: Path) -> None:
    """list --json prints an array with id, project, ISO last_activity and size, newest first."""
    old = make_session(config_dir, age=timedelta(days=9), now=NOW)
    new = make_session(config_dir, age=timedelta(days=1), now=NOW, cwd="/srv/app")
    result = airlock("sessions", "list", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [item["id"] for item in data] == [new.id, old.id]
    for item in data:
        assert isinstance(item["project"], str)
        assert isinstance(item["size"], int) and item["size"] > 0
        datetime.fromisoformat(item["last_activity"].replace("Z", "+00:00"))


def test_list_json_is_the_library_s_listing(config_dir: Path) -> None:
    """Every object list --json prints is the library's ``Session.to_json()``, in the
    library's order, and a session's problems are told on standard error."""
    from airlock.sessions import SessionStore

    for days in (1, 3, 3, 7):
        make_session(config_dir, age=timedelta(days=days), now=NOW, prompt="ünïcode “prompt”")
    broken = make_session(config_dir, age=timedelta(days=2), now=NOW, cwd="/srv/app")
    transcript = next(p for p in broken.paths if p.name == f"{broken.id}.jsonl")
    text = transcript.read_text(encoding="utf-8")
    transcript.write_text(text + "{not json\n", encoding="utf-8")
    bad_line = text.count("\n") + 1
    result = airlock("sessions", "list", "--json")
    assert result.returncode == 0, result.stderr
    expected = [s.to_json() for s in SessionStore(config_dir).list()]
    assert json.loads(result.stdout) == expected
    assert f"{transcript}: line {bad_line}: not a JSON object" in result.stderr


def test_list_honours_claude_config_dir(tmp_path: Path) -> None:
    """$CLAUDE_CONFIG_DIR moves the config dir."""
    elsewhere = tmp_path / "elsewhere"
    made = make_session(elsewhere, now=NOW)
    result = airlock("sessions", "list", "--json", env={"CLAUDE_CONFIG_DIR": str(elsewhere)})
    assert [item["id"] for item in json.loads(result.stdout)] == [made.id]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("--project", "/srv/app"), ["app"], id="project_by_directory"),
        pytest.param(("--project=-srv-app",), ["app"], id="project_by_folder_name"),
        pytest.param(("--older-than", "5"), ["old"], id="older_than_days"),
    ],
)
def test_list_filters(config_dir: Path, args: tuple[str, ...], expected: list[str]) -> None:
    """--project and --older-than narrow the listing."""
    made = {
        "app": make_session(config_dir, cwd="/srv/app", age=timedelta(days=1), now=NOW),
        "old": make_session(config_dir, cwd="/home/u/x", age=timedelta(days=9), now=NOW),
    }
    result = airlock("sessions", "list", "--json", *args)
    assert [item["id"] for item in json.loads(result.stdout)] == [made[k].id for k in expected]


def test_list_table_and_show(config_dir: Path) -> None:
    """The table lists the prompt; show renders prompts, tools and subagents."""
    made = make_session(config_dir, prompt="refactor the parser", now=NOW)
    assert "refactor" in airlock("sessions", "list").stdout
    shown = airlock("sessions", "show", made.id)
    assert shown.returncode == 0, shown.stderr
    for text in ("refactor the parser", "tool Bash", "result", "subagent agent-a000"):
        assert text in shown.stdout
    data = json.loads(airlock("sessions", "show", made.id, "--json").stdout)
    assert data["session"]["id"] == made.id
    assert len(data["entries"]) == 4 and len(data["subagents"]) == 1


def test_list_and_show_write_a_transcripts_control_characters_as_escapes(
    config_dir: Path,
) -> None:
    """A transcript holds what tools read (a web page, a file): an escape sequence in it (a
    hyperlink, a line erased) is shown as ``\\x1b`` in the table and the conversation, never
    sent to the terminal; markup in it is shown as written."""
    link = "\x1b]8;;https://evil.example/\x1b\\"
    made = make_session(config_dir, prompt=f"fix [bold]it{link}now\x1b[2K\u202e", now=NOW)
    listed = airlock("sessions", "list")
    shown = airlock("sessions", "show", made.id)
    for done in (listed, shown):
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
        assert "fix [bold]it\\x1b]8;;https://evil.example/\\x1b\\now" in done.stdout
        assert "now\\x1b[2K\\u202e" in done.stdout


def test_show_reports_malformed_lines_on_stderr(config_dir: Path) -> None:
    """Malformed lines are reported on stderr and the rest is still shown."""
    made = make_session(config_dir, now=NOW, prompt="still here")
    transcript = config_dir / "projects" / made.project / f"{made.id}.jsonl"
    transcript.write_text("{broken\n" + transcript.read_text())
    result = airlock("sessions", "show", made.id)
    assert result.returncode == 0
    assert "line 1" in result.stderr
    assert "still here" in result.stdout


def test_prune_uses_the_engines_period(config_dir: Path) -> None:
    """prune removes what is older than cleanupPeriodDays from the settings, and says why."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": 7})
    old = make_session(config_dir, age=timedelta(days=10), now=NOW)
    new = make_session(config_dir, age=timedelta(days=3), now=NOW)
    result = airlock("sessions", "prune")
    assert result.returncode == 0, result.stderr
    assert "cleanupPeriodDays=7" in result.stdout
    assert f"removed session {old.id}" in result.stdout
    assert "freed" in result.stdout
    assert not any(p.exists() for p in old.paths)
    assert all(p.exists() for p in new.paths)


def test_prune_dry_run_changes_nothing(config_dir: Path) -> None:
    """--dry-run lists what would go and leaves every byte in place."""
    old = make_session(config_dir, age=timedelta(days=40), now=NOW)
    before = snapshot(config_dir)
    result = airlock("sessions", "prune", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] is True
    assert [s["id"] for s in data["sessions"]] == [old.id]
    assert data["bytes_freed"] > 0 and data["period_days"] == 30
    assert snapshot(config_dir) == before


@pytest.mark.parametrize("bad", ["thirty", 0, -5, 1.5])
def test_prune_refuses_invalid_period(config_dir: Path, bad: object) -> None:
    """An invalid cleanupPeriodDays: prune refuses, says why, removes nothing."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": bad})
    make_session(config_dir, age=timedelta(days=400), now=NOW)
    before = snapshot(config_dir)
    result = airlock("sessions", "prune")
    assert result.returncode == 3
    assert "refusing to prune" in result.stderr
    assert "cleanupPeriodDays" in result.stderr
    assert snapshot(config_dir) == before


def test_prune_refuses_when_a_settings_file_cannot_be_read(config_dir: Path) -> None:
    """A settings file that is not JSON might hold the period: prune refuses."""
    (config_dir / "settings.json").write_text("{ not json")
    make_session(config_dir, age=timedelta(days=400), now=NOW)
    assert airlock("sessions", "prune").returncode == 3


def test_managed_period_overrides_invalid_user_settings(
    config_dir: Path, managed_dir: Path
) -> None:
    """With the period from managed settings, an invalid user value does not stop prune."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": "thirty"})
    write_json(managed_dir / "managed-settings.json", {"cleanupPeriodDays": 5})
    old = make_session(config_dir, age=timedelta(days=6), now=NOW)
    result = airlock("sessions", "prune")
    assert result.returncode == 0, result.stderr
    assert "cleanupPeriodDays=5" in result.stdout
    assert not any(p.exists() for p in old.paths)


def test_older_than_overrides_the_settings(config_dir: Path) -> None:
    """--older-than gives the period explicitly, even when the settings are invalid."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": "thirty"})
    old = make_session(config_dir, age=timedelta(days=3), now=NOW)
    result = airlock("sessions", "prune", "--older-than", "2")
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in old.paths)


def test_delete_and_unknown_ids(config_dir: Path) -> None:
    """delete removes the sessions; an unknown id exits non-zero, is named, removes nothing."""
    first = make_session(config_dir, now=NOW)
    second = make_session(config_dir, now=NOW)
    before = snapshot(config_dir)
    bad = airlock("sessions", "delete", first.id, "0000dead-beef")
    assert bad.returncode != 0
    assert "0000dead-beef" in bad.stderr
    assert snapshot(config_dir) == before
    good = airlock("sessions", "delete", first.id)
    assert good.returncode == 0, good.stderr
    assert f"removed session {first.id}" in good.stdout
    assert not any(p.exists() for p in first.paths)
    assert all(p.exists() for p in second.paths)


def test_delete_skips_a_session_being_written(config_dir: Path) -> None:
    """A session modified seconds ago is kept, reported, and the exit code says so."""
    made = make_session(config_dir, age=timedelta(seconds=5), now=datetime.now(UTC))
    result = airlock("sessions", "delete", made.id)
    assert result.returncode == 1
    assert "kept session" in result.stdout and "in use" in result.stdout
    assert all(p.exists() for p in made.paths)


def test_killed_prune_leaves_no_half_removed_session_listed(config_dir: Path) -> None:
    """Killing prune part-way: every session still listed is whole, and a rerun finishes."""
    made = [
        make_session(config_dir, age=timedelta(days=40), now=NOW, cwd=f"/p{i % 7}")
        for i in range(400)
    ]
    by_id = {m.id: m for m in made}
    process = subprocess.Popen(
        [sys.executable, "-m", "airlock", "sessions", "prune"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    journal = config_dir / "airlock" / "sessions-removal"
    while time.monotonic() < deadline and process.poll() is None:
        if journal.is_dir() and any(journal.iterdir()):
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    listed = json.loads(airlock("sessions", "list", "--json").stdout)
    for item in listed:
        assert all(p.exists() for p in by_id[item["id"]].paths), item["id"]
    assert airlock("sessions", "prune").returncode == 0
    assert json.loads(airlock("sessions", "list", "--json").stdout) == []
    assert not any(p.exists() for m in made for p in m.paths)


def test_delete_dry_run_and_missing_config_dir(config_dir: Path, tmp_path: Path) -> None:
    """delete --dry-run touches nothing; prune and list of a missing config dir succeed."""
    made = make_session(config_dir, now=NOW)
    before = snapshot(config_dir)
    result = airlock("sessions", "delete", made.id, "--dry-run")
    assert result.returncode == 0 and f"would remove session {made.id}" in result.stdout
    assert snapshot(config_dir) == before
    missing = {"CLAUDE_CONFIG_DIR": str(tmp_path / "missing")}
    assert airlock("sessions", "prune", env=missing).returncode == 0
    assert json.loads(airlock("sessions", "list", "--json", env=missing).stdout) == []


def test_prune_refuses_invalid_managed_period(config_dir: Path, managed_dir: Path) -> None:
    """An invalid period in managed settings is not a managed period: prune refuses."""
    write_json(managed_dir / "managed-settings.json", {"cleanupPeriodDays": 0})
    make_session(config_dir, age=timedelta(days=400), now=NOW)
    before = snapshot(config_dir)
    result = airlock("sessions", "prune")
    assert result.returncode == 3
    assert "MANAGED SETTINGS ARE INVALID" in result.stderr
    assert snapshot(config_dir) == before


def test_prune_refuses_a_period_from_an_unusable_file(config_dir: Path) -> None:
    """A valid period in a file with another bad key is not in effect: prune refuses."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": 7, "feedbackSurveyRate": 9})
    make_session(config_dir, age=timedelta(days=400), now=NOW)
    before = snapshot(config_dir)
    result = airlock("sessions", "prune")
    assert result.returncode == 3
    assert "feedbackSurveyRate" in result.stderr
    assert snapshot(config_dir) == before


def test_list_json_stays_utf_8_with_a_folder_name_that_is_not(config_dir: Path) -> None:
    """A project folder whose name is not UTF-8 is listed, and the JSON printed is still
    UTF-8 (the name escaped), which any JSON reader takes."""
    made = make_session(config_dir, cwd="/srv/app", now=NOW)
    projects = config_dir / "projects"
    (projects / "-srv-app").rename(projects / os.fsdecode(b"-srv-caf\xe9"))
    result = airlock("sessions", "list", "--json", text=False)
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout.decode("utf-8"))  # strict: every byte is UTF-8
    assert item["id"] == made.id
    assert os.fsencode(item["project"]) == b"-srv-caf\xe9"


def test_cli_a_session_behind_a_linked_projects_folder_stays_and_is_reported(
    config_dir: Path, tmp_path: Path
) -> None:
    """prune with projects/ a link: each run says the session was not removed, and why;
    list and show still have it; nothing outside is touched."""
    made = make_session(config_dir, age=timedelta(days=40), now=NOW)
    outside = tmp_path / "elsewhere"
    (config_dir / "projects").rename(outside)
    (config_dir / "projects").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    for _ in range(2):
        result = airlock("sessions", "prune", "--older-than", "30", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["sessions"] == []
        assert any(made.id in p and "symbolic link" in p for p in report["problems"])
        assert made.id in result.stderr and "not removed" in result.stderr
        listed = json.loads(airlock("sessions", "list", "--json").stdout)
        assert [item["id"] for item in listed] == [made.id]
        assert airlock("sessions", "show", made.id).returncode == 0
    assert snapshot(outside) == before


def test_cli_an_id_in_two_projects_is_ambiguous_until_named_by_project(config_dir: Path) -> None:
    """delete ID held by two projects refuses, naming both as PROJECT/ID; PROJECT/ID deletes
    that copy alone, and the other keeps its file history and log."""
    sid = "7c6b5a49-3827-4161-8504-f3e2d1c0b9a8"
    make_session(config_dir, age=timedelta(days=40), now=NOW, session_id=sid, cwd="/w/old")
    make_session(config_dir, age=timedelta(days=1), now=NOW, session_id=sid, cwd="/w/new")
    refused = airlock("sessions", "delete", sid)
    assert refused.returncode != 0
    assert "ambiguous" in refused.stderr
    assert f"-w-old/{sid}" in refused.stderr and f"-w-new/{sid}" in refused.stderr
    assert len(json.loads(airlock("sessions", "list", "--json").stdout)) == 2
    assert "'--'" in refused.stderr
    done = airlock("sessions", "delete", "--json", "--", f"-w-old/{sid}")
    assert done.returncode == 0, done.stderr
    assert [(s["project"], s["id"]) for s in json.loads(done.stdout)["sessions"]] == [
        ("-w-old", sid)
    ]
    assert (config_dir / "file-history" / sid).is_dir()
    assert (config_dir / "debug" / f"{sid}.txt").is_file()
    listed = json.loads(airlock("sessions", "list", "--json").stdout)
    assert [(s["project"], s["id"]) for s in listed] == [("-w-new", sid)]
