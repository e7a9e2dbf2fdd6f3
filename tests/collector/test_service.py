"""The collector for organisations, on SQLite and on PostgreSQL: keys, ingest, sessions, retention."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from airlock.collector.db import REFUSAL_REASONS
from airlock.collector.schema import metadata
from airlock.collector.sweeper import sweep
from airlock.policy.collection import OrgTerms
from airlock.policy.retention import RetentionClass
from tests.collector.harness import Running, post_bundle, running
from tests.collector.ingest import metrics_request, send_with_sentry_sdk

DAY = 86400.0
START = 1_780_000_000.0


@pytest.fixture
def clock() -> list[float]:
    return [START]


@pytest.fixture
def service(database_url: str, tmp_path: Path, clock: list[float]) -> Iterator[Running]:
    with running(database_url, tmp_path / "data", clock=lambda: clock[0]) as served:
        yield served


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def logs_request(
    session: str, count: int, *, on_resource: bool = False
) -> ExportLogsServiceRequest:
    records = [
        LogRecord(
            time_unix_nano=1,
            body=AnyValue(string_value=f"event {n}"),
            attributes=[] if on_resource else [_attribute("session.id", session)],
        )
        for n in range(count)
    ]
    resource_logs = ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])
    if on_resource:
        resource_logs.resource.attributes.append(_attribute("session.id", session))
    return ExportLogsServiceRequest(resource_logs=[resource_logs])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_logs(
    url: str, key: str, session: str, count: int, *, encoding: str = "protobuf"
) -> httpx.Response:
    message = logs_request(session, count)
    headers = bearer(key)
    if encoding == "json":
        from google.protobuf import json_format

        body = json_format.MessageToJson(message).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = message.SerializeToString()
        headers["Content-Type"] = "application/x-protobuf"
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return httpx.post(f"{url}/v1/logs", content=body, headers=headers, timeout=30)


def items(service: Running, key: str, session: str) -> dict[str, int]:
    response = httpx.get(f"{service.url}/v1/sessions/{session}", headers=bearer(key), timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["session_id"] == session
    return dict(body["items"])


def missing(service: Running, key: str, session: str, method: str = "GET") -> dict[str, str]:
    """The 404 answer to ``method`` on a session with nothing stored for ``key``'s organisation."""
    response = httpx.request(
        method, f"{service.url}/v1/sessions/{session}", headers=bearer(key), timeout=30
    )
    assert response.status_code == 404, response.text
    body = dict(response.json())
    assert body.pop("session_id") == session
    return body


@pytest.mark.parametrize("encoding", ["protobuf", "json", "gzip"])
def test_otlp_logs_stored_under_their_session(service: Running, encoding: str) -> None:
    """OTLP/HTTP logs (protobuf, JSON, gzip) are stored one item a record, under session.id."""
    key = service.key("acme")
    response = post_logs(service.url, key, "s-1", 3, encoding=encoding)
    assert response.status_code == 200, response.text
    assert items(service, key, "s-1") == {"logs": 3}
    assert "nothing is stored" in missing(service, key, "s-unknown")["error"]


def test_session_attribute_on_the_resource(service: Running) -> None:
    """A session.id on the resource covers every record under it."""
    key = service.key("acme")
    body = logs_request("s-r", 2, on_resource=True).SerializeToString()
    headers = {**bearer(key), "Content-Type": "application/x-protobuf"}
    assert httpx.post(f"{service.url}/v1/logs", content=body, headers=headers).status_code == 200
    assert items(service, key, "s-r") == {"logs": 2}


