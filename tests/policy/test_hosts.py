"""Hosts in one canonical form: every spelling of an address is that address, names by UTS #46."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.policy.hosts import (
    AddressClass,
    HostError,
    canonical_label,
    classify,
    embedded_ipv4,
    normalize_host,
    parse_host,
    parse_ipv4,
)

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0x7f.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0177.0.0.01",
    "017700000001",
    "127.1",
    "127.0.1",
    "127.000.000.001",
    "127.0.0.1.",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::FFFF:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "１２７.０.０.１",
    "127。0。0。1",
    " 127.0.0.1 ",
]


@pytest.mark.parametrize("text", LOOPBACK_SPELLINGS)
def test_loopback_spellings_are_one_address(text: str) -> None:
    """Every spelling getaddrinfo or a URL parser reads as 127.0.0.1 is 127.0.0.1."""
    host = parse_host(text)
    assert host.address == ipaddress.IPv4Address("127.0.0.1")
    assert host.text == "127.0.0.1" and host.name is None


@pytest.mark.parametrize(
    "text",
    [
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "169.254.43518",
        "[::ffff:a9fe:a9fe]",
    ],
)
def test_metadata_spellings_are_one_address(text: str) -> None:
    """The cloud metadata address is the same however it is written, and classified as metadata."""
    host = parse_host(text)
    assert host.text == "169.254.169.254"
    assert host.address is not None and classify(host.address) is AddressClass.METADATA


@pytest.mark.parametrize(
    "text",
    ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "10.0x1.0.1", "1.2.65535", "0"],
)
def test_ipv4_parsing_matches_inet_aton(text: str) -> None:
    """The IPv4 reading is the C library's inet_aton reading, byte for byte."""
    parsed = parse_ipv4(text)
    assert parsed is not None and parsed.packed == socket.inet_aton(text)


@pytest.mark.parametrize(
    "text", ["256.1.1.1", "1.2.3.4.5", "08.1.1.1", "0x1g.1", "4294967296", "1.2.3.256", "1.2.65536"]
)
def test_ipv4_parsing_refuses_what_inet_aton_refuses(text: str) -> None:
    """What inet_aton refuses is no address here either."""
    with pytest.raises(OSError):
        socket.inet_aton(text)
    assert parse_ipv4(text) is None


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=4))
def test_ipv4_any_split_and_base_is_the_address(number: int, parts: int) -> None:
    """Any inet_aton spelling of any address (parts, bases) parses to that address."""
    octets = number.to_bytes(4, "big")
    head = list(octets[: parts - 1])
    last = int.from_bytes(octets[parts - 1 :], "big")
    for base in (str, hex, oct):
        fields = [base(v) for v in (*head, last)]
        text = ".".join(f.replace("0o", "0") for f in fields)
        assert parse_ipv4(text) == ipaddress.IPv4Address(number)
        assert parse_ipv4(text) == ipaddress.IPv4Address(socket.inet_aton(text))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("straße.de", "xn--strae-oqa.de"),
        ("STRASSE.de", "strasse.de"),
        ("xn--strae-oqa.de", "xn--strae-oqa.de"),
        ("XN--STRAE-OQA.DE.", "xn--strae-oqa.de"),
        ("faß.de", "xn--fa-hia.de"),
        ("fass.de", "fass.de"),
        ("ＥＸＡＭＰＬＥ.com", "example.com"),
        ("example。com", "example.com"),
        ("Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("my_host.example.com", "my_host.example.com"),
        ("Ⅷ.example", "viii.example"),
        ("[::1]", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
    ],
)
def test_canonical_names(text: str, canonical: str) -> None:
    """Names map by UTS #46 (non-transitional) to lower-case A-labels; IPv6 loses its brackets."""
    assert parse_host(text).text == canonical


