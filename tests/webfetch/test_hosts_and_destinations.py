"""One name, one meaning; an address however written; private destinations: through the whole
fetch, against a real site and the real domain-safety service on loopback.

Names resolve through a table (no test asks DNS); the site listens on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.collector import BlockList, create_app, domain_safety_routes
from airlock.destinations import IPAddress, table_resolver
from airlock.egress.ca import RunCA
from airlock.errors import AirlockError, DestinationRefused, RefusedError, UsageError
from airlock.policy.hosts import parse_host
from airlock.policy.model import Origin, Permissions, Rule, Source
from airlock.webfetch import GuardedFetcher, LimitedTransport, PreflightClient, canonical_url
from tests.servers import Recorder, _Site, origin_site, served

PROJECT = Origin(Source.PROJECT, "/p/.claude/settings.json")
NAMES = ("site.test", "xn--strae-oqa.test", "strasse.test", "fass.test", "xn--fa-hia.test")
"""Every name the table resolves, each to 127.0.0.1."""
LOOPBACK = "WebFetch(domain:127.0.0.1)"


@dataclass
class World:
    site: _Site
    port: int
    service: str
    recorder: Recorder
    client: httpx.Client
    blocklist: BlockList

    def url(self, host: str, path: str = "/text") -> str:
        return f"http://{host}:{self.port}{path}"

    def asked(self) -> list[str]:
        return [parse_qs(q)["domain"][0] for q in self.recorder.queries("/api/web/domain_info")]

    def fetcher(
        self,
        *,
        allow: Sequence[str] = (LOOPBACK,),
        deny: Sequence[str] = (),
        resolver: object = None,
        private_mode: bool = False,
    ) -> GuardedFetcher:
        ticks = itertools.count()
        return GuardedFetcher(
            permissions=Permissions(
                allow=tuple(Rule(text, PROJECT) for text in allow),
                deny=tuple(Rule(text, PROJECT) for text in deny),
            ),
            preflight=PreflightClient(self.service, client=self.client, private_mode=private_mode),
            client=self.client,
            clock=lambda: float(next(ticks)) * 0.001,
            resolver=resolver or table_resolver({name: ["127.0.0.1"] for name in NAMES}),  # type: ignore[arg-type]
        )


@pytest.fixture
def world() -> Iterator[World]:
    table = BlockList(["xn--fa-hia.test", "169.254.169.254", "10.0.0.1"])
    with (
        served(create_app(domain_safety_routes(lambda: table))) as (service, recorder),
        origin_site() as site,
        httpx.Client(transport=LimitedTransport(), trust_env=False) as client,
    ):
        yield World(site, site.server_address[1], service, recorder, client, table)


# --- One name, one meaning -------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["straße.test", "STRAẞE.test", "xn--strae-oqa.test", "XN--STRAE-OQA.TEST.", "ｓｔｒａßｅ.test"],
)
@pytest.mark.parametrize(
    "rule", ["WebFetch(domain:xn--strae-oqa.test)", "WebFetch(domain:straße.test)"]
)
def test_deny_rule_holds_for_every_spelling_of_an_idn(world: World, host: str, rule: str) -> None:
    """A deny rule, in either form, refuses every spelling of the name; nothing is sent anywhere."""
    with pytest.raises(RefusedError, match=r"permissions\.deny") as caught:
        world.fetcher(deny=(rule,)).fetch(world.url(host))
    assert "xn--strae-oqa.test" in str(caught.value)
    assert world.asked() == [] and world.site.hosts == []


def test_eszett_is_not_ss(world: World) -> None:
    """straße.test is not strasse.test: a deny for one leaves the other, and vice versa."""
    assert world.fetcher(deny=("WebFetch(domain:strasse.test)",)).fetch(world.url("straße.test"))
    with pytest.raises(RefusedError):
        world.fetcher(deny=("WebFetch(domain:straße.test)",)).fetch(world.url("xn--strae-oqa.test"))
    assert world.fetcher(deny=("WebFetch(domain:straße.test)",)).fetch(world.url("strasse.test"))


def test_allow_for_fass_does_not_cover_fass_with_eszett(world: World) -> None:
    """An allow for fass.test lets fass.test reach loopback, never faß.test."""
    fetcher = world.fetcher(allow=("WebFetch(domain:fass.test)",))
    assert fetcher.fetch(world.url("fass.test")).status == 200
    with pytest.raises(DestinationRefused, match=r"xn--fa-hia\.test"):
        fetcher.fetch(world.url("faß.test"))


def test_preflight_and_connection_use_the_a_label(world: World) -> None:
    """The preflight is asked, and the site is sent, the one A-label form of the name."""
    result = world.fetcher().fetch(world.url("ＳＴＲＡßＥ.test"))
    assert result.final_url == world.url("xn--strae-oqa.test")
    assert world.asked() == ["xn--strae-oqa.test"]
    assert world.site.hosts == [f"xn--strae-oqa.test:{world.port}"]


@pytest.mark.parametrize("private_mode", [False, True], ids=["hostname", "private-mode"])
def test_blocklist_matches_the_same_a_label(world: World, private_mode: bool) -> None:
    """The service's entry xn--fa-hia.test blocks faß.test in both preflight modes."""
    with pytest.raises(RefusedError, match=r"xn--fa-hia\.test is blocked"):
        world.fetcher(private_mode=private_mode).fetch(world.url("faß.test"))
    assert world.site.hosts == []


