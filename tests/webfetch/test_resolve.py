"""``--resolve HOST:PORT:ADDR`` pins: parsing, and requests keep their hostname."""

from __future__ import annotations

import httpx
import pytest

from airlock.errors import UsageError
from airlock.webfetch import Pin, PinnedTransport, parse_pin
from tests.servers import origin_site


@pytest.mark.parametrize(
    ("text", "pin"),
    [
        ("example.org:443:127.0.0.1", Pin("example.org", 443, "127.0.0.1")),
        ("Example.ORG.:80:[::1]", Pin("example.org", 80, "::1")),
    ],
)
def test_parse(text: str, pin: Pin) -> None:
    """HOST:PORT:ADDR parses, the host normalised and IPv6 brackets dropped."""
    assert parse_pin(text) == pin


@pytest.mark.parametrize(
    "text", ["example.org", "example.org:x:1.2.3.4", ":80:1.2.3.4", "a:0:1.2.3.4", "a:80:"]
)
def test_parse_errors(text: str) -> None:
    """Anything else is a usage error showing the expected form."""
    with pytest.raises(UsageError, match="HOST:PORT:ADDRESS"):
        parse_pin(text)


def test_pinned_request_keeps_host_header() -> None:
    """A pinned request reaches the pinned address with its own Host header; others are untouched."""
    with origin_site() as site:
        port = site.server_address[1]
        transport = PinnedTransport.from_pins([Pin("named.test", port, "127.0.0.1")])
        with httpx.Client(transport=transport) as client:
            response = client.get(f"http://named.test:{port}/text")
            assert response.status_code == 200
            assert str(response.url) == f"http://named.test:{port}/text"
            assert client.get(f"http://127.0.0.1:{port}/text").status_code == 200
        assert site.hosts == [f"named.test:{port}", f"127.0.0.1:{port}"]