def test_real_opentelemetry_sdk_metrics(service: Running) -> None:
    """The OpenTelemetry SDK's OTLP/HTTP metric exporter, with a Bearer header, is stored."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    key = service.key("acme")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("airlock.test").create_counter("claude_code.token.usage")
    counter.add(5, {"session.id": "s-otel", "type": "input"})
    counter.add(7, {"session.id": "s-otel", "type": "output"})
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(
        endpoint=f"{service.url}/v1/metrics", headers=bearer(key), timeout=10
    )
    assert exporter.export(data) is MetricExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()
    assert items(service, key, "s-otel") == {"metrics": 2}


@pytest.mark.parametrize(
    ("content_type", "encoding", "body", "status", "says"),
    [
        ("application/x-protobuf", None, b"\xff\xff\xff\xff", 400, "protobuf"),
        ("application/json", None, b"{not json", 400, "JSON"),
        ("application/json", None, b'{"resourceLogs": 5}', 400, "JSON"),
        ("application/x-protobuf", "gzip", b"not gzip at all", 400, "gzip"),
        ("application/x-protobuf", "gzip", gzip.compress(b"x" * 1000)[:20], 400, "gzip"),
        ("text/plain", None, b"hello", 415, "Content-Type"),
        ("application/x-protobuf", "zstd", b"x", 415, "Content-Encoding"),
    ],
    ids=["bad_protobuf", "bad_json", "wrong_shape", "not_gzip", "cut_gzip", "text", "zstd"],
)
def test_malformed_otlp_refused_nothing_stored(
    service: Running, content_type: str, encoding: str | None, body: bytes, status: int, says: str
) -> None:
    """A malformed OTLP body is refused with a status and a message naming the problem; nothing is kept."""
    key = service.key("acme")
    headers = {**bearer(key), "Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = httpx.post(f"{service.url}/v1/logs", content=body, headers=headers)
    assert response.status_code == status and says in response.json()["error"]
    assert service.collector.db.rows() == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer alk_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"X-Sentry-Auth": "Sentry sentry_key=wrong"},
    ],
    ids=["none", "unknown", "basic", "empty", "sentry_wrong"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/logs"),
        ("POST", "/v1/metrics"),
        ("POST", "/api/1/envelope/"),
        ("POST", "/v1/feedback-bundles"),
        ("POST", "/v1/survey-ratings"),
        ("GET", "/v1/sessions/s-1"),
        ("DELETE", "/v1/sessions/s-1"),
        ("GET", "/v1/retention"),
    ],
)
def test_every_route_needs_a_key(
    service: Running, headers: dict[str, str], method: str, path: str
) -> None:
    """Without a valid key every ingest and read is a 401, stores nothing, and is counted."""
    key = service.key("acme")
    assert post_logs(service.url, key, "s-1", 1).status_code == 200
    before = sum(service.collector.db.refusal_counts().values())
    response = httpx.request(method, f"{service.url}{path}", headers=headers, content=b"x" * 10)
    assert response.status_code == 401 and "key" in response.json()["error"]
    assert len(service.collector.db.rows()) == 1
    assert sum(service.collector.db.refusal_counts().values()) == before + 1


def test_another_organisation_sees_nothing(service: Running) -> None:
    """A key reads and deletes only its organisation's data: another org's session is a 404,
    answered exactly as a session nobody holds, and stays whole."""
    mine, theirs = service.key("acme"), service.key("globex")
    assert post_logs(service.url, mine, "shared-id", 4).status_code == 200
    for method in ("GET", "DELETE"):
        unknown = missing(service, theirs, "nobody-has-it", method)
        assert missing(service, theirs, "shared-id", method) == unknown
    retention = httpx.get(f"{service.url}/v1/retention", headers=bearer(theirs)).json()
    assert retention["classes"] == {}
    assert items(service, mine, "shared-id") == {"logs": 4}


def test_refusals_counted_and_shown(service: Running) -> None:
    """GET /v1/retention shows the refused requests: those without a valid key, and those naming
    this organisation's sessions with another's key (answered as unknown ones), which only
    the session's organisation sees counted."""
    mine, theirs = service.key("acme"), service.key("globex")
    assert post_logs(service.url, mine, "acme-only", 2).status_code == 200

    def refusals(key: str) -> dict[str, int]:
        answer = httpx.get(f"{service.url}/v1/retention", headers=bearer(key), timeout=30)
        return dict(answer.json()["refusals"])

    assert refusals(mine) == refusals(theirs) == dict.fromkeys(REFUSAL_REASONS, 0)
    assert httpx.post(f"{service.url}/v1/logs", content=b"x").status_code == 401
    assert httpx.get(f"{service.url}/v1/retention", headers=bearer("alk_x")).status_code == 401
    missing(service, theirs, "acme-only")
    missing(service, theirs, "acme-only", "DELETE")
    missing(service, theirs, "nobody-has-it")  # unknown everywhere: not counted
    missing(service, mine, "nobody-has-it", "DELETE")
    assert items(service, mine, "acme-only") == {"logs": 2}  # its own: not counted
    expected = {"no_key": 1, "unknown_key": 1}
    assert refusals(mine) == {**expected, "other_organisation": 2}
    assert refusals(theirs) == {**expected, "other_organisation": 0}


