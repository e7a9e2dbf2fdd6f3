"""Hosts as the network reads them: one canonical text for every way of writing a name or address.

Theory of operation
-------------------
Rules, the preflight, the blocklist and the connection must agree on what a host *is*, or a
rule written for one spelling is passed by another. :func:`parse_host` reads a host the way
the connecting side does and gives back one canonical :class:`Host`:

* **Addresses** are read as ``getaddrinfo`` reads them (``inet_aton`` rules), so every spelling
  of an address is that address: one to four parts, each decimal, ``0x`` hexadecimal or
  ``0``-led octal, the last part filling the bytes left (``2130706433``, ``0x7f000001``,
  ``0177.0.0.1``, ``127.1`` are all ``127.0.0.1``). IPv6 is read with or without brackets, with
  a zone (``fe80::1%eth0``; a zone on an address that is not link-local is dropped, as the
  kernel ignores it there); an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is the IPv4
  address it maps, since a dual-stack socket connects to exactly that. A trailing dot changes
  nothing. A host whose last label is a number but which is no address (``1.2.3.4.5``,
  ``256.1.1.1``) is an error, as in a browser's URL parser: no real name ends in a number.
* **Names** are mapped and checked by UTS #46 (non-transitional, so ``ß`` stays ``ß``) and
  IDNA 2008 (the ``idna`` package, as httpx uses): ``ＥＸＡＭＰＬＥ.com`` is ``example.com``,
  ``straße.de`` is ``xn--strae-oqa.de`` (not ``strasse.de``, which IDNA 2003 would give),
  ``faß.de`` is ``xn--fa-hia.de`` (not ``fass.de``). ASCII labels keep ``_`` (real hosts use
  it); an ``xn--`` label must decode. The canonical name is the lower-case A-label form
  without a trailing dot: the one value rules match, the preflight asks and the client
  connects to. Anything else (an empty label, a space, ``%``, a label over 63 characters) is
  a :class:`HostError`, a :class:`ValueError` naming the host and why.

:func:`classify` says which kind of non-public address an address is (loopback, link-local,
cloud metadata, private, unspecified, multicast, reserved), or ``None`` for a public one, from
the table :data:`ADDRESS_CLASSES`. An IPv6 address that carries an IPv4 address (IPv4-compatible
``::a.b.c.d``, IPv4-translated ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo) is
classified by the IPv4 address too, so ``[::127.0.0.1]`` is loopback. Pure: no I/O (resolution
lives in :mod:`airlock.destinations`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from airlock.errors import HostError as HostError  # raised here; its class lives in errors.py

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NAME = 253
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_PLAIN_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_PLAIN_NAME = re.compile(rf"(?:{_PLAIN_LABEL}\.)*(?=[a-z0-9_-]*[g-wyz_]){_PLAIN_LABEL}\.?\Z")
"""A lower-case ASCII name UTS #46 leaves as it is, whose last label has a letter no number
has (so it is no address): the fast path, taken when it holds no ``xn--`` label to check."""
_NUMBER = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
"""A label ``getaddrinfo`` would read as a number: decimal, octal or hexadecimal."""


class AddressClass(StrEnum):
    """The kinds of address a fetch never reaches unless a rule says so."""

    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    METADATA = "cloud metadata"
    LINK_LOCAL = "link-local"
    PRIVATE = "private"
    MULTICAST = "multicast"
    RESERVED = "reserved"
    THIS_HOST = "own"
    """One of this machine's addresses (found by :mod:`airlock.destinations`, not here)."""


def _table(
    *rows: tuple[str, AddressClass, str],
) -> tuple[tuple[_Network, AddressClass, str], ...]:
    return tuple((ipaddress.ip_network(net), kind, why) for net, kind, why in rows)


