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
