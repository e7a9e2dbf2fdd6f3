"""The guarded fetch: rules, the destination, the preflight, then the request; every new host checked again.

Theory of operation
-------------------
A URL's host is read once, in its canonical form (:func:`airlock.policy.hosts.parse_host`: an
IDNA 2008 A-label, or an address however written), and the URL is rebuilt around it: the
rules, the preflight and the connection all see that one value. :meth:`GuardedFetcher.fetch`
then admits the URL in three steps before any byte goes to its host:

1. the permission rules (:func:`airlock.policy.rules.check_host`): a deny refuses, naming the
   rule and its file; an ask refuses unless the ``confirm`` callback says yes;
2. the destination (:func:`airlock.destinations.check_destination`): the name is resolved
   once, and an address that is not public (loopback, the local network, cloud metadata, this
   machine's own) refuses unless an allow rule names the host or the address (a rule for every
   host does not); an address a deny rule names refuses too. The request then goes to the
   address checked, the name kept in the ``Host`` header and the TLS server name. When a proxy
   carries the request, the proxy resolves names: only an address written in the URL is checked;
3. the preflight (:class:`~airlock.webfetch.preflight.PreflightClient`), unless the engine
   switched it off: a block refuses, a failure refuses (failing closed). It comes after the
   destination, so a private name is never sent to the service.

Redirects are followed by hand, never by the HTTP client: a redirect to another host is
admitted again, all three steps, before it is followed. The body is read as a stream and cut
at ``max_bytes``. The whole fetch, preflight and redirects included, must finish within
``timeout`` seconds: checked on the injected clock between steps, and enforced on every wait
for the network by :func:`~airlock.webfetch.transport.time_limit` (the default client's
transport, :class:`~airlock.webfetch.transport.LimitedTransport`, and the preflight's, cut
each wait at the deadline, so headers or a body sent a byte a second cannot stretch it). HTML
becomes Markdown (markdownify); other text is returned as it is; binary content is refused
rather than dumped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from airlock.destinations import Destination, Resolver, check_destination, system_resolver
from airlock.errors import AirlockError, DestinationRefused, RefusedError, UsageError
from airlock.policy.hosts import Host, HostError, IPAddress, parse_host
from airlock.policy.model import Permissions
from airlock.policy.rules import RuleSet, RuleVerdict, Verdict
from airlock.webfetch.preflight import PreflightAnswer, PreflightClient
from airlock.webfetch.transport import LimitedTransport, time_limit

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/javascript",
    "application/ld+json",
    "application/rss+xml",
    "application/atom+xml",
)
HTML_TYPES = ("text/html", "application/xhtml+xml")
USER_AGENT = "airlock-fetch"
DROPPED_ELEMENTS = ["head", "script", "style", "noscript", "template", "svg", "iframe"]
"""Elements whose content is never part of the page's text."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds of one fetch."""

    max_bytes: int = 5_000_000
    """Bytes of body read at most; the rest is cut off (``FetchResult.truncated``)."""
    timeout: float = 30.0
    """Seconds for the whole fetch, redirects included."""
    max_redirects: int = 10


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetched page and how it was admitted."""

    url: str
    final_url: str
    status: int
    content_type: str
    content: str
    """Markdown for HTML, the text itself for other text types."""
    markdown: bool
    truncated: bool
    redirects: tuple[str, ...] = ()
    """Every URL redirected to, in order."""
    checks: tuple[str, ...] = field(default=())
    """What admitted each host: the rule verdicts and the preflight answers, in words."""

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "content_type": self.content_type,
            "markdown": self.markdown,
            "truncated": self.truncated,
            "redirects": list(self.redirects),
            "checks": list(self.checks),
            "content": self.content,
        }


def to_markdown(html: str) -> str:
    """Turn an HTML page into Markdown; scripts and styles are dropped."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for element in soup(DROPPED_ELEMENTS):
        element.decompose()
    text: str = MarkdownConverter(heading_style="ATX").convert_soup(soup)
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"


