"""The collector app's domain-safety endpoints, served by uvicorn on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock.collector import ReloadingBlockList, ServiceRoute, create_app, domain_safety_routes
from airlock.webfetch import hashing
from tests.servers import served


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    path = tmp_path / "blocklist.txt"
    path.write_text("0.0.0.0 evil.test\nmalware.example.org\n")
    return path


@pytest.fixture
def base(listed: Path) -> Iterator[str]:
    source = ReloadingBlockList(listed, clock=time.monotonic, check_every=0.0)
    with served(create_app(domain_safety_routes(source))) as (url, _):
        yield url


@pytest.mark.parametrize(
    ("domain", "can_fetch"),
    [
        ("evil.test", False),
        ("a.evil.test", False),
        ("example.org", True),
        ("Malware.Example.Org", False),
    ],
)
def test_domain_info_shape(base: str, domain: str, can_fetch: bool) -> None:
    """The hostname endpoint answers the reference's shape: the domain as asked and can_fetch."""
    response = httpx.get(f"{base}/api/web/domain_info", params={"domain": domain})
    assert response.status_code == 200
    assert response.json() == {"domain": domain, "can_fetch": can_fetch}


@pytest.mark.parametrize("query", [{}, {"domain": ""}, {"domain": "a b"}, {"domain": "x" * 300}])
def test_domain_info_bad_request(base: str, query: dict[str, str]) -> None:
    """A missing or invalid domain is a 400 that names the parameter."""
    response = httpx.get(f"{base}/api/web/domain_info", params=query)
    assert response.status_code == 400
    assert response.json()["parameter"] == "domain"


def test_domain_hashes(base: str) -> None:
    """The hash endpoint returns the full hashes of listed domains under the prefixes asked."""
    full = hashing.digest("evil.test").hex()
    response = httpx.get(
        f"{base}/api/web/domain_hashes", params=[("prefix", full[:4]), ("prefix", "0000")]
    )
    assert response.status_code == 200
    assert full in response.json()["hashes"]


@pytest.mark.parametrize(
    "params",
    [[], [("prefix", "ab")], [("prefix", "zzzz")], [("prefix", "abcd")] * 17],
    ids=["none", "short", "not_hex", "too_many"],
)
def test_domain_hashes_bad_request(base: str, params: list[tuple[str, str]]) -> None:
    """Bad prefixes are a 400 that names the parameter."""
    response = httpx.get(f"{base}/api/web/domain_hashes", params=params)
    assert response.status_code == 400 and response.json()["parameter"] == "prefix"


def test_domain_hashes_missing_prefix_named(base: str) -> None:
    """No prefix at all: the message names the parameter and what is expected, not a count."""
    response = httpx.get(f"{base}/api/web/domain_hashes")
    error = response.json()["error"]
    assert response.status_code == 400
    assert "missing query parameter 'prefix'" in error and "prefix=HEX" in error
    assert "4 to 16 hex digits" in error and "'0'" not in error


def test_openapi(base: str) -> None:
    """The app publishes an OpenAPI document describing its endpoints."""
    document = httpx.get(f"{base}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/api/web/domain_info", "/api/web/domain_hashes"} <= set(document["paths"])
    assert document["paths"]["/api/web/domain_info"]["get"]["parameters"][0]["name"] == "domain"


def test_reload_without_restart(base: str, listed: Path) -> None:
    """Editing the blocklist file changes the answers without a restart."""
    assert httpx.get(f"{base}/api/web/domain_info", params={"domain": "new.test"}).json()[
        "can_fetch"
    ]
    fresh = listed.with_suffix(".new")
    fresh.write_text("new.test\n")
    fresh.replace(listed)  # an atomic swap, as an editor or a deploy does it
    deadline = time.monotonic() + 20
    while httpx.get(f"{base}/api/web/domain_info", params={"domain": "new.test"}).json()[
        "can_fetch"
    ]:
        assert time.monotonic() < deadline, "the blocklist was not reloaded"
        time.sleep(0.05)
    assert httpx.get(f"{base}/api/web/domain_info", params={"domain": "evil.test"}).json()[
        "can_fetch"
    ]
    status = httpx.get(f"{base}/api/web/blocklist").json()
    assert status["domains"] == 1 and status["reloads"] >= 1


def test_routes_can_be_added() -> None:
    """Another capability's routes join the same app and its OpenAPI document."""

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"pong": True})

    extra = ServiceRoute(Route("/api/ping", ping), {"get": {"summary": "ping"}})
    with served(create_app([extra])) as (url, _):
        assert httpx.get(f"{url}/api/ping").json() == {"pong": True}
        assert httpx.get(f"{url}/openapi.json").json()["paths"]["/api/ping"] == {
            "get": {"summary": "ping"}
        }