def _bundle(
    url: str, key: str, session: str, body: bytes, idem: str, kind: str = "feedback"
) -> httpx.Response:
    return post_bundle(url, key, body, idem, session=session, kind=kind)


def _sentry_envelope(event: dict[str, object]) -> bytes:
    payload = json.dumps(event).encode()
    header = json.dumps({"event_id": event["event_id"]}).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    return header + b"\n" + item + b"\n" + payload + b"\n"


def test_delete_session_removes_rows_and_blobs(service: Running) -> None:
    """DELETE removes every row and stored bundle of the session, answers the counts, and leaves others."""
    key = service.key("acme")
    assert post_logs(service.url, key, "gone", 3).status_code == 200
    assert post_logs(service.url, key, "kept", 2).status_code == 200
    assert _bundle(service.url, key, "gone", b"bundle-1" * 100, "b1").status_code == 201
    assert _bundle(service.url, key, "kept", b"bundle-2" * 100, "b2").status_code == 201
    event = {"event_id": "a" * 32, "message": "boom", "tags": {"session.id": "gone"}}
    sent = httpx.post(
        f"{service.url}/api/1/envelope/", content=_sentry_envelope(event), headers=bearer(key)
    )
    assert sent.status_code == 200
    assert items(service, key, "gone") == {"logs": 3, "feedback_bundle": 1, "error_report": 1}
    response = httpx.delete(f"{service.url}/v1/sessions/gone", headers=bearer(key))
    assert response.json()["removed"] == {"logs": 3, "feedback_bundle": 1, "error_report": 1}
    missing(service, key, "gone")
    missing(service, key, "gone", "DELETE")  # deleted already: nothing left to remove
    assert items(service, key, "kept") == {"logs": 2, "feedback_bundle": 1}
    assert len(service.collector.blobs.names()) == 1
    assert all(row["session_id"] != "gone" for row in service.collector.db.rows())


def test_a_blob_that_cannot_be_deleted_keeps_the_sessions_rows(service: Running) -> None:
    """Blobs go first: when one cannot be deleted, the answer is 503 saying so and every row is
    kept (nothing names an object that is gone, no object is left that no row names); once the
    store works again, DELETE removes all of it."""
    key = service.key("acme")
    assert post_logs(service.url, key, "s", 2).status_code == 200
    assert _bundle(service.url, key, "s", b"bundle" * 100, "b1").status_code == 201
    folder = service.collector.blobs.folder  # type: ignore[attr-defined]
    [name] = service.collector.blobs.names()
    (folder / name).unlink()
    (folder / name).mkdir()  # a folder in its place: unlink fails, for root too
    (folder / name / "x").write_text("x")
    failed = httpx.delete(f"{service.url}/v1/sessions/s", headers=bearer(key))
    assert failed.status_code == 503, failed.text
    assert "could not be deleted" in failed.json()["error"]
    assert items(service, key, "s") == {"logs": 2, "feedback_bundle": 1}
    (folder / name / "x").unlink()
    (folder / name).rmdir()
    done = httpx.delete(f"{service.url}/v1/sessions/s", headers=bearer(key))
    assert done.json()["removed"] == {"logs": 2, "feedback_bundle": 1}
    missing(service, key, "s")


def test_session_summary_shape(service: Running, clock: list[float]) -> None:
    """GET says counts by kind, oldest and newest time, and each class with its expiry."""
    key = service.key("acme")
    post_logs(service.url, key, "s", 1)
    clock[0] += 60
    post_logs(service.url, key, "s", 1)
    body = httpx.get(f"{service.url}/v1/sessions/s", headers=bearer(key)).json()
    assert body["items"] == {"logs": 2}
    assert body["oldest"] < body["newest"]
    assert (
        list(body["retention"]) == ["commercial"] and body["retention"]["commercial"]["items"] == 2
    )


