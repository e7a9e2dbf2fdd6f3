"""Reading a transcript's last timestamp from its end: long lines, cut lines, malformed lines."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.sessions import SessionStore, execute, plan_prune
from airlock.sessions.transcript import (
    HEAD_BYTES,
    TAIL_BYTES,
    last_timestamp,
    read_entries,
    summarize,
)
from tests.sessions.trees import NOW, iso, line, make_session

SESSION = "5e55e55e-0000-0000-0000-000000000001"
OLD = NOW - timedelta(days=40)
NEWER = NOW - timedelta(days=2)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _last(path: Path) -> datetime | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return last_timestamp(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _user(moment: datetime, text: str = "hi") -> str:
    return line("user", SESSION, moment, "/p", {"role": "user", "content": text})


def _timestamp_first(moment: datetime, text: str) -> str:
    """A line whose timestamp comes first and whose message is ``text`` (as the agent writes
    some lines: the timestamp is far from the end of a long line)."""
    return json.dumps({"timestamp": iso(moment), "type": "assistant", "message": text})


@pytest.mark.parametrize("length", [TAIL_BYTES + 1, 3 * TAIL_BYTES, 5 * HEAD_BYTES])
def test_a_last_line_longer_than_the_window_is_read_to_its_start(
    tmp_path: Path, length: int
) -> None:
    """The timestamp at the start of a last line longer than the piece read is still found."""
    path = _write(
        tmp_path / "t.jsonl", _user(OLD) + "\n" + _timestamp_first(NEWER, "x" * length) + "\n"
    )
    assert _last(path) == NEWER
    assert summarize(path, head_too=False).last_timestamp == NEWER
    assert summarize(path).last_timestamp == NEWER


def test_a_final_line_cut_short_is_not_taken(tmp_path: Path) -> None:
    """A last line without its end (a crash mid-write) is passed over for the one before."""
    cut = _timestamp_first(NOW, "y" * 100)[:-10]
    path = _write(tmp_path / "t.jsonl", _user(OLD) + "\n" + _user(NEWER) + "\n" + cut)
    assert _last(path) == NEWER
    assert summarize(path).last_timestamp == NEWER


def test_a_final_line_without_its_line_break_counts_when_whole(tmp_path: Path) -> None:
    """A last line that is a whole object counts, with or without a line break after it."""
    path = _write(tmp_path / "t.jsonl", _user(OLD) + "\n" + _user(NEWER))
    assert _last(path) == NEWER


def test_malformed_and_timestampless_last_lines_are_passed_over(tmp_path: Path) -> None:
    """Broken lines, non-objects and lines without a timestamp at the end: the last line that
    has one is taken, however far back."""
    filler = json.dumps({"type": "summary", "summary": "z" * (2 * TAIL_BYTES)})
    tail = ["not json", "[1, 2]", '{"type": "summary", "summary": "s"}', filler, "{broken", ""]
    path = _write(tmp_path / "t.jsonl", "\n".join([_user(OLD), _user(NEWER), *tail]) + "\n")
    assert _last(path) == NEWER
    assert summarize(path).last_timestamp == NEWER


def test_a_timestamp_quoted_inside_a_string_is_not_taken(tmp_path: Path) -> None:
    """Text that quotes a timestamp field (escaped inside a JSON string) is not one."""
    quoted = f'see "timestamp": "{iso(NOW)}" in the log'
    path = _write(tmp_path / "t.jsonl", _timestamp_first(NEWER, quoted) + "\n")
    assert _last(path) == NEWER


def test_no_timestamp_at_all_gives_none(tmp_path: Path) -> None:
    """A transcript with no timestamp in it has none (last activity is then its mtime)."""
    path = _write(tmp_path / "t.jsonl", '{"type": "summary"}\nnot json\n')
    assert _last(path) is None
    assert _last(_write(tmp_path / "empty.jsonl", "")) is None


def test_a_long_last_line_keeps_a_session_from_an_early_prune(config_dir: Path) -> None:
    """Old mtimes, a recent timestamp at the start of a long last line: the session is young,
    listed so, and not pruned."""
    lines = [_user(OLD, "start"), _timestamp_first(NEWER, "x" * (4 * HEAD_BYTES))]
    made = make_session(
        config_dir,
        session_id=SESSION,
        lines=lines,
        age=timedelta(days=40),
        subagents=0,
        extras=False,
    )
    store = SessionStore(config_dir)
    (listed,) = store.list()
    assert listed.last_activity == NEWER
    assert listed.first_prompt == "start"
    report = execute(store, plan_prune(store, now=NOW, older_than=timedelta(days=30)), now=NOW)
    assert report.removed == []
    assert all(path.exists() for path in made.paths)


def test_only_a_line_s_own_timestamp_counts(tmp_path: Path) -> None:
    """A timestamp field nested in a line (a tool result's, say), older or newer, is not the
    line's: the line's own one is taken, and a line with only nested ones is passed over."""
    nested_old = json.dumps({"timestamp": iso(NEWER), "toolUseResult": {"timestamp": iso(OLD)}})
    nested_only = json.dumps({"type": "assistant", "toolUseResult": {"timestamp": iso(NOW)}})
    for lines in ([_user(OLD), nested_old], [_user(OLD), _user(NEWER), nested_only]):
        path = _write(tmp_path / "t.jsonl", "\n".join(lines) + "\n")
        assert _last(path) == NEWER
        assert summarize(path).last_timestamp == NEWER
        assert summarize(path, head_too=False).last_timestamp == NEWER


def test_a_nested_older_timestamp_does_not_prune_early(config_dir: Path) -> None:
    """A recent line whose tool result carries an older timestamp after its own: the session
    is listed and judged by the line's own timestamp, long line or short."""
    for number, filler in enumerate(("", "x" * (2 * HEAD_BYTES))):
        last = {
            "timestamp": iso(NEWER),
            "message": filler,
            "toolUseResult": {"timestamp": iso(OLD)},
        }
        make_session(
            config_dir,
            session_id=f"{SESSION[:-1]}{number}",
            lines=[_user(OLD, "start"), json.dumps(last)],
            age=timedelta(days=40),
            subagents=0,
            extras=False,
        )
    store = SessionStore(config_dir)
    assert [s.last_activity for s in store.list()] == [NEWER, NEWER]
    report = execute(store, plan_prune(store, now=NOW, older_than=timedelta(days=30)), now=NOW)
    assert report.removed == []


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities included: the standard library writes them
    | st.text(),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(json.dumps, _JSON)
        | st.sampled_from(["", "   ", "{not json", "[1, 2]", '"text"', '{"a": 1} x', "\ufeff{}"]),
        max_size=12,
    )
)
def test_a_listing_counts_the_lines_a_full_reading_skips(
    tmp_path_factory: Any, lines: list[str]
) -> None:
    """For a transcript read whole by a listing, its malformed-line count is the number of
    non-blank lines that ``show``'s full reading skips: one parser, one verdict."""
    path = tmp_path_factory.mktemp("t") / "s.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    problems: list[str] = []
    read = list(read_entries(path, problems))
    non_blank = sum(1 for line in lines for part in line.split("\n") if part.strip())
    assert summarize(path).malformed_lines == non_blank - len(read)