@pytest.mark.parametrize(
    "url", ["http://a..test/", "http://-a.test/", "http://a b.test/", "http://1.2.3.4.5/"]
)
def test_invalid_names_are_usage_errors(world: World, url: str) -> None:
    """A host that is no valid name or address is a clear usage error, before any traffic."""
    with pytest.raises(UsageError, match=r"not valid|ends in a number"):
        world.fetcher().fetch(url)
    assert world.asked() == []


# --- An address is an address however written ---------------------------------------------

LOOPBACK_URL_HOSTS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",
    "127.1",
    "127.0.0.1.",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "１２７.０.０.１",
]


@pytest.mark.parametrize("host", LOOPBACK_URL_HOSTS)
def test_deny_rule_for_an_address_holds_for_every_spelling(world: World, host: str) -> None:
    """A deny for 127.0.0.1 refuses every spelling of it (the allow for it notwithstanding)."""
    with pytest.raises(RefusedError, match=r"WebFetch\(domain:127\.0\.0\.1\) in permissions\.deny"):
        world.fetcher(deny=(LOOPBACK,)).fetch(f"http://{host}:{world.port}/text")
    assert world.site.hosts == []


@pytest.mark.parametrize("host", LOOPBACK_URL_HOSTS)
def test_every_spelling_connects_where_the_check_looked(world: World, host: str) -> None:
    """Allowed, each spelling is fetched from 127.0.0.1, and the request names the canonical address."""
    result = world.fetcher().fetch(f"http://{host}:{world.port}/text")
    assert result.status == 200
    assert world.site.hosts == [f"127.0.0.1:{world.port}"]


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "[::ffff:a9fe:a9fe]"],
)
def test_metadata_unreachable_however_written(world: World, host: str) -> None:
    """The cloud metadata address is refused in every spelling, before the preflight is asked."""
    with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254.*cloud metadata"):
        world.fetcher().fetch(f"http://{host}/latest/meta-data/")
    assert world.asked() == []


@pytest.mark.parametrize("private_mode", [False, True], ids=["hostname", "private-mode"])
@pytest.mark.parametrize("host", ["10.0.0.1", "167772161", "0xa.1", "[::ffff:a00:1]", "[::a00:1]"])
def test_blocklist_entry_for_an_address_holds_for_every_spelling(
    world: World, host: str, private_mode: bool
) -> None:
    """The service's entry 10.0.0.1 blocks its every spelling, in both modes (an allow rule lets
    it past the destination check)."""
    allow = ("WebFetch(domain:10.0.0.1)", "WebFetch(domain:[::a00:1])")
    with pytest.raises(RefusedError, match=r"is blocked"):
        world.fetcher(allow=allow, private_mode=private_mode).fetch(f"http://{host}/")


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("http://ＥＸＡＭＰＬＥ.com/a?b#c", "http://example.com/a?b"),
        ("HTTP://Example.COM.:8080", "http://example.com:8080/"),
        ("http://user@0x7f.1:81/x", "http://user@127.0.0.1:81/x"),
        ("https://[::FFFF:127.0.0.1]/", "https://127.0.0.1/"),
        ("https://[2001:DB8::1]:8443/p", "https://[2001:db8::1]:8443/p"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ],
)
def test_canonical_url(text: str, url: str) -> None:
    """The URL is rebuilt around its canonical host; httpx then sees and sends exactly that."""
    assert str(canonical_url(text)) == url


