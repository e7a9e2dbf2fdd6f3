"""The blocklist: file formats, subdomain blocking, hash-prefix ranges, reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.collector import BlockList, ReloadingBlockList, parse_lines
from airlock.errors import UsageError
from airlock.webfetch import hashing

HOSTS_FILE = """\
# a hosts-format list
127.0.0.1 localhost
::1 localhost ip6-localhost
0.0.0.0 ads.example.com tracker.example.net  # two on one line
0.0.0.0 Upper.Example.ORG.

plain.test
  spaced.test
"""


def test_parse_formats() -> None:
    """Plain lines and hosts lines both count; comments, blanks and the hosts file's own names do not."""
    assert list(parse_lines(HOSTS_FILE.splitlines())) == [
        "ads.example.com",
        "tracker.example.net",
        "upper.example.org",
        "plain.test",
        "spaced.test",
    ]


@pytest.mark.parametrize(
    ("host", "blocked"),
    [
        ("ads.example.com", True),
        ("x.y.ads.example.com", True),
        ("ADS.EXAMPLE.COM.", True),
        ("example.com", False),
        ("bads.example.com", False),
        ("upper.example.org", True),
        ("localhost", False),
        ("plain.test", True),
        ("test", False),
    ],
)
def test_blocks(host: str, blocked: bool) -> None:
    """A listed domain blocks itself and its subdomains, and nothing else."""
    table = BlockList(parse_lines(HOSTS_FILE.splitlines()))
    assert len(table) == 5
    assert table.blocks(host) is blocked


DOMAINS = st.lists(
    st.text(alphabet="abcdefghij.", min_size=1, max_size=12).filter(
        lambda d: ".." not in d and not d.startswith(".")
    ),
    max_size=200,
)


@settings(max_examples=50, deadline=None)
@given(DOMAINS, st.text(alphabet="0123456789abcdef", min_size=4, max_size=6))
def test_prefix_ranges_equal_brute_force(domains: list[str], prefix: str) -> None:
    """The hashes under a prefix are exactly the listed hashes that start with it."""
    table = BlockList(domains)
    expected = sorted(
        {hashing.digest(d.rstrip(".")).hex() for d in domains} & set(_all(domains, prefix))
    )
    assert table.hashes_with_prefix(prefix) == expected
    for domain in domains:
        full = hashing.digest(domain.rstrip(".")).hex()
        assert full in table.hashes_with_prefix(full[:4])


def _all(domains: list[str], prefix: str) -> list[str]:
    return [
        h for h in (hashing.digest(d.rstrip(".")).hex() for d in domains) if h.startswith(prefix)
    ]


@pytest.mark.parametrize("prefix", ["abc", "0" * 17, "xyz1", ""])
def test_bad_prefix(prefix: str) -> None:
    """Prefixes shorter than 4 or longer than 16 hex digits, or not hex, are refused."""
    with pytest.raises(ValueError, match="prefix"):
        BlockList(["a.test"]).hashes_with_prefix(prefix)


def test_compact() -> None:
    """The table holds 40 bytes a domain, and a fixed 256 KB index."""
    table = BlockList(f"host{i}.example.com" for i in range(10_000))
    assert 400_000 + 262_148 <= table.nbytes() < 420_000 + 262_148 + 1_000


def test_missing_file() -> None:
    """A missing file is a usage error naming it."""
    with pytest.raises(UsageError, match=r"nowhere\.txt"):
        BlockList.from_file(Path("/nowhere.txt"))


def test_reload_on_change(tmp_path: Path) -> None:
    """A changed file is loaded at the next look (injected clock); until then the old table answers."""
    path = tmp_path / "list.txt"
    path.write_text("one.test\n")
    now = [0.0]
    source = ReloadingBlockList(path, clock=lambda: now[0], check_every=1.0)
    assert source.get().blocks("one.test")
    path.write_text("two.test\nthree.test\n")
    assert source.get().blocks("one.test")  # not yet time to look
    now[0] = 1.0
    source.get()
    for thread in list(_reloads()):
        thread.join(30)
    table = source.get()
    assert not table.blocks("one.test") and table.blocks("two.test")
    assert source.reloads == 1


