"""Where a connection may go: resolve a host once, check every address, connect to what was checked.

Theory of operation
-------------------
A fetch (``airlock fetch``) or a proxied connection (the egress proxy of ``airlock run``) must
not reach this machine, its network or the cloud's metadata service because a name resolves
there, or because an address is written in an unusual way. Both call this module, the one place
that decides it:

1. :func:`~airlock.policy.hosts.parse_host` reads the host in its one canonical form (an IDNA
   2008 A-label name, or an address however it was written).
2. An address is checked as it is; a name is resolved once (``getaddrinfo``, or the injected
   resolver) into every address it has.
3. Each address is classified (:func:`~airlock.policy.hosts.classify`: loopback, link-local,
   cloud metadata, private, unspecified, multicast, reserved), and a public one is also checked
   against this machine's own addresses (:func:`is_local_address`). A non-public address is
   refused unless ``allow_private(host, address)`` says an explicit rule permits it. One
   refused address refuses the host: a name that resolves to a public and a private address
   would let the connecting side pick either.
4. The caller connects to :attr:`Destination.addresses`, never to the name again, so DNS cannot
   answer differently between the check and the connection (rebinding). The name still goes in
   the ``Host`` header, the TLS server name and the certificate check.

Public API (what the fetch guard and the egress proxy import)
-------------------------------------------------------------
* :func:`check_destination` ``(host, port, *, allow_private, resolver, is_local, timeout)``
  → :class:`Destination`, or :class:`~airlock.errors.DestinationRefused` naming the host, the
  address, its class and how to allow it; an :class:`~airlock.errors.AirlockError` when the
  name cannot be resolved (or not in time), a :class:`~airlock.errors.UsageError` when the
  host is not a valid name or address.
* :func:`resolve_checked_async` — the same for asyncio (``getaddrinfo`` in airlock's own
  lookup threads).
* :func:`check_addresses` — steps 3 alone, for addresses already resolved.
* :func:`system_resolver`, :func:`system_resolver_async`, :func:`table_resolver` (a fixed
  table, for ``--resolve`` pins and tests: no test asks DNS).
* :data:`NO_PRIVATE` — the ``allow_private`` that allows nothing.
* Re-exported from :mod:`airlock.policy.hosts`: :class:`Host`, :func:`parse_host`,
  :class:`AddressClass`, :func:`classify`, :data:`IPAddress`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from airlock._words import with_article
from airlock.errors import AirlockError, DestinationRefused, UsageError
from airlock.policy.hosts import (
    AddressClass,
    Host,
    HostError,
    IPAddress,
    classify,
    describe_class,
    parse_host,
)

__all__ = [
    "NO_PRIVATE",
    "AddressClass",
    "AllowPrivate",
    "AsyncResolver",
    "Destination",
    "Host",
    "IPAddress",
    "Resolver",
    "check_addresses",
    "check_destination",
    "classify",
    "is_local_address",
    "parse_host",
    "resolve_checked_async",
    "system_resolver",
    "system_resolver_async",
    "table_resolver",
]

Resolver = Callable[[str, int], Sequence[IPAddress]]
"""``(name, port) -> addresses``; raises :class:`OSError` when the name has none."""
AsyncResolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
AllowPrivate = Callable[[Host, IPAddress], bool]
"""Whether an explicit rule lets ``host`` reach the non-public ``address``."""
T = TypeVar("T")


def _allow_none(host: Host, address: IPAddress) -> bool:
    return False


NO_PRIVATE: AllowPrivate = _allow_none
"""The ``allow_private`` that allows no non-public address."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A host checked for connecting: connect to ``addresses``, say ``host.text`` in Host and SNI."""

    host: Host
    port: int
    addresses: tuple[IPAddress, ...]
    """Every address the host has, each checked; connect to these, in this order."""
    allowed_private: tuple[str, ...] = ()
    """For each non-public address let through, why (in words), for the audit."""

    @property
    def address(self) -> IPAddress:
        """The first address to try."""
        return self.addresses[0]


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def system_resolver(name: str, port: int) -> tuple[IPAddress, ...]:
    """Every address ``getaddrinfo`` gives ``name`` for a TCP connection, without repeats.

    Raises:
        OSError: the name does not resolve.
    """
    found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return _distinct(str(info[4][0]) for info in found)


async def system_resolver_async(name: str, port: int) -> tuple[IPAddress, ...]:
    """:func:`system_resolver` for asyncio, run by airlock's own lookup threads
    (:class:`_Lookups`), not the event loop's: uvloop's are libuv's four, which four lookups
    that no server answers would hold, every other name waiting behind them."""
    return await asyncio.wrap_future(_workers().submit(system_resolver, name, port))


def _distinct(texts: Iterable[str]) -> tuple[IPAddress, ...]:
    seen: dict[IPAddress, None] = {}
    for text in texts:
        seen.setdefault(_unmapped(ipaddress.ip_address(text)), None)
    return tuple(seen)