@pytest.mark.parametrize(
    "text", ["http://a.test:99999/", "http://a.test:x/", "ftp://a.test/", "http://[::1/"]
)
def test_canonical_url_refuses(text: str) -> None:
    """A bad port, scheme or bracket is a usage error."""
    with pytest.raises(UsageError):
        canonical_url(text)


# --- Private destinations ------------------------------------------------------------------


def test_name_resolving_to_loopback_refused_without_a_rule(world: World) -> None:
    """A name that resolves to loopback is refused: nothing is sent to the site or to the service."""
    with pytest.raises(DestinationRefused) as caught:
        world.fetcher(allow=()).fetch(world.url("site.test"))
    message = str(caught.value)
    assert "site.test" in message and "127.0.0.1" in message and "loopback" in message
    assert "WebFetch(domain:site.test)" in message and "WebFetch(domain:127.0.0.1)" in message
    assert world.site.hosts == [] and world.asked() == []


@pytest.mark.parametrize(
    "allow",
    ["WebFetch(domain:site.test)", "WebFetch(domain:*.test)", LOOPBACK],
    ids=["name", "wildcard", "address"],
)
def test_explicit_allow_for_the_name_or_address_permits(world: World, allow: str) -> None:
    """An allow rule naming the host (or a domain over it) or the address lets the fetch through, and says so."""
    result = world.fetcher(allow=(allow,)).fetch(world.url("site.test"))
    assert result.status == 200
    assert any("allowed by a rule" in check for check in result.checks)


@pytest.mark.parametrize("allow", ["WebFetch", "WebFetch(domain:*)", "WebFetch(*)"])
def test_allow_every_host_is_no_permission_for_private(world: World, allow: str) -> None:
    """A rule that allows every host does not open loopback, the network or metadata."""
    with pytest.raises(DestinationRefused):
        world.fetcher(allow=(allow,)).fetch(world.url("site.test"))


def test_deny_rule_for_a_resolved_address(world: World) -> None:
    """A name allowed by a rule is still refused when it resolves to an address a deny rule names."""
    with pytest.raises(RefusedError, match=r"resolves to 127\.0\.0\.1"):
        world.fetcher(allow=("WebFetch(domain:site.test)",), deny=(LOOPBACK,)).fetch(
            world.url("site.test")
        )
    assert world.site.hosts == []


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/", "http://2130706433:1/", "http://private.test/"]
)
def test_redirect_to_a_private_destination_not_followed(world: World, target: str) -> None:
    """A public page's redirect to a private destination is refused before it is followed."""
    resolver = table_resolver({"site.test": ["127.0.0.1"], "private.test": ["10.1.2.3"]})
    fetcher = world.fetcher(allow=("WebFetch(domain:site.test)",), resolver=resolver)
    with pytest.raises(DestinationRefused, match=r"redirect from site\.test") as caught:
        fetcher.fetch(world.url("site.test", f"/redirect?to={quote(target, safe='')}"))
    assert caught.value.address_class in ("cloud metadata", "loopback", "private")
    assert world.site.hosts == [f"site.test:{world.port}"]


def test_resolved_once_connected_to_the_address_checked(world: World) -> None:
    """DNS is asked once a host; a second, different answer (rebinding) is never used."""
    answers = iter([["127.0.0.1"], ["169.254.169.254"], ["169.254.169.254"]])
    asked: list[str] = []

    def rebinding(name: str, port: int) -> Sequence[IPAddress]:
        asked.append(name)
        return table_resolver({name: next(answers)})(name, port)

    result = world.fetcher(resolver=rebinding).fetch(world.url("site.test", "/redirect?to=/text"))
    assert result.status == 200 and asked == ["site.test"]
    assert world.site.hosts == [f"site.test:{world.port}"] * 2


