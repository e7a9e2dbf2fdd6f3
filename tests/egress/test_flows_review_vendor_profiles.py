"""Bedrock's inference profiles asked of the vendor's own API while the engine sends model
requests elsewhere: the table's ``GET /inference-profiles`` row on the vendor API's host is
there for a Bedrock gateway (``ANTHROPIC_BEDROCK_BASE_URL``), and it named such a request to
``api.anthropic.com`` ``model_requests`` and let it out, any query with it, on Bedrock, Vertex
and Foundry, where the engine says model requests never go there and ``GET /v1/models`` (the
model list of the vendor's own API) was refused. And, with the start-up configuration off,
a path a header names for a server to route by is judged at the vendor's API as the
request's own path is. Through the real proxy on loopback, its ``api.anthropic.com`` an
origin there (the address check sends it to 127.0.0.1)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.inspect import InspectionConfig
from airlock.egress.running import start_proxy
from tests.egress.harness import established_tunnel, inspected_setup, tls_origin, until_closed
from tests.egress.origin import config
from tests.policy.helpers import context

API = "api.anthropic.com"


async def _to_loopback(host: str, port: int, private_ok: bool) -> str:
    return "127.0.0.1"


@contextmanager
def _vendor_api(tmp_path: Path, environ: dict[str, str]) -> Iterator[tuple[str, int, Path, Path]]:
    """The proxy (its URL), inspecting ``api.anthropic.com``, an origin of that name on
    loopback (its port), the run's CA bundle and its audit log; the engine's decisions for ``environ``."""
    from airlock.policy import decide

    origin_ca, bundle, inspection = inspected_setup(tmp_path, environ)
    inspection = InspectionConfig(
        hosts=frozenset({API}),
        ca=inspection.ca,
        upstream=inspection.upstream,
        decisions=decide(context(environ)),
    )
    cfg = config(tmp_path, inspection=inspection, allow=config(tmp_path).rules([API], "--allow"))
    assert cfg.audit_log is not None
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with tls_origin(origin_ca, API) as site:
        proxy = start_proxy(cfg, [sock], check=_to_loopback)
        try:
            yield url, site.server_address[1], bundle, cfg.audit_log
        finally:
            proxy.close({"command": ["test"], "exit_code": 0})


def _get(url: str, port: int, bundle: Path, target: str) -> bytes:
    raw = established_tunnel(url, f"{API}:{port}")
    tls = ssl.create_default_context(cafile=str(bundle)).wrap_socket(raw, server_hostname=API)
    with tls:
        tls.sendall(f"GET {target} HTTP/1.1\r\nHost: {API}\r\nConnection: close\r\n\r\n".encode())
        return until_closed(tls)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"}, id="bedrock"),
        pytest.param({"CLAUDE_CODE_USE_VERTEX": "1"}, id="vertex"),
        pytest.param({"CLAUDE_CODE_USE_FOUNDRY": "1"}, id="foundry"),
    ],
)
def test_inference_profiles_at_the_vendor_api_are_refused_where_model_requests_go_elsewhere(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    with _vendor_api(tmp_path, environ) as (url, port, bundle, log):
        answers = [
            _get(url, port, bundle, target)
            for target in ("/inference-profiles?q=hello", "/v1/models", "/api/claude_code/settings")
        ]
    profiles, models, settings = answers
    for refused in (profiles, models):
        assert refused.startswith(b"HTTP/1.1 403 "), refused[:200]
        assert b"data flow: model_requests (on)" in refused
        assert f"not to {API}".encode() in refused
    assert settings.startswith(b"HTTP/1.1 200 "), settings[:200]  # essential: still goes
    records = [r for r in read_records(log) if r.get("inspected") and r["type"] == "request"]
    assert [(r["path"], r["flow"], r["status"]) for r in records] == [
        ("/inference-profiles?q=…", "model_requests", 403),
        ("/v1/models", "model_requests", 403),
        ("/api/claude_code/settings", "model_requests", 200),
    ]


def test_inference_profiles_at_the_vendor_api_go_where_model_requests_go_there(
    tmp_path: Path,
) -> None:
    """First-party (model requests go to the vendor's API), nothing changes."""
    with _vendor_api(tmp_path, {}) as (url, port, bundle, _):
        answer = _get(url, port, bundle, "/inference-profiles")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def _get_with(url: str, port: int, bundle: Path, target: str, header: str) -> bytes:
    raw = established_tunnel(url, f"{API}:{port}")
    tls = ssl.create_default_context(cafile=str(bundle)).wrap_socket(raw, server_hostname=API)
    with tls:
        tls.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {API}\r\n{header}\r\nConnection: close\r\n\r\n".encode()
        )
        return until_closed(tls)


NONESSENTIAL = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def test_a_path_a_header_names_is_refused_at_the_vendor_api_as_the_path_itself_is(
    tmp_path: Path,
) -> None:
    """With the start-up configuration off, a request to the vendor's API that no row names
    is refused there (the engine expects none but its flows'); so is an allowed one carrying
    a header that a server may route by instead (``X-Original-URL``) naming such a path, as
    one naming a path of a flow that is off is. Before, the header's path was read for the
    rows of flows that are off alone, and the request went out."""
    with _vendor_api(tmp_path, NONESSENTIAL) as (url, port, bundle, log):
        direct = _get(url, port, bundle, "/api/claude_code_grove")
        named = _get_with(
            url, port, bundle, "/api/oauth/profile", "X-Original-URL: /api/claude_code_grove"
        )
        plain = _get(url, port, bundle, "/api/oauth/profile")
    for refused in (direct, named):
        assert refused.startswith(b"HTTP/1.1 403 "), refused[:200]
        assert b"start-up configuration off" in refused
    assert plain.startswith(b"HTTP/1.1 200 "), plain[:200]  # sign-in: essential, still goes
    records = [r for r in read_records(log) if r.get("inspected") and r["type"] == "request"]
    assert [(r["flow"], r["status"]) for r in records] == [
        ("unclassified", 403),
        ("unclassified", 403),
        ("model_requests", 200),
    ]
