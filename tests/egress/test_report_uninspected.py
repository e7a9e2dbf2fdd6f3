"""With inspection on, a host the agent's table names flows at (the vendor API's) that
connections reached without inspection: what they carried is in no flow's count, and the
report's comparison said nothing of it (metrics ``0 sent`` while its tunnels went out
unread). The report names the host, its connections and the flows it may have carried."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from airlock.egress.flows import flows_at
from airlock.egress.report import Uninspected
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, running


def test_the_flows_a_host_may_carry_are_the_tables_rows_for_it() -> None:
    """The vendor API's flows on its hosts, the update hosts' on theirs, none elsewhere (the
    rows for any host, the web-fetch preflight's, do not count)."""
    api = flows_at("API.anthropic.com.", api_hosts=frozenset({"api.anthropic.com"}))
    assert {"model_requests", "metrics", "feedback_command"} <= set(api)
    assert "webfetch_preflight" not in api
    assert flows_at("registry.npmjs.org") == ("auto_update",)
    assert flows_at("o1.ingest.sentry.io") == ("error_reporting",)
    assert flows_at("example.com") == ()


def test_a_tunnel_to_the_vendors_host_not_inspected_is_named_in_the_report(
    tmp_path: Path,
) -> None:
    """``localhost`` is inspected, ``127.0.0.1`` (named as the vendor API's too) is reached
    by an opaque tunnel: the report's flow lines name it and its connection, and its JSON
    lists it; the inspected host is not listed."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    inspection = dataclasses.replace(inspection, api_hosts=frozenset({"localhost", "127.0.0.1"}))
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, proxy):
            sent = inspected_post(url, bundle, port, "/v1/messages")
            host, proxy_port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(proxy_port)), timeout=10) as tunnel:
                tunnel.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % port)
                assert tunnel.recv(4096).startswith(b"HTTP/1.1 200")
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert sent.startswith(b"HTTP/1.1 200"), sent[:200]
    [found] = report.uninspected
    assert (found.host, found.connections) == ("127.0.0.1", 1)
    assert "metrics" in found.flows and "model_requests" in found.flows
    lines = "\n".join(report.lines())
    assert "  ! 127.0.0.1: 1 connection not inspected, so not counted above (the agent " in lines
    assert "there): --inspect 127.0.0.1 counts it\n" in lines + "\n"
    assert report.to_json()["uninspected"] == [found.to_json()]


def test_the_line_says_connections_in_the_plural() -> None:
    line = Uninspected("api.anthropic.com", 3, ("metrics", "model_requests")).line()
    assert line == (
        "  ! api.anthropic.com: 3 connections not inspected, so not counted above (the agent "
        "sends metrics, model_requests there): --inspect api.anthropic.com counts them"
    )
