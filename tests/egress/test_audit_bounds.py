"""The audit log's readers on large files: what verify, a listing and rotate hold does not grow
with the number of checkpoints (two heads lines a batch: the heads file outgrows the log), nor
with a line's length; a writer's record past the bound is written shortened; a run stopped by
a write that failed (a full disk) is told apart where the files tell it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from airlock.cli.main import main
from airlock.egress import verify
from airlock.egress.audit import GENESIS, AuditLog, heads_path, line_hash, log_key
from airlock.egress.audit_read import rotate
from tests.cli import airlock

MIB = 1024 * 1024


def _many_batches(log: Path, heads: Path, batches: int, runs: int = 4) -> None:
    """A log of ``runs`` runs writing ``batches`` batches of one record each (a request every
    few seconds), with the heads file the writer keeps: a declaration and a checkpoint a
    batch, as :class:`AuditLog` writes them (built directly: thousands of ``fsync`` calls
    would take minutes)."""
    per_run = batches // runs
    key = log_key(log)
    prev, first, seq = GENESIS, None, 0
    with log.open("wb") as records, heads.open("wb") as entries:
        for number in range(runs):
            run = f"20261201T{number:06d}Z-{number}"
            for index in range(per_run):
                kind = "start" if index == 0 else "run" if index == per_run - 1 else "request"
                record = {
                    "type": kind,
                    "time": "2026-12-01T10:24:53.123Z",
                    "host": "api.anthropic.com",
                    "port": 443,
                    "decision": "allow",
                    "reason": "policy: flow model_requests is on",
                    "bytes_out": 1234,
                    "bytes_in": 56789,
                    "run": run,
                    "seq": seq,
                    "prev": prev,
                }
                line = orjson.dumps(record)
                prev = line_hash(line)
                first = first or prev
                seq += 1
                head = {
                    "run": run,
                    "log": key,
                    "records": seq,
                    "hash": prev,
                    "first": first,
                    "final": index == per_run - 1,
                    "time": "2026-12-01T10:24:53.125Z",
                }
                entries.write(orjson.dumps({**head, "final": False, "intent": True}) + b"\n")
                records.write(line + b"\n")
                entries.write(orjson.dumps(head) + b"\n")
    log.chmod(0o600)
    heads.chmod(0o600)


@pytest.fixture(scope="module", autouse=True)
def _imported(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The modules a listing imports, imported before anything is measured."""
    empty = tmp_path_factory.mktemp("imported") / "audit.jsonl"
    empty.write_bytes(b"")
    assert main(["audit", "--audit-log", str(empty)]) == 0


def _peak(work: Callable[[], Any]) -> tuple[Any, int]:
    """What ``work`` returns, and the most memory Python held at once while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config dir the in-process ``airlock audit`` finds heads files under."""
    folder = tmp_path / "config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(folder))
    return folder


@pytest.mark.parametrize("batches", [2_000, 40_000])
def test_what_verify_a_listing_and_rotate_hold_does_not_grow_with_the_checkpoints(
    tmp_path: Path, config_dir: Path, capfd: pytest.CaptureFixture[str], batches: int
) -> None:
    """A log of one-record batches (its heads file twice its size): verify, a listing (which
    checks the log too) and rotate hold a few megabytes, for 2,000 batches as for 40,000
    (they held every checkpoint as a dict: some 70 MB at 40,000, gigabytes at a million)."""
    log = tmp_path / "audit.jsonl"
    heads = heads_path(log, config_dir)
    heads.parent.mkdir(parents=True)
    _many_batches(log, heads, batches)
    assert heads.stat().st_size > log.stat().st_size

    verdict, held = _peak(lambda: verify(log, heads))
    assert verdict.intact and verdict.records == batches, verdict
    assert held < 3 * MIB, f"verify held {held} bytes"

    code, held = _peak(lambda: main(["audit", "--audit-log", str(log), "--run", "nothing"]))
    said = capfd.readouterr().err
    assert code == 1 and "no run in" in said and "warning" not in said, said
    assert held < 3 * MIB, f"the listing held {held} bytes"

    to = tmp_path / "moved.jsonl"
    verdict, held = _peak(lambda: rotate(log, heads, to, heads_path(to, config_dir)))
    assert verdict.intact and verdict.records == batches
    assert held < 3 * MIB, f"rotate held {held} bytes"
    assert verify(to, heads_path(to, config_dir)).intact


