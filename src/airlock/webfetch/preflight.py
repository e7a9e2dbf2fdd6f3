"""The preflight: ask the domain-safety service whether a host may be fetched, before fetching.

Theory of operation
-------------------
* Only the hostname goes on the wire (``GET /api/web/domain_info?domain=HOST``), never the
  URL, its path or query. In private mode not even that: only short hash prefixes of the
  host and its parents (``GET /api/web/domain_hashes?prefix=…``, see
  :mod:`airlock.webfetch.hashing`), and the client decides from the full hashes it gets back.
* An allowed answer is cached per hostname for :data:`CACHE_SECONDS` (5 minutes). A block or a
  failure is never cached: the next request asks again.
* A failure fails closed: :class:`~airlock.errors.RefusedError` with a message naming the
  host, the service and the two ways out.
* Concurrent questions about one host, from threads or asyncio tasks, make one request: the
  first caller asks, the others wait for its answer (a ``concurrent.futures.Future``, which
  threads can block on and tasks can await). The answer is shared, never kept beyond the
  request unless it is an allowed one.
* The sync (:meth:`PreflightClient.check`) and async (:meth:`PreflightClient.acheck`) calls
  drive one generator (:meth:`PreflightClient._flow`: the cache, the questions in flight and
  the exchange), which yields each step that waits or does I/O, so they cannot drift apart. The
  cache is guarded by a lock that is never held across I/O, so threads and asyncio tasks
  may share one client.
* Every answer is read as a stream and refused past :data:`MAX_ANSWER_BYTES`: a service that
  answers a gigabyte is a failure, never a gigabyte in memory. The default client's transport
  is :class:`~airlock.webfetch.transport.LimitedTransport`, so a caller's
  :func:`~airlock.webfetch.transport.time_limit` bounds the whole exchange, however slowly the
  service answers.
* Hosts are asked about in their one canonical form (:func:`airlock.policy.hosts.parse_host`):
  the A-label name, or the address however the URL wrote it; the private mode hashes that same
  text, as the service's blocklist does.
* Whether to run at all is the engine's call: :meth:`PreflightClient.from_decision` returns
  ``None`` when ``webfetch_preflight`` is off.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Generator, Iterator
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

from airlock.errors import RefusedError
from airlock.policy.model import Decision, FlowId, State
from airlock.policy.rules import normalize_host
from airlock.webfetch import hashing

CACHE_SECONDS = 300.0
"""How long an allowed answer is kept: 5 minutes, as the reference."""
MAX_CACHED_HOSTS = 10_000
INFO_PATH = "/api/web/domain_info"
HASHES_PATH = "/api/web/domain_hashes"
DEFAULT_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 1_000_000
"""The most bytes of an answer read: a private-mode answer at a million listed domains is a few KB."""


@dataclass(frozen=True, slots=True)
class PreflightAnswer:
    """The preflight's answer for one host."""

    host: str
    can_fetch: bool
    service: str
    cached: bool = False
    private: bool = False

    def describe(self) -> str:
        """Say what the preflight answered, and how it knows."""
        verdict = "may be fetched" if self.can_fetch else "is blocked"
        how = "a cached answer of" if self.cached else "answered by"
        mode = " (private mode: hash prefixes only)" if self.private else ""
        return f"{self.host} {verdict}: {how} the domain-safety service {self.service}{mode}"


class AllowedCache:
    """Hosts the service allowed, each until it expires. Thread- and task-safe.

    Only allowed answers go in; the clock is the caller's (``now`` in seconds, monotonic).
    """

    def __init__(self, ttl: float = CACHE_SECONDS, max_hosts: int = MAX_CACHED_HOSTS) -> None:
        self.ttl = ttl
        self.max_hosts = max_hosts
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def allowed(self, host: str, now: float) -> bool:
        """Whether ``host`` has an allowed answer that has not expired at ``now``."""
        with self._lock:
            expiry = self._expiry.get(host)
            if expiry is None:
                return False
            if now < expiry:
                return True
            del self._expiry[host]
            return False

    def remember(self, host: str, now: float) -> None:
        """Keep an allowed answer for ``host`` until ``now + ttl``."""
        with self._lock:
            if len(self._expiry) >= self.max_hosts:
                self._expiry = {h: e for h, e in self._expiry.items() if e > now}
                while len(self._expiry) >= self.max_hosts:
                    del self._expiry[next(iter(self._expiry))]
            self._expiry[host] = now + self.ttl

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)


class _Failure(Exception):
    """The service could not give an answer (unreachable, an error status, a bad body)."""


_Step: TypeAlias = "httpx.Request | Future[PreflightAnswer]"
"""What the flow asks its driver to do: send a request, or wait for another caller's answer."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """The service's answer to one request: its status and body (at most MAX_ANSWER_BYTES)."""

    status: int
    body: bytes