ADDRESS_CLASSES = _table(
    # The most specific first: the first row that holds the address decides.
    (
        "169.254.169.254/32",
        AddressClass.METADATA,
        "instance metadata of AWS, GCP, Azure and others",
    ),
    ("169.254.170.2/32", AddressClass.METADATA, "AWS ECS task metadata"),
    ("100.100.100.200/32", AddressClass.METADATA, "Alibaba Cloud instance metadata"),
    ("192.0.0.192/32", AddressClass.METADATA, "Oracle Cloud instance metadata"),
    ("fd00:ec2::254/128", AddressClass.METADATA, "AWS instance metadata over IPv6"),
    ("fd00:ec2::23/128", AddressClass.METADATA, "AWS time sync and DNS over IPv6"),
    ("fd20:ce::254/128", AddressClass.METADATA, "GCP instance metadata over IPv6"),
    ("169.254.0.23/32", AddressClass.METADATA, "Tencent Cloud instance metadata"),
    ("168.63.129.16/32", AddressClass.METADATA, "Azure's host channel (WireServer)"),
    ("0.0.0.0/32", AddressClass.UNSPECIFIED, "reaches this host, RFC 1122"),
    ("::/128", AddressClass.UNSPECIFIED, "reaches this host, RFC 4291"),
    ("0.0.0.0/8", AddressClass.RESERVED, "'this network', RFC 791"),
    ("127.0.0.0/8", AddressClass.LOOPBACK, "RFC 1122"),
    ("::1/128", AddressClass.LOOPBACK, "RFC 4291"),
    ("169.254.0.0/16", AddressClass.LINK_LOCAL, "RFC 3927"),
    ("fe80::/10", AddressClass.LINK_LOCAL, "RFC 4291"),
    ("10.0.0.0/8", AddressClass.PRIVATE, "RFC 1918"),
    ("172.16.0.0/12", AddressClass.PRIVATE, "RFC 1918"),
    ("192.168.0.0/16", AddressClass.PRIVATE, "RFC 1918"),
    ("100.64.0.0/10", AddressClass.PRIVATE, "shared by carrier-grade NAT, RFC 6598"),
    ("fc00::/7", AddressClass.PRIVATE, "unique local, RFC 4193"),
    ("fec0::/10", AddressClass.PRIVATE, "site-local, deprecated, RFC 3879"),
    ("192.0.0.0/24", AddressClass.RESERVED, "IETF protocol assignments, RFC 6890"),
    ("192.0.2.0/24", AddressClass.RESERVED, "documentation, RFC 5737"),
    ("198.51.100.0/24", AddressClass.RESERVED, "documentation, RFC 5737"),
    ("203.0.113.0/24", AddressClass.RESERVED, "documentation, RFC 5737"),
    ("198.18.0.0/15", AddressClass.RESERVED, "benchmarking, RFC 2544"),
    ("192.88.99.0/24", AddressClass.RESERVED, "6to4 relay anycast, RFC 7526"),
    ("224.0.0.0/4", AddressClass.MULTICAST, "RFC 5771"),
    ("240.0.0.0/4", AddressClass.RESERVED, "future use and broadcast, RFC 1112"),
    ("ff00::/8", AddressClass.MULTICAST, "RFC 4291"),
    ("100::/64", AddressClass.RESERVED, "discard-only, RFC 6666"),
    ("2001:db8::/32", AddressClass.RESERVED, "documentation, RFC 3849"),
    ("2001:10::/28", AddressClass.RESERVED, "ORCHID, RFC 4843"),
    ("64:ff9b:1::/48", AddressClass.PRIVATE, "local-use IPv4/IPv6 translation, RFC 8215"),
    ("::/96", AddressClass.RESERVED, "IPv4-compatible IPv6, RFC 4291"),
)
"""Every non-public range: network, class, and what it is (in words, for messages)."""


@dataclass(frozen=True, slots=True)
class Host:
    """A host in its one canonical form: a name or an address, never both."""

    text: str
    """The canonical text: the A-label name, or the address (IPv6 without brackets)."""
    name: str | None = None
    """The lower-case A-label name without a trailing dot; ``None`` for an address."""
    address: IPAddress | None = None
    """The address; ``None`` for a name."""

    @property
    def url_host(self) -> str:
        """The host as a URL writes it (IPv6 in brackets)."""
        return f"[{self.text}]" if isinstance(self.address, ipaddress.IPv6Address) else self.text