def test_a_listing_of_blank_lines_counts_them(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A file of two million blank lines: the listing names the first five it skipped and
    counts the rest, holding no number of each (it held 2 million numbers: 80 MB)."""
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b"\n" * 2_000_000)
    code, held = _peak(lambda: main(["audit", "--audit-log", str(log)]))
    said = capfd.readouterr().err
    assert code == 1  # listed (nothing), and said not intact
    assert "2000000 line(s) that are no record were skipped (line 1, 2, 3, 4, 5 …)" in said
    assert held < 8 * MIB, f"the listing held {held} bytes"


@pytest.mark.parametrize("ended", [True, False], ids=["with_a_line_break", "without"])
def test_a_line_longer_than_any_record_is_no_record_and_never_held_whole(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], ended: bool
) -> None:
    """A 64 MiB line (a record is 16 MiB at most) after a run's records: verify names it as no
    record, the listing lists the records and skips it, and neither holds it whole (each held
    it twice and more: hundreds of megabytes for a line of a gigabyte)."""
    from airlock.egress.audit import MAX_RECORD

    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "run", flush_interval=3600)
    audit.open()
    audit.append({"type": "request", "time": time.time(), "host": "a"})
    audit.close()
    with log.open("ab") as handle:
        handle.write(b'{"pad":"' + b"a" * (64 * MIB) + b'"}' + (b"\n" if ended else b""))

    verdict, held = _peak(lambda: verify(log, heads))
    assert not verdict.intact and verdict.bad_record == 1
    assert verdict.problem == (
        f"record 1 (line 2): its line is longer than any record a run writes ({MAX_RECORD} bytes)"
    )
    assert held < MAX_RECORD + 4 * MIB, f"verify held {held} bytes"

    code, held = _peak(lambda: main(["audit", "--audit-log", str(log), "--json"]))
    out, err = capfd.readouterr()
    assert code == 1 and [record["host"] for record in orjson.loads(out)] == ["a"]
    assert "1 line(s) that are no record were skipped (line 2)" in err
    assert held < MAX_RECORD + 4 * MIB, f"the listing held {held} bytes"

    if ended:  # a run reads the last line backwards: refused, not read whole
        refused, held = _peak(lambda: _refusal(AuditLog(log, heads, "next")))
        assert "its last line (line 2) is no audit record (longer than any record" in refused
        assert held < 2 * MAX_RECORD + 4 * MIB, f"the run's check held {held} bytes"


def _refusal(audit: AuditLog) -> str:
    try:
        audit.open()
    except Exception as error:
        return str(error)
    audit.close()
    return ""


def test_a_record_past_the_bound_is_written_with_its_longest_fields_left_out(
    tmp_path: Path,
) -> None:
    """A run record whose command takes 20 MiB (megabytes of arguments): written within the
    bound readers hold to, the command left out saying how long it was, the rest kept; the
    log verifies and the next record follows."""
    from airlock.egress.audit import MAX_RECORD
    from airlock.egress.audit_read import read_records

    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "run", flush_interval=3600)
    audit.open()
    command = ["cat", *(["x" * 1000] * 20 * 1024)]
    audit.append({"type": "run", "time": time.time(), "command": command, "exit_code": 3})
    audit.append({"type": "request", "time": time.time(), "host": "after"})
    audit.close()
    lines = log.read_bytes().splitlines()
    assert len(lines) == 2 and all(len(line) <= MAX_RECORD for line in lines)
    run, after = read_records(log)
    assert run["exit_code"] == 3 and run["type"] == "run"
    assert run["command"].startswith("[left out: 20") and "bound on a record" in run["command"]
    assert after["host"] == "after"
    assert verify(log, heads).intact


def test_checkpoints_whose_counts_go_back_are_all_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heads file holding a new log's checkpoints, then older ones of a log removed since
    (written before checkpoints named their log's first line: compared by position): verify
    reads the log past them before it reads them, and still names the first record one does
    not match, in batches too."""
    from airlock.egress import audit_read as audit_module

    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    old_heads = tmp_path / "old-heads.jsonl"
    _records(log, old_heads, "old", 3)
    log.unlink()
    _records(log, heads, "new", 6)
    legacy = [orjson.loads(line) for line in old_heads.read_bytes().splitlines()]
    with heads.open("ab") as handle:
        for head in legacy:
            del head["first"]
            handle.write(orjson.dumps(head) + b"\n")
    for batch in (16384, 1):
        monkeypatch.setattr(audit_module, "_LATE_BATCH", batch)
        verdict = verify(log, heads)
        assert not verdict.intact and verdict.bad_record == 0, verdict
        assert verdict.problem == (
            "record 0 (line 1): does not match the checkpoint of run old (the log was rewritten)"
        )
        assert verdict.runs == 1


def _records(log: Path, heads: Path, run: str, records: int) -> None:
    """A run of ``records`` one-record batches."""
    audit = AuditLog(log, heads, run, flush_interval=3600)
    audit.open()
    for number in range(records):
        audit.append({"type": "request", "time": time.time(), "run": run, "n": number})
        audit.flush()
    audit.close()


def test_the_listing_while_a_run_writes_never_warns(tmp_path: Path) -> None:
    """The listing checks the chain as it reads it, and its end under the log's lock: a run
    writing batches meanwhile (a line half written when the listing reaches the end) is
    never taken for tampering."""
    from airlock.egress.audit_read import LogReader

    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "busy", flush_interval=0.002)
    audit.open()
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            for _ in range(20):
                audit.append({"type": "request", "time": time.time(), "path": "/x" * 200})
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    problems: list[str | None] = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(problems) < 200:
            if log.stat().st_size:
                with LogReader(log) as reader:
                    for _ in reader.records():
                        pass
                    problems.append(reader.problem(heads))
    finally:
        stop.set()
        writer.join()
        audit.close()
    assert len(problems) > 20
    assert [problem for problem in problems if problem is not None] == []


