"""Headers toward an upstream proxy (``--upstream-proxy http://USER:PASSWORD@…``), through
the real proxy and a recording upstream proxy on loopback: a plain-HTTP request, which goes
to it in absolute form, carried no ``Proxy-Authorization`` (each ``CONNECT`` did), so an
upstream proxy that asks for credentials answered ``407`` to every one, its challenge passed
on to the sandbox; and the client's own ``Proxy-*`` must never take their place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.egress import EgressConfig
from airlock.egress.audit_read import read_records
from tests.egress.origin import _Site, config, exchange, running
from tests.egress.test_upstream_review import (
    BASIC,
    _secret_forms,
    _with_credentials,
    recording_upstream,
    told_apart,
)


def test_headers_a_plain_request_to_the_upstream_proxy_carries_its_credentials(
    site: _Site, tmp_path: Path
) -> None:
    """The upstream proxy gets the credentials of its URL on the forwarded request (the
    client's own ``Proxy-Authorization`` dropped, never sent in their place), and the
    destination's answer comes back; the record's ``bytes_out`` is the request as code
    chose it (the credentials are airlock's), and no form of the password is in the answer
    or the audit log."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    with recording_upstream("forward", origin, expected=BASIC) as upstream:
        allow = EgressConfig.rules(["origin.test"], "--allow")
        given = _with_credentials(upstream.url)
        cfg = config(tmp_path, allow=allow, upstream_proxy=given, no_proxy="")
        request = (
            b"GET http://origin.test/plain HTTP/1.1\r\nHost: origin.test\r\n"
            b"Proxy-Authorization: Basic c2FuZGJveDpndWVzcw==\r\nConnection: close\r\n\r\n"
        )
        with running(cfg) as (url, _):
            answer = exchange(url, request)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.endswith(b"path=http://origin.test/plain host=origin.test")  # as it came
    assert upstream.heads[0].startswith(b"GET http://origin.test/plain HTTP/1.1\r\n")
    assert upstream.authorizations() == [BASIC]
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert record["status"] == 200
    assert record["bytes_out"] == len(upstream.heads[0]) + 4 - len(
        b"Proxy-Authorization: " + BASIC + b"\r\n"
    )
    for text in (answer, cfg.audit_log.read_bytes()):
        assert not [form for form in _secret_forms() if form in text]


@pytest.mark.parametrize("credentials", [False, True], ids=["none_given", "wrong_ones"])
def test_headers_a_plain_request_refused_credentials_is_told_as_to_a_connect(
    site: _Site, tmp_path: Path, credentials: bool
) -> None:
    """The upstream proxy's ``407`` to a plain request is about airlock's credentials (the
    URL's), not the client's: it was passed on as it came, so the client read airlock as
    asking for its own. It is a ``502`` saying what a ``CONNECT`` refused the same way says
    (where credentials go, or that those given were refused), never showing them; the record
    says so too."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    with recording_upstream("forward", origin, expected=b"Basic other") as upstream:
        allow = EgressConfig.rules(["origin.test"], "--allow")
        given = _with_credentials(upstream.url) if credentials else upstream.url
        cfg = config(tmp_path, allow=allow, upstream_proxy=given, no_proxy="")
        request = b"GET http://origin.test/plain HTTP/1.1\r\nHost: origin.test\r\n\r\n"
        with running(cfg) as (url, _):
            answer = exchange(url, request)
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"Proxy-Authenticate" not in answer
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert record["status"] == 502
    told_apart(answer, record["error"], json.dumps(record).encode(), credentials)


def test_headers_a_refusal_of_credentials_after_an_interim_answer_is_still_told(
    site: _Site, tmp_path: Path
) -> None:
    """The upstream proxy's ``100 Continue`` went to the client, then its ``407`` came in a
    read of its own: the client got the ``100`` and a closed connection, no word of why. A
    final answer may follow interim ones: airlock's ``502`` does, saying why."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    with recording_upstream("interim apart", origin, expected=b"Basic other") as upstream:
        allow = EgressConfig.rules(["origin.test"], "--allow")
        cfg = config(tmp_path, allow=allow, upstream_proxy=upstream.url, no_proxy="")
        request = b"GET http://origin.test/plain HTTP/1.1\r\nHost: origin.test\r\n\r\n"
        with running(cfg) as (url, _):
            answer = exchange(url, request)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(interim + b"HTTP/1.1 502 "), answer[:300]
    assert b"asks for credentials (HTTP/1.1 407" in answer
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert record["status"] == 502
    assert record["bytes_in"] == len(answer)