def test_zero_data_retention_persists_nothing(service: Running) -> None:
    """A ZDR organisation's logs, metrics, errors, ratings and bundles are accepted and dropped."""
    key = service.key("zdr-org", OrgTerms(zero_data_retention=True))
    secret = "ZDR-CANARY-7f3a"
    assert post_logs(service.url, key, secret, 5).status_code == 200
    event = {"event_id": "b" * 32, "message": secret, "tags": {"session.id": secret}}
    envelope = httpx.post(
        f"{service.url}/api/1/envelope/", content=_sentry_envelope(event), headers=bearer(key)
    )
    assert envelope.status_code == 200
    assert _bundle(service.url, key, secret, secret.encode() * 50, "z1").status_code == 202
    rating = httpx.post(
        f"{service.url}/v1/survey-ratings",
        json={"rating": secret},
        headers={**bearer(key), "Idempotency-Key": "r"},
    )
    assert rating.status_code == 202
    metrics = httpx.post(
        f"{service.url}/v1/metrics",
        content=metrics_request(secret).SerializeToString(),
        headers={**bearer(key), "Content-Type": "application/x-protobuf"},
    )
    assert metrics.status_code == 200, metrics.text
    assert service.collector.db.rows() == []
    assert service.collector.blobs.names() == []
    for path in service.data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    database = service.collector.db
    with database.engine.connect() as connection:  # every table, whatever the backend
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                assert secret not in repr(tuple(row)), table.name
    if database.dialect == "sqlite":  # and the database's own files, byte for byte
        stored = Path(str(database.engine.url.database))
        for path in stored.parent.glob(stored.name + "*"):
            assert secret.encode() not in path.read_bytes(), path


def test_product_feedback_disabled_refuses_bundles(service: Running) -> None:
    """An organisation that disabled product feedback has bundles refused (403), metrics still kept."""
    key = service.key("quiet", OrgTerms(product_feedback=False))
    response = _bundle(service.url, key, "s", b"x" * 100, "k")
    assert response.status_code == 403 and "product feedback" in response.json()["error"]
    assert post_logs(service.url, key, "s", 1).status_code == 200
    assert items(service, key, "s") == {"logs": 1}


@pytest.mark.parametrize(
    ("terms", "kind", "days"),
    [
        (OrgTerms(), "logs", 30),
        (
            OrgTerms(account_class=RetentionClass.CONSUMER_IMPROVEMENT),
            "logs",
            5 * 365,
        ),
        (OrgTerms(account_class=RetentionClass.CONSUMER_STANDARD), "logs", 30),
        (OrgTerms(), "feedback", 5 * 365),
        (OrgTerms(), "shared_transcript", 183),
    ],
    ids=[
        "commercial_logs",
        "consumer_improvement_logs",
        "consumer_standard_logs",
        "feedback_bundle",
        "shared_transcript",
    ],
)
def test_expiry_from_policy_and_sweep(
    service: Running, clock: list[float], terms: OrgTerms, kind: str, days: int
) -> None:
    """Each item expires when its class's period ends (injected clock): kept the day before, swept on it."""
    key = service.key("acme", terms)
    if kind == "logs":
        assert post_logs(service.url, key, "s", 2).status_code == 200
    else:
        assert _bundle(service.url, key, "s", b"b" * 64, "k", kind=kind).status_code == 201
    clock[0] += (days - 1) * DAY
    assert sweep(service.collector) == {}
    assert sum(items(service, key, "s").values()) >= 1
    retention = httpx.get(f"{service.url}/v1/retention", headers=bearer(key)).json()["classes"]
    (entry,) = retention.values()
    assert entry["period_days"] == days and entry["oldest_age_seconds"] == (days - 1) * DAY
    clock[0] += DAY
    assert sum(sweep(service.collector).values()) >= 1
    missing(service, key, "s")
    assert service.collector.blobs.names() == []


def test_a_rating_expires_apart_after_its_own_period(service: Running, clock: list[float]) -> None:
    """A survey rating has a class of its own, apart from any transcript (30 days), shown by
    /v1/retention and swept when it ends."""
    key = service.key("acme")
    sent = httpx.post(
        f"{service.url}/v1/survey-ratings",
        json={"rating": "good", "day": "2026-05-28"},
        headers={**bearer(key), "Idempotency-Key": "r1"},
    )
    assert sent.status_code == 201, sent.text
    clock[0] += 29 * DAY
    assert sweep(service.collector) == {}
    classes = httpx.get(f"{service.url}/v1/retention", headers=bearer(key)).json()["classes"]
    assert list(classes) == ["survey_rating"] and classes["survey_rating"]["period_days"] == 30
    clock[0] += DAY
    assert sweep(service.collector) == {"survey_rating": 1}
    assert service.collector.db.rows() == []


