"""Prune and delete: what goes, what stays, links, sessions in use, and removals cut short."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.errors import UsageError
from airlock.sessions import (
    SessionStore,
    dry_run,
    execute,
    plan_delete,
    plan_prune,
    recover,
)
from airlock.sessions.deletion import Remover
from airlock.sessions.journal import JOURNAL_DIR, write_journal
from tests.sessions.trees import NOW, make_session, snapshot

PERIOD = timedelta(days=30)


def _age(config_dir: Path, relative: str, days: int) -> Path:
    path = config_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("x")
    stamp = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_prune_removes_expired_sessions_completely(config_dir: Path) -> None:
    """An expired session goes with every file; a recent one stays untouched."""
    old = make_session(config_dir, age=timedelta(days=40))
    new = make_session(config_dir, age=timedelta(days=5))
    before = snapshot(config_dir)
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == [old.id]
    assert not any(p.exists() for p in old.paths)
    assert all(p.exists() for p in new.paths)
    assert report.bytes_freed == sum(len(before[str(p.relative_to(config_dir))]) for p in old.paths)  # type: ignore[arg-type]
    assert [s.id for s in store.list()] == [new.id]
    assert not list((config_dir / JOURNAL_DIR).iterdir())


def test_dry_run_changes_nothing(config_dir: Path) -> None:
    """A dry run reports the same sessions and bytes as a real prune and touches nothing."""
    make_session(config_dir, age=timedelta(days=40))
    make_session(config_dir, age=timedelta(days=5))
    _age(config_dir, "plans/old-plan.md", 45)
    before = snapshot(config_dir)
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    report = dry_run(plan)
    assert snapshot(config_dir) == before
    real = execute(store, plan, now=NOW)
    assert [s.id for s in report.removed] == [s.id for s in real.removed]
    assert report.bytes_freed == real.bytes_freed > 0


def test_prune_sweeps_stale_stores_and_keeps_what_it_must(config_dir: Path) -> None:
    """Old cache entries and orphans go; memory, sessions/, history.jsonl and fresh files stay."""
    kept = make_session(config_dir, age=timedelta(days=5))
    stale = [
        _age(config_dir, name, 45)
        for name in (
            "plans/p.md",
            "paste-cache/a.txt",
            "image-cache/i.png",
            "shell-snapshots/snapshot-bash-1.sh",
            "backups/.claude.json.backup.1",
            "debug/orphan-0001.txt",
            "file-history/orphan-0002/f@v1",
            "todos/orphan-0003-agent-orphan-0003.json",
            "usage-data/u.json",
            "feedback-bundles/b.tar",
            "tasks/orphan-0004/1.json",
            "session-env/orphan-0005/env",
        )
    ]
    fresh = _age(config_dir, "plans/fresh.md", 3)
    forever = [
        _age(config_dir, "history.jsonl", 400),
        _age(config_dir, "sessions/123.json", 400),
        _age(config_dir, f"projects/{kept.project}/memory/MEMORY.md", 400),
    ]
    own_old = _age(config_dir, f"file-history/{kept.id}/old@v1", 90)  # kept with its session
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in [fresh, own_old, *forever, *kept.paths])
    assert len(report.entries) == len(stale)


def test_prune_skips_sessions_in_use(config_dir: Path) -> None:
    """An expired session that a live agent has open is kept and reported."""
    made = make_session(config_dir, age=timedelta(days=40))
    (config_dir / "sessions").mkdir()
    (config_dir / "sessions" / "1.json").write_text(
        json.dumps({"pid": os.getpid(), "sessionId": made.id})
    )
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert report.removed == []
    assert [s.session.id for s in report.skipped] == [made.id]
    assert "running agent" in report.skipped[0].reason
    assert all(p.exists() for p in made.paths)


def test_session_written_during_removal_is_kept(config_dir: Path) -> None:
    """A session written to between the plan and the removal is kept and reported."""
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    transcript = config_dir / "projects" / made.project / f"{made.id}.jsonl"
    with transcript.open("a") as handle:
        handle.write("{}\n")
    report = execute(store, plan, now=NOW)
    assert report.removed == []
    assert "written to during the removal" in report.skipped[0].reason
    assert all(p.exists() for p in made.paths)


def test_links_out_of_the_config_dir_are_removed_as_links(config_dir: Path, tmp_path: Path) -> None:
    """Removing a session with links inside removes the links, never what they point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    made = make_session(config_dir, age=timedelta(days=40))
    results = config_dir / "projects" / made.project / made.id / "tool-results"
    (results / "file-link").symlink_to(outside / "keep.txt")
    (results / "dir-link").symlink_to(outside)
    (config_dir / "file-history" / made.id / "up").symlink_to(outside)
    old_link = config_dir / "plans" / "to-outside"
    old_link.parent.mkdir()
    old_link.symlink_to(outside)
    stamp = (NOW - timedelta(days=40)).timestamp()
    for link in (results / "file-link", results / "dir-link", old_link):
        os.utime(link, (stamp, stamp), follow_symlinks=False)
    os.utime(config_dir / "file-history" / made.id / "up", (stamp, stamp), follow_symlinks=False)
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == [made.id]
    assert (outside / "keep.txt").read_text() == "precious"
    assert not old_link.is_symlink()
    assert not (config_dir / "projects" / made.project / made.id).exists()


