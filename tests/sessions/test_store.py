"""The store: finding sessions, what belongs to each, last activity, links, malformed lines."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock._projects import project_name
from airlock.errors import UsageError
from airlock.sessions import SessionStore, parse_timestamp
from airlock.sessions.conversation import read_conversation
from airlock.sessions.journal import JOURNAL_DIR
from airlock.sessions.layout import is_session_id, todo_owner
from airlock.sessions.liveness import ACTIVE_SECONDS
from tests.sessions.trees import NOW, iso, line, make_session


def test_list_is_newest_first_with_every_field(config_dir: Path) -> None:
    """Sessions come newest first, with project, prompt, times, size and subagent count."""
    old = make_session(config_dir, age=timedelta(days=10), prompt="old work", subagents=2)
    new = make_session(config_dir, age=timedelta(days=1), cwd="/srv/app", prompt="new work")
    sessions = SessionStore(config_dir).list()
    assert [s.id for s in sessions] == [new.id, old.id]
    first = sessions[0]
    assert first.project == "-srv-app"
    assert first.cwd == "/srv/app"
    assert first.first_prompt == "new work"
    assert first.last_activity == NOW - timedelta(days=1)
    assert first.started == NOW - timedelta(days=1, minutes=5)
    assert first.size == sum(p.stat().st_size for p in new.paths)
    assert len(sessions[1].subagent_transcripts) == 2


def test_files_are_everything_that_belongs_to_the_session(config_dir: Path) -> None:
    """files() lists the transcript, subagents, tool results and every per-session store."""
    made = make_session(config_dir)
    other = make_session(config_dir)
    session = SessionStore(config_dir).get(made.id)
    assert sorted(session.files()) == sorted(made.paths)
    assert not set(session.files()) & set(other.paths)
    assert session.raw_log == config_dir / "debug" / f"{made.id}.txt"
    assert session.transcript == config_dir / "projects" / made.project / f"{made.id}.jsonl"
    assert all(p.name.startswith("agent-") for p in session.subagent_transcripts)


def test_session_without_extras_has_no_raw_log(config_dir: Path) -> None:
    """A session with no debug log says so with None."""
    made = make_session(config_dir, extras=False, subagents=0)
    session = SessionStore(config_dir).get(made.id)
    assert session.raw_log is None
    assert session.files() == (session.transcript,)


def test_subagent_only_session_is_listed(config_dir: Path) -> None:
    """A session folder with subagent transcripts but no main transcript is still a session."""
    made = make_session(config_dir, subagents=1)
    (config_dir / "projects" / made.project / f"{made.id}.jsonl").unlink()
    session = SessionStore(config_dir).get(made.id)
    assert session.first_prompt == "subtask 0"
    assert len(session.subagent_transcripts) == 1


def test_memory_folder_is_not_a_session(config_dir: Path) -> None:
    """projects/<project>/memory/ belongs to no session."""
    made = make_session(config_dir)
    memory = config_dir / "projects" / made.project / "memory"
    memory.mkdir()
    (memory / "MEMORY.md").write_text("notes")
    assert [s.id for s in SessionStore(config_dir).list()] == [made.id]


@pytest.mark.parametrize(
    ("inside", "mtime", "expected"),
    [
        pytest.param(40, 40, 40, id="both_old_is_old"),
        pytest.param(40, 2, 2, id="recent_mtime_wins_over_old_timestamps"),
        pytest.param(2, 40, 2, id="recent_timestamp_wins_over_old_mtime"),
    ],
)
def test_last_activity_is_the_newest_of_mtime_and_timestamps(
    config_dir: Path, inside: int, mtime: int, expected: int
) -> None:
    """Last activity is the newer of the files' mtime and the transcript's last timestamp."""
    made = make_session(
        config_dir, age=timedelta(days=inside), mtime_age=timedelta(days=mtime), extras=False
    )
    session = SessionStore(config_dir).get(made.id)
    assert session.last_activity == NOW - timedelta(days=expected)


def test_get_unknown_id_names_it(config_dir: Path) -> None:
    """An unknown id is a UsageError that names the id."""
    make_session(config_dir)
    with pytest.raises(UsageError, match="deadbeef-0000"):
        SessionStore(config_dir).get("deadbeef-0000")


@pytest.mark.parametrize("bad", ["../etc", "a/b/c", "../a", "a/", ".hidden", "", "x" * 200])
def test_get_refuses_ids_that_could_be_paths(config_dir: Path, bad: str) -> None:
    """An id with separators or dots is refused before any file is looked at."""
    with pytest.raises(UsageError, match="not a session id"):
        SessionStore(config_dir).get(bad)


def test_malformed_lines_are_reported_not_fatal(config_dir: Path) -> None:
    """Broken lines are reported with their line number; the session is still listed and shown."""
    session_id = "1234abcd-0000-0000-0000-000000000001"
    start = NOW - timedelta(days=3)
    lines = [
        "{not json",
        line("user", session_id, start, "/p", {"role": "user", "content": "hello"}),
        "[1, 2]",
        "\x00\xff garbage",
        line("assistant", session_id, start + timedelta(minutes=1), "/p", {"content": "hi"}),
    ]
    make_session(
        config_dir,
        session_id=session_id,
        lines=lines,
        extras=False,
        subagents=0,
        age=timedelta(days=3),
    )
    session = SessionStore(config_dir).get(session_id)
    assert session.first_prompt == "hello"
    assert session.last_activity == start + timedelta(minutes=1)
    conversation = read_conversation(session)
    assert [p.split(": ")[1] for p in conversation.problems] == ["line 1", "line 3", "line 4"]
    assert [p.split(": ")[1] for p in session.problems] == ["line 1", "line 3", "line 4"]
    assert session.malformed_lines == 3 == session.to_json()["malformed_lines"]
    assert [entry.line for entry in conversation.entries] == [2, 5]


def test_missing_config_dir_lists_nothing(tmp_path: Path) -> None:
    """A config dir that does not exist has no sessions (and is not created)."""
    store = SessionStore(tmp_path / "nowhere")
    assert store.list() == []
    assert not (tmp_path / "nowhere").exists()


def test_links_are_not_followed(config_dir: Path, tmp_path: Path) -> None:
    """Links out of the config dir are reported and never read or sized through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x" * 10_000)
    made = make_session(config_dir, extras=False, subagents=0)
    folder = config_dir / "projects" / made.project / made.id / "tool-results"
    folder.mkdir(parents=True)
    (folder / "link").symlink_to(outside / "secret.txt")
    (folder / "dirlink").symlink_to(outside)
    (config_dir / "projects" / "linked-project").symlink_to(outside)
    fake = config_dir / "projects" / made.project / "ffff0000-1111-2222-3333-444455556666.jsonl"
    fake.symlink_to(outside / "secret.txt")
    scan = SessionStore(config_dir).scan()
    assert [s.id for s in scan.sessions] == [made.id]
    session = scan.sessions[0]
    assert session.size < 10_000
    assert any("symbolic link, not followed" in p for p in session.problems)
    assert any("linked-project" in p for p in scan.problems)
    assert any(fake.name in p for p in scan.problems)


