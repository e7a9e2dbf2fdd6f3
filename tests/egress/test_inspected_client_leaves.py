"""An inspected client that leaves mid-download: the proxy stops relaying there. It went on
writing the origin's whole answer into the closed TLS connection: the record counted every
byte as received and the exchange as done, and asyncio's logger wrote "SSL connection is
closed" on airlock's stderr, between the command's own lines, once per piece."""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from tests.egress.harness import inspected_setup, inspected_tls, tls_origin
from tests.egress.origin import config, running

SIZE = 4 << 20  # the origin's whole blob (``/bytes/N``)


@pytest.mark.parametrize("notify", [True, False], ids=["close_notify", "abrupt"])
def test_an_inspected_download_the_client_left_is_cut_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, notify: bool
) -> None:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    caplog.set_level(logging.WARNING, logger="asyncio")
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, proxy):
            tls = inspected_tls(url, bundle, port)
            tls.sendall(f"GET /bytes/{SIZE} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
            got = len(tls.recv(1000))
            if notify:  # close_notify, as curl sends when it stops (the answer still comes)
                with contextlib.suppress(ssl.SSLError, OSError):
                    tls.unwrap()
            tls.close()
            time.sleep(0.5)
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert got > 0
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert record["error"] and record["bytes_in"] < SIZE, {
        k: record[k] for k in ("bytes_in", "error")
    }
    assert "SSL connection is closed" not in caplog.text
    [host] = report.hosts
    assert host.bytes_in == record["bytes_in"]
