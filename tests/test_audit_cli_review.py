"""``airlock audit`` as a user reads what it lists: an IPv6 destination is shown in brackets
before its port and selected by ``--host`` written bare, as records and ``--json`` write it;
``rotate --to FOLDER`` moves the log into that folder, as ``mv`` would."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit import AuditLog, audit_paths
from tests.cli import airlock

RUN = "20261205T101027Z-7527"


def _log_with_tunnels(log: Path, *hosts: str) -> None:
    """A log written by the module's own writer, as a run writes it (chained, checkpointed
    in the heads file under the test's config dir): a start record, one refused tunnel to each
    of ``hosts`` on port 8443, and the run's end record."""
    path, heads = audit_paths(os.environ, log)
    writer = AuditLog(path, heads, RUN)
    writer.open()
    now = time.time()
    writer.append({"type": "start", "run": RUN, "time": now})
    for host in hosts:
        writer.append(
            {
                "type": "tunnel",
                "time": now,
                "duration_ms": 1.0,
                "method": "CONNECT",
                "host": host,
                "port": 8443,
                "status": 403,
                "decision": "deny",
                "reason": "no allow rule matches",
                "bytes_out": 0,
                "bytes_in": 10,
                "error": None,
                "run": RUN,
            }
        )
    writer.append({"type": "run", "run": RUN, "time": now, "command": ["true"], "exit_code": 0})
    writer.close()


def test_listing_brackets_an_ipv6_address_before_its_port(tmp_path: Path, config_dir: Path) -> None:
    """``2001:db8::1:8443`` does not say where the address ends: the line shows
    ``[2001:db8::1]:8443``, as a URL and ``--host`` write it."""
    log = tmp_path / "audit.jsonl"
    _log_with_tunnels(log, "2001:db8::1", "example.com")
    done = airlock("audit", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    assert "CONNECT [2001:db8::1]:8443  status 403" in done.stdout
    assert "CONNECT example.com:8443  status 403" in done.stdout
    assert "2001:db8::1:8443" not in done.stdout


def test_host_takes_an_ipv6_address_written_bare(tmp_path: Path, config_dir: Path) -> None:
    """A bare IPv6 address (as ``--json`` prints a record's host, any spelling of it) selects
    that destination, as the bracketed form does, rather than being refused."""
    log = tmp_path / "audit.jsonl"
    _log_with_tunnels(log, "2001:db8::1", "example.com")
    for given in ("2001:db8::1", "2001:DB8:0::1", "[2001:db8::1]", "[2001:db8::1]:8443"):
        done = airlock("audit", "--audit-log", str(log), "--host", given, "--json")
        assert done.returncode == 0, (given, done.stderr)
        assert '"host":"2001:db8::1"' in done.stdout, given
        assert "example.com" not in done.stdout, given
    other = airlock("audit", "--audit-log", str(log), "--host", "2001:db8::2", "--json")
    assert other.returncode == 0, other.stderr
    assert '"host"' not in other.stdout


def test_rotate_to_a_folder_moves_the_log_into_it(tmp_path: Path, config_dir: Path) -> None:
    """``--to FOLDER`` puts the log in that folder, named by the time as beside it (not "is
    there already"); the moved log verifies there, and the folder's other files are left."""
    log = tmp_path / "audit.jsonl"
    _log_with_tunnels(log, "example.com")
    aside = tmp_path / "aside"
    aside.mkdir()
    (aside / "keep.txt").write_text("kept\n")
    done = airlock("audit", "rotate", "--audit-log", str(log), "--to", str(aside))
    assert done.returncode == 0, done.stderr
    moved = [path for path in aside.iterdir() if path.name != "keep.txt"]
    assert len(moved) == 1, moved
    assert moved[0].name.startswith("audit.") and moved[0].name.endswith(".jsonl")
    assert (aside / "keep.txt").read_text() == "kept\n"
    assert not log.exists()
    verified = airlock("audit", "verify", str(moved[0]))
    assert verified.returncode == 0, verified.stderr
    assert "intact, 3 records, 1 runs" in verified.stdout


def test_verify_of_a_file_the_kernel_makes_says_it_is_no_log(config_dir: Path) -> None:
    """A file under /proc says 0 bytes yet holds lines: read up to its size, as a log is, it
    verified as an empty log, intact, while the listing of the same file said it was not. It
    is refused, saying why."""
    done = airlock("audit", "verify", "--audit-log", "/proc/self/status")
    assert done.returncode != 0
    assert "intact, 0 records" not in done.stdout
    assert "NOT intact: its size says 0 bytes, yet it holds some" in done.stdout + done.stderr
    assert "not an audit log" in done.stdout + done.stderr


def test_a_first_batch_landing_as_verify_reads_a_new_log_is_no_kernel_file(
    tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's log is made empty and its first batch written later: one that lands once
    ``verify`` has taken the size (0) is read past, as any record written after that is. The
    look for a file that says 0 bytes yet holds some is made under the log's lock, with the
    size: made after it, the batch made a run's new log read as a kernel's file, no log."""
    from airlock.egress import audit_read

    log = tmp_path / "audit.jsonl"
    path, heads = audit_paths(os.environ, log)
    writer = AuditLog(path, heads, RUN)
    writer.open()  # the log is there, empty
    opened = audit_read.opened_heads

    def opened_then_written(heads_path: Path) -> Any:
        with path.open("ab") as appended:  # as a run's first batch, landing now
            appended.write(b'{"type": "start"}\n')
        return opened(heads_path)

    monkeypatch.setattr(audit_read, "opened_heads", opened_then_written)
    verdict = audit_read.verify(path, heads)
    writer.close()
    assert verdict.problem is None, verdict