def test_sweeper_under_concurrent_ingest(service: Running, clock: list[float]) -> None:
    """A sweep in small batches while ingest goes on: every ingest succeeds, only the expired go."""
    key = service.key("acme")
    for batch in range(10):
        assert post_logs(service.url, key, f"old-{batch}", 50).status_code == 200
    clock[0] += 31 * DAY
    statuses: list[int] = []

    def ingest() -> None:
        for batch in range(20):
            statuses.append(post_logs(service.url, key, f"new-{batch}", 10).status_code)

    writer = threading.Thread(target=ingest)
    writer.start()
    removed = sweep(service.collector, batch=20)
    writer.join(60)
    assert removed == {"logs": 500}
    assert statuses == [200] * 20
    assert sum(items(service, key, f"new-{n}")["logs"] for n in range(20)) == 200


def test_real_sentry_sdk_sends_to_the_collector(service: Running) -> None:
    """sentry-sdk with a DSN pointing at the collector stores the error under its session tag."""
    key = service.key("acme")
    port = service.url.rsplit(":", 1)[1]
    send_with_sentry_sdk(f"http://{key}@127.0.0.1:{port}/1", "s-sentry", "something broke")
    deadline = time.monotonic() + 10
    url = f"{service.url}/v1/sessions/s-sentry"
    while httpx.get(url, headers=bearer(key)).json().get("items") != {"error_report": 1}:
        assert time.monotonic() < deadline, "the event never arrived"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}\n{not json}\n",
        b'{}\n{"type": "event", "length": 999}\nshort',
        b"[]\n",
        b'{}\n{"length": 2}\n{}',
    ],
    ids=["empty", "bad_item_header", "length_past_end", "header_not_object", "no_type"],
)
def test_malformed_envelope_refused(service: Running, body: bytes) -> None:
    """A malformed Sentry envelope is a 400 naming what is wrong; nothing is stored."""
    key = service.key("acme")
    response = httpx.post(f"{service.url}/api/1/envelope/", content=body, headers=bearer(key))
    assert response.status_code == 400 and response.json()["error"].startswith("body:")
    assert service.collector.db.rows() == []


def test_domain_safety_not_served_without_blocklist(service: Running) -> None:
    """Without a blocklist the domain-safety endpoints are not served (404); the rest is."""
    assert (
        httpx.get(f"{service.url}/api/web/domain_info", params={"domain": "a.test"}).status_code
        == 404
    )
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    assert "/api/web/domain_info" not in paths and "/v1/logs" in paths


def test_ratings_and_bundles_once_per_key(service: Running) -> None:
    """An Idempotency-Key is stored once per organisation: 201, then 200 as a duplicate."""
    key = service.key("acme")
    assert _bundle(service.url, key, "s", b"z" * 100, "same").status_code == 201
    again = _bundle(service.url, key, "s", b"z" * 100, "same")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    other = service.key("globex")
    assert _bundle(service.url, other, "s", b"z" * 100, "same").status_code == 201
    assert len(service.collector.db.rows()) == 2


