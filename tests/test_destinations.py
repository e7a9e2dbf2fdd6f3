"""Destinations: a host is resolved once, every address checked, the checked addresses returned."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Sequence

import pytest

from airlock.destinations import (
    NO_PRIVATE,
    AddressClass,
    Host,
    IPAddress,
    check_destination,
    is_local_address,
    resolve_checked_async,
    system_resolver,
    table_resolver,
)
from airlock.errors import AirlockError, DestinationRefused, RefusedError, UsageError

TABLE = {
    "public.test": ["93.184.215.14"],
    "twofaced.test": ["93.184.215.14", "127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "v6.test": ["2606:4700::1111", "93.184.215.14"],
    "xn--strae-oqa.de": ["93.184.215.15"],
    "strasse.de": ["127.0.0.1"],
}
RESOLVE = table_resolver(TABLE)


def never_local(address: IPAddress) -> bool:
    return False


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0x7f.1", "127.0.0.1", "loopback"),
        ("[::ffff:127.0.0.1]", "127.0.0.1", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("0251.0376.0251.0376", "169.254.169.254", "cloud metadata"),
        ("metadata.test", "169.254.169.254", "cloud metadata"),
        ("[fd00:ec2::254]", "fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "100.100.100.200", "cloud metadata"),
        ("twofaced.test", "127.0.0.1", "loopback"),
        ("mapped.test", "10.0.0.1", "private"),
        ("0", "0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, nothing binds
        ("224.0.0.251", "224.0.0.251", "multicast"),
        ("STRASSE.de.", "127.0.0.1", "loopback"),
    ],
)
def test_non_public_refused(host: str, address: str, kind: str) -> None:
    """A host that is or resolves to a non-public address is refused, naming host, address, class and the way out."""
    with pytest.raises(DestinationRefused) as caught:
        check_destination(host, 80, resolver=RESOLVE, is_local=never_local)
    error = caught.value
    assert isinstance(error, RefusedError) and isinstance(error, PermissionError)
    assert (error.address, error.address_class) == (address, kind)
    assert address in str(error) and kind in str(error) and "permissions.allow" in str(error)
    assert "WebFetch(domain:" in str(error)


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("public.test", ("93.184.215.14",)),
        ("PUBLIC.test.", ("93.184.215.14",)),
        ("straße.de", ("93.184.215.15",)),
        ("v6.test", ("2606:4700::1111", "93.184.215.14")),
        ("8.8.8.8", ("8.8.8.8",)),
        ("134744072", ("8.8.8.8",)),
    ],
)
def test_public_admitted_with_the_addresses_checked(host: str, addresses: tuple[str, ...]) -> None:
    """A public host comes back with every address it was checked at, in the resolver's order."""
    found = check_destination(host, 443, resolver=RESOLVE, is_local=never_local)
    assert tuple(str(a) for a in found.addresses) == addresses
    assert found.port == 443 and found.allowed_private == ()


def test_name_resolved_in_its_canonical_form() -> None:
    """straße.de is resolved as xn--strae-oqa.de, never as strasse.de (IDNA 2003)."""
    asked: list[str] = []

    def resolver(name: str, port: int) -> Sequence[IPAddress]:
        asked.append(name)
        return RESOLVE(name, port)

    check_destination("straße.de", 443, resolver=resolver, is_local=never_local)
    assert asked == ["xn--strae-oqa.de"]


def test_address_literal_never_resolved() -> None:
    """An address, however written, goes to no resolver."""

    def resolver(name: str, port: int) -> Sequence[IPAddress]:
        raise AssertionError(f"resolved {name}")

    found = check_destination("0x08080808", 80, resolver=resolver, is_local=never_local)
    assert found.addresses == (ipaddress.IPv4Address("8.8.8.8"),)


