"""Small pure parts of delivery: backoff, collector URLs, issue links, the public API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

import airlock.feedback
import airlock.survey
from airlock.errors import RefusedError, UsageError
from airlock.feedback import Issue, Retry, issue_link
from airlock.feedback.upload import check_collector_url


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 0.5),
        (2, None, 1.0),
        (3, None, 2.0),
        (9, None, 8.0),
        (1, "3", 3.0),
        (1, "120", 8.0),
        (2, "soon", 1.0),
    ],
    ids=[
        "first",
        "doubles",
        "doubles_again",
        "capped",
        "retry_after",
        "retry_after_capped",
        "bad_retry_after",
    ],
)
def test_backoff(attempt: int, retry_after: str | None, expected: float) -> None:
    """Backoff doubles from 0.5 s up to 8 s; a numeric Retry-After wins, also capped."""
    assert Retry().delay(attempt, retry_after) == expected


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("https://collector.example.com/", "https://collector.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://localhost:9", "http://localhost:9"),
        ("http://collector.example.com", RefusedError),
        ("ftp://collector.example.com", UsageError),
        ("collector", UsageError),
    ],
    ids=[
        "https",
        "loopback_v4",
        "loopback_v6",
        "localhost",
        "plain_http_remote",
        "ftp",
        "no_scheme",
    ],
)
def test_collector_url(url: str, outcome: object) -> None:
    """HTTPS anywhere, HTTP to loopback only; anything else is refused with a reason."""
    if isinstance(outcome, str):
        assert check_collector_url(url) == outcome
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            check_collector_url(url)


@given(st.text(max_size=80), st.text(max_size=6000), st.integers(min_value=1200, max_value=9000))
def test_issue_link_never_exceeds_limit(title: str, body: str, limit: int) -> None:
    """Whatever the text (titles are at most 80 characters), the link fits and keeps the title."""
    link = issue_link(Issue(title, body), limit=limit)
    assert len(link) <= limit
    assert parse_qs(urlsplit(link).query, keep_blank_values=True)["title"] == [title]


@pytest.mark.parametrize("module", [airlock.feedback, airlock.survey], ids=["feedback", "survey"])
def test_exported_members_exist(module: object) -> None:
    """Every name in the package's __all__ can be imported."""
    for name in module.__all__:  # type: ignore[attr-defined]
        assert hasattr(module, name), name
