"""The audit log's writer and verify, on real files: no write through a symbolic link at the
log's path or its heads file's, a swapped-in link flagged, a huge last line read in linear
time, a run with no end record and a removed log named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airlock.egress import verify
from airlock.egress.audit import AuditLog, heads_path
from airlock.egress.audit_read import read_records
from airlock.errors import AirlockError


def _one_run(log: Path, heads: Path, *, ended: bool = True) -> None:
    """A run writing a ``start`` record, a request and (when ``ended``) its ``run`` record."""
    audit = AuditLog(log, heads, f"run-{time.monotonic_ns()}", flush_interval=3600)
    audit.open()
    audit.append({"type": "start", "run": audit.run_id, "time": time.time()})
    audit.append({"type": "request", "run": audit.run_id, "time": time.time()})
    if ended:
        audit.append({"type": "run", "run": audit.run_id, "time": time.time()})
    audit.close()


@pytest.mark.parametrize("target", ["dangling", "existing"])
def test_a_link_at_the_log_path_is_refused_and_its_target_left_alone(
    tmp_path: Path, target: str
) -> None:
    """A link at the log path (planted in a workspace) is refused: no file is created where
    it points, and nothing is appended to the one it names."""
    aliases = tmp_path / "home" / ".bash_aliases"
    if target == "existing":
        aliases.write_text("alias ll='ls -l'\n")
    log = tmp_path / "ws" / "audit.jsonl"
    log.parent.mkdir()
    log.symlink_to("../home/.bash_aliases")
    audit = AuditLog(log, tmp_path / "heads.jsonl", "run")
    with pytest.raises(AirlockError, match=rf"audit log {log} is a symbolic link \(to \.\./home"):
        audit.open()
    if target == "existing":
        assert aliases.read_text() == "alias ll='ls -l'\n"
    else:
        assert not aliases.exists()


def test_a_link_at_the_heads_path_is_refused(tmp_path: Path) -> None:
    """The heads file is never written through a link either."""
    elsewhere = tmp_path / "elsewhere.jsonl"
    heads = tmp_path / "heads.jsonl"
    heads.symlink_to(elsewhere)
    audit = AuditLog(tmp_path / "audit.jsonl", heads, "run")
    with pytest.raises(AirlockError, match=rf"heads file of audit log {heads} is a symbolic link"):
        audit.open()
    assert not elsewhere.exists()


def test_a_log_swapped_for_a_link_to_another_intact_log_is_flagged(
    tmp_path: Path, config_dir: Path
) -> None:
    """A log moved aside and replaced by a link to another intact log does not pass as that
    one."""
    log, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (log, other):
        _one_run(path, heads_path(path, config_dir))
    assert verify(log, heads_path(log, config_dir)).intact
    log.rename(tmp_path / ".a.hidden")
    log.symlink_to(other)
    verdict = verify(log, heads_path(log, config_dir))
    assert not verdict.intact
    assert f"the log path {log} is a symbolic link (to {other})" in str(verdict.problem)


def test_a_huge_last_line_is_read_in_linear_time(tmp_path: Path) -> None:
    """A 40 MB last line is refused in well under a second's work per MB (it was quadratic:
    each 64 KiB block read joined and counted all read before)."""
    log = tmp_path / "big.jsonl"
    log.write_bytes(b'{"pad":"' + b"a" * 40_000_000 + b'"}\n')
    audit = AuditLog(log, tmp_path / "heads.jsonl", "run")
    started = time.monotonic()
    with pytest.raises(AirlockError, match=r"its last line \(line 1\) is no audit record"):
        audit.open()
    assert time.monotonic() - started < 3


def test_a_run_with_no_end_record_is_noted(tmp_path: Path) -> None:
    """A run that wrote its start and no ``run`` record (killed): the log is intact, and a note
    names the run; runs that ended get none."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads)
    _one_run(log, heads, ended=False)
    _one_run(log, heads)
    started = [record["run"] for record in read_records(log) if record["type"] == "start"]
    verdict = verify(log, heads)
    assert verdict.intact, verdict.problem
    assert verdict.notes == (
        f"run {started[1]} has no end record: it was killed or is still running; connections "
        "open then are not recorded",
    )


def test_a_removed_log_whose_heads_hold_checkpoints_is_named_removed(tmp_path: Path) -> None:
    """The log removed, its heads file kept: not intact, naming how many records it held."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads)
    log.unlink()
    verdict = verify(log, heads)
    assert not verdict.intact
    assert str(verdict.problem).startswith(
        f"the log was removed: its heads file {heads} holds checkpoints of 3 records (run run-"
    )
    with pytest.raises(FileNotFoundError):  # no heads either: no log was ever there
        verify(tmp_path / "never.jsonl", tmp_path / "never-heads.jsonl")
