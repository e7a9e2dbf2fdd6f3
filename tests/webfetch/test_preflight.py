"""The preflight client against the real domain-safety service on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from airlock.collector import BlockList, create_app, domain_safety_routes
from airlock.errors import RefusedError
from airlock.webfetch import CACHE_SECONDS, AllowedCache, PreflightClient, hashing
from tests.servers import Recorder, served

BLOCKED = ["evil.test", "malware.example.org", "10.9.8.7"]


@pytest.fixture
def service() -> Iterator[tuple[str, Recorder]]:
    table = BlockList(BLOCKED)
    with served(create_app(domain_safety_routes(lambda: table))) as running:
        yield running


def infos(recorder: Recorder) -> list[dict[str, list[str]]]:
    return [parse_qs(query) for query in recorder.queries("/api/web/domain_info")]


def test_hostname_alone_is_sent(service: tuple[str, Recorder]) -> None:
    """The service receives the domain parameter with the hostname and nothing else."""
    url, recorder = service
    client = PreflightClient(url)
    answer = client.check("Docs.Example.COM.", now=0.0)
    assert answer.can_fetch and not answer.cached
    assert infos(recorder) == [{"domain": ["docs.example.com"]}]
    client.close()


@pytest.mark.parametrize(
    ("host", "can_fetch"),
    [
        ("evil.test", False),
        ("deep.sub.evil.test", False),
        ("notevil.test", True),
        ("example.org", True),
        ("malware.example.org", False),
        ("10.9.8.7", False),
        ("9.8.7", True),
    ],
    ids=[
        "listed",
        "subdomain_of_listed",
        "label_boundary",
        "parent_of_listed",
        "listed_sub",
        "ip",
        "ip_suffix_is_not_parent",
    ],
)
@pytest.mark.parametrize("private_mode", [False, True], ids=["hostname", "private"])
def test_answers(
    service: tuple[str, Recorder], host: str, can_fetch: bool, private_mode: bool
) -> None:
    """Both modes give the same answer: a listed domain blocks itself and its subdomains."""
    url, _ = service
    client = PreflightClient(url, private_mode=private_mode)
    assert client.check(host, now=0.0).can_fetch is can_fetch
    client.close()


def test_allowed_answer_cached_five_minutes(service: tuple[str, Recorder]) -> None:
    """A second check within 5 minutes is answered from the cache; after 5 minutes the service is asked again."""
    url, recorder = service
    client = PreflightClient(url)
    assert not client.check("ok.test", now=1000.0).cached
    assert client.check("OK.test", now=1000.0 + CACHE_SECONDS - 0.001).cached
    assert len(infos(recorder)) == 1
    assert not client.check("ok.test", now=1000.0 + CACHE_SECONDS).cached
    assert len(infos(recorder)) == 2
    client.close()


def test_blocks_are_not_cached(service: tuple[str, Recorder]) -> None:
    """A blocked host is asked about again on every check."""
    url, recorder = service
    client = PreflightClient(url)
    for _ in range(3):
        assert not client.check("evil.test", now=5.0).can_fetch
    assert len(infos(recorder)) == 3
    assert len(client.cache) == 0
    client.close()


@pytest.mark.parametrize("status", [503, 500, 404])
def test_failures_are_not_cached_and_fail_closed(
    service: tuple[str, Recorder], status: int
) -> None:
    """A failing service refuses every check and caches nothing; when it recovers, it is asked again."""
    url, recorder = service
    client = PreflightClient(url)
    recorder.fail_with = status
    for _ in range(2):
        with pytest.raises(RefusedError, match=f"HTTP {status}"):
            client.check("ok.test", now=0.0)
    recorder.fail_with = None
    assert client.check("ok.test", now=0.0).can_fetch
    assert len(infos(recorder)) == 3
    client.close()


def test_unreachable_message_names_host_service_and_ways_out(tmp_path: Path) -> None:
    """An unreachable service fails closed with a message naming the host, the service and both ways out."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = f"http://127.0.0.1:{port}"
    client = PreflightClient(service, timeout=2.0)
    with pytest.raises(RefusedError) as caught:
        client.check("docs.example.com", now=0.0)
    message = str(caught.value)
    assert "docs.example.com" in message
    assert service in message
    assert "skipWebFetchPreflight" in message
    assert "allow it in your proxy or firewall" in message
    assert caught.value.exit_code == 3
    client.close()


