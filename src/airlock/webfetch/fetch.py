"""The guarded fetch: rules, then the preflight, then the request; every new host checked again.

Theory of operation
-------------------
:meth:`GuardedFetcher.fetch` admits a URL in two steps before any byte goes to its host:

1. the permission rules (:func:`airlock.policy.rules.check_host`): a deny refuses, naming the
   rule and its file; an ask refuses unless the ``confirm`` callback says yes;
2. the preflight (:class:`~airlock.webfetch.preflight.PreflightClient`), unless the engine
   switched it off: a block refuses, a failure refuses (failing closed).

Redirects are followed by hand, never by the HTTP client: a redirect to another host is
admitted again, both steps, before it is followed. The body is read as a stream and cut at
``max_bytes``; the whole fetch, redirects included, must finish within ``timeout`` seconds of
the injected clock. HTML becomes Markdown (markdownify); other text is returned as it is;
binary content is refused rather than dumped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from airlock.errors import AirlockError, RefusedError, UsageError
from airlock.policy.model import Permissions
from airlock.policy.rules import RuleSet, RuleVerdict, Verdict, normalize_host
from airlock.webfetch.preflight import PreflightAnswer, PreflightClient

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
    """Why a host was admitted: the rules' verdict and the preflight's answer (``None``: skipped)."""

    verdict: RuleVerdict
    preflight: PreflightAnswer | None

    def describe(self) -> tuple[str, ...]:
        """Both, in words."""
        if self.preflight is None:
            return (self.verdict.describe(), "preflight skipped: skipWebFetchPreflight is true")
        return (self.verdict.describe(), self.preflight.describe())


class GuardedFetcher:
    """Fetches URLs the rules and the preflight admit.

    Args:
        permissions: the rules in force (``Loaded.context.permissions``).
        preflight: the preflight client, or ``None`` when the engine switched it off.
        client: the HTTP client for pages (its transport may pin hosts, see ``resolve``).
        clock: monotonic seconds, for the preflight cache and the time limit.
        limits: size, time and redirect bounds.
        confirm: asked when an ``ask`` rule matches; no callback means refuse.
        ask_unmatched: treat a host no rule matches as an ``ask`` (the agent's default);
            ``airlock fetch``, run by the user, leaves it off.
    """

    def __init__(
        self,
        *,
        permissions: Permissions,
        preflight: PreflightClient | None,
        client: httpx.Client,
        clock: Callable[[], float],
        limits: FetchLimits | None = None,
        confirm: Callable[[RuleVerdict], bool] | None = None,
        ask_unmatched: bool = False,
    ) -> None:
        self.permissions = permissions
        self.rules = RuleSet.of(permissions)
        self.preflight = preflight
        self.client = client
        self.clock = clock
        self.limits = limits or FetchLimits()
        self.confirm = confirm
        self.asking = (Verdict.ASK, Verdict.UNMATCHED) if ask_unmatched else (Verdict.ASK,)

    def admit(self, url: httpx.URL) -> Admission:
        """Check ``url``'s host by the rules, then the preflight.

        Raises:
            RefusedError: a rule or the preflight says no, or the preflight failed.
        """
        host = normalize_host(url.host)
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
        if self.preflight is None:
            return Admission(verdict, None)
        answer = self.preflight.check(host, now=self.clock())
        if not answer.can_fetch:
            raise RefusedError(
                f"refused: {answer.describe()}. It is checked again on the next request. "
                f"If you trust {host}, the service's blocklist is the place to change it; "
                "skipWebFetchPreflight: true turns the check off."
            )
        return Admission(verdict, answer)

    def fetch(self, url: str) -> FetchResult:
        """Fetch ``url`` once admitted, following admitted redirects, within the limits.

        Raises:
            UsageError: the URL is not an http(s) URL with a host.
            RefusedError: a rule or the preflight refused the URL or a redirect's host.
            AirlockError: the page could not be fetched (network, too many redirects, time).
        """
        start = self.clock()
        current = _parse_url(url)
        checks = list(self.admit(current).describe())
        redirects: list[str] = []
        while True:
            response = self._open(current, start)
            try:
                if response.status_code in REDIRECT_CODES and "location" in response.headers:
                    following = self._next_hop(current, response, redirects)
                    if normalize_host(following.host) != normalize_host(current.host):
                        try:
                            checks += self.admit(following).describe()
                        except RefusedError as error:
                            raise RefusedError(
                                f"redirect from {current.host} to {following.host} not followed: {error}"
                            ) from error
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
        try:
            following = current.join(response.headers["location"])
        except httpx.InvalidURL as error:
            raise _fetch_error(current, f"a redirect to an invalid URL ({error})") from error
        if following.scheme not in ("http", "https") or not following.host:
            raise RefusedError(
                f"redirect from {current.host} to {str(following)!r} not followed: only http "
                "and https URLs with a host are fetched"
            )
        return following

    def _remaining(self, start: float, url: httpx.URL) -> float:
        left = self.limits.timeout - (self.clock() - start)
        if left <= 0:
            raise _fetch_error(url, f"the {self.limits.timeout:g} s time limit ran out")
        return left

    def _open(self, url: httpx.URL, start: float) -> httpx.Response:
        timeout = httpx.Timeout(self._remaining(start, url))
        request = self.client.build_request(
            "GET", url, headers={"user-agent": USER_AGENT}, timeout=timeout
        )
        try:
            return self.client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as error:
            raise _fetch_error(url, f"{type(error).__name__}: {error}") from error

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
            raise _fetch_error(url, f"{type(error).__name__}: {error}") from error
        return b"".join(chunks), False


def _parse_url(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as error:
        raise UsageError(f"URL {text!r} is not valid: {error}") from error
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"URL {text!r}: expected an http:// or https:// URL with a host")
    return url


def _fetch_error(url: httpx.URL, why: str) -> AirlockError:
    return AirlockError(f"could not fetch {url}: {why}")