def table_resolver(
    table: Mapping[str, Sequence[str]], fallback: Resolver | None = None
) -> Resolver:
    """A resolver answering from ``table`` (name → addresses; a key may be ``name:port``).

    Names are looked up in their canonical form. A name the table lacks goes to ``fallback``,
    or does not resolve when there is none (so a test never asks DNS by mistake).
    """
    canonical: dict[str, tuple[IPAddress, ...]] = {}
    for key, addresses in table.items():
        name, colon, port = key.rpartition(":") if key.count(":") == 1 else (key, "", "")
        canonical[f"{parse_host(name).text}{colon}{port}"] = _distinct(addresses)

    def resolve(name: str, port: int) -> Sequence[IPAddress]:
        found = canonical.get(f"{name}:{port}") or canonical.get(name)
        if found:
            return found
        if fallback is not None:
            return fallback(name, port)
        raise OSError(errno.ENOENT, f"{name} is not in the resolver's table")

    return resolve


def check_destination(
    host: str | Host,
    port: int,
    *,
    allow_private: AllowPrivate = NO_PRIVATE,
    resolver: Resolver = system_resolver,
    is_local: Callable[[IPAddress], bool] | None = None,
    timeout: float | None = None,
) -> Destination:
    """Resolve ``host`` once and check every address (see the module's theory of operation).

    Args:
        host: a URL's host or a ``CONNECT`` target, as written, or already parsed.
        port: the port that will be connected to.
        allow_private: whether an explicit rule lets ``host`` reach a non-public address.
        resolver: name → addresses; ``getaddrinfo`` by default.
        is_local: whether a public address is one of this machine's; :func:`is_local_address`
            by default.
        timeout: seconds the resolution may take (it runs in a thread); no bound when ``None``.

    Raises:
        UsageError: ``host`` is not a valid name or address.
        DestinationRefused: an address is not public, or is this machine's, and no rule allows it.
        AirlockError: the name does not resolve, or not within ``timeout``.
    """
    parsed = _parsed(host)
    if parsed.address is not None:
        addresses: Sequence[IPAddress] = (parsed.address,)
    else:
        addresses = _resolve_in_time(resolver, parsed, port, timeout)
    return check_addresses(parsed, port, addresses, allow_private=allow_private, is_local=is_local)


async def resolve_checked_async(
    host: str | Host,
    port: int,
    *,
    allow_private: AllowPrivate = NO_PRIVATE,
    resolver: AsyncResolver = system_resolver_async,
    is_local: Callable[[IPAddress], bool] | None = None,
    timeout: float | None = None,
) -> Destination:
    """:func:`check_destination` for asyncio: the same checks, the resolver awaited.

    Raises:
        UsageError, DestinationRefused, AirlockError: as :func:`check_destination`.
    """
    parsed = _parsed(host)
    if parsed.address is not None:
        addresses: Sequence[IPAddress] = (parsed.address,)
    else:
        name = parsed.text
        try:
            addresses = await asyncio.wait_for(resolver(name, port), timeout)
        except TimeoutError:
            raise _unresolved(parsed, f"no answer within {timeout:g} s") from None
        except (OSError, ValueError) as error:
            raise _unresolved(parsed, str(error)) from error
    return check_addresses(parsed, port, addresses, allow_private=allow_private, is_local=is_local)


def _parsed(host: str | Host) -> Host:
    if isinstance(host, Host):
        return host
    try:
        return parse_host(host)
    except HostError as error:
        raise UsageError(str(error)) from None


def _unresolved(host: Host, why: str) -> AirlockError:
    return AirlockError(f"could not resolve {host.text}: {why}; nothing was sent to it")


def _resolve_in_time(
    resolver: Resolver, host: Host, port: int, timeout: float | None
) -> Sequence[IPAddress]:
    if timeout is None:
        try:
            return resolver(host.text, port)
        except (OSError, ValueError) as error:
            raise _unresolved(host, str(error)) from error
    # getaddrinfo has no timeout of its own: it runs in a worker, and is given up on in time.
    pending = _workers().submit(resolver, host.text, port)
    try:
        return pending.result(timeout=max(timeout, 0.0))
    except concurrent.futures.TimeoutError:
        pending.cancel()
        raise _unresolved(host, f"no answer within {timeout:g} s") from None
    except (OSError, ValueError) as error:
        raise _unresolved(host, str(error)) from error


RESOLVER_THREADS = 32
"""Lookups that may run at once. ``getaddrinfo`` cannot be stopped: one that no server answers
holds its thread until the resolver gives up (``timeout`` times ``attempts`` of
``resolv.conf``: 10 s by default, minutes as some set it), long after the caller stopped
waiting. A few names that a DNS server drops (a blocked tracker, a typo in a corporate
zone) must not hold back every other one; past this many at once, new names wait their
turn."""


