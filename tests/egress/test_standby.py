"""The proxy on stand-by, started late: a log that failed meanwhile stops all traffic, and a
proxy that cannot start still ends the run with its record."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from airlock.egress import StandbyProxy, verify
from airlock.egress.audit_read import read_records
from airlock.errors import AirlockError
from tests.egress.origin import _Site, config, listener


def test_a_log_that_failed_on_standby_stops_all_traffic(site: _Site, tmp_path: Path) -> None:
    """The log fails before the proxy is loaded (at a flush: it was removed): once started,
    the proxy lets nothing through, and the report says why."""
    standby = StandbyProxy(config(tmp_path), [listener()])
    assert standby.audit is not None
    standby.audit.path.unlink()
    deadline = time.monotonic() + 10
    while standby.audit.failed is None:
        assert time.monotonic() < deadline, "the start record's flush never failed"
        time.sleep(0.01)
    running = standby.start()
    (host, port) = running.addresses[0]
    with httpx.Client(proxy=f"http://{host}:{port}") as client:
        try:
            answer = client.get(f"http://127.0.0.1:{site.server_address[1]}/after")
            assert answer.status_code == 503 and "audit log" in answer.text
        except httpx.HTTPError:
            pass  # cut before an answer: refused all the same
    report = standby.close({"exit_code": 0})
    assert site.seen == []
    assert report.error is not None and "audit log" in report.error


def test_a_proxy_that_cannot_start_ends_the_run_with_its_record(tmp_path: Path) -> None:
    """The command ran, the proxy could not start (its socket unusable): the run's record is
    written with why, after the start record, and the chain verifies."""
    cfg = config(tmp_path)
    broken = listener()
    broken.close()
    standby = StandbyProxy(cfg, [broken])
    with pytest.raises(AirlockError, match="could not start"):
        standby.start()
    report = standby.close({"exit_code": 125})
    assert report.error is not None and "could not start" in report.error
    assert cfg.audit_log is not None and cfg.heads_file is not None
    records = list(read_records(cfg.audit_log))
    assert [record["type"] for record in records] == ["start", "run"]
    assert records[-1]["exit_code"] == 125 and "could not start" in records[-1]["error"]
    assert verify(cfg.audit_log, cfg.heads_file).intact
