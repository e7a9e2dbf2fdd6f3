"""The private mode decides as the hostname mode does, from hash prefixes alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.collector import BlockList
from airlock.webfetch import hashing

LABEL = st.sampled_from(["a", "b", "cdn", "www", "example", "evil"])
NAME = st.lists(LABEL, min_size=2, max_size=4).map(".".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(NAME, max_size=30), NAME)
def test_private_decision_equals_hostname_decision(listed: list[str], host: str) -> None:
    """For lists without single-label entries, hash prefixes give the same answer as the hostname."""
    table = BlockList(listed)
    answer: set[str] = set()
    for prefix in hashing.prefixes_for(host):
        answer.update(table.hashes_with_prefix(prefix))
    assert hashing.blocked_by(host, answer) is table.blocks(host)


@pytest.mark.parametrize(
    ("host", "domains"),
    [
        ("a.b.example.com", ("a.b.example.com", "b.example.com", "example.com", "com")),
        ("localhost", ("localhost",)),
        ("10.0.0.1", ("10.0.0.1",)),
        ("::1", ("::1",)),
    ],
)
def test_domains_of(host: str, domains: tuple[str, ...]) -> None:
    """A name and each parent, longest first; an address stands alone."""
    assert hashing.domains_of(host) == domains


def test_private_domains_leave_out_top_level() -> None:
    """The private mode never asks about a top-level domain alone, but a single-label host is asked."""
    assert hashing.private_domains_of("www.example.org") == ("www.example.org", "example.org")
    assert hashing.private_domains_of("intranet") == ("intranet",)
