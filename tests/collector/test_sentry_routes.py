"""Sentry's routes against the running collector: the store endpoint with real store-format
events, and keys in Sentry's ways (X-Sentry-Auth, ``?sentry_key=``) counting on Sentry's
routes only, so that keys are not invited into other routes' URLs and logs."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airlock.collector.db import NO_KEY
from airlock.collector.service import SENTRY_ONLY
from tests.collector.harness import Running, running
from tests.collector.ingest import COMPRESS, bearer, items, logs_body, sentry_auth


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Running]:
    with running(database_url, tmp_path / "data") as served:
        yield served


def store_event(session: str, event_id: str = "fc6d8c0c43fc4630ad850ee518f1b9d0") -> dict[str, Any]:
    """An error event as Sentry's store endpoint takes it (one JSON object, as older SDKs and
    raven clients post it), tagged with ``session``."""
    return {
        "event_id": event_id,
        "timestamp": "2026-05-01T12:00:00.000000Z",
        "platform": "python",
        "level": "error",
        "logger": "airlock.test",
        "server_name": "build-7",
        "release": "airlock@0.1.0",
        "environment": "production",
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "store-format boom",
                    "module": None,
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "airlock/flows.py",
                                "function": "run",
                                "module": "airlock.flows",
                                "lineno": 42,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
        "tags": [["session.id", session], ["os.name", "Linux"]],
        "extra": {"attempt": 2},
    }


def post_store(
    service: Running, body: bytes, headers: dict[str, str], query: str = ""
) -> httpx.Response:
    return httpx.post(
        f"{service.url}/api/7/store/{query}", content=body, headers=headers, timeout=30
    )


@pytest.mark.parametrize(
    ("encoding", "auth"),
    [(None, "header"), ("gzip", "header"), ("br", "header"), (None, "query"), ("gzip", "bearer")],
)
def test_store_event_stored_under_the_callers_organisation(
    service: Running, encoding: str | None, auth: str
) -> None:
    """A store-format event (plain, gzip or br; key in X-Sentry-Auth, ?sentry_key= or Bearer)
    is answered with its id and stored whole as an error report of the key's organisation,
    under its session.id tag; another organisation sees nothing of it."""
    key, other = service.key("acme"), service.key("globex")
    event = store_event("s-store")
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if encoding is not None:
        body = COMPRESS[encoding](body)
        headers["Content-Encoding"] = encoding
    query = ""
    if auth == "header":
        headers |= sentry_auth(key)
    elif auth == "query":
        query = f"?sentry_version=7&sentry_client=raven-js/3.27&sentry_key={key}"
    else:
        headers |= bearer(key)
    response = post_store(service, body, headers, query)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": event["event_id"]}
    assert items(service, key, "s-store") == {"error_report": 1}
    assert items(service, other, "s-store") == {}
    org = service.collector.db.org_for_key(key)
    assert org is not None
    (row,) = service.collector.db.rows()
    assert row["org_id"] == org.id and row["kind"] == "error_report"
    assert json.loads(bytes(row["body"])) == event


def test_store_event_with_tags_as_an_object(service: Running) -> None:
    """Tags sent as an object (as some SDKs do) name the session just as pairs do."""
    key = service.key("acme")
    event = {**store_event("ignored"), "tags": {"session.id": "s-dict", "os.name": "Linux"}}
    body = gzip.compress(json.dumps(event).encode())
    headers = {**sentry_auth(key), "Content-Encoding": "gzip"}
    assert post_store(service, body, headers).status_code == 200
    assert items(service, key, "s-dict") == {"error_report": 1}


@pytest.mark.parametrize(
    ("body", "encoding", "says"),
    [
        (b"", None, "body: the event is not valid JSON ("),
        (b'{"event_id": "ab", "message": ', None, "body: the event is not valid JSON ("),
        (b"\xff\xfe not utf-8", None, "body: the event is not valid JSON ("),
        (b'[{"event_id": "ab"}]', None, "body: the event is not a JSON object"),
        (b'"just a string"', None, "body: the event is not a JSON object"),
        (gzip.compress(b"[1, 2]"), "gzip", "body: the event is not a JSON object"),
        (b"{}", "gzip", "body: not valid gzip ("),
        (gzip.compress(json.dumps(store_event("s")).encode())[:40], "gzip", "body: the gzip"),
    ],
    ids=["empty", "cut_json", "not_utf8", "array", "string", "gzip_array", "not_gzip", "cut_gzip"],
)
def test_malformed_store_event_refused(
    service: Running, body: bytes, encoding: str | None, says: str
) -> None:
    """A store body that is not one JSON object (or not the gzip it claims) is a 400 naming
    what is wrong; nothing is stored."""
    key = service.key("acme")
    headers = sentry_auth(key)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = post_store(service, body, headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(says)
    assert service.collector.db.rows() == []


def _envelope(session: str) -> bytes:
    event = store_event(session)
    payload = json.dumps(event).encode()
    header = json.dumps({"event_id": event["event_id"]}).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    return header + b"\n" + item + b"\n" + payload + b"\n"


Request = Callable[[Running, dict[str, str], str], httpx.Response]
"""A request with the given key headers and query string (``?...`` or empty)."""


def _logs(service: Running, headers: dict[str, str], query: str) -> httpx.Response:
    headers = {**headers, "Content-Type": "application/x-protobuf"}
    return httpx.post(f"{service.url}/v1/logs{query}", content=logs_body("s-k", 1), headers=headers)


def _metrics(service: Running, headers: dict[str, str], query: str) -> httpx.Response:
    headers = {**headers, "Content-Type": "application/json"}
    return httpx.post(f"{service.url}/v1/metrics{query}", content=b"{}", headers=headers)


def _bundle(service: Running, headers: dict[str, str], query: str) -> httpx.Response:
    body = b"bundle" * 50
    headers = {
        **headers,
        "Idempotency-Key": "b-1",
        "X-Airlock-Bundle-Sha256": hashlib.sha256(body).hexdigest(),
        "X-Airlock-Bundle-Kind": "feedback",
        "X-Airlock-Session-Id": "s-k",
        "Content-Type": "application/gzip",
    }
    return httpx.post(f"{service.url}/v1/feedback-bundles{query}", content=body, headers=headers)


def _rating(service: Running, headers: dict[str, str], query: str) -> httpx.Response:
    headers = {**headers, "Idempotency-Key": "r-1"}
    return httpx.post(
        f"{service.url}/v1/survey-ratings{query}", json={"rating": 4}, headers=headers
    )


def _read(method: str, path: str) -> Request:
    def send(service: Running, headers: dict[str, str], query: str) -> httpx.Response:
        return httpx.request(method, f"{service.url}{path}{query}", headers=headers)

    return send


OTHER_ROUTES: dict[str, Request] = {
    "logs": _logs,
    "metrics": _metrics,
    "feedback_bundles": _bundle,
    "survey_ratings": _rating,
    "get_session": _read("GET", "/v1/sessions/s-k"),
    "delete_session": _read("DELETE", "/v1/sessions/s-k"),
    "retention": _read("GET", "/v1/retention"),
}


@pytest.mark.parametrize("way", ["query", "header"])
@pytest.mark.parametrize("route", sorted(OTHER_ROUTES))
def test_sentry_keys_do_not_count_off_sentrys_routes(
    service: Running, route: str, way: str
) -> None:
    """A valid key in ?sentry_key= or X-Sentry-Auth is no key off Sentry's routes: a 401 (counted)
    saying to send Authorization: Bearer KEY, and nothing stored; the same request with the key
    as Bearer succeeds (and a stray ?sentry_key= beside it changes nothing)."""
    key = service.key("acme")
    send = OTHER_ROUTES[route]
    if way == "query":
        refused = send(service, {}, f"?sentry_key={key}")
    else:
        refused = send(service, sentry_auth(key), "")
    assert refused.status_code == 401
    assert refused.json()["error"] == f"no key: {SENTRY_ONLY}"
    assert "Authorization: Bearer KEY" in refused.json()["error"]
    assert service.collector.db.rows() == []
    assert service.collector.db.refusal_counts().get(NO_KEY) == 1
    if route in ("get_session", "delete_session"):
        _logs(service, bearer(key), "")  # something to read or delete
    accepted = send(service, bearer(key), f"?sentry_key={key}")
    assert accepted.status_code in (200, 201, 202), accepted.text


@pytest.mark.parametrize("way", ["query", "header"])
@pytest.mark.parametrize("endpoint", ["envelope", "store"])
def test_sentry_keys_count_on_sentrys_routes(service: Running, endpoint: str, way: str) -> None:
    """On the envelope and store endpoints the DSN's key counts in either of Sentry's ways."""
    key = service.key("acme")
    body = _envelope("s-ok") if endpoint == "envelope" else json.dumps(store_event("s-ok")).encode()
    headers = sentry_auth(key) if way == "header" else {}
    query = f"?sentry_key={key}&sentry_version=7" if way == "query" else ""
    response = httpx.post(
        f"{service.url}/api/1/{endpoint}/{query}", content=body, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    assert items(service, key, "s-ok") == {"error_report": 1}


def test_no_key_at_all_keeps_its_message(service: Running) -> None:
    """A request with no key in any form is still told how to get one."""
    response = _logs(service, {}, "")
    assert response.status_code == 401
    assert response.json()["error"] == (
        "no key: send Authorization: Bearer KEY (airlock serve keys create --org NAME)"
    )


def test_an_event_sent_again_is_stored_once(service: Running) -> None:
    """An envelope (or a store body) sent again with the same event_id, as a client does when
    the answer never arrived, is answered as the first was and stores nothing new; the same id
    from another organisation is that organisation's own."""
    key, other = service.key("acme"), service.key("globex")
    for _ in range(2):
        sent = httpx.post(
            f"{service.url}/api/7/envelope/", content=_envelope("s-again"), headers=bearer(key)
        )
        assert sent.status_code == 200, sent.text
        again = post_store(service, json.dumps(store_event("s-again")).encode(), bearer(key))
        assert again.status_code == 200, again.text
        assert again.json() == {"id": store_event("s-again")["event_id"]}
    assert items(service, key, "s-again") == {"error_report": 1}
    other_sent = httpx.post(
        f"{service.url}/api/7/envelope/", content=_envelope("s-again"), headers=bearer(other)
    )
    assert other_sent.status_code == 200
    assert items(service, other, "s-again") == {"error_report": 1}
    fresh = store_event("s-again", event_id="ab" * 16)
    assert post_store(service, json.dumps(fresh).encode(), bearer(key)).status_code == 200
    assert items(service, key, "s-again") == {"error_report": 2}
