"""Feedback bundles and survey ratings received by the collector: `airlock serve` end to end."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airlock.collector_key import collector_key, key_path
from airlock.feedback.upload import post_rating, upload_bundle
from airlock.policy.collection import OrgTerms
from tests.collector.harness import Running, post_bundle, running
from tests.feedback.sessionfiles import GITHUB_TOKEN, make_session
from tests.servers import airlock_serve

AIRLOCK = [sys.executable, "-m", "airlock"]
SID = "0d1e2f3a-4b5c-4d6e-9f70-8192a3b4c5d6"


@dataclass
class Service:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[str]
    key: str

    def bundle_files(self) -> list[Path]:
        return sorted((self.data_dir / "bundles").iterdir())

    def incoming(self) -> list[Path]:
        return sorted((self.data_dir / "incoming").iterdir())

    def rows(self, kind: str | None = None) -> list[dict[str, object]]:
        with sqlite3.connect(self.data_dir / "collector.sqlite3") as db:
            db.row_factory = sqlite3.Row
            rows = [dict(row) for row in db.execute("SELECT * FROM items ORDER BY id")]
        return [row for row in rows if kind is None or row["kind"] == kind]

    def keys(self) -> list[str]:
        return [str(row["idempotency_key"]) for row in self.rows("feedback_bundle")]


@pytest.fixture
def service(tmp_path: Path, home: Path) -> Iterator[Service]:
    """`airlock serve` (no blocklist) with a data directory and a 1 MB bundle limit, on a free port."""
    data_dir = tmp_path / "data"
    with airlock_serve("--data-dir", str(data_dir), "--max-bundle-mb", "1") as (url, process):
        key = collector_key()
        assert key is not None, "the first start wrote no key for the local organisation"
        yield Service(url, int(url.rsplit(":", 1)[1]), data_dir, process, key)


def _post_bundle(
    url: str,
    key: str,
    body: bytes,
    idem: str,
    *,
    sha: str | None = None,
    retention: str = "feedback",
    kind: str = "feedback",
) -> httpx.Response:
    return post_bundle(url, key, body, idem, sha=sha, retention=retention, kind=kind)


def test_first_start_writes_the_local_key(service: Service, home: Path) -> None:
    """The first start creates the organisation 'local' and writes its key 0600 where clients look."""
    path = key_path(os.environ, home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == service.key
    assert _post_bundle(service.url, service.key, b"a" * 10, "k").status_code == 201


def test_airlock_feedback_uploads_to_airlock_serve(service: Service, config_dir: Path) -> None:
    """`airlock feedback SESSION` uploads to `airlock serve` with the local key; the stored file is the bundle."""
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
    (row,) = service.rows("feedback_bundle")
    assert stored.stat().st_size == row["size"] and row["session_id"] == SID
    assert stored.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert GITHUB_TOKEN.encode() not in stored.read_bytes()
    assert row["retention_class"] == "feedback"
    assert service.incoming() == []


def test_duplicate_key_stored_once(service: Service) -> None:
    """The same Idempotency-Key twice: 201 then 200, one file."""
    body = os.urandom(5000)
    assert _post_bundle(service.url, service.key, body, "key-1").status_code == 201
    again = _post_bundle(service.url, service.key, body, "key-1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert service.keys() == ["key-1"] and len(service.bundle_files()) == 1


def test_hash_mismatch_and_size_limit(service: Service) -> None:
    """A wrong hash is a 400 and a body above the limit a 413; neither leaves anything stored."""
    body = os.urandom(5000)
    wrong = _post_bundle(service.url, service.key, body, "bad-hash", sha="0" * 64)
    assert wrong.status_code == 400 and "hash mismatch" in wrong.json()["error"]
    big = _post_bundle(service.url, service.key, os.urandom(1024 * 1024 + 1), "too-big")
    assert big.status_code == 413
    assert service.keys() == [] and service.bundle_files() == [] and service.incoming() == []


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
    response = _post_bundle(service.url, service.key, b"k" * 50, "key", retention=named, kind=kind)
    assert response.status_code == 201
    assert [row["retention_class"] for row in service.rows()] == [stored]


@pytest.mark.parametrize("kind", ["", "survey", "Feedback", "x" * 100])
def test_unknown_bundle_kind_refused(service: Service, kind: str) -> None:
    """A bundle kind the server does not know is a 400 naming the valid kinds."""
    response = _post_bundle(service.url, service.key, b"k" * 50, "key", kind=kind)
    assert response.status_code == 400 and "shared_transcript" in response.json()["error"]
    assert service.keys() == []


@pytest.fixture
def zdr(tmp_path: Path) -> Iterator[tuple[Running, str]]:
    """The collector with a zero-data-retention organisation, on SQLite."""
    with running(f"sqlite:///{tmp_path / 'zdr' / 'db.sqlite3'}", tmp_path / "zdr") as served:
        yield served, served.key("zdr", OrgTerms(zero_data_retention=True))


def test_client_reads_zero_retention_as_received_not_stored(
    zdr: tuple[Running, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload client takes 202 as delivered and not persisted, not as a refusal."""
    served, key = zdr
    monkeypatch.setenv("AIRLOCK_COLLECTOR_KEY", key)
    body = b"y" * 1000
    receipt = upload_bundle(
        io.BytesIO(body),
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        bundle_id="zdr-client",
        collector=served.url,
        headers={"X-Airlock-Bundle-Kind": "feedback"},
        sleep=time.sleep,
    )
    assert receipt.status == 202 and not receipt.persisted
    assert served.collector.db.rows() == [] and served.collector.blobs.names() == []


