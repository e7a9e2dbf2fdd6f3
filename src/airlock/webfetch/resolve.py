"""Pin hostnames to addresses, as ``curl --resolve HOST:PORT:ADDR`` does.

A pin replaces DNS for one ``host:port``; it does not replace the checks. The fetch still
checks the pinned address (:mod:`airlock.destinations`): pinning a name to ``127.0.0.1`` needs
an allow rule for the name or the address, as DNS answering ``127.0.0.1`` would. The request
keeps its hostname everywhere that matters (the ``Host`` header, TLS server name and
certificate check); only the address it connects to changes. Used by ``airlock fetch
--resolve`` and by the tests, so no test ever asks real DNS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airlock.destinations import IPAddress, Resolver
from airlock.errors import UsageError
from airlock.policy.hosts import HostError, parse_host


@dataclass(frozen=True, slots=True)
class Pin:
    """``host:port`` goes to ``address`` instead of what DNS says."""

    host: str
    port: int
    address: str


def parse_pin(text: str) -> Pin:
    """Parse ``HOST:PORT:ADDR`` (``ADDR`` may be an IPv6 address in brackets).

    Raises:
        UsageError: the text is not ``HOST:PORT:ADDR``, or the host or address is not valid.
    """
    host, _, rest = text.partition(":")
    port, _, address = rest.partition(":")
    if not host or not port.isdigit() or not address or not 0 < int(port) < 65536:
        raise UsageError(
            f"--resolve {text!r}: expected HOST:PORT:ADDRESS, e.g. example.com:443:127.0.0.1"
        )
    try:
        name = parse_host(host)
        target = parse_host(address)
    except HostError as error:
        raise UsageError(f"--resolve {text!r}: {error}") from None
    if name.name is None or target.address is None:
        raise UsageError(
            f"--resolve {text!r}: expected a name, a port and an IP address, "
            "e.g. example.com:443:127.0.0.1"
        )
    return Pin(name.text, int(port), target.text)


def pinned_resolver(pins: Sequence[Pin], fallback: Resolver | None) -> Resolver:
    """A resolver that answers pinned ``host:port`` pairs, and asks ``fallback`` for the rest.

    Without a fallback, a name no pin covers does not resolve (an :class:`OSError`).
    """
    table: dict[tuple[str, int], list[IPAddress]] = {}
    for pin in pins:
        address = parse_host(pin.address).address
        if address is not None:  # parse_pin made it an address
            table.setdefault((pin.host, pin.port), []).append(address)

    def resolve(name: str, port: int) -> Sequence[IPAddress]:
        found = table.get((name, port))
        if found:
            return tuple(found)
        if fallback is None:
            raise OSError(f"{name}:{port} is not pinned (--resolve) and DNS is not asked")
        return fallback(name, port)

    return resolve
