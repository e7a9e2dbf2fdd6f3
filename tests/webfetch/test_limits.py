"""Every stage has a limit: the fetch's time limit bounds the preflight and the page however
slowly they come, and no answer is read whole past its size limit. Real servers on loopback."""

from __future__ import annotations

import time
import tracemalloc

import httpx
import pytest

from airlock.destinations import table_resolver
from airlock.errors import AirlockError, RefusedError
from airlock.policy.model import Origin, Permissions, Rule, Source
from airlock.webfetch import FetchLimits, GuardedFetcher, LimitedTransport, PreflightClient
from airlock.webfetch.preflight import MAX_ANSWER_BYTES
from airlock.webfetch.transport import bypasses_proxy, time_limit
from tests.servers import origin_site
from tests.webfetch.hostile import hostile_server

ORIGIN = Origin(Source.PROJECT, "/p/.claude/settings.json")
ALLOW_LOOPBACK = Permissions(allow=(Rule("WebFetch(domain:127.0.0.1)", ORIGIN),))
LIMIT = 1.0
SLACK = 1.5
"""Seconds past the limit a refusal may take on a busy machine (the servers would take 20 s)."""


def fetcher(service: str | None, *, timeout: float = LIMIT) -> GuardedFetcher:
    client = httpx.Client(transport=LimitedTransport(), trust_env=False)
    return GuardedFetcher(
        permissions=ALLOW_LOOPBACK,
        preflight=None if service is None else PreflightClient(service, client=client),
        client=client,
        clock=time.monotonic,
        limits=FetchLimits(timeout=timeout),
        resolver=table_resolver({"site.test": ["127.0.0.1"]}),
    )


@pytest.mark.parametrize("mode", ["trickle-body", "trickle-headers"])
def test_slow_preflight_answer_bounded_by_the_fetch_limit(mode: str) -> None:
    """A preflight answer (headers or body) sent a byte at a time fails closed at the fetch's time limit."""
    with hostile_server(mode) as service, origin_site() as site:
        start = time.monotonic()
        with pytest.raises(RefusedError, match="did not answer in time"):
            fetcher(service.url).fetch(f"http://site.test:{site.server_address[1]}/text")
        assert time.monotonic() - start < LIMIT + SLACK
        assert site.hosts == []


@pytest.mark.parametrize("mode", ["trickle-headers", "trickle-body"])
def test_slow_page_bounded_by_the_fetch_limit(mode: str) -> None:
    """A page whose headers or body come a byte at a time is abandoned at the time limit."""
    with hostile_server(mode) as page:
        start = time.monotonic()
        with pytest.raises(AirlockError, match="time limit"):
            fetcher(None).fetch(f"http://site.test:{page.port}/")
        assert time.monotonic() - start < LIMIT + SLACK
        assert len(page.requests) == 1


