"""Pin hostnames to addresses, as ``curl --resolve HOST:PORT:ADDR`` does.

The request keeps its hostname everywhere that matters (the ``Host`` header, TLS server name
and certificate check); only the address it connects to changes. Used by ``airlock fetch
--resolve`` and by the tests, so no test ever asks real DNS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from airlock.errors import UsageError
from airlock.policy.rules import normalize_host


@dataclass(frozen=True, slots=True)
class Pin:
    """``host:port`` goes to ``address`` instead of what DNS says."""

    host: str
    port: int
    address: str


def parse_pin(text: str) -> Pin:
    """Parse ``HOST:PORT:ADDR`` (``ADDR`` may be an IPv6 address in brackets).

    Raises:
        UsageError: the text is not ``HOST:PORT:ADDR``.
    """
    host, _, rest = text.partition(":")
    port, _, address = rest.partition(":")
    address = address.strip("[]")
    if not host or not port.isdigit() or not address or not 0 < int(port) < 65536:
        raise UsageError(
            f"--resolve {text!r}: expected HOST:PORT:ADDRESS, e.g. example.com:443:127.0.0.1"
        )
    return Pin(normalize_host(host), int(port), address)


class PinnedTransport(httpx.BaseTransport):
    """Sends requests for pinned ``host:port`` pairs to their pinned address.

    Args:
        pins: ``(host, port) -> address``.
        inner: the transport that does the work; a default :class:`httpx.HTTPTransport`.
    """

    def __init__(
        self, pins: Mapping[tuple[str, int], str], inner: httpx.BaseTransport | None = None
    ) -> None:
        self.pins = dict(pins)
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    @classmethod
    def from_pins(
        cls, pins: list[Pin], inner: httpx.BaseTransport | None = None
    ) -> PinnedTransport:
        return cls({(pin.host, pin.port): pin.address for pin in pins}, inner)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        address = self.pins.get((normalize_host(url.host), port))
        if address is not None:
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": url.host}
            request.url = url.copy_with(host=address)
            try:
                return self.inner.handle_request(request)
            finally:
                request.url = url
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