def test_eszett_is_not_its_transitional_mapping() -> None:
    """faß.de and fass.de are two hosts, as the HTTP client connects to them."""
    assert parse_host("faß.de") != parse_host("fass.de")
    assert parse_host("straße.de") == parse_host("xn--strae-oqa.de")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("a..b", "empty label"),
        ("-a.com", "not valid"),
        ("a b.com", "not valid"),
        ("x%2e.com", "not valid"),
        ("a" * 64 + ".com", "not valid"),
        (".".join(["a" * 60] * 5), "longer than 253"),
        ("xn--abc.de", "not a valid A-label"),
        ("a\u200db.com", "IDNA 2008"),
        ("[::1", "unbalanced"),
        ("[example.com]", "IPv6"),
        ("1.2.3.4.5", "ends in a number"),
        ("256.0.0.1", "ends in a number"),
        ("example.0x10", "ends in a number"),
        ("::g", "IPv6"),
    ],
)
def test_invalid_hosts_are_clear_errors(text: str, why: str) -> None:
    """A host that is neither a valid name nor an address is a ValueError saying why."""
    with pytest.raises(HostError, match=why) as caught:
        parse_host(text)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.255.255.254", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("::127.0.0.1", AddressClass.LOOPBACK),
        ("64:ff9b::127.0.0.1", AddressClass.LOOPBACK),
        ("2002:7f00:1::", AddressClass.LOOPBACK),
        ("169.254.169.254", AddressClass.METADATA),
        ("169.254.170.2", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("100.100.100.200", AddressClass.METADATA),
        ("64:ff9b::a9fe:a9fe", AddressClass.METADATA),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("172.31.255.255", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),
        ("fd12::1", AddressClass.PRIVATE),
        ("fc00::1", AddressClass.PRIVATE),
        ("0.0.0.0", AddressClass.UNSPECIFIED),  # noqa: S104 - classified, nothing binds
        ("::", AddressClass.UNSPECIFIED),
        ("0.1.2.3", AddressClass.RESERVED),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("255.255.255.255", AddressClass.RESERVED),
        ("240.0.0.1", AddressClass.RESERVED),
        ("192.0.2.1", AddressClass.RESERVED),
        ("2001:db8::1", AddressClass.RESERVED),
        ("::8.8.8.8", AddressClass.RESERVED),
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("2606:4700::1111", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_classify(text: str, kind: AddressClass | None) -> None:
    """Each range has its class; public addresses have none."""
    assert classify(ipaddress.ip_address(text)) is kind


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_classify_sees_through_ipv6_wrappers(number: int) -> None:
    """An IPv4 address carried in IPv6 (mapped, compatible, NAT64) is never more public than itself."""
    inner = ipaddress.IPv4Address(number)
    kind = classify(inner)
    for wrapper in (0xFFFF << 32, 0x64FF9B << 96, 0):
        outer = ipaddress.IPv6Address((wrapper) | number)
        if kind is not None:
            assert classify(outer) is kind or (number <= 1 and wrapper == 0)
        if wrapper != 0 or number > 1:
            assert embedded_ipv4(outer) == inner


@given(st.ip_addresses())
def test_parse_host_round_trips_canonical_text(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """The canonical text of an address parses back to the same host (normalising is idempotent)."""
    host = parse_host(str(address))
    assert parse_host(host.text) == host
    assert parse_host(host.url_host) == host


@given(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?(?:\.[a-z]{2,6}){1,3}", fullmatch=True))
def test_ascii_names_are_themselves(name: str) -> None:
    """A plain lower-case ASCII name is its own canonical form, and normalising twice changes nothing."""
    if "--" in name[2:4]:
        return
    assert parse_host(name).text == name
    assert normalize_host(normalize_host(name.upper() + ".")) == name


def test_normalize_host_never_raises() -> None:
    """normalize_host gives invalid hosts back trimmed and lower-cased, matching no valid host."""
    assert normalize_host(" A..B. ") == "a..b"
    assert normalize_host("0x7f000001") == "127.0.0.1"


@given(st.from_regex(r"[a-zA-Z0-9_.-]{1,40}", fullmatch=True))
def test_ascii_names_read_as_uts46_reads_each_label(text: str) -> None:
    """A plain ASCII name reads as its labels one by one under UTS #46 and IDNA 2008."""
    try:
        host = parse_host(text)
    except HostError:
        return
    if host.address is not None:
        return
    labels = text.lower().removesuffix(".").split(".")
    assert host.text == ".".join(canonical_label(label) for label in labels)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("[2606:4700:4700::1111%250]", "2606:4700:4700::1111"),
        ("2606:4700:4700::1111%251", "2606:4700:4700::1111"),
        ("[::1%25lo]", "::1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
    ],
)
def test_a_zone_is_kept_only_where_it_matters(text: str, canonical: str) -> None:
    """A zone on an address that is not link-local is ignored by the kernel: the canonical
    text drops it, so a rule for the address holds whatever zone is written."""
    assert parse_host(text).text == canonical


@pytest.mark.parametrize("address", ["fd20:ce::254", "169.254.0.23", "168.63.129.16"])
def test_more_cloud_metadata_addresses(address: str) -> None:
    assert classify(parse_host(address).address) is AddressClass.METADATA  # type: ignore[arg-type]
