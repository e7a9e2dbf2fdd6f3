"""The audit log against someone who changes it after runs wrote it: with the heads file too
(then only ``verify --hash`` of a run's final hash, kept elsewhere, can tell), or the log alone
while a run writes it or while it is listed; and a run's writer that met a failure writes
nothing more, saying so."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from airlock.egress.audit import AuditLog, audit_paths, line_hash
from airlock.egress.audit_read import LogReader, verify
from tests.cli import airlock


def _real_run(tmp_path: Path, before: int = 0) -> tuple[Path, Path, str]:
    """``airlock run --audit-log LOG -- true`` (after ``before`` records of an earlier run):
    the log, its heads file and the final hash the run's report printed."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    log, heads = audit_paths(os.environ, tmp_path / "audit.jsonl")
    if before:
        earlier = AuditLog(log, heads, "earlier", flush_interval=3600)
        earlier.open()
        for number in range(before):
            earlier.append({"type": "request", "time": time.time(), "host": f"h{number}"})
        earlier.close()
    done = airlock("run", "--audit-log", str(log), "--", "true", cwd=workspace, timeout=60)
    assert done.returncode == 0, done.stderr
    found = re.search(r"final hash ([0-9a-f]{64})", done.stderr)
    assert found is not None, done.stderr
    return log, heads, found.group(1)


def _forge_after(log: Path, heads: Path, record: dict[str, object]) -> None:
    """Append ``record`` to ``log``, chained on its last line, and a checkpoint of it to
    ``heads``: what whoever can write both files can do."""
    lines = log.read_bytes().splitlines()
    line = orjson.dumps({**record, "seq": len(lines), "prev": line_hash(lines[-1])})
    with log.open("ab") as handle:
        handle.write(line + b"\n")
    last = orjson.loads(heads.read_bytes().splitlines()[-1])
    last.update(records=len(lines) + 1, hash=line_hash(line), final=True)
    last.pop("intent", None)
    with heads.open("ab") as handle:
        handle.write(orjson.dumps(last) + b"\n")


def test_verify_hash_catches_records_of_its_run_written_after_its_final_one(
    tmp_path: Path,
) -> None:
    """The final hash pins every record up to the run's last; a connection of that run added
    after it (with its chain and its checkpoint made again) was not the run's: ``--hash``
    says so, naming the record, where it said intact and the listing showed the connection
    among the run's. A later run's records after it are no problem (``--hash`` vouches for
    what came before it, not for what came after)."""
    log, heads, final = _real_run(tmp_path)
    run = orjson.loads(log.read_bytes().splitlines()[-1])["run"]
    later = airlock("run", "--audit-log", str(log), "--", "true", cwd=tmp_path / "ws")
    assert later.returncode == 0, later.stderr
    done = airlock("audit", "verify", str(log), "--hash", final, "--json")
    assert done.returncode == 0, done.stdout
    verdict = orjson.loads(done.stdout)
    assert (verdict["records"], verdict["runs"], verdict["final_hash_record"]) == (4, 2, 1)
    _forge_after(
        log,
        heads,
        {"type": "request", "run": run, "time": "2026-12-05T15:41:01.700Z", "method": "POST",
         "host": "exfil.example", "port": 443, "decision": "allow", "reason": "allowed",
         "bytes_out": 99999999, "bytes_in": 10},
    )  # fmt: skip
    assert airlock("audit", "verify", str(log)).returncode == 0  # both files rewritten
    listed = airlock("audit", "--audit-log", str(log), "--run", run)
    assert "exfil.example" in listed.stdout and not listed.stderr  # shown among the run's
    done = airlock("audit", "verify", str(log), "--hash", final)
    assert done.returncode == 1, done.stdout
    assert f"record 4 (line 5, run {run})" in done.stderr, done.stderr
    assert "after the record of its final hash (record 1)" in done.stderr, done.stderr
    as_json = airlock("audit", "verify", str(log), "--hash", final, "--json")
    verdict = orjson.loads(as_json.stdout)
    assert as_json.returncode == 1
    assert (verdict["intact"], verdict["bad_record"], verdict["final_hash_record"]) == (False, 4, 1)


_IN_OPEN = 0x20