_Reply: TypeAlias = "_Answer | BaseException | None"
"""What came of a step: the answer (read), ``None`` after a wait, or the error taking it."""
_Flow: TypeAlias = "Generator[_Step, _Answer | None, PreflightAnswer]"


class PreflightClient:
    """Asks the domain-safety service about hosts, with the 5-minute cache of allowed answers.

    Args:
        service: the service's base URL (``https://host[:port][/base]``).
        private_mode: send hash prefixes instead of the hostname.
        client: the HTTP client for :meth:`check`; one is made when not given.
        cache: share a cache between clients; a fresh one when not given.
        timeout: seconds for each request to the service.
    """

    def __init__(
        self,
        service: str,
        *,
        private_mode: bool = False,
        client: httpx.Client | None = None,
        cache: AllowedCache | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.service = service.rstrip("/")
        self.private_mode = private_mode
        self.cache = cache if cache is not None else AllowedCache()
        self.timeout = timeout
        self._client = client
        self._client_lock = threading.Lock()
        self._inflight: dict[str, Future[PreflightAnswer]] = {}
        self._inflight_lock = threading.Lock()

    @classmethod
    def from_decision(cls, decision: Decision, **options: Any) -> PreflightClient | None:
        """A client as the engine's ``webfetch_preflight`` decision says; ``None`` when it is off."""
        if decision.id is not FlowId.WEBFETCH_PREFLIGHT:
            raise ValueError(f"expected the webfetch_preflight decision, got {decision.id}")
        if decision.state is State.OFF:
            return None
        options.setdefault("private_mode", bool(decision.parameters.get("private_mode")))
        return cls(str(decision.parameters["service"]), **options)

    def check(self, host: str, *, now: float) -> PreflightAnswer:
        """Ask about ``host`` (or answer from the cache).

        Raises:
            RefusedError: the service could not be asked; the message says how to go on.
        """
        flow = self._flow(host, now)
        step = _resume(flow, None)
        while not isinstance(step, PreflightAnswer):
            step = _resume(flow, self._take(step))
        return step

    async def acheck(self, host: str, *, now: float, client: httpx.AsyncClient) -> PreflightAnswer:
        """:meth:`check` for asyncio, with the caller's async client; the same cache."""
        flow = self._flow(host, now)
        step = _resume(flow, None)
        while not isinstance(step, PreflightAnswer):
            step = _resume(flow, await self._atake(step, client))
        return step

    def _take(self, step: _Step) -> _Reply:
        """Take ``step`` for :meth:`check`, blocking; an error is the reply, not raised here."""
        try:
            if isinstance(step, Future):
                futures.wait([step])  # without raising its error: _follow says what it was
                return None
            response = self._http().send(step, stream=True)
            try:
                return _Answer(response.status_code, _bounded(response.iter_bytes()))
            finally:
                response.close()
        except BaseException as error:  # raised again in the flow, where it asked for the step
            return error

    async def _atake(self, step: _Step, client: httpx.AsyncClient) -> _Reply:
        """Take ``step`` for :meth:`acheck`, with ``client``; an error is the reply, not raised here."""
        try:
            if isinstance(step, Future):
                waiting = asyncio.wrap_future(step)
                await asyncio.wait([waiting])  # without raising its error: _follow says what it was
                if not waiting.cancelled():
                    waiting.exception()  # seen, so asyncio does not report it as lost
                return None
            response = await client.send(step, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _too_large()
                    chunks.append(chunk)
                return _Answer(response.status_code, b"".join(chunks))
            finally:
                await response.aclose()
        except BaseException as error:  # raised again in the flow, where it asked for the step
            return error

    def _flow(self, host: str, now: float) -> _Flow:
        """The cache, the sharing of questions in flight and the exchange for ``host``, without I/O.

        Yields the steps for the driver (:meth:`check` or :meth:`acheck`) to take: another
        caller's question about the same host to wait for (the reply is ``None`` once it is
        answered), or a request to send (the reply is the response, read). An error taking a
        step is thrown in where the step was yielded. Returns the answer.
        """
        wanted = normalize_host(host)
        if self.cache.allowed(wanted, now):
            return PreflightAnswer(
                wanted, True, self.service, cached=True, private=self.private_mode
            )
        pending, leader = self._join(wanted)
        if not leader:
            yield pending
            return self._follow(wanted, pending)
        try:
            answer = yield from self._ask(wanted, now)
        except BaseException as error:
            pending.set_exception(error)
            raise
        else:
            pending.set_result(answer)
            return answer
        finally:
            self._leave(wanted)

    def _join(self, host: str) -> tuple[Future[PreflightAnswer], bool]:
        """The question about ``host`` in flight, and whether this caller is the one asking it."""
        with self._inflight_lock:
            pending = self._inflight.get(host)
            if pending is not None:
                return pending, False
            pending = self._inflight[host] = Future()
            return pending, True

    def _leave(self, host: str) -> None:
        with self._inflight_lock:
            self._inflight.pop(host, None)

    def _follow(self, host: str, pending: Future[PreflightAnswer]) -> PreflightAnswer:
        """The answer another caller got for ``host``; its refusal, raised afresh for this caller."""
        try:
            return pending.result()
        except RefusedError as error:
            raise RefusedError(str(error)) from None
        except BaseException as error:
            raise self._refusal(
                host, f"was asked by another caller that failed ({error!r})"
            ) from None

    def _ask(self, wanted: str, now: float) -> Generator[httpx.Request, _Answer, PreflightAnswer]:
        """The exchange with the service, its failure turned into the refusal; caches an allowed answer."""
        try:
            try:
                can_fetch = yield from self._exchange(wanted)
            except httpx.HTTPError as error:  # thrown in by the driver: sending or reading failed
                raise _Failure(_explain(error)) from error
        except _Failure as failure:
            raise self._refusal(wanted, str(failure)) from failure
        return self._settle(wanted, can_fetch, now)

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                from airlock.webfetch.transport import LimitedTransport

                transport = LimitedTransport.from_environment(os.environ)
                self._client = httpx.Client(transport=transport, timeout=self.timeout)
            return self._client

    def close(self) -> None:
        """Close the HTTP client this object made."""
        if self._client is not None:
            self._client.close()

    def _settle(self, host: str, can_fetch: bool, now: float) -> PreflightAnswer:
        if can_fetch:
            self.cache.remember(host, now)
        return PreflightAnswer(host, can_fetch, self.service, private=self.private_mode)

    def _exchange(self, host: str) -> Generator[httpx.Request, _Answer, bool]:
        """Yield the request(s) to make, receive the responses, return whether ``host`` may be fetched."""
        timeout = httpx.Timeout(self.timeout)
        if not self.private_mode:
            url = httpx.URL(self.service + INFO_PATH, params={"domain": host})
            response = yield httpx.Request("GET", url, extensions={"timeout": timeout.as_dict()})
            body = _json(response)
            can_fetch = body.get("can_fetch")
            if not isinstance(can_fetch, bool):
                raise _Failure(f"the answer has no boolean can_fetch: {str(body)[:200]}")
            return can_fetch
        prefixes = hashing.prefixes_for(host)
        url = httpx.URL(self.service + HASHES_PATH, params=[("prefix", p) for p in prefixes])
        response = yield httpx.Request("GET", url, extensions={"timeout": timeout.as_dict()})
        listed = _json(response).get("hashes")
        if not isinstance(listed, list) or not all(isinstance(h, str) for h in listed):
            raise _Failure("the answer has no list of hashes")
        return not hashing.blocked_by(host, {text.lower() for text in listed})

    def _refusal(self, host: str, why: str) -> RefusedError:
        service_host = httpx.URL(self.service).host
        return RefusedError(
            f"the WebFetch preflight for {host} failed, so the page was not fetched (failing "
            f"closed): the domain-safety service {self.service} {why}. Two ways out: let this "
            f"machine reach {service_host} (allow it in your proxy or firewall, or point "
            "AIRLOCK_DOMAIN_SAFETY_URL or airlock.domainSafetyUrl at a service you can reach, "
            'such as `airlock serve`), or set "skipWebFetchPreflight": true in your settings '
            "to fetch without the check."
        )


def _resume(flow: _Flow, reply: _Reply) -> _Step | PreflightAnswer:
    """Hand ``flow`` the reply to its last step (an error is raised in it); its next step or answer."""
    try:
        if isinstance(reply, BaseException):
            return flow.throw(reply)
        return flow.send(reply)
    except StopIteration as done:
        answer: PreflightAnswer = done.value
        return answer


def _too_large() -> _Failure:
    return _Failure(
        f"answered more than {MAX_ANSWER_BYTES} bytes (the most a preflight answer may be)"
    )


def _bounded(chunks: Iterator[bytes]) -> bytes:
    """The body, read chunk by chunk; :class:`_Failure` past :data:`MAX_ANSWER_BYTES`."""
    read: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _too_large()
        read.append(chunk)
    return b"".join(read)


def _json(response: _Answer) -> dict[str, Any]:
    if response.status != 200:
        raise _Failure(f"answered HTTP {response.status}")
    try:
        body = json.loads(response.body)
    except ValueError as error:
        raise _Failure("answered something that is not JSON") from error
    if not isinstance(body, dict):
        raise _Failure("answered JSON that is not an object")
    return body


def _explain(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "did not answer in time"
    return f"could not be reached ({type(error).__name__}: {error})"