def test_the_listing_warns_of_a_rewritten_log_and_records_no_run_declared(
    tmp_path: Path, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """What the listing checks at the end: a log rewritten from a record on (its chain made
    again: the furthest checkpoint no longer matches), and a record appended with the right
    chain that no run declared, each warned of."""
    log = tmp_path / "audit.jsonl"
    heads = heads_path(log, config_dir)
    _records(log, heads, "run", 3)
    original = log.read_bytes()
    lines = [orjson.loads(line) for line in original.splitlines()]
    lines[1]["n"] = 99
    prev = GENESIS
    rewritten = b""
    for record in lines:
        record["prev"] = prev
        line = orjson.dumps(record)
        prev = line_hash(line)
        rewritten += line + b"\n"
    appended = orjson.dumps(
        {"type": "request", "seq": 3, "prev": line_hash(original.splitlines()[-1])}
    )
    for content, words in (
        (rewritten, "it does not hold what run run checkpointed (3 records"),
        (original + appended + b"\n", "records 3 to 3 come after its last checkpoint"),
    ):
        log.write_bytes(content)
        assert main(["audit", "--audit-log", str(log)]) == 1
        said = capfd.readouterr().err
        assert "is NOT intact: " + words in said, said


LIMITED = """
import resource, signal, sys, time
from pathlib import Path
from airlock.egress.audit import AuditLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
log, heads, where = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
audit = AuditLog(log, heads, "full", flush_interval=3600)
audit.open()
audit.append({"type": "start", "run": "full", "time": time.time()})
audit.flush()
line = len(heads.read_bytes().splitlines()[-1]) + 1  # a checkpoint's
limit = heads.stat().st_size + (0 if where == "declaration" else line + 20)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
audit.append({"type": "request", "run": "full", "time": time.time()})
try:
    audit.flush()
except OSError as error:
    print(error.strerror)
"""


@pytest.mark.parametrize("where", ["declaration", "checkpoint"])
def test_a_run_stopped_by_a_write_that_failed_is_not_only_called_killed(
    tmp_path: Path, config_dir: Path, where: str
) -> None:
    """The heads file cannot grow (a full disk; a file-size limit here) at a batch's
    declaration, or at its checkpoint once the records are written: the run stops without its
    end record. verify says a failed write may have stopped it, and where the heads file
    tells it (a batch declared, never checkpointed) names that run (it said only "killed or
    still running")."""
    log = tmp_path / "audit.jsonl"
    heads = heads_path(log, config_dir)
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(log), str(heads), where],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "File too large", done.stderr
    checked = airlock("audit", "verify", str(log))
    assert checked.returncode == 0, checked.stderr
    assert "run full has no end record: it was killed or is still running" in checked.stdout
    assert (
        "a run also ends without its end record when its audit log or heads file cannot be "
        "written (a full disk)"
    ) in checked.stdout
    told = (
        "run full declared its last batch and did not checkpoint it (noted above): a write to "
        "its audit log or heads file failed (a full disk, say"
    )
    if where == "checkpoint":
        assert "records 1 to 1 were never checkpointed: run full declared them" in checked.stdout
        assert told in checked.stdout
    else:
        assert told not in checked.stdout, checked.stdout
