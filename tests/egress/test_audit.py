"""The audit log: the chain and its checkpoints catch every change; writes are durable; failure stops traffic."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from airlock.egress import EgressConfig, verify
from airlock.egress.audit import GENESIS, AuditLog, heads_path, iso_time, line_hash
from airlock.egress.audit_read import read_heads, read_records
from airlock.errors import AirlockError
from tests.cli import airlock
from tests.egress.origin import _Site, config, running, until_failed


def _logged_run(tmp_path: Path, site: _Site, requests: int = 4) -> EgressConfig:
    cfg = config(tmp_path)
    port = site.server_address[1]
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        for index in range(requests):
            client.get(f"http://127.0.0.1:{port}/r{index}")
        client.get("http://evil.test/")
    return cfg


def _lines(cfg: EgressConfig) -> list[bytes]:
    assert cfg.audit_log is not None
    return cfg.audit_log.read_bytes().splitlines()


def _write(cfg: EgressConfig, lines: list[bytes]) -> None:
    assert cfg.audit_log is not None
    cfg.audit_log.write_bytes(b"".join(line + b"\n" for line in lines))


def _rechain(lines: list[bytes]) -> list[bytes]:
    """Recompute every hash, as a forger rewriting the whole log would."""
    out: list[bytes] = []
    prev = GENESIS
    for seq, line in enumerate(lines):
        record = orjson.loads(line)
        record["seq"], record["prev"] = seq, prev
        out.append(orjson.dumps(record))
        prev = line_hash(out[-1])
    return out


def _edit(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[2])
    record["bytes_out"] = 1
    return [*lines[:2], json.dumps(record).encode(), *lines[3:]]


def _append(lines: list[bytes]) -> list[bytes]:
    forged = {"type": "request", "host": "x.test", "seq": len(lines), "prev": line_hash(lines[-1])}
    return [*lines, orjson.dumps(forged)]


TAMPERING: list[tuple[str, Callable[[list[bytes]], list[bytes]], int | range, str]] = [
    ("edited_record", _edit, range(2, 4), "record 2"),
    (
        "removed_record",
        lambda lines: [*lines[:2], *lines[3:]],
        2,
        "does not carry the hash of record 1",
    ),
    (
        "reordered_records",
        lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]],
        2,
        "record 1",
    ),
    ("appended_record", _append, 7, "past the last checkpoint"),
    ("cut_short", lambda lines: lines[:-2], 5, "records removed from the end"),
    ("first_record_removed", lambda lines: lines[1:], 0, "not the start of a chain"),
    ("rewritten_whole", lambda lines: _rechain(_edit(lines)), range(2, 7), "the log was rewritten"),
    ("rewritten_and_cut", lambda lines: _rechain(lines[:-1]), 6, "records removed from the end"),
]


def test_an_untouched_log_verifies(site: _Site, tmp_path: Path) -> None:
    """A finished run's log is intact: start, requests, the refusal, the run record."""
    cfg = _logged_run(tmp_path, site)
    verdict = verify(cfg.audit_log, cfg.heads_file)  # type: ignore[arg-type]
    assert (verdict.intact, verdict.records, verdict.runs) == (True, 7, 1)


@pytest.mark.parametrize(
    ("change", "bad", "words"), [pytest.param(c, b, w, id=i) for i, c, b, w in TAMPERING]
)
def test_every_change_to_the_log_is_caught(
    site: _Site,
    tmp_path: Path,
    change: Callable[[list[bytes]], list[bytes]],
    bad: int | range,
    words: str,
) -> None:
    """verify names the first bad record and what is wrong, for each kind of tampering.

    A consistent rewrite is caught at the first checkpoint after the change (when the writer
    flushed is a matter of timing, hence a range).
    """
    cfg = _logged_run(tmp_path, site)
    _write(cfg, change(_lines(cfg)))
    verdict = verify(cfg.audit_log, cfg.heads_file)  # type: ignore[arg-type]
    assert not verdict.intact
    assert verdict.bad_record in (bad if isinstance(bad, range) else (bad,)), verdict.problem
    assert words in str(verdict.problem)


def test_a_second_run_continues_the_chain(site: _Site, tmp_path: Path) -> None:
    """Two runs append to one log; the chain and both runs' checkpoints verify."""
    _logged_run(tmp_path, site, requests=1)
    cfg = _logged_run(tmp_path, site, requests=2)
    verdict = verify(cfg.audit_log, cfg.heads_file)  # type: ignore[arg-type]
    assert verdict.intact and verdict.runs == 2
    assert verdict.records == 4 + 5


def test_a_log_cut_mid_line_is_never_appended_to(tmp_path: Path) -> None:
    """A log whose last line lacks its line break is refused, with what to do."""
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b'{"seq": 0, "prev": "' + GENESIS.encode() + b'"}\n{"seq": 1, "pr')
    audit = AuditLog(log, tmp_path / "heads.jsonl", "run")
    with pytest.raises(Exception, match=r"cut short.*airlock audit verify"):
        audit.open()


LIMITED = """
import resource, signal, socket, sys, time
from pathlib import Path
from airlock.egress import EgressConfig, start_proxy
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait, in every thread
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(128)
config = EgressConfig(allow=EgressConfig.rules(["127.0.0.1"], "--allow"), allow_private=True,
                      audit_log=Path(sys.argv[1]), heads_file=Path(sys.argv[2]), flush_interval=0.05)
proxy = start_proxy(config, [sock])  # its start record written before it serves
resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))  # then no more
print(sock.getsockname()[1], flush=True)
signal.sigwait({signal.SIGTERM})
print(proxy.close({"exit_code": 0}).error, flush=True)
"""


