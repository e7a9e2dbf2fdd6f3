"""An HTTP transport whose every network wait ends by one deadline: the fetch's time limit.

Theory of operation
-------------------
httpx's timeouts bound each wait for the network, not the whole exchange: a server that sends
its headers, or a body, a byte a second never lets a 3-second read timeout expire. This
transport is httpx's own connection pool (``httpcore``) over a network backend whose streams
cut every wait short at a deadline: inside ``with time_limit(seconds):`` each connect, read,
write and TLS handshake (which CPython bounds as a whole by its timeout) may wait only until
the deadline, and once it has passed the next one
fails at once with a timeout. So ``time_limit`` bounds a whole exchange, headers and body,
however the server paces it, on new and reused connections alike. Outside a ``time_limit``
the ordinary per-wait timeouts apply.

The deadline is a :class:`contextvars.ContextVar`: it follows the thread or task that set it,
so threads sharing one client keep their own limits.

A proxy (``HTTP_PROXY``/``HTTPS_PROXY``, unless ``NO_PROXY`` names the host) is used the same
way, through ``httpcore.HTTPProxy`` on the same backend; :meth:`LimitedTransport.proxy_for`
says which proxy a URL goes through, so the guard knows when the proxy, not this machine,
resolves a name.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from airlock.policy.hosts import bypasses_proxy

_DEADLINE: ContextVar[float | None] = ContextVar("airlock_fetch_deadline", default=None)

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # The most specific first: the first match maps.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
"""httpcore's errors and the httpx errors callers catch."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[float]:
    """Within the block, no network wait of a :class:`LimitedTransport` lasts past ``seconds`` from now.

    Nested limits keep the earlier deadline. Yields the deadline (``time.monotonic`` seconds).
    """
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to the time left before the deadline; ``error`` when none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the time limit ran out")
    return left if timeout is None else min(timeout, left)


class _LimitedStream(httpcore.NetworkStream):
    """A network stream whose every wait ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self.inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return _LimitedStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _LimitedBackend(httpcore.NetworkBackend):
    """httpcore's own blocking backend, its streams limited by the deadline."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(
            host,
            port,
            _bounded(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _LimitedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _LimitedStream(self.inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for theirs, ours in _ERRORS:
            if isinstance(error, theirs):
                raise ours(str(error) or type(error).__name__) from error
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self.inner

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class LimitedTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport, every wait bounded by :func:`time_limit`; proxies as the environment says.

    Args:
        proxies: scheme (``http``, ``https``) → proxy URL; none by default.
        no_proxy: hosts that bypass the proxies (``NO_PROXY`` syntax: names, ``.suffix``, ``*``).
        verify: the TLS context; the system's default certificate check when not given.
    """

    def __init__(
        self,
        *,
        proxies: Mapping[str, str] | None = None,
        no_proxy: str = "",
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.proxies = {scheme: url for scheme, url in (proxies or {}).items() if url}
        self.no_proxy = no_proxy
        context = verify if verify is not None else httpx.create_ssl_context()
        backend = _LimitedBackend()
        self._direct = httpcore.ConnectionPool(ssl_context=context, network_backend=backend)
        self._via: dict[str, httpcore.HTTPProxy] = {
            url: httpcore.HTTPProxy(proxy_url=url, ssl_context=context, network_backend=backend)
            for url in set(self.proxies.values())
        }

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LimitedTransport:
        """Proxies from ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (either case)."""
        found: dict[str, str] = {}
        for scheme in ("http", "https"):
            for name in (f"{scheme}_proxy", "all_proxy"):
                value = environ.get(name) or environ.get(name.upper())
                if value:
                    found[scheme] = value if "://" in value else f"http://{value}"
                    break
        no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        return cls(proxies=found, no_proxy=no_proxy)

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy ``url`` goes through, or ``None`` when it is fetched directly."""
        proxy = self.proxies.get(url.scheme)
        if proxy is None:
            return None
        if bypasses_proxy(url.raw_host.decode("ascii"), self.no_proxy):
            return None
        return proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxy_for(request.url)
        pool: httpcore.ConnectionPool = self._direct if proxy is None else self._via[proxy]
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            answer = pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)  # the sync pool's streams are
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._direct.close()
        for pool in self._via.values():
            pool.close()
