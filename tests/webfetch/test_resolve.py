"""``--resolve HOST:PORT:ADDR`` pins: parsing, and a pin replaces DNS but not the checks."""

from __future__ import annotations

import ipaddress

import pytest

from airlock.destinations import check_destination
from airlock.errors import DestinationRefused, UsageError
from airlock.webfetch import Pin, parse_pin, pinned_resolver


@pytest.mark.parametrize(
    ("text", "pin"),
    [
        ("example.org:443:127.0.0.1", Pin("example.org", 443, "127.0.0.1")),
        ("Example.ORG.:80:[::1]", Pin("example.org", 80, "::1")),
        ("straße.de:443:2130706433", Pin("xn--strae-oqa.de", 443, "127.0.0.1")),
        ("a.test:80:[::ffff:10.0.0.1]", Pin("a.test", 80, "10.0.0.1")),
    ],
)
def test_parse(text: str, pin: Pin) -> None:
    """HOST:PORT:ADDR parses, the host and the address in their canonical forms."""
    assert parse_pin(text) == pin


@pytest.mark.parametrize(
    "text",
    [
        "example.org",
        "example.org:x:1.2.3.4",
        ":80:1.2.3.4",
        "a:0:1.2.3.4",
        "a:80:",
        "a.test:80:b.test",
        "1.2.3.4:80:1.2.3.4",
    ],
)
def test_parse_errors(text: str) -> None:
    """Anything else is a usage error showing the expected form."""
    with pytest.raises(UsageError, match=r"HOST:PORT:ADDRESS|expected a name"):
        parse_pin(text)


def test_invalid_names_in_pins() -> None:
    """A pin's host must be a valid name, its address a valid address."""
    with pytest.raises(UsageError, match="empty label"):
        parse_pin("a..b:80:1.2.3.4")


def test_pins_resolve_only_their_host_and_port() -> None:
    """A pin answers for its host:port; anything else goes to the fallback, or does not resolve."""
    pins = [parse_pin("site.test:8080:93.184.215.14")]
    resolve = pinned_resolver(pins, None)
    assert resolve("site.test", 8080) == (ipaddress.ip_address("93.184.215.14"),)
    with pytest.raises(OSError, match="not pinned"):
        resolve("site.test", 80)
    fallback = pinned_resolver(pins, lambda name, port: (ipaddress.ip_address("8.8.8.8"),))
    assert fallback("other.test", 80) == (ipaddress.ip_address("8.8.8.8"),)


def test_a_pinned_private_address_is_still_checked() -> None:
    """Pinning a name to loopback does not bypass the private-destination check."""
    resolve = pinned_resolver([parse_pin("site.test:80:127.0.0.1")], None)
    with pytest.raises(DestinationRefused, match="loopback"):
        check_destination("site.test", 80, resolver=resolve)