@contextmanager
def _swapped_once_opened(log: Path, other: Path) -> Iterator[None]:
    """While inside: once a process opens ``log``, ``other`` is put in its place (renamed
    there) at once, as whoever can write the folder can do the moment they see it read
    (inotify)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        pytest.skip(f"no inotify here ({os.strerror(ctypes.get_errno())})")
    if libc.inotify_add_watch(fd, str(log.parent).encode(), _IN_OPEN) < 0:
        os.close(fd)
        pytest.skip("inotify cannot watch the test's folder")
    stop_read, stop_write = os.pipe()

    def watch() -> None:
        import select

        while True:
            ready, _, _ = select.select([fd, stop_read], [], [])
            if stop_read in ready:
                return
            data = os.read(fd, 65536)
            offset = 0
            while offset < len(data):
                _, mask, _, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0")
                offset += 16 + size
                if mask & _IN_OPEN and name == log.name.encode():
                    other.rename(log)
                    return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        os.write(stop_write, b"x")
        watcher.join()
        for each in (fd, stop_read, stop_write):
            os.close(each)


def test_verify_hash_reads_the_log_it_verified(tmp_path: Path) -> None:
    """``verify --hash`` looked for the record in a second read of the path: a log and heads
    file rewritten together pass plain verify, and the original put back at the path once
    that read began held the hash. One read now does both: the forged log lacks the hash."""
    log, heads, final = _real_run(tmp_path, before=50_000)  # a read of it takes a while
    original = tmp_path / "original.jsonl"
    os.link(log, original)
    kept = log.read_bytes()
    lines = kept.splitlines()
    record = orjson.loads(lines[-1])
    record["command"] = ["innocent"]  # the run's record rewritten, its checkpoint made again
    lines[-1] = orjson.dumps(record)
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(line + b"\n" for line in lines))
    forged.chmod(0o600)
    forged.rename(log)
    checkpoint = orjson.loads(heads.read_bytes().splitlines()[-1])
    checkpoint["hash"] = line_hash(lines[-1])
    heads.write_bytes(orjson.dumps(checkpoint) + b"\n")
    assert airlock("audit", "verify", str(log)).returncode == 0  # forged together
    with _swapped_once_opened(log, original):
        done = airlock("audit", "verify", str(log), "--hash", final)
    assert log.read_bytes() == kept  # the swap happened, after the first open
    assert done.returncode == 1, done.stdout
    assert "no record has the final hash" in done.stderr, done.stderr


def test_a_run_stops_when_its_log_is_cut_back_behind_it(tmp_path: Path) -> None:
    """The log cut back, while a run writes it, to where this run's own earlier checkpoint
    left it (its records since removed): the run chained on from there, as if another run had
    written that, and went on; verify found it only later. It stops now, saying so."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "run", flush_interval=3600)
    audit.open()
    audit.append({"type": "start", "time": time.time()})
    audit.flush()
    kept = log.stat().st_size
    audit.append({"type": "request", "time": time.time(), "host": "exfil.example"})
    audit.flush()
    os.truncate(log, kept)  # the request's record removed
    audit.append({"type": "request", "time": time.time(), "host": "b.example"})
    with pytest.raises(OSError, match="smaller than this run left it") as raised:
        audit.flush()
    assert raised.value.errno == errno.EIO
    assert log.stat().st_size == kept  # nothing chained on what was left
    with pytest.raises(Exception, match="smaller than this run left it"):
        audit.close()


def test_a_flush_after_a_failed_one_fails_too(tmp_path: Path) -> None:
    """The writer thread took the batch (the start record) and failed on it (a line another
    program appended): a flush called meanwhile, finding nothing pending, said the records
    were written, and ``airlock run`` ran its command. It fails now, as the writer did."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    first = AuditLog(log, heads, "first", flush_interval=3600)
    first.open()
    first.append({"type": "start", "time": time.time()})
    first.close()
    failed = threading.Event()
    audit = AuditLog(log, heads, "run", flush_interval=0.01, on_failure=lambda _: failed.set())
    audit.open()
    lines = log.read_bytes().splitlines()
    with log.open("ab") as handle:  # chained, and no run declared it
        handle.write(orjson.dumps({"seq": len(lines), "prev": line_hash(lines[-1])}) + b"\n")
    audit.append({"type": "start", "time": time.time()})
    assert failed.wait(5)  # the writer took the start record and failed
    with pytest.raises(OSError, match="no run declared"):
        audit.flush()
    with pytest.raises(Exception, match="no run declared"):
        audit.close()


def test_the_listing_warns_when_the_log_is_cut_back_while_it_is_read(tmp_path: Path) -> None:
    """A record appended with its chain (no run declared it), read by the listing (which may
    wait on a pager for as long as the reader pages), then cut off before the listing's check
    at its end: the check began again on what was left and found it intact, with no warning
    for the record shown. It warns now: what was listed is not all in the log."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "run", flush_interval=3600)
    audit.open()
    audit.append({"type": "start", "time": time.time(), "run": "run"})
    audit.close()
    kept = log.stat().st_size
    lines = log.read_bytes().splitlines()
    forged = {"type": "request", "run": "run", "host": "hidden.example", "decision": "allow",
              "seq": len(lines), "prev": hashlib.sha256(lines[-1]).hexdigest()}  # fmt: skip
    with log.open("ab") as handle:
        handle.write(orjson.dumps(forged) + b"\n")
    with LogReader(log) as reader:
        listed = [record.get("host") for record in reader.records()]
        assert "hidden.example" in listed
        os.truncate(log, kept)
        problem = reader.problem(heads)
    assert problem is not None and "cut back while it was listed" in problem, problem
    assert verify(log, heads).intact  # what is left is what the run wrote


def test_run_with_a_whole_id_selects_that_run_alone(tmp_path: Path) -> None:
    """``--run`` with a run's whole id also listed every run whose id goes on from it (a run
    begun in the same second with a longer process id; or a record forged with such an id
    after the run's final hash, which ``verify --hash`` does not take for the run's): that
    run alone now. The start of ids still selects every run that starts so."""
    log, heads = audit_paths(os.environ, tmp_path / "audit.jsonl")
    audit = AuditLog(log, heads, "writer", flush_interval=3600)
    audit.open()
    for run, host in (("20261205T101027Z-7527", "mine"), ("20261205T101027Z-75270", "other")):
        audit.append({"type": "request", "time": time.time(), "run": run, "host": host})
    audit.close()
    done = airlock("audit", "--audit-log", str(log), "--run", "20261205T101027Z-7527", "--json")
    assert done.returncode == 0, done.stderr
    assert [record["host"] for record in orjson.loads(done.stdout)] == ["mine"]
    started = airlock("audit", "--audit-log", str(log), "--run", "20261205T1010", "--json")
    assert [record["host"] for record in orjson.loads(started.stdout)] == ["mine", "other"]
    missing = airlock("audit", "--audit-log", str(log), "--run", "20261205T101027Z-752")
    assert missing.returncode == 1
    assert "no run in" in missing.stderr and "is '20261205T101027Z-752'" in missing.stderr