def test_remover_refuses_paths_outside_and_through_links(config_dir: Path, tmp_path: Path) -> None:
    """The remover refuses a path outside its root and a path through a linked folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("x")
    (config_dir / "through").symlink_to(outside)
    from airlock.errors import UnsafePathError

    with Remover(config_dir) as remover:
        with pytest.raises(UnsafePathError, match="outside"):
            remover.remove(outside / "f")
        with pytest.raises(UnsafePathError, match="symbolic link, not followed"):
            remover.remove(config_dir / "through" / "f")
        with pytest.raises(UnsafePathError):
            remover.remove(config_dir / ".." / "outside" / "f")
    assert (outside / "f").exists()


def test_delete_removes_exactly_those_sessions(config_dir: Path) -> None:
    """delete removes the named sessions, whatever their age, and nothing else."""
    first = make_session(config_dir, age=timedelta(days=2))
    second = make_session(config_dir, age=timedelta(days=3))
    third = make_session(config_dir, age=timedelta(days=400))
    store = SessionStore(config_dir)
    report = execute(store, plan_delete(store, [first.id, second.id], now=NOW), now=NOW)
    assert {s.id for s in report.removed} == {first.id, second.id}
    assert [s.id for s in store.list()] == [third.id]
    assert all(p.exists() for p in third.paths)


def test_delete_with_an_unknown_id_removes_nothing(config_dir: Path) -> None:
    """One unknown id among known ones: an error naming it, and nothing removed."""
    made = make_session(config_dir)
    before = snapshot(config_dir)
    store = SessionStore(config_dir)
    with pytest.raises(UsageError, match="nope-1"):
        plan_delete(store, [made.id, "nope-1"], now=NOW)
    assert snapshot(config_dir) == before


def test_interrupted_removal_is_hidden_then_finished(config_dir: Path) -> None:
    """A removal cut short leaves no half-removed session listed; the next run finishes it."""
    victim = make_session(config_dir, age=timedelta(days=40))
    other = make_session(config_dir, age=timedelta(days=1))
    store = SessionStore(config_dir)
    session = store.get(victim.id)
    write_journal(config_dir, [session], NOW)  # the journal is written, then the crash:
    with Remover(config_dir) as remover:
        remover.remove(session.roots[0])  # only the transcript went before the crash
    assert [s.id for s in store.list()] == [other.id]
    assert any(p.exists() for p in victim.paths)
    assert recover(store, now=NOW).finished == (session.key,)
    assert not any(p.exists() for p in victim.paths)
    assert all(p.exists() for p in other.paths)
    assert [s.id for s in store.list()] == [other.id]


def test_recovery_keeps_a_session_written_after_its_journal(config_dir: Path) -> None:
    """A session written to after the journal was made is alive again and kept."""
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    write_journal(config_dir, [store.get(made.id)], NOW - timedelta(days=1))
    with (config_dir / "projects" / made.project / f"{made.id}.jsonl").open("a") as handle:
        handle.write("{}\n")  # the agent resumed the session after the journal was made
    assert recover(store, now=NOW).finished == ()
    assert all(p.exists() for p in made.paths)
    assert [s.id for s in store.list()] == [made.id]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ages=st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=6))
def test_prune_removes_exactly_the_sessions_older_than_the_period(
    tmp_path: Path, ages: list[int]
) -> None:
    """Whatever the ages, prune removes exactly the sessions inactive for longer than the period."""
    config_dir = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    config_dir.mkdir()
    made = [make_session(config_dir, age=timedelta(days=a, hours=1), extras=False) for a in ages]
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    expected = {m.id for m, a in zip(made, ages, strict=True) if a >= 30}
    assert {s.id for s in report.removed} == expected
    assert {s.id for s in store.list()} == {m.id for m in made} - expected


def test_nanosecond_mtimes_do_not_look_like_new_writes(config_dir: Path) -> None:
    """Modification times finer than a microsecond do not make a session look rewritten."""
    made = make_session(config_dir, age=timedelta(days=40))
    stamp = int((NOW - timedelta(days=40)).timestamp()) * 10**9 + 123_456_499
    for path in made.paths:
        os.utime(path, ns=(stamp, stamp))
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == [made.id]
    assert report.skipped == []


def test_prune_of_a_missing_config_dir_does_nothing(tmp_path: Path) -> None:
    """No config dir: nothing to remove, no error, and nothing is created."""
    store = SessionStore(tmp_path / "missing")
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert report.removed == [] and report.bytes_freed == 0
    assert not (tmp_path / "missing").exists()


def test_progress_counts_every_step(config_dir: Path) -> None:
    """The progress callback is told about every session and entry, and no more."""
    for _ in range(3):
        make_session(config_dir, age=timedelta(days=40))
    _age(config_dir, "plans/p.md", 45)
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    done: list[int] = []
    execute(store, plan, now=NOW, progress=done.append)
    assert sum(done) == plan.steps == 4


def test_a_linked_journal_folder_is_refused(config_dir: Path, tmp_path: Path) -> None:
    """If <config dir>/airlock is a link, no journal is written through it and nothing goes."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (config_dir / "airlock").symlink_to(outside)
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    from airlock.errors import UnsafePathError

    with pytest.raises(UnsafePathError, match="symbolic link"):
        execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert list(outside.iterdir()) == []
    assert all(p.exists() for p in made.paths)