def test_cut_mid_upload_leaves_nothing(service: Service) -> None:
    """A client that sends half a body and closes: nothing stored, no temp file left."""
    body = os.urandom(200_000)
    head = (
        "POST /v1/feedback-bundles HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {service.key}\r\n"
        f"Content-Length: {len(body)}\r\nIdempotency-Key: cut-1\r\n"
        f"X-Airlock-Bundle-Sha256: {hashlib.sha256(body).hexdigest()}\r\n"
        "Content-Type: application/gzip\r\n\r\n"
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
    assert _post_bundle(service.url, service.key, body, "cut-1").status_code == 201


def test_rating_stored_alone_with_the_day(service: Service) -> None:
    """post_rating against `airlock serve` (the local key found): stored once, the day only, no session."""
    payload = {"rating": "good", "day": "2026-11-23", "client": "airlock/test"}
    first = post_rating(payload, collector=service.url, key="r-1", sleep=lambda _: None)
    again = post_rating(payload, collector=service.url, key="r-1", sleep=lambda _: None)
    assert (first.status, again.status) == (201, 200)
    (row,) = service.rows("survey_rating")
    assert row["idempotency_key"] == "r-1" and json.loads(bytes(row["body"])) == payload  # type: ignore[arg-type]
    assert row["retention_class"] == "survey_rating" and row["session_id"] is None
    assert float(row["received_at"]) % 86400 == 0  # type: ignore[arg-type]


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
    service: Service, headers: dict[str, str], body: bytes, status: int
) -> None:
    """Ratings without an idempotency key, not a JSON object, or too large are refused, naming why."""
    sent = {**headers, "Authorization": f"Bearer {service.key}"}
    response = httpx.post(f"{service.url}/v1/survey-ratings", content=body, headers=sent)
    assert response.status_code == status and response.json()["error"]
    assert service.rows() == []


@pytest.mark.parametrize("named", ["forever", "zero_data_retention", "provider_terms", "feedback"])
def test_rating_class_is_the_servers(service: Service, named: str) -> None:
    """A rating is filed as a survey rating whatever class the client names."""
    headers = {
        "Authorization": f"Bearer {service.key}",
        "Idempotency-Key": "k",
        "X-Airlock-Retention-Class": named,
    }
    assert (
        httpx.post(f"{service.url}/v1/survey-ratings", json={}, headers=headers).status_code == 201
    )
    assert [row["retention_class"] for row in service.rows()] == ["survey_rating"]


def test_keys_create_and_sweep_commands(tmp_path: Path) -> None:
    """`serve keys create` prints the key last; `serve --sweep` prints what it removed and exits 0."""
    data = ["--data-dir", str(tmp_path / "d")]
    created = subprocess.run(
        [*AIRLOCK, "serve", "keys", "create", "--org", "acme", "--zdr", *data],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("alk_") and len(key) > 30
    with sqlite3.connect(tmp_path / "d" / "collector.sqlite3") as db:
        (stored,) = db.execute("SELECT key_sha256 FROM api_keys").fetchone()
        (zdr,) = db.execute("SELECT zero_data_retention FROM orgs").fetchone()
    assert stored == hashlib.sha256(key.encode()).hexdigest() and zdr == 1
    assert key.encode() not in (tmp_path / "d" / "collector.sqlite3").read_bytes()
    swept = subprocess.run(
        [*AIRLOCK, "serve", "--sweep", *data],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert swept.returncode == 0 and "0 items past their retention period removed" in swept.stdout
