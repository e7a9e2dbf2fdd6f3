"""Hostname hashing for the private mode, shared by the client and the domain-safety service.

The client never sends a hostname in private mode. It hashes the hostname and each of its
parent domains with SHA-256, sends only the first :data:`PREFIX_HEX` hex digits of each
hash, and the service answers with every full hash of its blocklist under those prefixes; the
client then decides locally. A listed domain blocks its subdomains, so the parents count too.

Single-label parents (``com``, ``org``) are not sent: there are only about 1,500 top-level
domains, so their prefixes would tell the service the top-level domain of every lookup. A
blocklist entry for a whole top-level domain is therefore enforced in hostname mode only.

Privacy: a 4-hex-digit (16-bit) prefix is shared by 1/65,536 of all hostnames. With about
370 million registered domain names in use, some 5,600 of them share each prefix, and with
1,000,000 listed domains the service returns about 15 full hashes for each prefix it is asked.
"""

from __future__ import annotations

import hashlib
import ipaddress

from airlock.policy.hosts import embedded_ipv4

PREFIX_HEX = 4
"""Hex digits of each hash prefix the client sends (16 bits)."""
MIN_PREFIX_HEX = 4
"""The service refuses shorter prefixes: the answer would be too large."""
MAX_PREFIX_HEX = 16
"""The service refuses longer prefixes: a long prefix is nearly the hostname itself."""


def digest(domain: str) -> bytes:
    """SHA-256 of a normalised host (its canonical text: :func:`airlock.policy.hosts.parse_host`)."""
    return hashlib.sha256(domain.encode("ascii", "replace")).digest()


def is_address(host: str) -> bool:
    """Whether ``host`` is an IP address literal rather than a name."""
    if not host or (host[-1].isalpha() and ":" not in host):
        return False  # a name's last label has a letter (no top-level domain is numeric)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def domains_of(host: str) -> tuple[str, ...]:
    """``host`` and every parent domain, longest first; an IP address stands alone, or with the
    IPv4 address it carries (``::127.0.0.1``, NAT64, 6to4), so a listed IPv4 address blocks it.

    >>> domains_of("a.b.example.com")
    ('a.b.example.com', 'b.example.com', 'example.com', 'com')
    >>> domains_of("64:ff9b::a9fe:a9fe")
    ('64:ff9b::a9fe:a9fe', '169.254.169.254')
    """
    if is_address(host):
        carried = embedded_ipv4(ipaddress.ip_address(host))
        return (host,) if carried is None else (host, str(carried))
    labels = host.split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels)))


def private_domains_of(host: str) -> tuple[str, ...]:
    """The domains the private mode asks about: :func:`domains_of` without single labels."""
    found = domains_of(host)
    kept = tuple(domain for domain in found if "." in domain or is_address(domain))
    return kept or found[:1]


def prefix_of(domain: str, length: int = PREFIX_HEX) -> str:
    """The first ``length`` hex digits of the domain's hash."""
    return digest(domain).hex()[:length]


def prefixes_for(host: str, length: int = PREFIX_HEX) -> list[str]:
    """The distinct prefixes the private mode sends for ``host``, sorted (order tells nothing)."""
    return sorted({prefix_of(domain, length) for domain in private_domains_of(host)})


def blocked_by(host: str, listed: set[str]) -> bool:
    """The private mode's local decision: is a full hash of ``host`` or a parent in ``listed``?"""
    return any(digest(domain).hex() in listed for domain in private_domains_of(host))
