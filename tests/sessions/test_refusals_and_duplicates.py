"""Removal that cannot happen is seen, and one id in two projects is two sessions.

A session whose files sit behind a symbolic link (``projects/`` itself, or a store folder such as
``file-history/``) is refused whole: nothing of it is removed, nothing is journalled, it stays
listed, and every run says so again. The same session id in two project folders names two
sessions: removing one takes only its own files, never the other's file history, log, todos or
environment, and a bare id that names both is refused as ambiguous (``PROJECT/ID`` names one).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.errors import UsageError
from airlock.sessions import SessionStore, execute, plan_delete, plan_prune, recover
from airlock.sessions.journal import JOURNAL_DIR, write_journal
from tests.sessions.trees import NOW, make_session, snapshot

PERIOD = timedelta(days=30)
SID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SHARED = (
    f"file-history/{SID}",
    f"session-env/{SID}",
    f"todos/{SID}-agent-{SID}.json",
    f"debug/{SID}.txt",
)
"""What the two copies of one id share: the stores keyed by id alone."""


def _journals(config_dir: Path) -> list[Path]:
    folder = config_dir / JOURNAL_DIR
    return list(folder.iterdir()) if folder.exists() else []


def _files(root: Path) -> dict[str, bytes | str]:
    """Everything under ``root`` but airlock's own lock and journal folder."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith("airlock")}


def _move_out(config_dir: Path, relative: str, outside: Path) -> Path:
    """``relative`` becomes a link to the same folder moved outside the config dir."""
    target = outside / relative.replace("/", "_")
    shutil.move(config_dir / relative, target)
    (config_dir / relative).symlink_to(target, target_is_directory=True)
    return target


LINKED = ["projects", "file-history", "session-env", "todos", "debug"]


@pytest.mark.parametrize("linked", LINKED, ids=[f"{name}_is_a_link" for name in LINKED])
def test_a_session_behind_a_link_is_refused_whole_and_stays_visible(
    config_dir: Path, tmp_path: Path, linked: str
) -> None:
    """Nothing of it goes, no journal hides it, it stays listed, and each run reports it."""
    old = make_session(config_dir, age=timedelta(days=40))
    outside = tmp_path / "outside"
    outside.mkdir()
    _move_out(config_dir, linked, outside)
    before = _files(config_dir), _files(outside)
    store = SessionStore(config_dir)
    for _ in range(2):  # every run, not only the first, says so
        report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
        assert report.removed == []
        (problem,) = [text for text in report.problems if old.id in text]
        assert "not removed" in problem
        assert linked in problem
        assert "symbolic link" in problem
        assert (_files(config_dir), _files(outside)) == before
        assert _journals(config_dir) == []
        assert [s.id for s in store.list()] == [old.id]
        assert store.get(old.id).id == old.id


def test_a_refused_delete_keeps_the_session_listed(config_dir: Path, tmp_path: Path) -> None:
    """`delete` of a session behind a link: refused with the reason, the session still there."""
    made = make_session(config_dir, age=timedelta(days=1))
    outside = tmp_path / "outside"
    outside.mkdir()
    _move_out(config_dir, "projects", outside)
    store = SessionStore(config_dir)
    report = execute(store, plan_delete(store, [made.id], now=NOW), now=NOW)
    assert report.removed == [] and len(report.problems) == 1
    assert [s.id for s in store.list()] == [made.id]


def test_a_journal_that_cannot_be_finished_is_reported_and_hides_nothing(
    config_dir: Path, tmp_path: Path
) -> None:
    """A removal cut short whose files are now behind a link: each run reports it, the session
    is listed again (not hidden forever by a journal nobody can finish)."""
    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    write_journal(config_dir, [store.get(made.id)], NOW - timedelta(days=1))
    assert store.list() == []  # hidden while its removal is unfinished
    outside = tmp_path / "outside"
    outside.mkdir()
    _move_out(config_dir, "projects", outside)
    recovered = recover(store, now=NOW)
    assert recovered.finished == ()
    (problem,) = recovered.problems
    assert made.id in problem and "symbolic link" in problem
    assert [s.id for s in store.list()] == [made.id]
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert any(made.id in text and "not removed" in text for text in report.problems)


def _two_copies(config_dir: Path, stale: int = 40, live: int = 1) -> tuple[str, str]:
    """The same id in two projects: ``/work/stale`` (``stale`` days) and ``/work/live``."""
    a = make_session(config_dir, cwd="/work/stale", session_id=SID, age=timedelta(days=stale))
    b = make_session(config_dir, cwd="/work/live", session_id=SID, age=timedelta(days=live))
    return a.project, b.project


def test_both_copies_are_listed_by_project(config_dir: Path) -> None:
    """Two projects with the same id: two sessions, the shared stores in neither's files."""
    _two_copies(config_dir)
    sessions = SessionStore(config_dir).list()
    assert sorted(s.project for s in sessions) == ["-work-live", "-work-stale"]
    for session in sessions:
        owned = {str(Path(p).relative_to(config_dir)) for p in session.file_paths}
        assert not any(path.startswith(SHARED) for path in owned), owned