def test_sessions_named_by_an_unfinished_removal_are_hidden(config_dir: Path) -> None:
    """A session in a removal journal is not listed as whole, and get() says why."""
    made = make_session(config_dir)
    kept = make_session(config_dir)
    journal = config_dir / JOURNAL_DIR / "x.json"
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps({"started": NOW.timestamp(), "sessions": {made.id: []}}))
    store = SessionStore(config_dir)
    assert [s.id for s in store.list()] == [kept.id]
    with pytest.raises(UsageError, match="unfinished removal"):
        store.get(made.id)


def test_in_use_by_recent_write(config_dir: Path) -> None:
    """A session modified within ACTIVE_SECONDS of now is in use; an older one is not."""
    made = make_session(config_dir, age=timedelta(seconds=ACTIVE_SECONDS // 2))
    store = SessionStore(config_dir)
    session = store.get(made.id)
    assert store.in_use(session, NOW) is not None
    assert store.in_use(session, NOW + timedelta(seconds=ACTIVE_SECONDS)) is None


def test_in_use_by_running_agent(config_dir: Path) -> None:
    """A pid file of a live process naming the session marks it in use; a dead pid does not."""
    made = make_session(config_dir, age=timedelta(days=3))
    running = config_dir / "sessions"
    running.mkdir()
    (running / f"{os.getpid()}.json").write_text(
        json.dumps({"pid": os.getpid(), "sessionId": made.id})
    )
    store = SessionStore(config_dir)
    session = store.get(made.id)
    assert "pid" in (store.in_use(session, NOW) or "")
    (running / f"{os.getpid()}.json").write_text(
        json.dumps({"pid": 2**22 + 7, "sessionId": made.id})
    )
    assert store.in_use(session, NOW) is None


def test_foreign_files_are_flagged(config_dir: Path) -> None:
    """Files owned by another user than the config dir's owner are listed as foreign."""
    if os.getuid() != 0:
        pytest.fail("this test needs root to give a file to another user (CI runs as root)")
    made = make_session(config_dir)
    target = made.paths[-1]
    os.chown(target, 65534, 65534)
    session = SessionStore(config_dir).get(made.id)
    assert str(target) in session.foreign


@given(st.text(max_size=60))
def test_project_name_keeps_only_alphanumerics_and_dashes(cwd: str) -> None:
    """The projects/ folder name has the cwd's length in UTF-16 units, as the reference
    agent's JavaScript counts it: ASCII alphanumerics kept, every other unit '-' (a
    character past U+FFFF is two)."""
    name = project_name(cwd)
    expected = "".join(
        char if char.isascii() and char.isalnum() else "-" * (2 if ord(char) > 0xFFFF else 1)
        for char in cwd
    )
    assert name == expected
    assert len(name) == len(cwd.encode("utf-16-le")) // 2
    assert project_name("/home/me/🚀") == "-home-me---"


@given(st.uuids(), st.uuids())
def test_todo_files_belong_to_their_session(session: object, agent: object) -> None:
    """todos/<id>-agent-<agent>.json and todos/<id>.json belong to <id>, others to no one."""
    ids = {str(session)}
    assert todo_owner(f"{session}-agent-{agent}.json", ids) == str(session)
    assert todo_owner(f"{session}.json", ids) == str(session)
    assert todo_owner(f"{agent}-agent-{session}.json", ids) is None
    assert is_session_id(str(session))


@given(st.datetimes(timezones=st.just(NOW.tzinfo)))  # type: ignore[arg-type]
def test_timestamps_round_trip(moment: object) -> None:
    """A timestamp written the way the reference writes it reads back as the same instant."""
    from datetime import datetime

    assert isinstance(moment, datetime)
    written = iso(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    parsed = parse_timestamp(written)
    assert parsed is not None
    assert parsed == datetime.fromisoformat(written.replace("Z", "+00:00"))