@dataclass(frozen=True, slots=True)
class Admission:
    """Why a host was admitted: the rules' verdict, the destination checked (``None``: a
    proxy resolves it) and the preflight's answer (``None``: skipped)."""

    verdict: RuleVerdict
    preflight: PreflightAnswer | None
    destination: Destination | None = None

    def describe(self) -> tuple[str, ...]:
        """Each, in words."""
        said = [self.verdict.describe()]
        if self.destination is None:
            said.append(f"{self.verdict.host} is resolved by the proxy that carries the request")
        else:
            addresses = ", ".join(str(a) for a in self.destination.addresses)
            said.append(f"{self.verdict.host} resolves to {addresses}, checked before connecting")
            said.extend(self.destination.allowed_private)
        if self.preflight is None:
            said.append("preflight skipped: skipWebFetchPreflight is true")
        else:
            said.append(self.preflight.describe())
        return tuple(said)


class GuardedFetcher:
    """Fetches URLs the rules and the preflight admit.

    Args:
        permissions: the rules in force (``Loaded.context.permissions``).
        preflight: the preflight client, or ``None`` when the engine switched it off.
        client: the HTTP client for pages; by default one whose transport is
            :class:`~airlock.webfetch.transport.LimitedTransport` (proxies from the environment).
        clock: monotonic seconds, for the preflight cache and the time limit.
        limits: size, time and redirect bounds.
        confirm: asked when an ``ask`` rule matches; no callback means refuse.
        ask_unmatched: treat a host no rule matches as an ``ask`` (the agent's default);
            ``airlock fetch``, run by the user, leaves it off.
        resolver: name → addresses (``getaddrinfo`` by default; a table for ``--resolve``).
        proxy_for: the proxy a URL goes through (``None``: direct); by default the default
            client's transport's answer, else no proxy.
    """

    def __init__(
        self,
        *,
        permissions: Permissions,
        preflight: PreflightClient | None,
        client: httpx.Client | None = None,
        clock: Callable[[], float],
        limits: FetchLimits | None = None,
        confirm: Callable[[RuleVerdict], bool] | None = None,
        ask_unmatched: bool = False,
        resolver: Resolver = system_resolver,
        proxy_for: Callable[[httpx.URL], str | None] | None = None,
    ) -> None:
        self.permissions = permissions
        self.rules = RuleSet.of(permissions)
        self.preflight = preflight
        self._own_client = client is None
        if client is None:
            transport = LimitedTransport.from_environment(os.environ)
            client = httpx.Client(transport=transport, trust_env=False)
            proxy_for = proxy_for or transport.proxy_for
        self.client = client
        self.proxy_for = proxy_for or _direct
        self.resolver = resolver
        self.clock = clock
        self.limits = limits or FetchLimits()
        self.confirm = confirm
        self.asking = (Verdict.ASK, Verdict.UNMATCHED) if ask_unmatched else (Verdict.ASK,)

    def close(self) -> None:
        """Close the HTTP client this fetcher made (a client passed in is the caller's to close)."""
        if self._own_client:
            self.client.close()

    def admit(self, url: httpx.URL, start: float | None = None) -> Admission:
        """Check ``url``'s host by the rules, its destination, then the preflight.

        Args:
            url: a URL as :func:`canonical_url` makes it.
            start: when the fetch started (the injected clock), for the time limit.

        Raises:
            RefusedError: a rule or the preflight says no, the preflight failed, or the host
                is or resolves to an address no rule allows (``DestinationRefused``).
            AirlockError: the name does not resolve (in time).
        """
        parsed = _host_of(url)
        host = parsed.text
        verdict = self.rules.check(host)
        if verdict.verdict is Verdict.DENY:
            raise RefusedError(
                f"refused: {verdict.describe()}. To fetch it, remove that rule "
                "(a deny in any settings file beats every allow)."
            )
        if verdict.verdict in self.asking and not (self.confirm and self.confirm(verdict)):
            allow = (
                f"add WebFetch(domain:{host}) to permissions.allow"
                if verdict.rule is None
                else "move the rule to permissions.allow"
            )
            raise RefusedError(
                f"refused: {verdict.describe()} and the fetch was not confirmed. Run in a "
                f"terminal to confirm, pass --yes, or {allow}."
            )
        destination = self._destination(url, parsed, self.clock() if start is None else start)
        if self.preflight is None:
            return Admission(verdict, None, destination)
        answer = self.preflight.check(host, now=self.clock())
        if not answer.can_fetch:
            raise RefusedError(
                f"refused: {answer.describe()}. It is checked again on the next request. "
                f"If you trust {host}, the service's blocklist is the place to change it; "
                "skipWebFetchPreflight: true turns the check off."
            )
        return Admission(verdict, answer, destination)

    def _destination(self, url: httpx.URL, host: Host, start: float) -> Destination | None:
        """The addresses to connect to, checked; ``None`` when a proxy resolves the name."""
        if host.address is None and self.proxy_for(url) is not None:
            return None
        destination = check_destination(
            host,
            _port(url),
            allow_private=self._allows_private,
            resolver=self.resolver,
            timeout=self._remaining(start, url),
        )
        for address in destination.addresses:
            denied = self.rules.check(str(address))
            if denied.verdict is Verdict.DENY and host.address is None:
                raise RefusedError(
                    f"refused: {host.text} resolves to {address}, and {denied.describe()}. "
                    "To fetch it, remove that rule (a deny in any settings file beats every allow)."
                )
        return destination

    def _allows_private(self, host: Host, address: IPAddress) -> bool:
        """Whether an allow rule names the host or the address (and no deny rule the address)."""
        if self.rules.check(str(address)).verdict is Verdict.DENY:
            return False
        return any(
            self.rules.explicit_allow(text) is not None for text in (host.text, str(address))
        )

    def fetch(self, url: str) -> FetchResult:
        """Fetch ``url`` once admitted, following admitted redirects, within the limits.

        Raises:
            UsageError: the URL is not an http(s) URL with a valid host.
            RefusedError: a rule, the destination check or the preflight refused the URL or a
                redirect's host.
            AirlockError: the page could not be fetched (network, too many redirects, time).
        """
        start = self.clock()
        with time_limit(self.limits.timeout):
            return self._fetch(url, start)

    def _fetch(self, url: str, start: float) -> FetchResult:
        current = canonical_url(url)
        admission = self.admit(current, start)
        checks = list(admission.describe())
        redirects: list[str] = []
        while True:
            response = self._open(current, admission.destination, start)
            try:
                if response.status_code in REDIRECT_CODES and "location" in response.headers:
                    following = self._next_hop(current, response, redirects)
                    if following.raw_host != current.raw_host:
                        try:
                            admission = self.admit(following, start)
                        except RefusedError as error:
                            raise _not_followed(current, following, error) from error
                        checks += admission.describe()
                    redirects.append(str(following))
                    current = following
                    continue
                return self._result(url, current, response, start, tuple(redirects), checks)
            finally:
                response.close()

    def _next_hop(
        self, current: httpx.URL, response: httpx.Response, redirects: list[str]
    ) -> httpx.URL:
        if len(redirects) >= self.limits.max_redirects:
            raise _fetch_error(current, f"more than {self.limits.max_redirects} redirects")
        target = urljoin(str(current), response.headers["location"].strip())
        try:
            parts = urlsplit(target)
        except ValueError as error:
            raise _fetch_error(current, f"a redirect to an invalid URL ({error})") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise RefusedError(
                f"redirect from {_host_of(current).text} to {target!r} not followed: only http "
                "and https URLs with a host are fetched"
            )
        try:
            return canonical_url(target)
        except UsageError as error:
            raise _fetch_error(current, f"a redirect to an invalid URL ({error})") from error

    def _remaining(self, start: float, url: httpx.URL) -> float:
        left = self.limits.timeout - (self.clock() - start)
        if left <= 0:
            raise _fetch_error(url, f"the {self.limits.timeout:g} s time limit ran out")
        return left

    def _open(
        self, url: httpx.URL, destination: Destination | None, start: float
    ) -> httpx.Response:
        """Send the request for ``url`` to the destination's addresses in turn (the first that
        connects), or as it is when a proxy carries it."""
        headers = {"user-agent": USER_AGENT, "host": url.netloc.decode("ascii")}
        targets: list[tuple[httpx.URL, dict[str, Any]]] = [(url, {})]
        if destination is not None:
            sni = {"sni_hostname": destination.host.text} if url.scheme == "https" else {}
            targets = [(url.copy_with(host=str(a)), sni) for a in destination.addresses]
        for index, (target, extensions) in enumerate(targets):
            try:
                return self._send(url, target, headers, extensions, start)
            except _Unreachable as error:
                if index + 1 == len(targets):
                    raise AirlockError(str(error)) from error.__cause__
        raise AssertionError("a destination has at least one address")  # pragma: no cover

    def _send(
        self,
        url: httpx.URL,
        target: httpx.URL,
        headers: dict[str, str],
        extensions: dict[str, Any],
        start: float,
    ) -> httpx.Response:
        timeout = httpx.Timeout(self._remaining(start, url))
        request = self.client.build_request(
            "GET", target, headers=headers, timeout=timeout, extensions=extensions
        )
        try:
            return self.client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as error:  # a timeout is the fetch's time running out
            raise _Unreachable(f"could not fetch {url}: {type(error).__name__}: {error}") from error
        except httpx.HTTPError as error:
            raise _fetch_error(url, _why(error, self.limits)) from error

    def _result(
        self,
        original: str,
        url: httpx.URL,
        response: httpx.Response,
        start: float,
        redirects: tuple[str, ...],
        checks: list[str],
    ) -> FetchResult:
        content_type = response.headers.get("content-type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind and not kind.startswith(TEXT_TYPES):
            raise _fetch_error(url, f"content type {kind!r} is not text; not shown")
        body, truncated = self._read(url, response, start)
        text = body.decode(response.encoding or "utf-8", errors="replace")
        markdown = kind in HTML_TYPES or (not kind and "<html" in text[:1000].lower())
        return FetchResult(
            url=original,
            final_url=str(url),
            status=response.status_code,
            content_type=content_type,
            content=to_markdown(text) if markdown else text,
            markdown=markdown,
            truncated=truncated,
            redirects=redirects,
            checks=tuple(checks),
        )

    def _read(self, url: httpx.URL, response: httpx.Response, start: float) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                self._remaining(start, url)
                room = self.limits.max_bytes - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        except httpx.HTTPError as error:
            raise _fetch_error(url, _why(error, self.limits)) from error
        return b"".join(chunks), False


def _not_followed(current: httpx.URL, following: httpx.URL, error: RefusedError) -> RefusedError:
    """``error`` (of the same class, with the same details) for a redirect that is not followed."""
    message = f"redirect from {_host_of(current).text} to {_host_of(following).text} not followed: {error}"
    if isinstance(error, DestinationRefused):
        return DestinationRefused(
            message, host=error.host, address=error.address, address_class=error.address_class
        )
    return RefusedError(message)


class _Unreachable(Exception):
    """Connecting to one address failed; the next one may be tried (control flow of ``_open``)."""


def _direct(url: httpx.URL) -> str | None:
    return None


def _why(error: httpx.HTTPError, limits: FetchLimits) -> str:
    if isinstance(error, httpx.TimeoutException):  # every wait is given what is left, at most
        return f"the {limits.timeout:g} s time limit ran out ({type(error).__name__})"
    return f"{type(error).__name__}: {error}"


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _host_of(url: httpx.URL) -> Host:
    """The canonical host of a URL :func:`canonical_url` made."""
    return parse_host(url.raw_host.decode("ascii"))


def canonical_url(text: str) -> httpx.URL:
    """``text`` as an http(s) URL whose host is in its one canonical form (see :mod:`airlock.policy.hosts`).

    The URL is split by the standard library, its host read by
    :func:`~airlock.policy.hosts.parse_host`, and the URL rebuilt around the canonical text:
    what httpx then parses, sends and connects to is that text, whatever form the host had
    (``ＥＸＡＭＰＬＥ.com``, ``straße.de``, ``0x7f.1``). The fragment is dropped.

    Raises:
        UsageError: not an http(s) URL, or its host or port is not valid.
    """
    try:
        parts = urlsplit(text.strip())
    except ValueError as error:
        raise UsageError(f"URL {text!r} is not valid: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"URL {text!r}: expected an http:// or https:// URL with a host")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]") + 1
        host, rest = hostport[:end] or hostport, hostport[end:] if end else ""
    else:
        host, colon, port_text = hostport.partition(":")
        rest = colon + port_text
    if rest and not (rest.startswith(":") and (rest[1:].isdigit() or not rest[1:])):
        raise UsageError(f"URL {text!r}: the port {rest[1:]!r} is not a number")
    port = rest[1:]
    if port and not 0 < int(port) < 65536:
        raise UsageError(f"URL {text!r}: the port {port} is out of range (1 to 65535)")
    try:
        parsed = parse_host(host)
    except HostError as error:
        raise UsageError(f"URL {text!r} is not valid: {error}") from None
    netloc = f"{userinfo}{at}{parsed.url_host}" + (f":{port}" if port else "")
    try:
        return httpx.URL(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")))
    except httpx.InvalidURL as error:
        raise UsageError(f"URL {text!r} is not valid: {error}") from error


def _fetch_error(url: httpx.URL, why: str) -> AirlockError:
    return AirlockError(f"could not fetch {url}: {why}")