def bracketed(host: str) -> str:
    """A host as a URL and ``--allow`` write it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """``host:port`` as messages show it: ``[::1]:8080`` for an IPv6 address."""
    return f"{bracketed(host)}:{port}"


def parse_host(text: str) -> Host:
    """Read a host (a URL's host, a rule's domain, a blocklist entry) in its canonical form.

    Raises:
        HostError: neither a valid name nor an address; the message says why.
    """
    return _parse_host(text)


@lru_cache(maxsize=8192)
def _parse_host(text: str) -> Host:
    raw = text.strip()
    name = raw.lower()
    if len(name) <= MAX_NAME and _PLAIN_NAME.match(name) and "xn--" not in name:
        name = name[:-1] if name.endswith(".") else name
        return Host(name, name=name)
    if raw.startswith("[") or raw.endswith("]"):
        return _bracketed(text, raw)
    if ":" in raw:
        return _address_host(_ipv6(text, raw))
    if raw.endswith(".") and not raw.endswith(".."):
        raw = raw[:-1]
    if not raw:
        raise HostError(
            f"host {text!r} is empty: expected a name such as example.com or an address"
        )
    address = parse_ipv4(raw)
    if address is not None:
        return _address_host(address)
    name = _name(text, raw)
    address = parse_ipv4(name)  # fullwidth digits, ideographic full stops: mapped first
    if address is not None:
        return _address_host(address)
    last = name.rsplit(".", 1)[-1]
    if _NUMBER.match(last):
        raise HostError(
            f"host {text!r} ends in a number but is not an IPv4 address: expected an address "
            "such as 93.184.215.14 or a name whose last label has a letter"
        )
    return Host(name, name=name)


def _bracketed(text: str, raw: str) -> Host:
    if not (raw.startswith("[") and raw.endswith("]")):
        raise HostError(f"host {text!r} has an unbalanced '[': expected [IPv6 address]")
    return _address_host(_ipv6(text, raw[1:-1]))


def _ipv6(text: str, raw: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(raw.replace("%25", "%", 1))
    except ValueError as error:
        raise HostError(f"host {text!r} is not a valid IPv6 address: {error}") from None


def _address_host(address: IPAddress) -> Host:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    zoned = isinstance(address, ipaddress.IPv6Address) and address.scope_id
    if zoned and not address.is_link_local:  # the kernel ignores the zone: the same address
        address = ipaddress.IPv6Address(str(address).partition("%")[0])
    return Host(str(address), address=address)


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``text`` is under ``inet_aton`` rules (what ``getaddrinfo`` takes); else ``None``.

    >>> [str(parse_ipv4(t)) for t in ("2130706433", "0x7f.1", "0177.0.0.1", "127.1")]
    ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']
    """
    parts = text.lower().split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        value = _aton_number(part)
        if value is None:
            return None
        values.append(value)
    *head, last = values
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _aton_number(part: str) -> int | None:
    if not part.isascii():
        return None
    try:
        if part.startswith("0x"):
            return (
                int(part[2:] or "0", 16) if all(c in "0123456789abcdef" for c in part[2:]) else None
            )
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8) if part.isdigit() else None
        return int(part) if part.isdigit() else None
    except ValueError:  # an 8 or 9 in an octal part
        return None


def _name(text: str, raw: str) -> str:
    import idna  # only for names the plain-name check above does not take (start-up time)

    try:
        mapped = idna.uts46_remap(raw, std3_rules=False, transitional=False)
    except idna.IDNAError as error:
        raise HostError(f"host {text!r} is not a valid hostname: {error}") from None
    if mapped.endswith(".") and not mapped.endswith(".."):
        mapped = mapped[:-1]
    labels = [_label(text, label) for label in mapped.split(".")]
    name = ".".join(labels)
    if len(name) > MAX_NAME:
        raise HostError(f"host {text!r} is longer than {MAX_NAME} characters")
    return name