def test_several_serve_processes_share_one_postgresql(pg_cluster: str, tmp_path: Path) -> None:
    """Two `airlock serve` processes on one PostgreSQL answer as one: ingest on either, read on both."""
    import subprocess
    import sys

    from tests.collector.backends import fresh_database
    from tests.servers import airlock_serve

    database = fresh_database(pg_cluster)
    AIRLOCK_KEYS = [sys.executable, "-m", "airlock", "serve", "keys", "create"]
    created = subprocess.run(
        [
            *AIRLOCK_KEYS,
            "--org",
            "acme",
            "--database-url",
            database,
            "--data-dir",
            str(tmp_path / "k"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    first = ["--database-url", database, "--data-dir", str(tmp_path / "one")]
    second = ["--database-url", database, "--data-dir", str(tmp_path / "two")]
    with airlock_serve(*first) as (one, _), airlock_serve(*second) as (two, _):
        for number in range(6):
            target = one if number % 2 else two
            assert post_logs(target, key, f"s-{number % 3}", 5).status_code == 200
        for url in (one, two):
            for session in range(3):
                got = httpx.get(f"{url}/v1/sessions/s-{session}", headers=bearer(key)).json()
                assert got["items"] == {"logs": 10}
        removed = httpx.delete(f"{one}/v1/sessions/s-0", headers=bearer(key)).json()["removed"]
        assert removed == {"logs": 10}
        assert httpx.get(f"{two}/v1/sessions/s-0", headers=bearer(key)).status_code == 404
        totals = [
            httpx.get(f"{url}/v1/retention", headers=bearer(key)).json()["classes"]
            for url in (one, two)
        ]
        assert totals[0] == totals[1] or all(
            totals[0][name]["items"] == totals[1][name]["items"] for name in totals[0]
        )


def test_several_serve_processes_at_once_answer_as_one(
    pg_cluster: str, bucket: str, tmp_path: Path
) -> None:
    """Two `airlock serve` processes on one PostgreSQL and one bucket, sent to at the same time
    from four threads (logs, metrics, error events, bundles): each reads back all of it; the
    same request sent to both at once, with one Idempotency-Key, is stored once; a session
    deleted through one is gone from the other, its bundles from the bucket."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    from tests.collector.backends import fresh_database
    from tests.servers import airlock_serve

    database = fresh_database(pg_cluster)
    SERVE = [sys.executable, "-m", "airlock", "serve"]
    keys = ["keys", "create", "--org", "acme"]  # after the storage options, as a user may
    created = subprocess.run(
        [*SERVE, "--database-url", database, "--data-dir", str(tmp_path / "k"), *keys],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    shared = ["--database-url", database, "--blob-url", f"s3://{bucket}/shared"]

    def objects() -> int:
        listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="shared/")
        return int(listed.get("KeyCount", 0))

    with (
        airlock_serve(*shared, "--data-dir", str(tmp_path / "one")) as (one, _),
        airlock_serve(*shared, "--data-dir", str(tmp_path / "two")) as (two, _),
    ):

        def send(number: int) -> list[int]:
            url, session = (one, two)[number % 2], f"s-{number % 3}"
            event = {
                "event_id": f"{number:032x}",
                "message": "boom",
                "tags": {"session.id": session},
            }
            metrics = metrics_request(session).SerializeToString()
            return [
                post_logs(url, key, session, 5).status_code,
                httpx.post(
                    f"{url}/v1/metrics",
                    content=metrics,
                    headers={**bearer(key), "Content-Type": "application/x-protobuf"},
                ).status_code,
                httpx.post(
                    f"{url}/api/1/envelope/", content=_sentry_envelope(event), headers=bearer(key)
                ).status_code,
                _bundle(url, key, session, b"bundle %d" % number * 50, f"b{number}").status_code,
            ]

        def resend(url: str) -> int:
            return httpx.post(
                f"{url}/v1/logs",
                content=logs_request("s-same", 3).SerializeToString(),
                headers={
                    **bearer(key),
                    "Content-Type": "application/x-protobuf",
                    "Idempotency-Key": "one-request",
                },
            ).status_code

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, range(12)))
            again = list(pool.map(resend, [one, two, one, two]))
        assert answers == [[200, 200, 200, 201]] * 12
        assert again == [200] * 4
        expected = {"logs": 20, "metrics": 4, "error_report": 4, "feedback_bundle": 4}
        for url in (one, two):
            for session in range(3):
                got = httpx.get(f"{url}/v1/sessions/s-{session}", headers=bearer(key)).json()
                assert got["items"] == expected, (url, session)
            same = httpx.get(f"{url}/v1/sessions/s-same", headers=bearer(key)).json()
            assert same["items"] == {"logs": 3}
        assert objects() == 12
        removed = httpx.delete(f"{two}/v1/sessions/s-0", headers=bearer(key)).json()["removed"]
        assert removed == expected
        assert httpx.get(f"{one}/v1/sessions/s-0", headers=bearer(key)).status_code == 404
        assert objects() == 8