@pytest.mark.parametrize(
    ("inside", "mtime", "removed"),
    [
        pytest.param(2, 40, False, id="recent_timestamp_inside_keeps_it"),
        pytest.param(40, 2, False, id="recent_mtime_keeps_it"),
        pytest.param(40, 40, True, id="both_old_removes_it"),
    ],
)
def test_prune_counts_the_newest_of_mtime_and_timestamps(
    config_dir: Path, inside: int, mtime: int, removed: bool
) -> None:
    """Prune keeps a session if either its files or its transcript's last line are recent."""
    made = make_session(
        config_dir, age=timedelta(days=inside), mtime_age=timedelta(days=mtime), extras=False
    )
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == ([made.id] if removed else [])
    assert all(p.exists() != removed for p in made.paths)


@pytest.mark.parametrize("nanos", [400, 500, 123_456_499, 999_999_999])
def test_any_nanosecond_part_of_an_mtime_is_not_a_write(config_dir: Path, nanos: int) -> None:
    """Whatever the sub-microsecond digits of the mtimes, an untouched session is removed."""
    made = make_session(config_dir, age=timedelta(days=40))
    stamp = int((NOW - timedelta(days=40)).timestamp()) * 10**9 + nanos
    for path in made.paths:
        os.utime(path, ns=(stamp, stamp))
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == [made.id] and report.skipped == []


def test_a_transcript_grown_with_its_mtime_unchanged_is_kept(config_dir: Path) -> None:
    """A write that leaves the mtime as it was (coarse clocks) still shows in the size: kept."""
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    transcript = config_dir / "projects" / made.project / f"{made.id}.jsonl"
    before = transcript.stat().st_mtime_ns
    with transcript.open("a") as handle:
        handle.write("{}\n")
    os.utime(transcript, ns=(before, before))
    report = execute(store, plan, now=NOW)
    assert report.removed == [] and [s.session.id for s in report.skipped] == [made.id]
    assert all(p.exists() for p in made.paths)


def test_files_added_to_a_session_after_the_plan_go_with_it(config_dir: Path) -> None:
    """A removal empties folders by what the scan found; a file added since, a file turned
    into a folder and a link planted since are removed too (links as links)."""
    outside = config_dir.parent / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    made = make_session(config_dir, age=timedelta(days=40))
    folder = config_dir / "projects" / made.project / made.id
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    (folder / "tool-results" / "late.txt").write_text("added after the plan")
    (folder / "late-folder").mkdir()
    (folder / "late-folder" / "deep.txt").write_text("deep")
    (folder / "subagents" / "link").symlink_to(outside)
    turned = folder / "tool-results" / "toolu_1.txt"
    turned.unlink()
    turned.mkdir()
    (turned / "inside.txt").write_text("now a folder")
    report = execute(store, plan, now=NOW)
    assert [s.id for s in report.removed] == [made.id]
    assert report.problems == []
    assert not folder.exists()
    assert not any(p.exists() for p in made.paths)
    assert (outside / "keep.txt").read_text() == "precious"