def test_an_unwritable_log_stops_traffic(site: _Site, tmp_path: Path) -> None:
    """When the log cannot be written (a file-size limit: every write fails), the proxy refuses
    everything and the report says why."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", LIMITED, str(log), str(heads)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        proxy_url = f"http://127.0.0.1:{child.stdout.readline().strip()}"
        port = site.server_address[1]
        deadline = time.monotonic() + 10
        with httpx.Client(proxy=proxy_url) as client:
            while time.monotonic() < deadline:  # served until the first flush fails
                try:
                    answer = client.get(f"http://127.0.0.1:{port}/probe")
                except httpx.HTTPError:
                    break
                if answer.status_code == 503:
                    break
                time.sleep(0.05)
            site.seen.clear()
            with pytest.raises(httpx.HTTPError):
                answer = client.get(f"http://127.0.0.1:{port}/after")
                assert answer.status_code == 503, answer.status_code
                raise httpx.HTTPError("refused as expected")
        child.send_signal(signal.SIGTERM)
        error = child.communicate(timeout=30)[0].strip()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert site.seen == []
    assert "audit log" in error and "File too large" in error, error
    [start] = log.read_bytes().splitlines(keepends=True)  # nothing more, and nothing half
    assert b'"type":"start"' in start and start.endswith(b"\n")


def test_a_log_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    """A device as the log (/dev/null would swallow every record) is refused at the start."""
    audit = AuditLog(Path("/dev/null"), tmp_path / "heads.jsonl", "run")
    with pytest.raises(AirlockError, match=r"/dev/null is not a regular file"):
        audit.open()


CHILD = """
import signal, socket, sys
from pathlib import Path
from airlock.egress import EgressConfig, start_proxy
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(128)
config = EgressConfig(allow=EgressConfig.rules(["127.0.0.1"], "--allow"), allow_private=True,
                      audit_log=Path(sys.argv[1]), heads_file=Path(sys.argv[2]), flush_interval=0.05)
proxy = start_proxy(config, [sock])
print(sock.getsockname()[1], flush=True)
signal.sigwait({signal.SIGTERM})
"""


def test_kill_9_under_load_loses_no_finished_connection_before_the_last_flush(
    site: _Site, tmp_path: Path
) -> None:
    """Every request finished a few flushes before kill -9 is in the log, chained."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(log), str(heads)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    proxy_url = f"http://127.0.0.1:{child.stdout.readline().strip()}"
    port = site.server_address[1]
    finished: list[tuple[float, str]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(proxy=proxy_url, timeout=5) as client:
            for index in range(100_000):
                if stop.is_set():
                    return
                path = f"/w{worker}-{index}"
                try:
                    client.get(f"http://127.0.0.1:{port}{path}")
                except httpx.HTTPError:
                    return
                finished.append((time.monotonic(), path))

    workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.5)
        cutoff = time.monotonic()
        time.sleep(0.5)  # ten flush intervals: everything finished before cutoff was flushed
        os.kill(child.pid, signal.SIGKILL)
    finally:
        stop.set()
        child.wait(10)
        child.stdout.close()
        for worker in workers:
            worker.join(10)
    done_before = {path for moment, path in finished if moment < cutoff}
    assert len(done_before) > 20
    logged = {r.get("path") for r in read_records(log) if r["type"] == "request"}
    assert done_before <= logged
    prev = GENESIS
    for line in log.read_bytes().splitlines():
        assert orjson.loads(line)["prev"] == prev
        prev = line_hash(line)


def test_audit_cli_filters_and_prints_json(site: _Site, tmp_path: Path) -> None:
    """airlock audit --json prints an array; --host and --decision select connection records."""
    cfg = _logged_run(tmp_path, site, requests=2)
    log = str(cfg.audit_log)
    everything = json.loads(airlock("audit", "--json", "--audit-log", log).stdout)
    assert [r["type"] for r in everything] == ["start", "request", "request", "request", "run"]
    denied = json.loads(airlock("audit", "--json", "--decision", "deny", "--audit-log", log).stdout)
    assert [(r["host"], r["decision"], r["status"]) for r in denied] == [("evil.test", "deny", 403)]
    for record in denied:
        assert {"time", "host", "port", "decision", "reason", "bytes_out", "bytes_in"} <= set(
            record
        )
    local = json.loads(airlock("audit", "--json", "--host", "127.0.0.1", "--audit-log", log).stdout)
    assert len(local) == 2
    run_id = everything[0]["run"]
    assert (
        len(json.loads(airlock("audit", "--json", "--run", run_id[:12], "--audit-log", log).stdout))
        == 5
    )
    assert (
        json.loads(airlock("audit", "--json", "--since", "2999-01-01", "--audit-log", log).stdout)
        == []
    )
    text = airlock("audit", "--audit-log", log).stdout
    assert "evil.test:80/" in text and "denied by" in text


def test_audit_verify_exit_codes(site: _Site, tmp_path: Path) -> None:
    """verify exits 0 on an intact log and 1 naming the first bad record."""
    cfg = _logged_run(tmp_path, site, requests=2)
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "config")}
    # The heads file is found under the config dir, as airlock run puts it.
    from airlock.egress.audit import heads_path

    heads = heads_path(cfg.audit_log, tmp_path / "config")  # type: ignore[arg-type]
    heads.parent.mkdir(parents=True)
    heads.write_bytes(cfg.heads_file.read_bytes())  # type: ignore[union-attr]
    ok = airlock("audit", "verify", str(cfg.audit_log), env=env)
    assert ok.returncode == 0 and "intact" in ok.stdout
    _write(cfg, _edit(_lines(cfg)))
    bad = airlock("audit", "verify", "--audit-log", str(cfg.audit_log), env=env)
    assert bad.returncode == 1 and "record 2" in bad.stderr
    missing = airlock("audit", "verify", str(tmp_path / "none.jsonl"), env=env)
    assert missing.returncode == 2


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        pytest.param(0.0, "1970-01-01T00:00:00.000Z", id="the_epoch"),
        pytest.param(1764757493.0, "2025-12-03T10:24:53.000Z", id="a_whole_second"),
        pytest.param(
            1764757493.9996, "2025-12-03T10:24:53.999Z", id="milliseconds_cut_not_rounded"
        ),
        pytest.param(1764757494.0004, "2025-12-03T10:24:54.000Z", id="the_next_second"),
        pytest.param(1764757493.25, "2025-12-03T10:24:53.250Z", id="back_to_an_earlier_second"),
    ],
)
def test_record_times_are_utc_to_the_millisecond(epoch: float, expected: str) -> None:
    assert iso_time(epoch) == expected


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_log_removed_or_replaced_mid_run_stops_traffic(
    site: _Site, tmp_path: Path, how: str
) -> None:
    """Records written on into a removed (or renamed-away) file would be in no log anyone
    reads: the next flush finds the path no longer names the file, and traffic stops."""
    cfg = config(tmp_path)
    assert cfg.audit_log is not None
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with httpx.Client(proxy=url) as client:
            assert client.get(f"http://127.0.0.1:{port}/before").status_code == 200
        if how == "removed":
            cfg.audit_log.unlink()
        else:
            cfg.audit_log.rename(tmp_path / "moved.jsonl")
            cfg.audit_log.write_bytes(b"")
        until_failed(proxy, url, port)
        assert proxy.failed is not None and "removed or replaced" in str(proxy.failed)
        assert "Errno" not in str(proxy.failed) and "airlock audit rotate" in str(proxy.failed)
        report = proxy.close({"exit_code": 0})
    assert report.error is not None and "audit log" in report.error


