"""The address check before dialling: :mod:`airlock.destinations`, adapted to the proxy.

:data:`AddressCheck` is the hook the proxy calls: ``await check(host, port, private_ok)``
returns the one address to connect to, or raises :class:`~airlock.errors.RefusedError`
(:class:`~airlock.errors.DestinationRefused`) saying why; an
:class:`~airlock.errors.AirlockError` when the name does not resolve. The proxy connects to
that address and nothing else, so a name checked on a public address cannot be made to reach
a private one afterwards (DNS rebinding). Tests and benchmarks inject their own check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from airlock.destinations import NO_PRIVATE, Host, IPAddress, resolve_checked_async
from airlock.policy.hosts import AddressClass, classify

AddressCheck = Callable[[str, int, bool], Awaitable[str]]

RESOLVE_SECONDS = 10.0


def _private_but_not_metadata(host: Host, address: IPAddress) -> bool:
    """The relaxed check: any non-public address but a cloud metadata service's."""
    return classify(address) is not AddressClass.METADATA


async def check_address(host: str, port: int, private_ok: bool) -> str:
    """Resolve ``host`` once and check every address it has; the address to dial.

    Args:
        host: the destination, as the rules judged it.
        port: the port that will be dialled.
        private_ok: an explicit rule allows this host on a loopback, private, link-local or
            this machine's address (never a metadata service's).

    Raises:
        DestinationRefused: an address no rule allows.
        AirlockError: the name does not resolve (in time).
        UsageError: not a valid host.
    """
    destination = await resolve_checked_async(
        host,
        port,
        allow_private=_private_but_not_metadata if private_ok else NO_PRIVATE,
        timeout=RESOLVE_SECONDS,
    )
    return str(destination.address)