@pytest.mark.parametrize("mode", ["huge-json", "huge-chunked"])
def test_huge_preflight_answer_never_read_whole(mode: str) -> None:
    """A 1 GiB preflight answer (announced or chunked) is refused after 1 MB, in little memory."""
    with hostile_server(mode) as service:
        client = httpx.Client(transport=LimitedTransport(), trust_env=False)
        preflight = PreflightClient(service.url, client=client)
        tracemalloc.start()
        try:
            with (
                pytest.raises(RefusedError, match=f"more than {MAX_ANSWER_BYTES} bytes"),
                time_limit(20),
            ):
                preflight.check("site.test", now=0.0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            client.close()
    assert peak < 8 * MAX_ANSWER_BYTES
    assert service.sent and service.sent[0] < 64 * MAX_ANSWER_BYTES


def test_page_body_cut_at_max_bytes_without_reading_the_rest() -> None:
    """A 1 GiB page is cut at max_bytes; the rest is never read."""
    with hostile_server("huge-json") as page:
        guard = GuardedFetcher(
            permissions=ALLOW_LOOPBACK,
            preflight=None,
            clock=time.monotonic,
            limits=FetchLimits(max_bytes=100_000, timeout=20),
            resolver=table_resolver({"site.test": ["127.0.0.1"]}),
        )
        fetched = guard.fetch(f"http://site.test:{page.port}/")
        guard.close()
        assert guard.client.is_closed
    assert fetched.truncated and len(fetched.content) == 100_000
    assert page.sent[0] < 64 * MAX_ANSWER_BYTES


def test_time_limit_cuts_every_wait_and_nests() -> None:
    """Within time_limit, a read waits at most until the deadline; an inner limit never extends an outer one."""
    with time_limit(5) as outer, time_limit(60) as inner:
        assert inner == outer
    with hostile_server("trickle-body") as slow:
        client = httpx.Client(transport=LimitedTransport(), trust_env=False)
        start = time.monotonic()
        with pytest.raises(httpx.TimeoutException), time_limit(0.5):
            client.get(slow.url).read()
        assert time.monotonic() - start < 0.5 + SLACK
        client.close()


def test_without_a_limit_the_transport_is_plain_httpx() -> None:
    """Outside time_limit, LimitedTransport fetches like httpx's own transport."""
    with origin_site() as site, httpx.Client(transport=LimitedTransport()) as client:
        response = client.get(f"http://127.0.0.1:{site.server_address[1]}/text")
    assert response.status_code == 200 and response.text == "plain words ünïcode\n"


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("intranet.corp.test", "corp.test", True),
        ("intranet.corp.test", ".corp.test", True),
        ("corp.test", ".corp.test", True),
        ("evilcorp.test", "corp.test", False),
        ("a.test", "*", True),
        ("a.test", "", False),
        ("a.test", "b.test, a.test:8080", True),
        ("::1", "[::1]", True),
        ("intranet.corp.test", "*.corp.test", True),  # Go's and Java's spelling
        ("evilcorp.test", "*.corp.test", False),
        ("10.1.2.3", "10.0.0.0/8", True),  # a network, as curl and Go read one
        ("11.1.2.3", "10.0.0.0/8", False),
        ("fd00::5", "fd00::/8", True),
        ("[fd00::5]", "fd00::/8", True),
        ("ten.corp.test", "10.0.0.0/8", False),
        ("10.1.2.3", "10.0.0.0/99", False),  # no network: names nothing
    ],
)
def test_no_proxy(host: str, no_proxy: str, bypass: bool) -> None:
    """NO_PROXY names hosts and their subdomains, never a name that merely ends the same."""
    assert bypasses_proxy(host, no_proxy) is bypass


def test_proxies_from_the_environment() -> None:
    """HTTP(S)_PROXY and ALL_PROXY, either case, choose the proxy; NO_PROXY exempts."""
    transport = LimitedTransport.from_environment(
        {
            "https_proxy": "proxy.test:3128",
            "ALL_PROXY": "http://all.test:1",
            "NO_PROXY": "corp.test",
        }
    )
    assert transport.proxy_for(httpx.URL("https://a.test/")) == "http://proxy.test:3128"
    assert transport.proxy_for(httpx.URL("http://a.test/")) == "http://all.test:1"
    assert transport.proxy_for(httpx.URL("http://x.corp.test/")) is None
    assert LimitedTransport.from_environment({}).proxy_for(httpx.URL("http://a.test/")) is None


def test_huge_answer_bounded_for_async_callers() -> None:
    """acheck reads at most MAX_ANSWER_BYTES of an answer too, with the caller's async client."""
    import asyncio

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            with pytest.raises(RefusedError, match=f"more than {MAX_ANSWER_BYTES} bytes"):
                await PreflightClient(url).acheck("site.test", now=0.0, client=client)

    with hostile_server("huge-chunked") as service:
        asyncio.run(scenario(service.url))
    assert service.sent[0] < 64 * MAX_ANSWER_BYTES


def test_slow_tls_handshake_bounded_by_the_fetch_limit() -> None:
    """A server that sends its TLS handshake a byte at a time is cut off at the time limit."""
    with hostile_server("trickle-tls") as slow:
        start = time.monotonic()
        with pytest.raises(AirlockError, match="time limit"):
            fetcher(None).fetch(f"https://site.test:{slow.port}/")
        assert time.monotonic() - start < LIMIT + SLACK