def test_two_runs_sharing_a_log_keep_one_chain(tmp_path: Path) -> None:
    """Two agents in two terminals, one default log: each run's records are chained on
    whatever the other wrote last (under a lock), so the log verifies, every record is
    there, and both runs' checkpoints vouch for it."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    first = AuditLog(log, heads, "first", flush_interval=3600)
    second = AuditLog(log, heads, "second", flush_interval=3600)
    first.open()
    second.open()  # both start from the same, empty tip
    for number in range(3):
        first.append({"type": "request", "time": time.time(), "n": f"first-{number}"})
        second.append({"type": "request", "time": time.time(), "n": f"second-{number}"})
        first.flush()
        second.flush()  # its records were chained on the old tip: chained again
    second.append({"type": "request", "time": time.time(), "n": "second-late"})
    second.close()
    first.close()
    records = list(read_records(log))
    assert sorted(record["n"] for record in records) == sorted(
        [f"{run}-{number}" for run in ("first", "second") for number in range(3)] + ["second-late"]
    )
    assert [record["seq"] for record in records] == list(range(len(records)))
    assert verify(log, heads).intact


def test_text_that_is_not_utf8_is_written_escaped(tmp_path: Path) -> None:
    """A command or workspace whose bytes are not UTF-8 (Python decodes them to lone
    surrogates, which JSON cannot hold): the record is written, with ``\\x`` escapes for
    those bytes, and the log verifies."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "run")
    audit.open()
    name = os.fsdecode(b"caf\xe9.sock")
    audit.append({"type": "run", "time": time.time(), "command": ["cat", name], "x": "\ud800"})
    audit.close()
    [record] = read_records(log)
    assert record["command"] == ["cat", "caf\\xe9.sock"]
    assert record["x"] == "\\ud800"
    assert verify(log, heads).intact


def test_audit_lists_a_hand_edited_log_and_names_the_lines_it_skips(tmp_path: Path) -> None:
    """A line that is no JSON object, a port that is no number, a start without a time: the
    listing goes on, says which lines it skipped, and never shows a traceback."""
    log = tmp_path / "audit.jsonl"
    log.write_text(
        '{"type":"start","run":"x"}\nnot json\n[1]\n'
        '{"type":"request","host":"a","port":"eighty","decision":"allow"}\n'
    )
    for options in ((), ("--host", "a"), ("--json",)):
        done = airlock("audit", "--audit-log", str(log), *options)
        assert done.returncode == 1, done.stderr  # listed, and said not intact
        assert "Traceback" not in done.stderr
        assert "2 line(s) that are no record were skipped (line 2, 3)" in done.stderr


def test_verify_against_a_final_hash_kept_elsewhere(tmp_path: Path) -> None:
    """``airlock audit verify --hash HEX``: the log must hold the record a run's report named;
    a log and heads file rewritten together pass plain verify, but not this."""
    from airlock.egress.audit import audit_paths

    log, heads = audit_paths(os.environ, tmp_path / "audit.jsonl")  # where the CLI looks
    audit = AuditLog(log, heads, "run", flush_interval=3600)
    audit.open()
    audit.append({"type": "request", "time": time.time(), "host": "a", "bytes_out": 5})
    final = audit.close()
    assert airlock("audit", "verify", str(log), "--hash", final).returncode == 0
    # rewritten together: the record edited, the chain and the checkpoints made again
    log.unlink()
    heads.unlink()
    forged = AuditLog(log, heads, "run", flush_interval=3600)
    forged.open()
    forged.append({"type": "request", "time": time.time(), "host": "a", "bytes_out": 0})
    forged.close()
    assert airlock("audit", "verify", str(log)).returncode == 0
    done = airlock("audit", "verify", str(log), "--hash", final)
    assert done.returncode == 1 and "no record has the final hash" in done.stderr
    assert airlock("audit", "verify", str(log), "--hash", "nothex").returncode == 2
    assert airlock("audit", "--audit-log", str(log), "--hash", final).returncode == 2


def test_the_listing_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    """What a record holds (a host, a path, a reason, an error: what a command inside chose,
    or a hand's edit) reaches the terminal as text: an escape sequence in it is shown as
    ``\\x1b``, never sent (it could hide the line, or write a link)."""
    log = tmp_path / "audit.jsonl"
    link = "\x1b]8;;https://evil.example/\x1b\\"
    record = {
        "type": "request",
        "host": f"a{link}b",
        "port": 80,
        "path": "/\x9b31m",
        "decision": "deny",
        "reason": "why\x1b[2K\r",
        "error": "gone\u202e",
    }
    log.write_text(json.dumps(record) + "\n")
    done = airlock("audit", "--audit-log", str(log))
    assert done.returncode == 1, done.stderr  # listed; a record made by hand: not intact
    assert "\x1b" not in done.stdout and "\x9b" not in done.stdout and "\r" not in done.stdout
    assert "a\\x1b]8;;https://evil.example/\\x1b\\b:80/\\x9b31m" in done.stdout
    assert "why\\x1b[2K\\x0d" in done.stdout and "error: gone\\u202e" in done.stdout


def test_a_log_removed_while_nothing_is_pending_stops_an_open_tunnel(
    site: _Site, tmp_path: Path
) -> None:
    """A tunnel is recorded only when it ends: with nothing pending, the writer still looks
    at each wake-up whether the log is there, and stops traffic (the open tunnel included)."""
    cfg = config(tmp_path)
    assert cfg.audit_log is not None and cfg.heads_file is not None
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        tunnel = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
        with tunnel:
            tunnel.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert b" 200 " in tunnel.recv(1024).split(b"\r\n")[0]
            while not cfg.heads_file.read_bytes():  # the start record written: nothing pending
                time.sleep(0.01)
            cfg.audit_log.unlink()
            deadline = time.monotonic() + 2
            while proxy.failed is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proxy.failed is not None and "removed or replaced" in str(proxy.failed)
            with contextlib.suppress(ConnectionError):
                assert tunnel.recv(1024) == b""  # ended by the proxy
        report = proxy.close({"exit_code": 0})
    assert report.error is not None and "audit log" in report.error


