"""Feedback bundles and survey ratings received by the collector: `airlock serve` end to end."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from airlock.collector import create_app
from airlock.collector.feedback import FeedbackStore, feedback_routes, utc_now
from airlock.feedback.upload import post_rating, upload_bundle
from airlock.policy.collection import OrgTerms
from airlock.policy.retention import RetentionClass
from tests.feedback.sessionfiles import GITHUB_TOKEN, make_session
from tests.servers import airlock_serve, served

AIRLOCK = [sys.executable, "-m", "airlock"]
SID = "0d1e2f3a-4b5c-4d6e-9f70-8192a3b4c5d6"


@dataclass
class Service:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[str]

    def bundle_files(self) -> list[Path]:
        return sorted((self.data_dir / "bundles").iterdir())

    def incoming(self) -> list[Path]:
        return sorted((self.data_dir / "incoming").iterdir())

    def keys(self) -> list[str]:
        with sqlite3.connect(self.data_dir / "collector.sqlite3") as db:
            return [row[0] for row in db.execute("SELECT key FROM bundles ORDER BY key")]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """`airlock serve` with a data directory and a 1 MB bundle limit, on a free port."""
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("blocked.test\n")
    data_dir = tmp_path / "data"
    with airlock_serve(
        "--blocklist", str(blocklist), "--data-dir", str(data_dir), "--max-bundle-mb", "1"
    ) as (url, process):
        yield Service(url, int(url.rsplit(":", 1)[1]), data_dir, process)


def _post_bundle(
    url: str,
    body: bytes,
    key: str,
    *,
    sha: str | None = None,
    retention: str = "feedback",
    kind: str = "feedback",
) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/feedback-bundles",
        content=body,
        headers={
            "Idempotency-Key": key,
            "X-Airlock-Bundle-Sha256": sha or hashlib.sha256(body).hexdigest(),
            "X-Airlock-Bundle-Kind": kind,
            "X-Airlock-Retention-Class": retention,
            "Content-Type": "application/gzip",
        },
        timeout=30,
    )


def test_airlock_feedback_uploads_to_airlock_serve(service: Service, config_dir: Path) -> None:
    """`airlock feedback SESSION` uploads to `airlock serve`; the stored file is the bundle, hash and all."""
    make_session(config_dir, SID)
    done = subprocess.run(
        [*AIRLOCK, "feedback", SID, "--json", "--description", "it broke"],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRLOCK_COLLECTOR_URL": service.url},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    key = result["bundle_id"]
    assert result["delivered"]["receipt"]["status"] == 201
    assert service.keys() == [key]
    (stored,) = service.bundle_files()
    with sqlite3.connect(service.data_dir / "collector.sqlite3") as db:
        sha, size, kind, retention, received = db.execute(
            "SELECT sha256, size, kind, retention_class, received_at FROM bundles"
        ).fetchone()
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha and stored.stat().st_size == size
    assert stored.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert GITHUB_TOKEN.encode() not in stored.read_bytes()
    assert retention in {item.value for item in RetentionClass}
    assert kind and datetime.fromisoformat(received).tzinfo is not None
    assert service.incoming() == []


def test_duplicate_key_stored_once(service: Service) -> None:
    """The same Idempotency-Key twice: 201 then 200, one file."""
    body = os.urandom(5000)
    assert _post_bundle(service.url, body, "key-1").status_code == 201
    again = _post_bundle(service.url, body, "key-1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert service.keys() == ["key-1"] and len(service.bundle_files()) == 1


def test_hash_mismatch_and_size_limit(service: Service) -> None:
    """A wrong hash is a 400 and a body above the limit a 413; neither leaves anything stored."""
    body = os.urandom(5000)
    wrong = _post_bundle(service.url, body, "bad-hash", sha="0" * 64)
    assert wrong.status_code == 400 and "hash mismatch" in wrong.json()["error"]
    big = _post_bundle(service.url, os.urandom(1024 * 1024 + 1), "too-big")
    assert big.status_code == 413
    assert service.keys() == [] and service.bundle_files() == [] and service.incoming() == []


@pytest.fixture
def zdr_store(tmp_path: Path) -> Iterator[tuple[str, FeedbackStore]]:
    """A collector whose organisation has zero data retention, served on loopback."""
    store = FeedbackStore(tmp_path / "zdr", clock=utc_now, terms=OrgTerms(zero_data_retention=True))
    with served(create_app(feedback_routes(store))) as (url, _):
        yield url, store
    store.close()


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.mark.parametrize("kind", ["feedback", "shared_transcript"])
def test_zero_retention_never_persisted(zdr_store: tuple[str, FeedbackStore], kind: str) -> None:
    """Under zero data retention a bundle is answered 202 and leaves no row and no file."""
    url, store = zdr_store
    before = {path: path.stat().st_size for path in _files(store.data_dir)}
    response = _post_bundle(url, b"x" * 100, "zdr", retention="feedback", kind=kind)
    assert response.status_code == 202 and response.json()["stored"] is False
    assert store.bundle_keys() == [] and not any((store.data_dir / "bundles").iterdir())
    rating = httpx.post(f"{url}/v1/survey-ratings", json={"r": 1}, headers={"Idempotency-Key": "r"})
    assert rating.status_code == 202 and store.ratings() == []
    assert not any(b"x" * 100 in path.read_bytes() for path in _files(store.data_dir))
    assert set(before) == set(_files(store.data_dir))


def test_product_feedback_disabled_refuses_bundles(tmp_path: Path) -> None:
    """An organisation that disabled product feedback: bundles are refused 403, nothing stored."""
    store = FeedbackStore(tmp_path, clock=utc_now, terms=OrgTerms(product_feedback=False))
    with served(create_app(feedback_routes(store))) as (url, _):
        response = _post_bundle(url, b"z" * 100, "pf")
    assert response.status_code == 403 and "product feedback" in response.json()["error"]
    assert store.bundle_keys() == []
    store.close()


@pytest.mark.parametrize(
    ("named", "kind", "stored"),
    [
        ("zero_data_retention", "feedback", "feedback"),
        ("provider_terms", "feedback", "feedback"),
        ("forever", "feedback", "feedback"),
        ("", "feedback", "feedback"),
        ("consumer_model_improvement", "shared_transcript", "shared_transcript"),
        ("provider_terms", "shared_transcript", "shared_transcript"),
        ("feedback", "shared_transcript", "shared_transcript"),
    ],
)
def test_client_cannot_choose_retention(
    service: Service, named: str, kind: str, stored: str
) -> None:
    """The class a client names is ignored: the server's policy files the bundle by its kind."""
    response = _post_bundle(service.url, b"k" * 50, "key", retention=named, kind=kind)
    assert response.status_code == 201
    with sqlite3.connect(service.data_dir / "collector.sqlite3") as db:
        assert db.execute("SELECT retention_class FROM bundles").fetchall() == [(stored,)]


