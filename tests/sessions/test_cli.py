"""``airlock sessions`` as a real subprocess: periods planted by a project, one removal at a
time, older subagent files, id prefixes, odd config dirs and odd transcripts."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airlock.sessions import BusyError, SessionStore, execute, plan_prune, removal_lock
from airlock.sessions.lock import LOCK_FILE
from tests.cli import airlock
from tests.conftest import write_json
from tests.sessions.trees import line, make_session, snapshot

NOW = datetime.now(UTC)


# --------------------------------------------------------------------------- a planted period


@pytest.mark.parametrize(
    ("file", "user", "refused"),
    [
        pytest.param("settings.json", None, True, id="project_shorter_than_default"),
        pytest.param("settings.local.json", None, True, id="project_local_shorter"),
        pytest.param("settings.json", 1, False, id="user_says_as_short"),
        pytest.param("settings.json", 2, True, id="project_shorter_than_user"),
    ],
)
def test_prune_refuses_a_shorter_period_from_the_project(
    config_dir: Path, project: Path, file: str, user: int | None, refused: bool
) -> None:
    """A project file shortening the period makes prune refuse unless --older-than is given."""
    write_json(project / ".claude" / file, {"cleanupPeriodDays": 1})
    if user is not None:
        write_json(config_dir / "settings.json", {"cleanupPeriodDays": user})
    made = make_session(config_dir, age=timedelta(days=5), now=NOW, cwd="/elsewhere")
    before = snapshot(config_dir)
    result = airlock("sessions", "prune")
    if not refused:
        assert result.returncode == 0, result.stderr
        assert not any(p.exists() for p in made.paths)
        return
    assert result.returncode == 3, result.stderr
    assert "cleanupPeriodDays=1" in result.stderr and "--older-than 1" in result.stderr
    assert snapshot(config_dir) == before
    dry = airlock("sessions", "prune", "--dry-run", "--json")
    assert dry.returncode == 0 and "would refuse" in dry.stderr
    assert json.loads(dry.stdout)["warnings"]
    assert snapshot(config_dir) == before
    explicit = airlock("sessions", "prune", "--older-than", "1")
    assert explicit.returncode == 0, explicit.stderr
    assert not any(p.exists() for p in made.paths)


def test_a_longer_period_from_the_project_is_used(config_dir: Path, project: Path) -> None:
    """A project may keep sessions longer without any warning."""
    write_json(project / ".claude" / "settings.json", {"cleanupPeriodDays": 90})
    made = make_session(config_dir, age=timedelta(days=40), now=NOW)
    result = airlock("sessions", "prune")
    assert result.returncode == 0 and result.stderr == ""
    assert all(p.exists() for p in made.paths)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("prune",), id="prune_settings"),
        pytest.param(("prune", "--older-than", "1e12"), id="prune_option"),
        pytest.param(("list", "--older-than", "1e300", "--json"), id="list_option"),
    ],
)
def test_a_period_past_the_calendar_keeps_every_session(
    config_dir: Path, command: tuple[str, ...]
) -> None:
    """A period longer than dates reach (``cleanupPeriodDays`` of 10**9, ``--older-than
    1e12``) ended in an OverflowError traceback: nothing is that old, so nothing is pruned or
    listed."""
    write_json(config_dir / "settings.json", {"cleanupPeriodDays": 10**9})
    made = make_session(config_dir, age=timedelta(days=50_000), now=NOW, cwd="/elsewhere")
    result = airlock("sessions", *command)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert all(p.exists() for p in made.paths)
    if "list" in command:
        assert json.loads(result.stdout) == []


def test_managed_period_wins_over_a_project_file(
    config_dir: Path, project: Path, managed_dir: Path
) -> None:
    """A valid managed period applies; the project file cannot shorten it."""
    write_json(managed_dir / "managed-settings.json", {"cleanupPeriodDays": 10})
    write_json(project / ".claude" / "settings.json", {"cleanupPeriodDays": 1})
    old = make_session(config_dir, age=timedelta(days=20), now=NOW)
    young = make_session(config_dir, age=timedelta(days=5), now=NOW)
    result = airlock("sessions", "prune")
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in old.paths)
    assert all(p.exists() for p in young.paths)


# --------------------------------------------------------------------------- one at a time


def test_a_second_prune_waits_then_says_another_is_running(config_dir: Path) -> None:
    """While one removal holds the lock, a second prune gives up with a message, removing nothing."""
    make_session(config_dir, age=timedelta(days=40), now=NOW)
    lock = config_dir / LOCK_FILE
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        before = snapshot(config_dir)
        result = airlock("sessions", "prune")
        assert result.returncode == 2
        assert "another 'airlock sessions prune' or 'delete' is running" in result.stderr
        assert snapshot(config_dir) == before
    assert airlock("sessions", "prune").returncode == 0
    assert SessionStore(config_dir).list() == []


def test_the_lock_is_exclusive_and_released(config_dir: Path) -> None:
    """Within one process too, a second holder waits and fails; after release it succeeds."""
    store = SessionStore(config_dir)
    make_session(config_dir, age=timedelta(days=40), now=NOW)
    plan = plan_prune(store, now=NOW, older_than=timedelta(days=30))
    with removal_lock(config_dir), pytest.raises(BusyError, match=r"waited 0\.1 s"):
        execute(store, plan, now=NOW, lock_wait=0.1)
    assert len(execute(store, plan, now=NOW, lock_wait=0.1).removed) == 1


# --------------------------------------------------------------------------- older subagent layout


def _legacy_agent(config_dir: Path, project: str, parent: str, name: str, age: float) -> Path:
    moment = NOW - timedelta(days=age)
    path = config_dir / "projects" / project / f"agent-{name}.jsonl"
    text = line("user", parent, moment, "/p", {"role": "user", "content": "subtask"})
    path.write_text(text + "\n", encoding="utf-8")
    os.utime(path, (moment.timestamp(), moment.timestamp()))
    return path


def test_older_layout_subagents_belong_to_their_session(config_dir: Path) -> None:
    """projects/<p>/agent-<id>.jsonl is listed with the session it names and removed with it."""
    parent = make_session(config_dir, age=timedelta(days=40), now=NOW, subagents=0)
    agent = _legacy_agent(config_dir, parent.project, parent.id, "5f3a1b2c", 40)
    orphan = _legacy_agent(config_dir, parent.project, "gone-session", "77aa", 40)
    listed = json.loads(airlock("sessions", "list", "--json").stdout)
    assert sorted(item["id"] for item in listed) == sorted([parent.id, "agent-77aa"])
    session = SessionStore(config_dir).get(parent.id)
    assert session.subagent_transcripts == (agent,)
    assert agent in session.files()
    result = airlock("sessions", "delete", parent.id)
    assert result.returncode == 0, result.stderr
    assert not agent.exists() and orphan.exists()


# --------------------------------------------------------------------------- smaller things


def test_project_folder_name_starting_with_a_dash(config_dir: Path) -> None:
    """--project -home-u-proj (no '=') is taken as the folder name."""
    made = make_session(config_dir, cwd="/home/u/proj", now=NOW)
    make_session(config_dir, cwd="/srv/other", now=NOW)
    for args in (("--project", "-home-u-proj"), ("--project=-home-u-proj",)):
        result = airlock("sessions", "list", "--json", *args)
        assert result.returncode == 0, result.stderr
        assert [item["id"] for item in json.loads(result.stdout)] == [made.id]


def test_list_counts_malformed_lines_like_show(config_dir: Path) -> None:
    """A transcript with broken lines: list gives their count, and show reports the same lines."""
    session_id = "0000aaaa-0000-0000-0000-000000000001"
    moment = NOW - timedelta(days=2)
    lines = [
        line("user", session_id, moment, "/p", {"role": "user", "content": "hi"}),
        "{broken",
        line("assistant", session_id, moment, "/p", {"content": "ok"}),
        "not json either",
    ]
    make_session(config_dir, session_id=session_id, lines=lines, subagents=0, now=NOW)
    (item,) = json.loads(airlock("sessions", "list", "--json").stdout)
    assert item["malformed_lines"] == 2
    assert [p.split(": ")[1] for p in item["problems"]] == ["line 2", "line 4"]
    shown = airlock("sessions", "show", session_id)
    assert shown.returncode == 0
    assert "line 2" in shown.stderr and "line 4" in shown.stderr


def test_list_counts_malformed_lines_in_a_long_transcript_s_head_like_show(
    config_dir: Path,
) -> None:
    """In a transcript longer than the part a listing reads, the lines after the first prompt
    are only checked, not parsed: the count is still show's, odd lines included (a byte-order
    mark before an object is not one; a NaN inside one still is)."""
    from airlock.sessions.transcript import HEAD_BYTES

    session_id = "0000aaaa-0000-0000-0000-000000000002"
    moment = NOW - timedelta(days=2)
    first = line("user", session_id, moment, "/p", {"role": "user", "content": "hi"})
    filler = line("assistant", session_id, moment, "/p", {"content": "x" * 2000})
    odd = [
        "{broken",
        "\ufeff" + filler,  # not an object to the standard library
        filler[:-1] + ', "score": NaN}',  # an object to it
        "[1, 2]",
    ]
    body = [first, filler, *odd]
    while sum(len(text) + 1 for text in body) < 2 * HEAD_BYTES:
        body.append(filler)
    make_session(config_dir, session_id=session_id, lines=body, subagents=0, now=NOW)
    (item,) = json.loads(airlock("sessions", "list", "--json").stdout)
    assert item["malformed_lines"] == 3
    assert [p.split(": ")[1] for p in item["problems"]] == ["line 3", "line 4", "line 6"]
    shown = airlock("sessions", "show", session_id)
    assert shown.returncode == 0
    assert all(f"line {n}:" in shown.stderr for n in (3, 4, 6))
    assert "line 5:" not in shown.stderr


def test_a_binary_transcript_reports_a_few_lines_then_a_count(config_dir: Path) -> None:
    """Hundreds of garbage "lines" give a handful of stderr lines and one "and N more"."""
    made = make_session(config_dir, subagents=0, extras=False, now=NOW)
    transcript = config_dir / "projects" / made.project / f"{made.id}.jsonl"
    transcript.write_bytes(b"\x00\xff\xfe binary\n" * 500)
    for action in (("show", made.id), ("list",)):
        result = airlock("sessions", *action)
        assert result.returncode == 0, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) <= 10, lines
        assert any("and 495 more" in text for text in lines), lines


def test_a_missing_config_dir_is_noted(tmp_path: Path) -> None:
    """CLAUDE_CONFIG_DIR naming nothing: an empty list, and a note on stderr saying so."""
    missing = tmp_path / "nonexistent"
    result = airlock("sessions", "list", "--json", env={"CLAUDE_CONFIG_DIR": str(missing)})
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert f"{missing}" in result.stderr and "does not exist" in result.stderr


def test_a_config_dir_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    """CLAUDE_CONFIG_DIR naming a file: exit 2 and a message naming it, no traceback."""
    file = tmp_path / "a-file"
    file.write_text("x")
    for action in (("list",), ("prune", "--dry-run"), ("show", "abc")):
        result = airlock("sessions", *action, env={"CLAUDE_CONFIG_DIR": str(file)})
        assert result.returncode == 2, (action, result.stderr)
        assert "is not a folder" in result.stderr and str(file) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_show_help_and_id_prefixes(config_dir: Path) -> None:
    """show explains ID; a unique prefix finds the session; an ambiguous one lists the matches."""
    one = make_session(config_dir, session_id="abc11111-0000", now=NOW, prompt="first one")
    make_session(config_dir, session_id="abc22222-0000", now=NOW)
    assert "unique beginning" in airlock("sessions", "show", "--help").stdout
    shown = airlock("sessions", "show", "abc1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "first one" in shown.stdout
    ambiguous = airlock("sessions", "show", "abc")
    assert ambiguous.returncode == 2
    assert "abc11111-0000" in ambiguous.stderr and "abc22222-0000" in ambiguous.stderr
    assert airlock("sessions", "show", "zzz").returncode == 2
    deleted = airlock("sessions", "delete", "abc1")
    assert deleted.returncode == 0, deleted.stderr
    assert not any(p.exists() for p in one.paths)