def _failing_writer(tmp_path: Path) -> tuple[AuditLog, threading.Event, list[BaseException]]:
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    failures: list[BaseException] = []
    failed = threading.Event()

    def on_failure(error: BaseException) -> None:
        failures.append(error)
        failed.set()

    audit = AuditLog(log, heads, "run", flush_interval=0.01, on_failure=on_failure)
    audit.open()
    audit.append({"type": "start", "time": time.time()})
    while not read_heads(heads, log):  # the first batch checkpointed
        time.sleep(0.01)
    return audit, failed, failures


@pytest.mark.parametrize("cause", ["foreign_line", "unexpected_error"])
def test_whatever_stops_the_writer_stops_traffic_and_the_run_is_not_final(
    tmp_path: Path, cause: str
) -> None:
    """A last line another program appended that is JSON but no record (read back when the
    log grew behind the run's back), or any error at all in the writer: ``on_failure`` is
    called (the proxy stops traffic), and closing says why and writes no final checkpoint."""
    audit, failed, failures = _failing_writer(tmp_path)
    if cause == "foreign_line":
        with audit.path.open("ab") as handle:
            handle.write(b"{}\n")
    else:

        def broken(final: bool) -> None:
            raise RuntimeError("something unforeseen")

        audit._checkpoint = broken  # type: ignore[method-assign]
    audit.append({"type": "request", "time": time.time()})
    assert failed.wait(2), "the writer died without calling on_failure"
    words = (
        f"{audit.path}: its last line (line 2) is no audit record"
        if cause == "foreign_line"
        else "something unforeseen"
    )
    assert words in str(failures[0])
    with pytest.raises(AirlockError, match="could not be written"):
        audit.close()
    assert all(not head["final"] for head in read_heads(audit.heads, audit.path))


@pytest.mark.parametrize(
    "last", ["[1, 2]", '"text"', "{}", '{"type": "note"}', '{"seq": null}', '{"seq": 0}', ""]
)
def test_a_log_whose_last_line_is_no_record_is_never_appended_to(tmp_path: Path, last: str) -> None:
    """JSON that is no record (no whole-number ``seq``, no ``prev`` hash) as the last line:
    refused with the file, the line and what to do, not a traceback."""
    log = tmp_path / "audit.jsonl"
    first = orjson.dumps({"type": "start", "seq": 0, "prev": GENESIS}).decode()
    log.write_text(f"{first}\n{last}\n")
    audit = AuditLog(log, tmp_path / "heads.jsonl", "run")
    with pytest.raises(
        AirlockError, match=r"line 2\) is no audit record.*airlock audit verify"
    ) as caught:
        audit.open()
    assert str(log) in str(caught.value)


@pytest.mark.parametrize(
    "since",
    [
        "99999999999d",
        "9999999999999999999999s",
        "999999999d",
        "0001-01-01T00:00+14:00",
        "9999-12-31T23:59:59-14:00",
    ],
)
def test_audit_since_out_of_the_calendar_is_a_usage_error(tmp_path: Path, since: str) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    done = airlock("audit", "--audit-log", str(log), "--since", since)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--since {since!r}" in done.stderr


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--since", "now"], "--since 'now'"),
        (["--host", "a b"], "--host 'a b'"),
        (["--host", ""], "--host is empty"),
        (["--run", " "], "--run is empty"),
    ],
)
def test_audit_json_prints_nothing_on_a_bad_option(
    tmp_path: Path, options: list[str], said: str
) -> None:
    """The options are read before the array opens: stdout holds no lone ``[``."""
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    done = airlock("audit", "--json", "--audit-log", str(log), *options)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert said in done.stderr


def _log_of(tmp_path: Path, *records: dict[str, object], run: str = "run") -> Path:
    """A log of one run (``tmp_path/audit.jsonl``) holding ``records``."""
    log = tmp_path / "audit.jsonl"
    config_dir = tmp_path / "home" / ".claude"  # the test's HOME: where airlock audit looks
    audit = AuditLog(log, heads_path(log, config_dir), run, flush_interval=3600)
    audit.open()
    for record in records:
        audit.append(dict(record))
    audit.close()
    return log


def test_audit_run_that_matches_nothing_says_so(tmp_path: Path) -> None:
    run = "20261204T000000Z-1"
    log = _log_of(tmp_path, {"type": "request", "time": 1764757493.25, "run": run}, run=run)
    done = airlock("audit", "--json", "--audit-log", str(log), "--run", "2025")
    assert (done.returncode, json.loads(done.stdout)) == (1, [])
    assert "no run in" in done.stderr and "'2025'" in done.stderr
    done = airlock("audit", "--json", "--audit-log", str(log), "--run", "2026")
    assert len(json.loads(done.stdout)) >= 1 and "no run" not in done.stderr


def test_audit_since_keeps_its_milliseconds_and_early_years(tmp_path: Path) -> None:
    """The time --since gives is compared as records write theirs, years before 1000 too."""
    log = _log_of(tmp_path, {"type": "request", "time": 1764757493.25, "host": "a"})

    def listed(since: str) -> int:
        done = airlock("audit", "--json", "--audit-log", str(log), "--since", since)
        assert done.returncode == 0, done.stderr
        return len(json.loads(done.stdout))

    assert listed("0999-01-01") == 1
    assert listed("2025-12-03T10:24:53.250Z") == 1
    assert listed("2025-12-03T11:24:53.251+01:00") == 0


def test_audit_since_shows_a_connection_still_open_after_it(tmp_path: Path) -> None:
    """A tunnel begun before --since and open for an hour after it is shown; one that ended
    before it is not."""
    begun = 1764757493.25  # 2025-12-03T10:24:53.250Z
    log = _log_of(
        tmp_path,
        {"type": "tunnel", "time": begun, "host": "long", "duration_ms": 3_600_000},
        {"type": "tunnel", "time": begun, "host": "short", "duration_ms": 1_000},
    )
    done = airlock("audit", "--json", "--audit-log", str(log), "--since", "2025-12-03T11:00Z")
    assert done.returncode == 0, done.stderr
    assert [record["host"] for record in json.loads(done.stdout)] == ["long"]