def test_reload_failure_keeps_old_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read on reload leaves the previous table in force and says so."""
    path = tmp_path / "list.txt"
    path.write_text("one.test\n")
    source = ReloadingBlockList(path, clock=lambda: 0.0)
    path.unlink()
    path.mkdir()  # now unreadable as a file
    assert source.reload(wait=True)
    assert source.current.blocks("one.test") and source.reloads == 0
    assert "keeping the previous blocklist" in capsys.readouterr().err


def _reloads() -> list[object]:
    import threading

    return [t for t in threading.enumerate() if t.name == "blocklist-reload"]


GARBAGE_FILE = b"""\
good.test
not a domain at all
0.0.0.0 hosts.test
-bad-.test
\xff\xfe binary
exa mple.com junk
10.1.2.3 other.test
"""


def test_invalid_lines_reported(tmp_path: Path) -> None:
    """Invalid entries are skipped, counted and numbered; valid ones are kept."""
    from airlock.collector.blocklist import read_blocklist

    path = tmp_path / "list.txt"
    path.write_bytes(b"# list\n\n" + GARBAGE_FILE + "b\u00fccher.example\n".encode())
    table, report = read_blocklist(path)
    assert (report.entries, report.invalid, report.invalid_lines) == (8, 5, (4, 6, 7, 8, 9))
    assert table.blocks("good.test") and table.blocks("x.hosts.test")
    assert table.blocks("xn--bcher-kva.example") and len(table) == 3
    assert report.mostly_invalid
    assert "5 invalid lines of 8 entries (lines 4, 6, 7, 8, 9)" in report.describe_invalid()


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_refused(tmp_path: Path, seed: int) -> None:
    """A binary file is not a blocklist: refused at start, naming the invalid lines."""
    import random

    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(seed).randbytes(200_000))
    with pytest.raises(UsageError, match=r"not a blocklist: \d+ invalid lines of \d+ entries"):
        BlockList.from_file(path)
    with pytest.raises(UsageError, match="not a blocklist"):
        ReloadingBlockList(path, clock=lambda: 0.0)


def _replace(path: Path, data: bytes) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    fresh.replace(path)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x01garbage\n\xff\xfe\nzz zz zz\n" * 100, "is not a blocklist"),
        (b"", "is empty"),
    ],
    ids=["garbage", "empty"],
)
def test_reload_refuses_bad_file(tmp_path: Path, data: bytes, why: str) -> None:
    """A reload that would serve garbage or nothing keeps the previous list, loudly, once per change."""
    path = tmp_path / "list.txt"
    path.write_text("one.test\ntwo.test\n")
    said: list[str] = []
    source = ReloadingBlockList(path, clock=lambda: 0.0, warn=said.append)
    _replace(path, data)
    assert source.reload_if_changed(wait=True)
    assert source.current.blocks("one.test") and len(source.current) == 2
    assert source.reloads == 0 and source.refused == 1
    assert len(said) == 1 and "WARNING" in said[0] and why in said[0]
    assert "keeping the previous blocklist (2 domains) in force" in said[0]
    assert not source.reload_if_changed(wait=True)  # not tried again until the file changes
    _replace(path, b"three.test\nbad entry\n" + b"four.test\n")
    assert source.reload_if_changed(wait=True)
    assert source.current.blocks("three.test") and not source.current.blocks("one.test")
    assert any("skipped 1 invalid line of 3 entries (line 2)" in line for line in said)
    assert "reloaded blocklist" in said[-1] and "2 domains (was 2)" in said[-1]


NAMES = st.one_of(
    st.from_regex(r"[a-z0-9_-]{1,10}(\.[a-z0-9_-]{1,10}){0,3}\.?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9.\-_]{1,20}", fullmatch=True),
    st.from_regex(r"(xn--)?[a-z0-9]{1,6}\.[a-z]{2,3}", fullmatch=True),
    st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True),
    st.sampled_from(
        ["a" * 63 + ".com", "a" * 64 + ".com", "_x.com", "x_.com", "1.2.3.com", "a.123"]
    ),
)


@settings(max_examples=500, deadline=None)
@given(NAMES)
def test_plain_names_taken_as_the_host_parser_reads_them(name: str) -> None:
    """A blocklist entry is the canonical host of policy.hosts: the plain-name shortcut agrees."""
    from airlock.collector.blocklist import canonical
    from airlock.policy.hosts import HostError, parse_host

    try:
        expected: str | None = parse_host(name.lower()).text
    except HostError:
        expected = None
    try:
        got: str | None = canonical(name.lower())
    except HostError:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    ("entry", "asked", "blocked"),
    [
        ("127.0.0.1", "2130706433", True),
        ("2130706433", "127.0.0.1", True),
        ("0x7f000001", "127.1", True),
        ("169.254.169.254", "0xa9fea9fe", True),
        ("10.0.0.1", "::ffff:10.0.0.1", True),
        ("straße.de", "xn--strae-oqa.de", True),
        ("straße.de", "strasse.de", False),
        ("faß.de", "fass.de", False),
        ("EXAMPLE.COM.", "www.example.com", True),
        ("example.com", "example.com.evil.test", False),
    ],
)
def test_one_name_one_meaning(entry: str, asked: str, blocked: bool) -> None:
    """However an entry or a host is written, the same host is the same entry."""
    table = BlockList(parse_lines([entry]))
    assert table.blocks(asked) is blocked


def test_reading_a_file_equals_parsing_its_lines(tmp_path: Path) -> None:
    """read_blocklist keeps what parse_lines keeps, and numbers the lines it refuses."""
    from airlock.collector.blocklist import parse_line, read_blocklist

    lines = ["# c", "a.test", "0.0.0.0 b.test c.test", "bad entry", "", "x..y", "d.test."]
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines))
    table, report = read_blocklist(path)
    assert len(table) == 4 and all(
        table.listed(n) for n in ("a.test", "b.test", "c.test", "d.test")
    )
    assert report.invalid_lines == (4, 6) and report.entries == 5
    assert [parse_line(line) for line in lines][3] is None
