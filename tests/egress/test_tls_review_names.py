"""Names inside an inspected tunnel, through the real proxy: a client that asks (SNI) for
another name than the ``CONNECT``'s host and then refuses the run's certificate for that host
is recorded as such. It was recorded, and reported, as a client that pins certificates, told
to leave the host out of ``--inspect``. (The origin is asked for the ``CONNECT``'s host
whatever the client asked for: it never sees the client's name.)"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from tests.egress.harness import established_tunnel, inspected_setup
from tests.egress.loopback import tls_answering_ok
from tests.egress.origin import config, running


@contextlib.contextmanager
def _origin(ca: RunCA) -> Iterator[tuple[int, list[str | None]]]:
    """A TLS origin for ``localhost`` on 127.0.0.1 that keeps the name each client asked
    for (SNI); its port and those names."""
    context = ca.server_context("localhost")
    asked: list[str | None] = []
    context.sni_callback = lambda _tls, name, _context: asked.append(name)
    with tls_answering_ok(context) as (port, _):
        yield port, asked


def test_a_client_asking_for_another_name_is_recorded_so(tmp_path: Path) -> None:
    """``CONNECT localhost`` whose TLS asks for ``evil.test`` (a host the rules deny),
    verifying against the run's bundle: the client refuses the leaf for ``localhost``, the
    origin is never reached, and the record and report say it asked for another name,
    not that it pins certificates."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    with _origin(origin_ca) as (port, asked), running(cfg) as (url, proxy):
        raw = established_tunnel(url, f"localhost:{port}")
        verify = ssl.create_default_context(cafile=str(bundle))
        with pytest.raises(ssl.SSLCertVerificationError), raw:
            verify.wrap_socket(raw, server_hostname="evil.test")
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert asked == []
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]
    assert (record["host"], record["server_name"]) == ("localhost", "evil.test"), record
    assert "asked for evil.test in its TLS (SNI)" in record["reason"], record
    assert "pins" not in record["reason"] and "out of --inspect" not in record["reason"]
    [(host, why)] = report.refused_by_client
    assert host == "localhost" and "asked for evil.test" in why, why
