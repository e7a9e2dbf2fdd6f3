"""The guarded fetch against a real origin site and the real domain-safety service, on loopback.

Hostnames resolve to 127.0.0.1 through a table (``table_resolver``): no test asks DNS. The
site is on loopback, so the rules hold an allow rule for 127.0.0.1, as a user fetching from
their own machine would need.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

import httpx
import pytest

from airlock.collector import BlockList, create_app, domain_safety_routes
from airlock.destinations import table_resolver
from airlock.errors import AirlockError, RefusedError, UsageError
from airlock.policy.model import Origin, Permissions, Rule, Source
from airlock.webfetch import FetchLimits, GuardedFetcher, LimitedTransport, PreflightClient
from tests.servers import Recorder, _Site, origin_site, served

PROJECT = Origin(Source.PROJECT, "/p/.claude/settings.json")
LOOPBACK_ALLOWED = ("WebFetch(domain:127.0.0.1)",)
HOSTS = ("site.test", "other.test", "denied.test", "blocked.test", "asked.test")


@dataclass
class World:
    site: _Site
    port: int
    service: str
    recorder: Recorder
    client: httpx.Client

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def asked(self) -> list[str]:
        return [parse_qs(q)["domain"][0] for q in self.recorder.queries("/api/web/domain_info")]

    def fetcher(
        self,
        *,
        deny: tuple[str, ...] = ("WebFetch(domain:denied.test)",),
        ask: tuple[str, ...] = ("WebFetch(domain:asked.test)",),
        preflight: bool = True,
        limits: FetchLimits | None = None,
        confirm: bool | None = None,
        clock: object = None,
        ask_unmatched: bool = False,
        allow: tuple[str, ...] = LOOPBACK_ALLOWED,
    ) -> GuardedFetcher:
        ticks = itertools.count()
        return GuardedFetcher(
            permissions=Permissions(
                deny=tuple(Rule(text, PROJECT) for text in deny),
                ask=tuple(Rule(text, PROJECT) for text in ask),
                allow=tuple(Rule(text, PROJECT) for text in allow),
            ),
            preflight=PreflightClient(self.service, client=self.client) if preflight else None,
            client=self.client,
            clock=clock or (lambda: float(next(ticks)) * 0.001),  # type: ignore[arg-type]
            limits=limits,
            confirm=None if confirm is None else (lambda verdict: confirm),
            ask_unmatched=ask_unmatched,
            resolver=table_resolver({host: ["127.0.0.1"] for host in HOSTS}),
        )


@pytest.fixture
def world() -> Iterator[World]:
    table = BlockList(["blocked.test"])
    with (
        served(create_app(domain_safety_routes(lambda: table))) as (service, recorder),
        origin_site() as site,
    ):
        port = site.server_address[1]
        with httpx.Client(transport=LimitedTransport(), trust_env=False) as client:
            yield World(site, port, service, recorder, client)


def test_html_page_as_markdown(world: World) -> None:
    """An HTML page comes back as Markdown, scripts and styles dropped, after one preflight of its host."""
    result = world.fetcher().fetch(world.url("site.test", "/page?q=private"))
    assert result.status == 200 and result.markdown and not result.truncated
    assert "# Hello airlock" in result.content
    assert "**bold**" in result.content
    assert "[link](https://example.test/x)" in result.content
    assert "secret" not in result.content and "color" not in result.content
    assert world.asked() == ["site.test"]
    assert world.site.hosts == [f"site.test:{world.port}"]
    assert any("answered by the domain-safety service" in check for check in result.checks)


def test_plain_text_as_is(world: World) -> None:
    """Plain text is returned as it is, decoded by its charset."""
    result = world.fetcher().fetch(world.url("site.test", "/text"))
    assert result.content == "plain words ünïcode\n" and not result.markdown


def test_binary_refused(world: World) -> None:
    """Binary content is not shown."""
    with pytest.raises(AirlockError, match="application/octet-stream"):
        world.fetcher().fetch(world.url("site.test", "/binary"))


@pytest.mark.parametrize(
    ("size", "truncated"), [(999, False), (1000, False), (1001, True), (50_000, True)]
)
def test_size_limit(world: World, size: int, truncated: bool) -> None:
    """The body is cut at max_bytes, and only then is the result marked truncated."""
    result = world.fetcher(limits=FetchLimits(max_bytes=1000)).fetch(
        world.url("site.test", f"/big?size={size}")
    )
    assert len(result.content) == min(size, 1000)
    assert result.truncated is truncated


def test_time_limit(world: World) -> None:
    """A body that trickles in past the time limit is abandoned."""
    import time

    start = time.monotonic()
    with pytest.raises(AirlockError, match=r"time limit|Timeout"):
        world.fetcher(limits=FetchLimits(timeout=0.5), clock=time.monotonic).fetch(
            world.url("site.test", "/slow")
        )
    assert time.monotonic() - start < 4


def test_denied_host_refused_before_any_traffic(world: World) -> None:
    """A deny rule refuses, naming the rule and its file; neither the service nor the host is contacted."""
    with pytest.raises(RefusedError) as caught:
        world.fetcher().fetch(world.url("DENIED.test", "/page"))
    assert "WebFetch(domain:denied.test)" in str(caught.value)
    assert PROJECT.path is not None and PROJECT.path in str(caught.value)
    assert world.asked() == [] and world.site.hosts == []


def test_blocked_host_refused(world: World) -> None:
    """A host the service blocks is refused with the service's answer, and never contacted."""
    with pytest.raises(RefusedError, match=r"blocked\.test is blocked"):
        world.fetcher().fetch(world.url("blocked.test", "/page"))
    assert world.site.hosts == []