@pytest.mark.parametrize("action", [(), ("verify",)])
def test_audit_refuses_a_log_that_is_no_regular_file(tmp_path: Path, action: tuple[str]) -> None:
    """A FIFO would have the read wait for a writer forever: refused at once."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = airlock("audit", *action, "--audit-log", str(fifo), timeout=30)
    assert done.returncode == 2
    assert "is not a regular file" in done.stderr and "Traceback" not in done.stderr


def _begun_anew(log: Path, heads: Path, records: int) -> None:
    """A new log begun at ``log``'s path by a run whose heads file was elsewhere (a run now
    refuses to begin one over a log its heads file has checkpoints of), its checkpoints then
    joined to ``heads``'s: what verify must tell apart."""
    apart = heads.with_name("apart.jsonl")
    _one_run(log, apart, records)
    heads.write_bytes(heads.read_bytes() + apart.read_bytes())


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_run_does_not_begin_a_new_log_over_one_its_heads_vouch_for(
    tmp_path: Path, how: str
) -> None:
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    if how == "removed":
        log.unlink()
    else:
        log.write_bytes(b"")
    with pytest.raises(
        AirlockError, match=r"it holds no record, but run run-.* checkpointed 2 in it"
    ):
        _one_run(log, heads, 1)


def _one_run(log: Path, heads: Path, records: int = 1) -> str:
    """A run of ``records`` requests on ``log``, each tagged with the run; its final hash."""
    run = f"run-{os.urandom(4).hex()}"
    audit = AuditLog(log, heads, run, flush_interval=3600)
    audit.open()
    for number in range(records):
        audit.append({"type": "request", "time": time.time(), "run": run, "n": number})
    return audit.close()


@pytest.mark.parametrize(
    ("how", "shape"), [("removed", 2), ("moved_aside", 2), ("moved_aside", 1), ("moved_aside", 4)]
)
def test_checkpoints_of_a_log_begun_anew_at_its_path_are_named_as_another_logs(
    tmp_path: Path, how: str, shape: int
) -> None:
    """A log removed (or moved aside) and begun anew, of the same shape or another:
    the first log's checkpoints are not this one's (each names the hash of its log's first
    line), and verify says so rather than passing, or blaming a record of the new log."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    if how == "removed":
        log.unlink()
    else:
        log.rename(tmp_path / "aside.jsonl")
    _begun_anew(log, heads, shape)
    verdict = verify(log, heads)
    assert not verdict.intact and verdict.bad_record is None
    assert "holds checkpoints of another log" in str(verdict.problem)
    assert f"this log's {shape} records match their own checkpoints" in str(verdict.problem)


def test_every_checkpoint_of_an_old_heads_file_is_compared(tmp_path: Path) -> None:
    """Checkpoints written before they named their log's first line are compared by position,
    as before, every one of them (not only the last at a position)."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    log.unlink()
    _begun_anew(log, heads, 2)
    old = [orjson.loads(line) for line in heads.read_bytes().splitlines()]
    heads.write_bytes(
        b"".join(
            orjson.dumps({k: v for k, v in head.items() if k != "first"}) + b"\n"
            for head in old
            if not head.get("intent")  # nor declarations
        )
    )
    verdict = verify(log, heads)
    assert not verdict.intact and verdict.bad_record == 1
    assert "does not match the checkpoint" in str(verdict.problem)


@pytest.mark.parametrize("change", ["cut_short", "last_record_rewritten"])
def test_a_run_does_not_append_to_a_log_that_lost_its_furthest_checkpoint(
    tmp_path: Path, change: str
) -> None:
    """The log was cut short, or its end rewritten, since its last run: the next run refuses
    it (fail closed), naming the file and what to do, rather than chain on and checkpoint it."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 3)
    lines = log.read_bytes().splitlines()
    if change == "cut_short":
        lines = lines[:-1]
    else:
        record = orjson.loads(lines[-1])
        record["n"] = 99
        lines[-1] = orjson.dumps(record)
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    audit = AuditLog(log, heads, "next")
    with pytest.raises(
        AirlockError, match=r"does not hold what run run-\w+ checkpointed"
    ) as caught:
        audit.open()
    assert f"airlock audit verify --audit-log {log}', and to start a new log move" in str(
        caught.value
    )
    assert len(log.read_bytes().splitlines()) == len(lines)  # nothing was written


def _killed_run(log: Path, heads: Path, records: int = 1) -> None:
    """A run that wrote a batch of ``records`` (declared first, as every batch) and was killed
    before its checkpoint: the checkpoint's write fails, as a death there would leave it."""
    killed = AuditLog(log, heads, "killed", flush_interval=3600)
    killed.open()
    for number in range(records):
        killed.append({"type": "request", "time": time.time(), "n": number})

    def dies(final: bool) -> None:
        raise OSError(errno.EIO, "killed before its checkpoint")

    killed._checkpoint = dies  # type: ignore[method-assign]
    with pytest.raises(AirlockError, match="killed before its checkpoint"):
        killed.close()


def test_records_a_killed_run_declared_are_vouched_for(tmp_path: Path) -> None:
    """Records past the furthest checkpoint that the run writing them declared first (it was
    killed before its checkpoint): verify passes and says so, and the next run goes on, its
    checkpoints naming the same first line."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    _killed_run(log, heads, 3)
    assert len(log.read_bytes().splitlines()) == 5
    verdict = verify(log, heads)
    assert verdict.intact, verdict.problem
    assert verdict.notes == (
        "records 2 to 4 were never checkpointed: run killed declared them before writing "
        "them, and ended before its checkpoint (killed?)",
    )
    _one_run(log, heads, 1)
    assert verify(log, heads).intact
    first = line_hash(log.read_bytes().splitlines()[0])
    assert {head["first"] for head in read_heads(heads, log)} == {first}


@pytest.mark.parametrize("where", ["after_a_run", "after_a_killed_run", "heads_removed"])
def test_records_no_run_declared_are_caught_and_never_chained_on(
    tmp_path: Path, where: str
) -> None:
    """A record another program appended (with the right ``seq`` and ``prev``), or a log whose
    heads file is gone: verify fails, and the next run refuses the log rather than chain on
    and checkpoint what nothing vouches for."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    if where == "after_a_killed_run":
        _killed_run(log, heads, 1)
    if where == "heads_removed":
        heads.unlink()
    else:
        _write_lines(log, _append(log.read_bytes().splitlines()))
    verdict = verify(log, heads)
    assert not verdict.intact
    expected = (
        "cannot be vouched for" if where == "heads_removed" else "no run declared the log ending"
    )
    assert expected in str(verdict.problem)
    before = log.read_bytes()
    audit = AuditLog(log, heads, "next")
    with pytest.raises(
        AirlockError, match=r"no run declared the log|holds no checkpoint"
    ) as caught:
        audit.open()
    assert "move the file aside" in str(caught.value)
    assert log.read_bytes() == before