@pytest.mark.parametrize("kind", ["", "survey", "Feedback", "x" * 100])
def test_unknown_bundle_kind_refused(service: Service, kind: str) -> None:
    """A bundle kind the server does not know is a 400 naming the valid kinds."""
    response = _post_bundle(service.url, b"k" * 50, "key", kind=kind)
    assert response.status_code == 400 and "shared_transcript" in response.json()["error"]
    assert service.keys() == []


def test_client_reads_zero_retention_as_received_not_stored(
    zdr_store: tuple[str, FeedbackStore],
) -> None:
    """The upload client takes 202 as delivered and not persisted, not as a refusal."""
    url, store = zdr_store
    body = b"y" * 1000
    receipt = upload_bundle(
        io.BytesIO(body),
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        bundle_id="zdr-client",
        collector=url,
        headers={"X-Airlock-Bundle-Kind": "feedback"},
        sleep=time.sleep,
    )
    assert receipt.status == 202 and not receipt.persisted
    assert store.bundle_keys() == []


def test_cut_mid_upload_leaves_nothing(service: Service) -> None:
    """A client that sends half a body and closes: nothing stored, no temp file left."""
    body = os.urandom(200_000)
    head = (
        "POST /v1/feedback-bundles HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {len(body)}\r\nIdempotency-Key: cut-1\r\n"
        f"X-Airlock-Bundle-Sha256: {hashlib.sha256(body).hexdigest()}\r\n"
        "X-Airlock-Retention-Class: feedback\r\nContent-Type: application/gzip\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as client:
        client.sendall(head + body[: len(body) // 2])
        deadline = time.monotonic() + 10
        while not service.incoming():  # the server is receiving into its temp file
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
    deadline = time.monotonic() + 20
    while service.incoming():
        assert time.monotonic() < deadline, "the partial upload was not removed"
        time.sleep(0.05)
    assert service.keys() == [] and service.bundle_files() == []
    # the same key, whole this time, is stored
    assert _post_bundle(service.url, body, "cut-1").status_code == 201


def test_rating_stored_alone_with_the_day(service: Service) -> None:
    """post_rating against `airlock serve`: stored once, with the day only, and its class."""
    payload = {"rating": "good", "day": "2026-11-23", "client": "airlock/test"}
    first = post_rating(payload, collector=service.url, key="r-1", sleep=lambda _: None)
    again = post_rating(payload, collector=service.url, key="r-1", sleep=lambda _: None)
    assert (first.status, again.status) == (201, 200)
    with sqlite3.connect(service.data_dir / "collector.sqlite3") as db:
        rows = db.execute("SELECT * FROM ratings").fetchall()
    ((key, stored, retention, day),) = rows
    assert key == "r-1" and json.loads(stored) == payload and retention == "survey_rating"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b'{"rating": "good"}', 400),
        ({"Idempotency-Key": "k"}, b"[1]", 400),
        ({"Idempotency-Key": "k"}, b"{", 400),
        ({"Idempotency-Key": "k"}, b"{}" + b" " * 70_000, 413),
    ],
    ids=["no_key", "not_object", "not_json", "too_large"],
)
def test_rating_bad_requests(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int
) -> None:
    """Ratings without a key, not a JSON object, or too large are refused, naming why."""
    store = FeedbackStore(tmp_path, clock=lambda: datetime(2026, 11, 23, tzinfo=UTC))
    with served(create_app(feedback_routes(store))) as (url, _):
        response = httpx.post(f"{url}/v1/survey-ratings", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"]
    assert store.ratings() == []
    store.close()


@pytest.mark.parametrize("named", ["forever", "zero_data_retention", "provider_terms", "feedback"])
def test_rating_class_is_the_servers(tmp_path: Path, named: str) -> None:
    """A rating is filed as a survey rating whatever class the client names."""
    store = FeedbackStore(tmp_path, clock=utc_now)
    with served(create_app(feedback_routes(store))) as (url, _):
        headers = {"Idempotency-Key": "k", "X-Airlock-Retention-Class": named}
        assert httpx.post(f"{url}/v1/survey-ratings", json={}, headers=headers).status_code == 201
    assert [row[2] for row in store.ratings()] == ["survey_rating"]
    store.close()


def test_sweep_deletes_past_their_period(tmp_path: Path) -> None:
    """Records go when their class's period is over (injected clock), and not before."""
    now = [datetime(2026, 1, 1, 12, tzinfo=UTC)]
    store = FeedbackStore(tmp_path, clock=lambda: now[0])
    with served(create_app(feedback_routes(store))) as (url, _):
        shared = _post_bundle(url, b"a" * 10, "short", kind="shared_transcript")
        assert shared.status_code == 201
        assert _post_bundle(url, b"b" * 10, "long", kind="feedback").status_code == 201
        rating = httpx.post(
            f"{url}/v1/survey-ratings", json={"rating": "bad"}, headers={"Idempotency-Key": "r"}
        )
        assert rating.status_code == 201
    now[0] += timedelta(days=29)
    assert store.sweep() == 0
    now[0] += timedelta(days=1)
    assert store.sweep() == 1 and store.ratings() == []  # the 30-day rating
    now[0] += timedelta(days=182 - 30)
    assert store.sweep() == 0
    now[0] += timedelta(days=1)
    assert store.sweep() == 1  # the 6-month shared transcript
    assert store.bundle_keys() == ["long"]
    assert [p.name for p in (tmp_path / "bundles").iterdir()] == [store.bundle_file("long").name]
    now[0] += timedelta(days=5 * 365)
    assert store.sweep() == 1 and store.bundle_keys() == []
    store.close()


def test_serve_sweep_flag(tmp_path: Path) -> None:
    """`airlock serve --sweep` sweeps the data directory and exits 0."""
    blocklist = tmp_path / "b.txt"
    blocklist.write_text("x.test\n")
    done = subprocess.run(
        [
            *AIRLOCK,
            "serve",
            "--blocklist",
            str(blocklist),
            "--data-dir",
            str(tmp_path / "d"),
            "--sweep",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "0 records past their retention period" in done.stderr
