"""``airlock audit`` on logs and heads files changed by someone who wants a request hidden: what
it prints stays text (never an escape sequence the terminal acts on), a record of any shape is
listed, and a heads file that is no file of its own, or a log removed, is said to be so."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import orjson
import pytest

from airlock.egress.audit import AuditLog, audit_paths
from tests.cli import airlock

RAW = ("\x1b", "\x9b", "\r", "\u202e", "\u2028", "\x7f")
"""What must not reach a terminal as it is: ESC, CSI (C1), a carriage return, a right-to-left
override, a line separator, DEL."""


def _log(tmp_path: Path, hosts: list[str]) -> tuple[Path, Path]:
    """A log of one run with a request record per host, where ``airlock audit`` finds its
    heads file; the log and the heads file."""
    log, heads = audit_paths(os.environ, tmp_path / "audit.jsonl")
    audit = AuditLog(log, heads, "run-1", flush_interval=3600)
    audit.open()
    for host in hosts:
        audit.append(
            {"type": "request", "time": time.time(), "run": "run-1", "host": host, "port": 80,
             "decision": "allow", "reason": "allowed", "bytes_out": 5, "bytes_in": 7}
        )  # fmt: skip
    audit.close()
    return log, heads


def _rewrite(path: Path, index: int, **fields: object) -> None:
    """Line ``index`` of ``path`` with ``fields`` changed, still a JSON object."""
    lines = path.read_bytes().splitlines()
    record = json.loads(lines[index])
    record.update(fields)
    lines[index] = json.dumps(record).encode()
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _shows_nothing_raw(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)


@pytest.mark.parametrize("decision", [None, ["allow"], {"is": "allow"}])
def test_a_record_whose_decision_is_no_text_is_listed(tmp_path: Path, decision: object) -> None:
    """A decision edited into a null, a list or an object: the listing goes on past it (the
    records after it are listed too) and warns, never a traceback that stops it there."""
    log, _ = _log(tmp_path, ["a.example", "b.example", "c.example"])
    _rewrite(log, 1, decision=decision)
    done = airlock("audit", "--audit-log", str(log))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1  # listed, and said not intact
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert all(
        host in line
        for host, line in zip(["a.example:80", "b.example:80", "c.example:80"], lines, strict=True)
    )
    assert "is NOT intact: record 2" in done.stderr


def test_verify_shows_what_the_heads_file_says_as_text(tmp_path: Path) -> None:
    """The log cut short, and the run named by its furthest checkpoint edited into escape
    sequences that would move the cursor up, erase the line and write "intact" there: verify
    (and the listing's warning, and rotate's refusal) still fail, and show them as escapes."""
    log, heads = _log(tmp_path, ["a.example", "b.example"])
    log.write_bytes(b"".join(line + b"\n" for line in log.read_bytes().splitlines()[:-1]))
    forged = f"\x1b[1A\x1b[2K\r{log}: intact, 2 records, 1 runs\x1b[8m"
    entries = [json.loads(line) for line in heads.read_bytes().splitlines()]
    for entry in entries:
        entry["run"] = forged
    heads.write_bytes(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
    verified = airlock("audit", "verify", str(log))
    assert verified.returncode == 1
    _shows_nothing_raw(verified.stdout + verified.stderr)
    assert "NOT intact: the log holds 1 records but run \\x1b[1A\\x1b[2K\\x0d" in verified.stderr
    listed = airlock("audit", "--audit-log", str(log))
    _shows_nothing_raw(listed.stderr)
    assert "it is NOT intact: it does not hold what run \\x1b[1A" in listed.stderr
    rotated = airlock("audit", "rotate", "--audit-log", str(log))
    assert rotated.returncode == 1
    _shows_nothing_raw(rotated.stderr)
    assert "is not intact" in rotated.stderr and "\\x1b[8m" in rotated.stderr


def test_the_json_listing_writes_what_a_terminal_acts_on_as_escapes(tmp_path: Path) -> None:
    """JSON's encoder escapes the ASCII controls only: a C1 control (CSI), a right-to-left
    override, a line separator and DEL in a record would reach the terminal as they are.
    They are written as ``\\uXXXX`` escapes, the JSON the same once read."""
    hosts = [
        "a\x9b31mb",
        "x\u202etxt.exe",
        "line\u2028break",
        "del\x7fete",
        "tag\U000e0041ged",
        "plain é ✓",
    ]
    log, _ = _log(tmp_path, hosts)
    done = airlock("audit", "--json", "--audit-log", str(log), text=False)
    assert done.returncode == 0, done.stderr
    for char in RAW:
        assert char.encode() not in done.stdout, char
    assert "\U000e0041".encode() not in done.stdout
    assert b"a\\u009b31mb" in done.stdout and b"x\\u202etxt.exe" in done.stdout
    assert b"tag\\udb40\\udc41ged" in done.stdout
    assert "plain é ✓".encode() in done.stdout  # printable text is left as it is
    assert [record["host"] for record in json.loads(done.stdout)] == hosts


@pytest.mark.parametrize("kind", ["link", "folder", "fifo"])
def test_a_heads_file_that_is_no_file_of_its_own_vouches_for_nothing(
    tmp_path: Path, kind: str
) -> None:
    """A run refuses a heads file that is a symbolic link (never written through) or no
    regular file; verify fails on one too (exit 1, naming it), rather than pass through a
    link or stop at 'not a regular file' without saying which file; the listing warns."""
    log, heads = _log(tmp_path, ["a.example"])
    if kind == "link":
        moved = tmp_path / "heads.jsonl"
        heads.rename(moved)
        heads.symlink_to(moved)
        said = f"the heads file {heads} is a symbolic link (to {moved})"
    else:
        heads.unlink()
        heads.mkdir() if kind == "folder" else os.mkfifo(heads)
        said = f"the heads file {heads} is not a regular file"
    verified = airlock("audit", "verify", str(log))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"{log}: NOT intact: {said}" in verified.stderr
    listed = airlock("audit", "--audit-log", str(log), "--json")
    assert listed.returncode == 1 and len(json.loads(listed.stdout)) == 1
    assert f"it is NOT intact: {said}" in listed.stderr


def test_the_listing_of_a_removed_log_says_it_was_removed(tmp_path: Path) -> None:
    """The log removed, its heads file still holding checkpoints: the listing says what
    verify says (removed, how many records), exit 1, not 'no audit log' as if none was ever
    written there."""
    log, heads = _log(tmp_path, ["a.example"])
    log.unlink()
    for options in ((), ("--json",)):
        done = airlock("audit", "--audit-log", str(log), *options)
        assert done.returncode == 1, done.stderr
        assert done.stdout == ""
        assert (
            f"{log}: NOT intact: the log was removed: its heads file {heads} holds "
            "checkpoints of 1 records" in done.stderr
        )


def test_verify_names_the_line_and_the_run_of_the_first_bad_record(
    tmp_path: Path, project: Path
) -> None:
    """Two real runs; a record of the second edited (a deny made an allow): verify names the
    record, its line in the file as an editor counts them (the listing names skipped lines
    so too) and its run, exit 1."""
    log = tmp_path / "audit.jsonl"
    for _ in range(2):
        done = airlock("run", "--audit-log", str(log), "--", "true", cwd=project, timeout=120)
        assert done.returncode == 0, done.stderr
    lines = log.read_bytes().splitlines()
    runs = [json.loads(line)["run"] for line in lines]
    assert len(set(runs)) == 2 and runs[2] == runs[-1] != runs[0]  # start, run; start, run
    _rewrite(log, 2, command=["rm", "-rf", "/"])
    verified = airlock("audit", "verify", str(log))
    assert verified.returncode == 1
    assert (  # the start record is checkpointed on its own, before the command runs
        f"{log}: NOT intact: record 2 (line 3, run {runs[2]}): does not match the "
        f"checkpoint of run {runs[2]} (the log was rewritten)" in verified.stderr
    ), verified.stderr