def test_allow_private_lets_one_through_and_says_so() -> None:
    """allow_private is asked with the host and the address; a yes is recorded for the audit."""
    seen: list[tuple[Host, IPAddress]] = []

    def allow(host: Host, address: IPAddress) -> bool:
        seen.append((host, address))
        return True

    found = check_destination("metadata.test", 80, allow_private=allow, resolver=RESOLVE)
    assert [(h.text, str(a)) for h, a in seen] == [("metadata.test", "169.254.169.254")]
    assert "allowed by a rule" in found.allowed_private[0]


def test_this_hosts_own_address_refused() -> None:
    """A public-looking address this machine holds is refused as one of its own."""
    with pytest.raises(DestinationRefused, match="own address") as caught:
        check_destination("public.test", 80, resolver=RESOLVE, is_local=lambda a: True)
    assert caught.value.address_class == AddressClass.THIS_HOST


def _own_address() -> str:
    """This machine's source address towards a documentation address (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return "127.0.0.1"
        return str(probe.getsockname()[0])


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        (None, True),
    ],
    ids=["loopback", "loopback6", "public", "public6", "own-interface"],
)
def test_is_local_address(address: str | None, local: bool) -> None:
    """The kernel says which addresses are this machine's: loopback and its interfaces', not others."""
    assert is_local_address(ipaddress.ip_address(address or _own_address())) is local


def test_real_resolver_localhost_refused() -> None:
    """localhost, resolved by the system (the hosts file), is loopback and refused."""
    with pytest.raises(DestinationRefused, match="loopback"):
        check_destination("localhost", 80)
    assert all(a.is_loopback for a in system_resolver("localhost", 80))


@pytest.mark.parametrize("host", ["", "a..b", "[::1", "1.2.3.4.5", "exa mple.com"])
def test_invalid_host_is_a_usage_error(host: str) -> None:
    """A host that is no name and no address is a usage error, not a refusal."""
    with pytest.raises(UsageError):
        check_destination(host, 80, resolver=RESOLVE)


def test_unresolvable_name() -> None:
    """A name with no address fails, saying nothing was sent."""
    with pytest.raises(AirlockError, match=r"could not resolve nowhere\.test.*nothing was sent"):
        check_destination("nowhere.test", 80, resolver=RESOLVE)


def test_slow_resolver_bounded_by_timeout() -> None:
    """A resolver that hangs is given up on at the timeout."""
    release = threading.Event()

    def hanging(name: str, port: int) -> Sequence[IPAddress]:
        release.wait(10)
        return ()

    start = time.monotonic()
    with pytest.raises(AirlockError, match=r"no answer within 0\.2 s"):
        check_destination("slow.test", 80, resolver=hanging, timeout=0.2)
    assert time.monotonic() - start < 2
    release.set()


def test_async_variant_makes_the_same_checks() -> None:
    """resolve_checked_async refuses and admits exactly as check_destination does."""

    async def resolver(name: str, port: int) -> Sequence[IPAddress]:
        return RESOLVE(name, port)

    async def hanging(name: str, port: int) -> Sequence[IPAddress]:
        await asyncio.sleep(10)
        return ()

    async def scenario() -> None:
        found = await resolve_checked_async("v6.test", 443, resolver=resolver, is_local=never_local)
        assert [str(a) for a in found.addresses] == ["2606:4700::1111", "93.184.215.14"]
        with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1"):
            await resolve_checked_async(
                "twofaced.test", 443, resolver=resolver, is_local=never_local
            )
        with pytest.raises(DestinationRefused, match="loopback"):
            await resolve_checked_async("localhost", 80)
        with pytest.raises(AirlockError, match="no answer within"):
            await resolve_checked_async("slow.test", 80, resolver=hanging, timeout=0.1)
        with pytest.raises(UsageError):
            await resolve_checked_async("a..b", 80, resolver=resolver)

    asyncio.run(scenario())


def test_no_private_allows_nothing() -> None:
    """NO_PRIVATE, the default, says no to every address."""
    assert NO_PRIVATE(Host("x"), ipaddress.ip_address("127.0.0.1")) is False