def test_pruning_the_stale_copy_keeps_the_live_copys_files(config_dir: Path) -> None:
    """Only the stale copy's own files go; file history, env, todos and log stay for the live."""
    stale, live = _two_copies(config_dir)
    kept = {k: v for k, v in _files(config_dir).items() if not k.startswith(f"projects/{stale}")}
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert [(s.project, s.id) for s in report.removed] == [(stale, SID)]
    after = _files(config_dir)
    for path in SHARED:
        assert path in after, path
    assert {k: v for k, v in after.items() if k != f"projects/{stale}"} == kept
    assert [s.project for s in store.list()] == [live]


def test_pruning_every_copy_takes_the_shared_files_too(config_dir: Path) -> None:
    """When every copy of the id goes, what they shared goes with them."""
    _two_copies(config_dir, stale=40, live=35)
    store = SessionStore(config_dir)
    report = execute(store, plan_prune(store, now=NOW, older_than=PERIOD), now=NOW)
    assert len(report.removed) == 2
    assert not any((config_dir / path).exists() for path in SHARED)
    assert store.list() == []


@pytest.mark.parametrize("verb", ["get", "delete"])
def test_a_bare_id_naming_two_sessions_is_ambiguous(config_dir: Path, verb: str) -> None:
    """`show` and `delete` with an id two projects hold: refused, naming both as PROJECT/ID."""
    stale, live = _two_copies(config_dir)
    store = SessionStore(config_dir)
    with pytest.raises(UsageError, match="ambiguous") as caught:
        if verb == "get":
            store.get(store.resolve(SID))
        else:
            plan_delete(store, [store.resolve(SID)], now=NOW)
    assert f"{stale}/{SID}" in str(caught.value) and f"{live}/{SID}" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["-work-stale/" + SID, "-work-stale/" + SID[:8]],
    ids=["project_and_id", "project_and_id_prefix"],
)
def test_project_slash_id_names_one_copy(config_dir: Path, name: str) -> None:
    """PROJECT/ID (or a unique beginning of the id) picks one copy; delete takes only its own."""
    stale, live = _two_copies(config_dir)
    store = SessionStore(config_dir)
    assert store.get(store.resolve(name)).project == stale
    report = execute(store, plan_delete(store, [store.resolve(name)], now=NOW), now=NOW)
    assert [(s.project, s.id) for s in report.removed] == [(stale, SID)]
    assert all((config_dir / path).exists() for path in SHARED)
    assert [s.project for s in store.list()] == [live]


@pytest.mark.parametrize(
    "name",
    ["-nowhere/" + SID, "../x/" + SID, "-work-stale/", "/" + SID],
    ids=["unknown_project", "dot_dot", "no_id", "empty_project"],
)
def test_bad_project_names_are_refused(config_dir: Path, name: str) -> None:
    """A PROJECT/ID naming no session, or not a plain name, is refused with a usage error."""
    _two_copies(config_dir)
    store = SessionStore(config_dir)
    with pytest.raises(UsageError):
        store.get(store.resolve(name))


def test_recovering_one_copy_leaves_the_other(config_dir: Path) -> None:
    """A removal cut short for one copy is finished for that copy only."""
    stale, live = _two_copies(config_dir)
    store = SessionStore(config_dir)
    victim = next(s for s in store.list() if s.project == stale)
    write_journal(config_dir, [victim], NOW - timedelta(days=1))
    assert [s.project for s in store.list()] == [live]  # only the journalled copy is hidden
    recovered = recover(store, now=NOW)
    assert recovered.finished == (f"{stale}/{SID}",)
    assert [s.project for s in store.list()] == [live]
    assert all((config_dir / path).exists() for path in SHARED)
    assert (config_dir / "projects" / live / f"{SID}.jsonl").exists()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=4))
def test_prune_never_takes_a_file_of_a_kept_copy(tmp_path: Path, ages: list[int]) -> None:
    """However many copies of an id and of whatever ages, every file a kept copy lists stays,
    and the shared files stay while any copy does."""
    config_dir = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    config_dir.mkdir()
    for number, days in enumerate(ages):
        make_session(config_dir, cwd=f"/p{number}", session_id=SID, age=timedelta(days=days))
    store = SessionStore(config_dir)
    plan = plan_prune(store, now=NOW, older_than=PERIOD)
    going = {s.project for s in plan.sessions}
    kept = [s for s in store.list() if s.project not in going]
    report = execute(store, plan, now=NOW)
    assert len(report.removed) == sum(days > 30 for days in ages)
    for session in kept:
        assert all(Path(path).exists() for path in session.file_paths)
    assert all((config_dir / path).exists() for path in SHARED) == bool(kept)


def test_a_journal_of_the_older_kind_naming_a_bare_id_is_still_finished(config_dir: Path) -> None:
    """A journal written before sessions were named by project (a bare id) hides the session
    and is finished by the next run, as before."""
    import json

    made = make_session(config_dir, age=timedelta(days=40))
    store = SessionStore(config_dir)
    session = store.get(made.id)
    journal = write_journal(config_dir, [session], NOW - timedelta(days=1))
    data = json.loads(journal.read_bytes())
    data["sessions"] = {made.id: data["sessions"][session.key]}
    journal.write_text(json.dumps(data))
    assert store.list() == []
    with pytest.raises(UsageError, match="unfinished removal"):
        store.get(made.id)
    assert recover(store, now=NOW).finished == (made.id,)
    assert not any(p.exists() for p in made.paths)