def test_private_mode_never_sends_the_hostname(service: tuple[str, Recorder]) -> None:
    """In private mode only short hex prefixes leave, never a hostname or a full hash."""
    url, recorder = service
    client = PreflightClient(url, private_mode=True)
    hosts = ["secret-project.internal.example.org", "evil.test", "a.b.malware.example.org"]
    for host in hosts:
        client.check(host, now=0.0)
    assert recorder.queries("/api/web/domain_info") == []
    sent = recorder.queries("/api/web/domain_hashes")
    assert len(sent) == len(hosts)
    for query in sent:
        for host in hosts:
            for domain in hashing.domains_of(host):
                assert domain not in query
        assert set(parse_qs(query)) == {"prefix"}
        for prefix in parse_qs(query)["prefix"]:
            assert len(prefix) == hashing.PREFIX_HEX
            assert all(c in "0123456789abcdef" for c in prefix)
    client.close()


def test_private_mode_skips_top_level_domains(service: tuple[str, Recorder]) -> None:
    """The prefix of a top-level domain alone is never sent: it would name the TLD."""
    url, recorder = service
    client = PreflightClient(url, private_mode=True)
    client.check("www.example.org", now=0.0)
    sent = parse_qs(recorder.queries("/api/web/domain_hashes")[0])["prefix"]
    assert sorted(sent) == sorted(
        {hashing.prefix_of("www.example.org"), hashing.prefix_of("example.org")}
    )
    client.close()


def test_threads_share_one_client(service: tuple[str, Recorder]) -> None:
    """Threads checking the same hosts get consistent answers and the cache ends with the allowed hosts only."""
    url, _ = service
    client = PreflightClient(url)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(20):
                assert client.check(f"h{i % 5}.test", now=0.0).can_fetch
                assert not client.check("evil.test", now=0.0).can_fetch
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(client.cache) == 5
    client.close()


def test_tasks_share_one_client(service: tuple[str, Recorder]) -> None:
    """Concurrent asyncio tasks use the same cache; after the first round every allowed host is cached."""
    url, recorder = service
    client = PreflightClient(url)

    async def main() -> list[bool]:
        async with httpx.AsyncClient() as http:
            first = await asyncio.gather(
                *(client.acheck(f"t{i}.test", now=0.0, client=http) for i in range(10))
            )
            again = await asyncio.gather(
                *(client.acheck(f"t{i}.test", now=1.0, client=http) for i in range(10))
            )
            blocked = await client.acheck("x.evil.test", now=1.0, client=http)
        assert not blocked.can_fetch
        return [a.can_fetch for a in first] + [a.cached for a in again]

    assert all(asyncio.run(main()))
    assert len(infos(recorder)) == 11


def test_cache_evicts_when_full() -> None:
    """The cache never holds more hosts than its bound; expired ones go first."""
    cache = AllowedCache(ttl=10.0, max_hosts=3)
    cache.remember("a", 0.0)
    cache.remember("b", 5.0)
    cache.remember("c", 5.0)
    cache.remember("d", 12.0)  # a has expired and makes room
    assert len(cache) == 3 and not cache.allowed("a", 12.0) and cache.allowed("d", 12.0)
    cache.remember("e", 12.0)
    assert len(cache) == 3 and cache.allowed("e", 12.0)


@pytest.mark.parametrize("status", [None, 503], ids=["answer", "failure"])
def test_concurrent_threads_share_one_request(
    service: tuple[str, Recorder], status: int | None
) -> None:
    """Threads asking about one uncached host at once make one request and all get its outcome."""
    url, recorder = service
    recorder.delay = 0.5
    recorder.fail_with = status
    client = PreflightClient(url)
    outcomes: list[object] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        try:
            outcomes.append(client.check("same.test", now=0.0).can_fetch)
        except RefusedError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(recorder.seen) == 1
    if status is None:
        assert outcomes == [True] * 6
    else:
        assert len(outcomes) == 6 and all(f"HTTP {status}" in str(o) for o in outcomes)
        recorder.fail_with = None
        recorder.delay = 0.0
        assert client.check("same.test", now=0.0).can_fetch  # the failure was not kept
        assert len(recorder.seen) == 2
    client.close()


def test_concurrent_tasks_share_one_request(service: tuple[str, Recorder]) -> None:
    """Tasks asking about one uncached host at once make one request; a blocked answer is not kept after it."""
    url, recorder = service
    recorder.delay = 0.3
    client = PreflightClient(url)

    async def main() -> list[bool]:
        async with httpx.AsyncClient() as http:
            answers = await asyncio.gather(
                *(client.acheck("x.evil.test", now=0.0, client=http) for _ in range(8))
            )
            assert len(recorder.seen) == 1
            await client.acheck("x.evil.test", now=0.0, client=http)
        return [answer.can_fetch for answer in answers]

    assert asyncio.run(main()) == [False] * 8
    assert len(recorder.seen) == 2