def test_a_line_appended_behind_a_running_writer_stops_it(tmp_path: Path) -> None:
    """A line another program appends while a run writes (as the next record, ``seq`` and
    ``prev`` right): the run does not take it for another run's (none declared it), stops
    (traffic with it) and chains nothing on it."""
    audit, failed, failures = _failing_writer(tmp_path)
    lines = audit.path.read_bytes().splitlines()
    _write_lines(audit.path, _append(lines))
    audit.append({"type": "request", "time": time.time()})
    assert failed.wait(5), "the writer chained on a line no run declared"
    assert "no run declared" in str(failures[0])
    with pytest.raises(AirlockError):
        audit.close()
    assert len(audit.path.read_bytes().splitlines()) == len(lines) + 1
    assert not verify(audit.path, audit.heads).intact


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_every_spelling_of_a_log_shares_its_checkpoints(tmp_path: Path) -> None:
    """A run writing through a linked folder and one naming the file itself (or with ``..``)
    keep one heads file and name one log: a record rewritten through one spelling is caught
    through every other, and no spelling lacks the checkpoints. A link at the log's own path
    is refused (see ``test_audit_links.py``): verify flags it."""
    from airlock.egress.audit import heads_path

    config_dir = tmp_path / "config"
    real = tmp_path / "logs" / "audit.jsonl"
    real.parent.mkdir()
    (tmp_path / "linked").symlink_to(real.parent)
    via_folder = tmp_path / "linked" / "audit.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    dotted = tmp_path / "logs" / ".." / "logs" / "audit.jsonl"
    assert (
        heads_path(via_folder, config_dir)
        == heads_path(real, config_dir)
        == heads_path(dotted, config_dir)
        == heads_path(link, config_dir)
    )
    heads = heads_path(real, config_dir)
    _one_run(via_folder, heads, 2)
    _one_run(real, heads, 1)
    for spelling in (real, via_folder, dotted):
        assert verify(spelling, heads).intact
    assert "is a symbolic link" in str(verify(link, heads).problem)
    _write_lines(real, _rechain(_edit(real.read_bytes().splitlines())))
    for spelling in (real, via_folder, dotted):
        verdict = verify(spelling, heads)
        assert not verdict.intact and "the log was rewritten" in str(verdict.problem)


def test_verify_while_runs_write_never_cries_tampering(tmp_path: Path) -> None:
    """verify reads the heads file and the log's size under the log's lock: a run writing a
    batch meanwhile (declaration, records, checkpoint) is never taken for records no run
    checkpointed or declared."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    audit = AuditLog(log, heads, "busy", flush_interval=0.002)
    audit.open()
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            for _ in range(20):
                audit.append({"type": "request", "time": time.time(), "path": "/x" * 20})
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    verdicts = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(verdicts) < 300:
            if log.stat().st_size:
                verdicts.append(verify(log, heads))
    finally:
        stop.set()
        writer.join()
        audit.close()
    assert len(verdicts) > 20
    assert [v.problem for v in verdicts if not v.intact] == []
    assert verdicts[-1].records > verdicts[0].records  # it was writing all along


def test_a_heads_file_removed_mid_run_stops_traffic(tmp_path: Path) -> None:
    """Checkpoints written on into a heads file no one reads would leave the run's records
    vouched for by nothing: like the log's own removal, it stops the writer (and traffic)."""
    audit, failed, failures = _failing_writer(tmp_path)
    audit.heads.unlink()
    assert failed.wait(5)
    assert failures[0].errno == errno.ESTALE  # type: ignore[attr-defined]
    assert str(audit.heads) in str(failures[0])
    with pytest.raises(AirlockError):
        audit.close()


@pytest.mark.parametrize("which", ["log", "heads"])
def test_a_log_others_may_write_is_refused(tmp_path: Path, which: str) -> None:
    """A log or heads file its group or others may write (or, as root, another user's): who
    else can write it could forge records or checkpoints; the run refuses it, saying how to
    mend it, and writes nothing."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 1)
    target = log if which == "log" else heads
    before = target.read_bytes()
    target.chmod(0o620)
    with pytest.raises(AirlockError, match=r"may be written by its group or by others.*chmod 600"):
        AuditLog(log, heads, "next").open()
    target.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(target, 65534, -1)
        with pytest.raises(AirlockError, match=r"is owned by another user \(uid 65534\)"):
            AuditLog(log, heads, "next").open()
        os.chown(target, 0, -1)
    assert target.read_bytes() == before
    _one_run(log, heads, 1)  # mended: used again
    assert verify(log, heads).intact


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("no_last_line_break", r"record 2 \(line 3, run run-[0-9a-f]+\): its line is cut short"),
        ("seq_true", r"record 1 \(line 2, run run-[0-9a-f]+\): says it is record True"),
        ("seq_float", r"record 1 \(line 2, run run-[0-9a-f]+\): says it is record 1\.0"),
    ],
)
def test_verify_is_as_strict_as_the_writer(tmp_path: Path, change: str, problem: str) -> None:
    """What a run refuses to append to, verify does not call intact: a last line without its
    line break, a ``seq`` that is no whole number (``true``, ``1.0``) even with the chain
    recomputed after it. The problem says where: the record, its line and its run."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 3)
    lines = log.read_bytes().splitlines()
    if change == "no_last_line_break":
        log.write_bytes(b"\n".join(lines))
    else:
        record = orjson.loads(lines[1])
        record["seq"] = True if change == "seq_true" else 1.0
        lines[1] = orjson.dumps(record)
        _write_lines(log, lines)
    verdict = verify(log, heads)
    assert not verdict.intact
    assert re.match(problem, str(verdict.problem)), verdict.problem