def test_files_gone_before_the_removal_are_not_an_error(config_dir: Path) -> None:
    """Files the scan found that are gone when the removal comes are passed over."""
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    folder = config_dir / "projects" / made.project / made.id
    (folder / "tool-results" / "toolu_1.txt").unlink()
    (folder / "tool-results").rmdir()
    (config_dir / "debug" / f"{made.id}.txt").unlink()
    report = execute(store, plan, now=NOW)
    assert [s.id for s in report.removed] == [made.id]
    assert report.problems == []
    assert not any(p.exists() for p in made.paths)


def _failing_unlink(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``os.unlink`` fails on ``name`` (a disk error, a file made immutable)."""
    real = os.unlink

    def unlink(path: Any, *, dir_fd: Any = None) -> None:
        if Path(os.fspath(path)).name == name:
            raise PermissionError(1, "Operation not permitted", os.fspath(path))
        real(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)


def test_a_session_not_fully_removed_stays_listed_and_reported(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal that fails part way is reported, and what is left of the session is listed
    (no journal hides it); every run reports it again, and one that works finishes it."""
    victim = make_session(config_dir, age=timedelta(days=40), subagents=1)
    store = SessionStore(config_dir)
    debug_log = config_dir / "debug" / f"{victim.id}.txt"
    _failing_unlink(monkeypatch, debug_log.name)
    for _ in range(2):
        report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
        assert report.removed == []
        assert any(
            victim.id in problem and "stays listed" in problem for problem in report.problems
        )
        assert debug_log.exists()
        assert [s.id for s in store.list()] == [victim.id]
        assert not list((config_dir / JOURNAL_DIR).glob("*.json"))
    monkeypatch.undo()
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [s.id for s in report.removed] == [victim.id]
    assert not any(p.exists() for p in victim.paths)
    assert not list((config_dir / JOURNAL_DIR).iterdir())


def test_stray_entries_of_a_pending_session_wait_for_its_removal(config_dir: Path) -> None:
    """Entries of a session named by an unfinished removal are not swept as strays: the
    removal that finishes it takes them."""
    victim = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    session = store.get(victim.id)
    write_journal(config_dir, [session], NOW)
    with Remover(config_dir) as remover:
        remover.remove(session.roots[0])  # the transcript went before the crash
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    assert plan.sessions == ()
    assert not any(victim.id in str(entry.path) for entry in plan.entries)
    report = execute(store, plan, now=NOW)
    assert report.recovered == [session.key]
    assert not any(p.exists() for p in victim.paths)


def test_folders_turned_into_links_after_the_plan_go_as_links(
    config_dir: Path, tmp_path: Path
) -> None:
    """A folder the scan found, replaced by a link before the removal (a session folder's
    subagents/, a file-history folder): the link is removed, what it points to is not."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep.txt").write_text("precious")
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    subagents = config_dir / "projects" / made.project / made.id / "subagents"
    history = config_dir / "file-history" / made.id
    for folder in (subagents, history):
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        folder.symlink_to(outside / "sub")
    report = execute(store, plan, now=NOW)
    assert [s.id for s in report.removed] == [made.id]
    assert report.problems == []
    assert not subagents.is_symlink() and not history.is_symlink()
    assert not (config_dir / "projects" / made.project / made.id).exists()
    assert (outside / "sub" / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("change", ["appended", "new_agent"])
def test_a_subagent_written_after_the_plan_keeps_the_session(config_dir: Path, change: str) -> None:
    """A subagent transcript appended to, or a new one, after the plan: the session is in use,
    kept whole and reported."""
    made = make_session(config_dir, age=timedelta(days=40), subagents=1)
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    (agent,) = store.get(made.id).subagent_transcripts
    if change == "appended":
        with agent.open("a") as handle:
            handle.write('{"type": "assistant"}\n')
    else:
        (agent.parent / "agent-new.jsonl").write_text('{"type": "user"}\n')
    report = execute(store, plan, now=NOW)
    assert report.removed == []
    assert [s.session.id for s in report.skipped] == [made.id]
    assert all(p.exists() for p in made.paths)
