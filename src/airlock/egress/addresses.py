"""Resolve a destination once and check its address before dialling (no DNS rebinding).

:data:`AddressCheck` is the hook the proxy calls: ``await check(host, port, private_ok)``
returns the one address to connect to, or raises :class:`~airlock.errors.RefusedError`
saying why. The proxy connects to that address and nothing else, so a name that resolves
to a public address when checked cannot be made to reach a private one afterwards.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from airlock.errors import RefusedError

AddressCheck = Callable[[str, int, bool], Awaitable[str]]

METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
"""Cloud metadata services: refused even when private addresses are allowed."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def classify(address: Address) -> str | None:
    """Why ``address`` is not a public destination, or ``None`` when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast address"
    if address.is_private:
        return "a private address"
    return None


async def check_address(host: str, port: int, private_ok: bool) -> str:
    """Resolve ``host`` once; refuse it unless every address it has is allowed.

    Raises:
        RefusedError: the name does not resolve, or resolves to an address refused here.
    """
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        _refuse_unless_allowed(host, literal, private_ok)
        return str(literal)
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedError(f"{host} does not resolve ({error})") from error
    if not found:
        raise RefusedError(f"{host} does not resolve")
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        _refuse_unless_allowed(host, address, private_ok)
    return str(addresses[0])


def _refuse_unless_allowed(host: str, address: Address, private_ok: bool) -> None:
    why = classify(address)
    if why is None:
        return
    if private_ok and why != "a cloud metadata address":
        return
    raise RefusedError(
        f"{host} resolves to {address}, {why}: refused unless allowed explicitly "
        f"(--allow {host} with the private-address check relaxed)"
    )