def test_next_address_tried_when_one_does_not_connect(world: World) -> None:
    """A name with two checked addresses is fetched from the second when the first refuses connections."""
    resolver = table_resolver({"site.test": ["127.0.0.2", "127.0.0.1"]})
    fetcher = world.fetcher(allow=("WebFetch(domain:site.test)",), resolver=resolver)
    # 127.0.0.2 answers nothing on the site's port (the site listens on 127.0.0.1 only).
    assert fetcher.fetch(world.url("site.test")).status == 200


def test_unresolvable_name(world: World) -> None:
    """A name with no address fails, saying nothing was sent."""
    with pytest.raises(AirlockError, match=r"could not resolve nowhere\.test"):
        world.fetcher().fetch(world.url("nowhere.test"))
    assert world.asked() == []


# --- HTTPS: the address is connected to, the name is what TLS checks -------------------------


def _tls_site(context: ssl.SSLContext, seen: list[str | None]) -> tuple[int, threading.Thread]:
    """An HTTPS server on 127.0.0.1 for one connection; records the TLS server name and Host."""
    listener = socket.create_server(("127.0.0.1", 0))
    context.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment]

    def run() -> None:
        with listener:
            listener.settimeout(10)
            raw, _ = listener.accept()
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    head = tls.recv(65536).decode("latin-1")
                    host = [line for line in head.split("\r\n") if line.lower().startswith("host:")]
                    seen.append(host[0].split(":", 1)[1].strip() if host else None)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                        b"Connection: close\r\n\r\nhello"
                    )
            except (ssl.SSLError, OSError):
                seen.append("tls failed")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize(("certified", "fetched"), [("site.test", True), ("other.test", False)])
def test_https_checks_the_name_at_the_address(certified: str, fetched: bool) -> None:
    """Over HTTPS the checked address is dialled, and SNI and the certificate check use the name."""
    ca = RunCA(now=dt.datetime.now(dt.UTC))
    seen: list[str | None] = []
    port, thread = _tls_site(ca.server_context(certified), seen)
    trust = ssl.create_default_context(cadata=ca.certificate_pem.decode("ascii"))
    with httpx.Client(transport=LimitedTransport(verify=trust), trust_env=False) as client:
        fetcher = GuardedFetcher(
            permissions=Permissions(allow=(Rule("WebFetch(domain:site.test)", PROJECT),)),
            preflight=None,
            client=client,
            clock=time.monotonic,
            resolver=table_resolver({"site.test": ["127.0.0.1"]}),
        )
        if fetched:
            assert fetcher.fetch(f"https://site.test:{port}/").content == "hello"
        else:
            with pytest.raises(AirlockError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
                fetcher.fetch(f"https://site.test:{port}/")
    thread.join(10)
    assert seen[0] == "site.test"
    assert seen[1:] == ([f"site.test:{port}"] if fetched else ["tls failed"])


@given(
    st.sampled_from(["http", "HTTPS"]),
    st.sampled_from(
        [
            "straße.test",
            "ＥＸＡＭＰＬＥ.com",
            "0x7f.1",
            "[::ffff:10.0.0.1]",
            "[2001:DB8::1]",
            "Site.Test.",
        ]
    ),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.from_regex(r"(/[a-z0-9%._~-]{0,8}){0,3}(\?[a-z0-9=&]{0,8})?", fullmatch=True),
)
def test_canonical_url_is_idempotent(scheme: str, host: str, port: int | None, rest: str) -> None:
    """Making a canonical URL of a canonical URL changes nothing, and its host is canonical."""
    text = f"{scheme}://{host}" + (f":{port}" if port else "") + rest
    once = canonical_url(text)
    assert canonical_url(str(once)) == once
    assert once.raw_host.decode("ascii") == parse_host(host).text