def test_ask_rule_needs_confirmation(world: World) -> None:
    """An ask rule refuses without confirmation and fetches with it."""
    with pytest.raises(RefusedError, match="not confirmed"):
        world.fetcher().fetch(world.url("asked.test", "/text"))
    with pytest.raises(RefusedError, match="not confirmed"):
        world.fetcher(confirm=False).fetch(world.url("asked.test", "/text"))
    assert world.fetcher(confirm=True).fetch(world.url("asked.test", "/text")).status == 200


@pytest.mark.parametrize(
    ("target", "refusal"),
    [("denied.test", "WebFetch(domain:denied.test)"), ("blocked.test", "blocked.test is blocked")],
    ids=["denied", "blocked"],
)
def test_redirect_to_refused_host_not_followed(world: World, target: str, refusal: str) -> None:
    """A redirect to a denied or blocked host is refused before it is followed."""
    to = quote(world.url(target, "/page"), safe="")
    with pytest.raises(RefusedError) as caught:
        world.fetcher().fetch(world.url("site.test", f"/redirect?to={to}"))
    assert refusal in str(caught.value)
    assert "redirect from site.test to" in str(caught.value)
    assert world.site.hosts == [f"site.test:{world.port}"]


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_to_other_host_checked_again(world: World, code: int) -> None:
    """A redirect to another host goes through the preflight again, then is followed."""
    to = quote(world.url("other.test", "/text"), safe="")
    result = world.fetcher().fetch(world.url("site.test", f"/redirect?code={code}&to={to}"))
    assert result.content == "plain words ünïcode\n"
    assert result.redirects == (world.url("other.test", "/text"),)
    assert world.asked() == ["site.test", "other.test"]
    assert world.site.hosts == [f"site.test:{world.port}", f"other.test:{world.port}"]


def test_redirect_same_host_not_asked_again(world: World) -> None:
    """A redirect within the same host needs no new check."""
    result = world.fetcher().fetch(world.url("site.test", "/redirect?to=/text"))
    assert result.status == 200 and world.asked() == ["site.test"]


def test_redirect_loop_bounded(world: World) -> None:
    """Redirects stop at max_redirects."""
    with pytest.raises(AirlockError, match="more than 3 redirects"):
        world.fetcher(limits=FetchLimits(max_redirects=3)).fetch(world.url("site.test", "/loop"))
    assert len(world.site.hosts) == 4


def test_redirect_to_other_scheme_refused(world: World) -> None:
    """A redirect to a non-http URL is refused."""
    to = quote("file:///etc/passwd", safe="")
    with pytest.raises(RefusedError, match="only http and https"):
        world.fetcher().fetch(world.url("site.test", f"/redirect?to={to}"))


def test_preflight_skipped_when_off(world: World) -> None:
    """With the preflight off, the service is never asked, and rules still apply."""
    assert world.fetcher(preflight=False).fetch(world.url("blocked.test", "/text")).status == 200
    assert world.recorder.seen == []
    with pytest.raises(RefusedError):
        world.fetcher(preflight=False).fetch(world.url("denied.test", "/text"))


def test_failing_service_fails_closed(world: World) -> None:
    """When the service fails, the page is not fetched."""
    world.recorder.fail_with = 503
    with pytest.raises(RefusedError, match="failing closed"):
        world.fetcher().fetch(world.url("site.test", "/page"))
    assert world.site.hosts == []


@pytest.mark.parametrize(
    "url", ["ftp://site.test/x", "site.test/page", "http:///nohost", "http://[::1"]
)
def test_bad_urls(world: World, url: str) -> None:
    """Only http(s) URLs with a host are fetched."""
    with pytest.raises(UsageError):
        world.fetcher().fetch(url)


def test_unmatched_host_asked_when_the_agent_says_so(world: World) -> None:
    """With ask_unmatched, a host no rule matches needs confirmation; a denied one is still refused."""
    with pytest.raises(RefusedError, match=r"no WebFetch rule matches site\.test"):
        world.fetcher(ask_unmatched=True).fetch(world.url("site.test", "/text"))
    assert (
        world.fetcher(ask_unmatched=True, confirm=True)
        .fetch(world.url("site.test", "/text"))
        .status
        == 200
    )
    with pytest.raises(RefusedError, match=r"permissions\.deny"):
        world.fetcher(ask_unmatched=True, confirm=True).fetch(world.url("denied.test", "/text"))