def test_a_checkpoint_without_its_run_is_skipped_not_a_crash(tmp_path: Path) -> None:
    """A heads line that names no run (edited) is no checkpoint: verify reads past it."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    entries = [orjson.loads(line) for line in heads.read_bytes().splitlines()]
    for entry in entries:
        del entry["run"]
    heads.write_bytes(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
    verdict = verify(log, heads)
    assert not verdict.intact and "no checkpoint" in str(verdict.problem)


def test_the_listing_warns_when_the_log_is_not_intact(tmp_path: Path) -> None:
    """`airlock audit` lists records as they stand; when the chain is broken it says so on
    stderr (a deny edited into an allow is listed as an allow)."""
    from airlock.egress.audit import heads_path

    log = tmp_path / "audit.jsonl"
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "config")}

    heads = heads_path(log, tmp_path / "config")
    _one_run(log, heads, 3)
    clean = airlock("audit", "--audit-log", str(log), env=env)
    assert clean.returncode == 0 and "warning" not in clean.stderr
    _write_lines(log, _edit(log.read_bytes().splitlines()))
    edited = airlock("audit", "--audit-log", str(log), "--json", env=env)
    assert edited.returncode == 1  # listed, and said not intact, for a script to tell
    assert len(json.loads(edited.stdout)) == 3
    assert "warning" in edited.stderr and "is NOT intact" in edited.stderr


def test_rotate_moves_the_log_with_its_checkpoints(tmp_path: Path) -> None:
    """`airlock audit rotate`: the moved log and the new one the next run begins both verify
    (a log moved by hand leaves its checkpoints naming the old path, and both fail)."""
    from airlock.egress.audit import heads_path

    config_dir = tmp_path / "config"
    env = {"CLAUDE_CONFIG_DIR": str(config_dir)}
    log = tmp_path / "audit.jsonl"
    _one_run(log, heads_path(log, config_dir), 2)
    _one_run(log, heads_path(log, config_dir), 1)
    old = tmp_path / "audit.old.jsonl"
    done = airlock("audit", "rotate", "--audit-log", str(log), "--to", str(old), env=env)
    assert done.returncode == 0, done.stderr
    assert "intact, 3 records, 2 runs" in done.stdout
    assert not log.exists() and not heads_path(log, config_dir).exists()
    assert verify(old, heads_path(old, config_dir)).intact
    _one_run(log, heads_path(log, config_dir), 1)  # the next run begins a new log
    for path in (old, log):
        checked = airlock("audit", "verify", str(path), env=env)
        assert checked.returncode == 0, checked.stderr
    again = airlock("audit", "rotate", "--audit-log", str(log), "--to", str(old), env=env)
    assert again.returncode == 2 and "is there already" in again.stderr
    assert log.exists()
    for _ in range(2):  # named by the time, twice in a second: a number tells them apart
        _one_run(log, heads_path(log, config_dir), 1)
        named = airlock("audit", "rotate", "--audit-log", str(log), env=env)
        assert named.returncode == 0, named.stderr
    rotated = sorted(tmp_path.glob("audit.2*.jsonl"))
    assert len(rotated) == 2
    assert all(verify(path, heads_path(path, config_dir)).intact for path in rotated)


def test_rotate_refuses_a_log_that_is_not_intact(tmp_path: Path) -> None:
    """A tampered log is not moved (moving it would carry its checkpoints to a log they no
    longer vouch for): rotate says what verify says, exit 1, and nothing moves."""
    from airlock.egress.audit import heads_path

    config_dir = tmp_path / "config"
    log = tmp_path / "audit.jsonl"
    _one_run(log, heads_path(log, config_dir), 3)
    _write_lines(log, _edit(log.read_bytes().splitlines()))
    done = airlock(
        "audit", "rotate", "--audit-log", str(log), env={"CLAUDE_CONFIG_DIR": str(config_dir)}
    )
    assert done.returncode == 1 and "is not intact (record 2" in done.stderr, done.stderr
    assert [path.name for path in tmp_path.glob("audit*")] == ["audit.jsonl"]


def test_rotate_while_a_run_writes_stops_the_run_not_the_chain(tmp_path: Path) -> None:
    """A run still writing when its log is rotated stops at its next flush (its log is no
    longer at its path: traffic with it), and the moved log verifies."""
    from airlock.egress.audit import heads_path
    from airlock.egress.audit_read import rotate

    audit, failed, failures = _failing_writer(tmp_path)
    to = tmp_path / "moved.jsonl"
    rotate(audit.path, audit.heads, to, heads_path(to, tmp_path / "config"))
    assert failed.wait(5)
    assert failures[0].errno == errno.ESTALE  # type: ignore[attr-defined]
    with pytest.raises(AirlockError):
        audit.close()
    assert verify(to, heads_path(to, tmp_path / "config")).intact


def test_a_lock_held_on_the_log_stops_the_run_not_its_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the log's lock past LOCK_WAIT: the writer does not wait for it
    forever with records in memory; it fails (traffic stops), saying why. A run starting then
    is refused at once, the same way."""
    import fcntl

    from airlock.egress import audit as audit_module

    monkeypatch.setattr(audit_module, "LOCK_WAIT", 0.3)
    audit, failed, failures = _failing_writer(tmp_path)
    with audit.path.open("rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_SH)
        audit.append({"type": "request", "time": time.time()})
        assert failed.wait(5)
        assert "held it locked for over 0.3 seconds" in str(failures[0])
        with pytest.raises(AirlockError, match="held it locked"):
            AuditLog(audit.path, audit.heads, "next").open()
    with pytest.raises(AirlockError):
        audit.close()


def test_a_write_that_failed_after_its_declaration_breaks_nothing_later(tmp_path: Path) -> None:
    """A run declared a batch and could not write it (a full disk: it stopped, traffic with
    it); runs after it write other records at those places: verify passes, the declaration of
    what never came vouching for nothing and blaming nothing."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 3)
    failing = AuditLog(log, heads, "failing", flush_interval=3600)
    failing.open()
    failing.append({"type": "request", "time": time.time(), "n": "never written"})

    def full(fd: int, data: bytes | bytearray) -> None:
        if fd == failing._fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        os.write(fd, data)

    original = audit_module_write = __import__("airlock.egress.audit", fromlist=["_write_all"])
    saved = original._write_all
    original._write_all = full  # type: ignore[attr-defined]
    try:
        with pytest.raises(AirlockError, match="No space left"):
            failing.close()
    finally:
        audit_module_write._write_all = saved  # type: ignore[attr-defined]
    assert any(
        head.get("run") == "failing" for head in map(orjson.loads, heads.read_bytes().splitlines())
    )
    verdict = verify(log, heads)
    assert verdict.intact and "its last write failed or never came" in verdict.notes[0]
    _one_run(log, heads, 2)  # records 3 and 4 now, where the failed batch would have been
    verdict = verify(log, heads)
    assert verdict.intact and verdict.notes == (), verdict


def test_a_declared_batch_removed_from_the_end_is_noted(tmp_path: Path) -> None:
    """A killed run's declared batch, then cut off the log back to the checkpoint before it:
    nothing can tell that from a write that never came, but verify says the run declared more
    than the log holds."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    _killed_run(log, heads, 3)
    _write_lines(log, log.read_bytes().splitlines()[:2])
    verdict = verify(log, heads)
    assert verdict.intact
    assert verdict.notes == (
        "run killed declared 5 records but the log ends at 2: its last write failed or never "
        "came (killed), or records were removed from the end",
    )


def test_a_heads_file_others_may_write_vouches_for_nothing(tmp_path: Path) -> None:
    """verify does not trust checkpoints someone else could have written: a heads file its
    group or others may write, or another user owns than the log's."""
    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    heads.chmod(0o666)
    verdict = verify(log, heads)
    assert not verdict.intact and "may be written by its group or by others" in str(verdict.problem)
    heads.chmod(0o600)
    assert verify(log, heads).intact
    if os.geteuid() == 0:
        os.chown(heads, 65534, -1)
        verdict = verify(log, heads)
        assert not verdict.intact and "owned by another user (uid 65534)" in str(verdict.problem)


def test_a_log_begun_before_heads_files_were_named_by_real_paths_keeps_them(
    tmp_path: Path,
) -> None:
    """A log reached through a link (a ~/.claude that is a link to dotfiles), whose heads file
    was named by the path as given (as runs named them before): it is still that log's, both
    for the next run and for verify."""
    from airlock.egress.audit import _key, heads_path

    config_dir = tmp_path / "config"
    real = tmp_path / "dotfiles"
    real.mkdir()
    (tmp_path / "claude").symlink_to(real)
    log = tmp_path / "claude" / "audit.jsonl"
    legacy = config_dir / "airlock" / "audit-heads" / f"{_key(str(log.absolute()))}.jsonl"
    legacy.parent.mkdir(parents=True)
    _one_run(log, legacy, 2)
    entries = [orjson.loads(line) for line in legacy.read_bytes().splitlines()]
    legacy.write_bytes(  # as runs wrote them before: "log" the path as given
        b"".join(orjson.dumps({**e, "log": str(log.absolute())}) + b"\n" for e in entries)
    )
    assert heads_path(log, config_dir) == legacy
    assert verify(log, heads_path(log, config_dir)).intact
    _one_run(log, heads_path(log, config_dir), 1)
    assert verify(log, heads_path(log, config_dir)).intact


def test_a_write_cut_short_by_a_full_disk_leaves_no_half_line(tmp_path: Path) -> None:
    """The disk fills in the middle of a batch's write: the log is cut back to where it was,
    so it stays whole (verify passes, noting the declaration that never came) and the next
    run goes on with it."""
    from airlock.egress import audit as audit_module

    log, heads = tmp_path / "audit.jsonl", tmp_path / "heads.jsonl"
    _one_run(log, heads, 2)
    before = log.read_bytes()
    failing = AuditLog(log, heads, "failing", flush_interval=3600)
    failing.open()
    for number in range(5):
        failing.append({"type": "request", "time": time.time(), "n": number})
    saved = audit_module._write_all

    def half_then_full(fd: int, data: bytes | bytearray) -> None:
        if fd == failing._fd:
            os.write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        saved(fd, data)

    audit_module._write_all = half_then_full  # type: ignore[assignment]
    try:
        with pytest.raises(AirlockError, match="No space left"):
            failing.close()
    finally:
        audit_module._write_all = saved
    assert log.read_bytes() == before
    verdict = verify(log, heads)
    assert verdict.intact and "its last write failed or never came" in verdict.notes[0]
    _one_run(log, heads, 1)
    assert verify(log, heads).intact


def test_a_log_rotated_while_a_run_waits_for_its_lock_is_not_written_to(tmp_path: Path) -> None:
    """The log is moved away (as rotate does, under its lock) while the writer waits for that
    lock: once it has it, the writer looks again, finds the log gone from its path, and stops
    (traffic with it) rather than write into the log moved away."""
    import fcntl
    import shutil

    audit, failed, failures = _failing_writer(tmp_path)
    moved, moved_heads = tmp_path / "moved.jsonl", tmp_path / "moved-heads.jsonl"
    with audit.path.open("rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        audit.append({"type": "request", "time": time.time()})
        time.sleep(0.3)  # the writer is waiting for the lock now
        shutil.copy(audit.heads, moved_heads)
        audit.path.rename(moved)
    assert failed.wait(5)
    assert failures[0].errno == errno.ESTALE  # type: ignore[attr-defined]
    with pytest.raises(AirlockError):
        audit.close()
    lines = moved.read_bytes().splitlines()
    assert len(lines) == 1  # the start record only
    heads_lines = [orjson.loads(line) for line in moved_heads.read_bytes().splitlines()]
    assert all(head["records"] <= 1 for head in heads_lines)


def test_a_heads_line_cut_short_is_cut_back_off(tmp_path: Path) -> None:
    """A full disk (a file-size limit here) cuts a checkpoint's line short: what it wrote is
    cut back off, so the next run's line is not joined to it into one that is no line."""
    import errno
    import subprocess
    import sys

    heads = tmp_path / "heads.jsonl"
    code = (
        "import os, resource, signal, sys\n"
        "from airlock.egress.audit import _append_line\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (30, 30))\n"
        "_append_line(fd, b'x' * 20 + b'\\n')\n"
        "try:\n"
        "    _append_line(fd, b'y' * 20 + b'\\n')\n"
        "except OSError as error:\n"
        "    print(error.errno)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(heads)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(errno.EFBIG), done.stderr
    assert heads.read_bytes() == b"x" * 20 + b"\n"


def test_a_runs_end_is_listed_with_how_long_it_lasted(tmp_path: Path) -> None:
    """A run record's time is when the run started: the listing says how long it lasted."""
    record = {"type": "run", "time": 1764757493.25, "run": "r", "duration": 2.5, "exit_code": 3}
    log = _log_of(tmp_path, {**record, "command": ["x"]})
    text = airlock("audit", "--audit-log", str(log)).stdout
    assert "2025-12-03T10:24:53.250Z  run r ended after 2.5 s: exit 3, command x" in text