def _label(text: str, label: str) -> str:
    """One label in its A-label form, checked."""
    import idna

    if not label:
        raise HostError(f"host {text!r} has an empty label")
    if label.isascii():
        if not _ASCII_LABEL.match(label):
            raise HostError(
                f"label {label!r} of host {text!r} is not valid: expected letters, digits, "
                "'-' and '_', at most 63, not starting or ending with '-'"
            )
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError) as error:
                raise HostError(
                    f"label {label!r} of host {text!r} is not a valid A-label: {error}"
                ) from None
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise HostError(
            f"label {label!r} of host {text!r} is not valid under IDNA 2008: {error}"
        ) from None


def canonical_label(label: str) -> str:
    """One label of a name in its A-label form (UTS #46, IDNA 2008).

    Raises:
        HostError: the label is empty or not valid.
    """
    import idna

    try:
        mapped = idna.uts46_remap(label, std3_rules=False, transitional=False)
    except idna.IDNAError as error:
        raise HostError(f"label {label!r} is not valid: {error}") from None
    return _label(label, mapped)


def normalize_host(text: str) -> str:
    """The canonical text of ``text`` (:func:`parse_host`); an invalid host comes back trimmed,
    without trailing dots, lower-cased.

    For callers that compare and must not raise (a blocklist entry, a rule already reported):
    an invalid host's text equals no canonical host, so it matches nothing valid.
    """
    try:
        return parse_host(text).text
    except HostError:
        return text.strip().rstrip(".").lower()


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (compatible, translated, NAT64, 6to4,
    Teredo); else ``None``."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d, but not :: or ::1
        return ipaddress.IPv4Address(value)
    if value >> 32 == 0x64FF9B << 64:  # 64:ff9b::a.b.c.d, NAT64's well-known prefix
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 32 == 0xFFFF0000:  # ::ffff:0:a.b.c.d, IPv4-translated (SIIT, RFC 2765)
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


@lru_cache(maxsize=4096)
def describe_class(address: IPAddress) -> tuple[AddressClass, str] | None:
    """The class of a non-public address and what its range is, in words; ``None`` when public."""
    for network, kind, why in ADDRESS_CLASSES:
        if address.version == network.version and address in network:
            if kind is AddressClass.RESERVED and network.prefixlen == 96:
                break  # ::/96: decided by the IPv4 address it carries, below
            return kind, why
    inner = embedded_ipv4(address)
    if inner is not None:
        found = describe_class(inner)
        if found is not None:
            return found[0], f"{found[1]}, as {inner} carried in IPv6"
        if int(address) >> 32 == 0:
            return AddressClass.RESERVED, "IPv4-compatible IPv6, RFC 4291"
    return None


def classify(address: IPAddress) -> AddressClass | None:
    """Which non-public class ``address`` is in; ``None`` when it is public."""
    found = describe_class(address)
    return None if found is None else found[0]


def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names ``host``: ``*``, the host itself, or a parent (``example.com``,
    ``.example.com`` and ``*.example.com`` all cover ``www.example.com``), or, for an address,
    a network holding it (``10.0.0.0/8``, ``fd00::/8``, as curl and Go read them); an entry's
    ``:port`` is ignored."""
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    for entry in no_proxy.split(","):
        wanted = entry.strip().lower()
        if "/" in wanted:
            if _in_network(host, wanted):
                return True
            continue
        if wanted.startswith("[") and "]" in wanted:
            wanted = wanted[1 : wanted.index("]")]
        elif wanted.count(":") == 1:
            wanted = wanted.partition(":")[0]
        wanted = wanted.removeprefix("*.").strip(".")
        if wanted == "*" or (wanted and (host == wanted or host.endswith("." + wanted))):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    """Whether ``host`` is an address in ``network`` (``10.0.0.0/8``); ``False`` for a name,
    or an entry that is no network."""
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