class _Lookups:
    """Runs lookups in daemon threads, started as needed up to :data:`RESOLVER_THREADS` and
    then kept for the next ones.

    Not a :class:`concurrent.futures.ThreadPoolExecutor`: Python joins its threads when it
    exits, so a lookup that never ends would keep airlock from exiting after a run (or after
    ``airlock fetch`` gave up on the name). A daemon thread stuck in ``getaddrinfo`` ends with
    the process.
    """

    def __init__(self, most: int) -> None:
        self._most = most
        self._queue: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        """Threads waiting for a lookup."""
        self._queued = 0
        """Lookups not taken by a thread yet."""

    def submit(self, function: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """``function(*args)`` in a lookup thread; its result, or the error it raised, in
        the future. A lookup cancelled before a thread takes it is not run."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            self._queued += 1
            if self._queued > self._idle and self._threads < self._most:
                self._threads += 1
                threading.Thread(target=self._work, name="airlock-lookup", daemon=True).start()
        self._queue.put((future, function, args))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            future, function, args = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = function(*args)
            except BaseException as error:  # handed to whoever waits, as an executor does
                future.set_exception(error)
            else:
                future.set_result(result)


_pool: list[_Lookups] = []
_pool_lock = threading.Lock()


def _workers() -> _Lookups:
    with _pool_lock:
        if not _pool:
            _pool.append(_Lookups(RESOLVER_THREADS))
        return _pool[0]


def check_addresses(
    host: Host,
    port: int,
    addresses: Sequence[IPAddress],
    *,
    allow_private: AllowPrivate = NO_PRIVATE,
    is_local: Callable[[IPAddress], bool] | None = None,
) -> Destination:
    """Check ``host``'s resolved ``addresses``; a :class:`Destination` when every one may be reached.

    Raises:
        DestinationRefused: an address is not public, or is this machine's, and no rule allows it.
        AirlockError: there is no address at all.
    """
    local = is_local_address if is_local is None else is_local
    if not addresses:
        raise _unresolved(host, "the resolver returned no address")
    kept: list[IPAddress] = []
    allowed: list[str] = []
    for found in addresses:
        address = _unmapped(found)
        described = describe_class(address)
        if described is None and local(address):
            described = (AddressClass.THIS_HOST, "one of this machine's addresses")
        if described is not None:
            if not allow_private(host, address):
                raise _refusal(host, port, address, *described)
            allowed.append(
                f"{host.text} → {address}, a {described[0]} address ({described[1]}): "
                "allowed by a rule"
            )
        kept.append(address)
    return Destination(host, port, tuple(kept), tuple(allowed))


def _refusal(
    host: Host, port: int, address: IPAddress, kind: AddressClass, why: str
) -> DestinationRefused:
    via = "is" if host.address is not None else f"resolves to {address}, which is"
    return DestinationRefused(
        f"refused: {host.url_host}:{port} {via} {with_article(str(kind))} address ({why}); "
        "a fetch or connection does not reach it unless a rule allows it, and nothing was sent "
        "to it. "
        f"If you mean to reach it, add an explicit rule for it to permissions.allow: "
        f"WebFetch(domain:{host.url_host})"
        + ("" if host.address is not None else f" or WebFetch(domain:{_rule_text(address)})"),
        host=host.text,
        address=str(address),
        address_class=str(kind),
    )


def _rule_text(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


LOCAL_SECONDS = 2.0
"""How long the kernel's answer to "is this address ours?" is kept (interfaces change rarely)."""
_local_answers: dict[IPAddress, tuple[float, bool]] = {}


def is_local_address(address: IPAddress) -> bool:
    """Whether ``address`` is one of this machine's own (in this network namespace).

    Asks the kernel twice. Binding a socket to an address succeeds only when a local
    interface holds it (or a ``local`` route covers it), unless non-local binding is
    switched on (``ip_nonlocal_bind``, as on hosts that run a load balancer), when it
    proves nothing and is not asked. And the route to the address (a datagram socket's
    ``connect``, which sends nothing) leaves from the address itself only when the address
    is this machine's: the kernel takes a local address as its own source, whatever
    ``ip_nonlocal_bind`` says. Either says it is ours: it is. An answer is kept for
    :data:`LOCAL_SECONDS` (system calls cost more than the rest of a check).
    """
    now = time.monotonic()
    kept = _local_answers.get(address)
    if kept is not None and now - kept[0] < LOCAL_SECONDS:
        return kept[1]
    if len(_local_answers) >= 4096:
        _local_answers.clear()
    answer = _ask_kernel(address) or _routed_to_itself(address)
    _local_answers[address] = (now, answer)
    return answer


def _ask_kernel(address: IPAddress) -> bool:
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    if _nonlocal_bind(address.version):
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError as error:  # not this machine's, unless the error says nothing (fail closed)
        return error.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL)
    return True


def _routed_to_itself(address: IPAddress) -> bool:
    """Whether the kernel's route to ``address`` leaves from ``address`` itself: a datagram
    socket connected to it (nothing is sent) takes its source from the route, and the
    route to one of this machine's addresses (``table local``) has that address as its
    source. No route (an unreachable network), or no such family: not ours by this probe."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((str(address), 9))
            source = probe.getsockname()[0]
    except OSError:
        return False
    try:
        return ipaddress.ip_address(source) == address
    except ValueError:  # a scoped source (link-local): never a public address's
        return False


@lru_cache(maxsize=2)
def _nonlocal_bind(version: int) -> bool:
    path = Path(f"/proc/sys/net/ipv{version}/ip_nonlocal_bind")
    try:
        return path.read_text().strip() not in ("", "0")
    except OSError:
        return False
