"""Benchmark of the collector: OTLP ingest, the retention sweep and session deletion.

Prints, for SQLite and PostgreSQL (a throwaway cluster made for the run), from one run:
  1. OTLP log records/s ingested by `airlock serve` (batches of 100 records a request, 4
     client threads) and the p50/p99 request latency, against a plain batched INSERT of the same
     rows into the same database (the limit), in alternating rounds (--rounds, each of
     --records records: the service, then the plain insert); the ratio is of the two medians,
     and each round's own ratio is printed beside it. Goal: at least 50 % of the plain insert.
  2. The sweep of N expired records (default 1,000,000) against one plain DELETE of them, in
     alternating rounds (--sweep-rounds; the ratio is of the two medians, each round's own
     beside it), and the p99 of the ingest requests sent while the sweeps run (one every 20
     ms, all rounds together). Goals: within 2x the plain delete, ingest p99 under 50 ms.
     The sweep is the one `airlock serve` runs on its schedule (the total removed); each
     round also sweeps once counting by kind, as `airlock serve --sweep` does, beside it.
     Both start from the same state: the rows just written, then
     settled as rows written long ago are (PostgreSQL: VACUUM and CHECKPOINT, so that each
     page's first change logs its full image, as after any checkpoint; SQLite: the WAL
     checkpointed into the database).
  3. Deleting one session (DELETE /v1/sessions/ID) among 100,000 sessions. Goal: under 100 ms.

Usage: python benchmarks/collector.py [--records 20000] [--rounds 5] [--expired 1000000]
       [--sweep-rounds 3] [--sessions 100000] [--backends sqlite,postgresql]
Bounded: every phase stops at its count; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.collector.backends import fresh_database, postgres_cluster
from tests.servers import airlock_serve

from airlock.collector.blobs import FolderBlobs
from airlock.collector.db import Database
from airlock.collector.otlp import log_records
from airlock.collector.schema import items
from airlock.collector.service import Collector
from airlock.collector.sweeper import sweep
from airlock.policy.collection import OrgTerms

BATCH = 100
THREADS = 4


def batch(session: str) -> bytes:
    records = [
        LogRecord(
            time_unix_nano=time.time_ns(),
            body=AnyValue(string_value=f"claude_code.api_request {n}"),
            attributes=[
                KeyValue(key="session.id", value=AnyValue(string_value=session)),
                KeyValue(key="model", value=AnyValue(string_value="claude")),
            ],
        )
        for n in range(BATCH)
    ]
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    ).SerializeToString()


def quantile(values: list[float], q: int) -> float:
    """The ``q``th percentile of ``values`` (seconds) in ms; NaN without values (a sweep over
    before the first request)."""
    if len(values) < 2:
        return values[0] * 1e3 if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1] * 1e3


def ingest(url: str, key: str, requests: int, body: bytes) -> tuple[float, list[float]]:
    """Send ``requests`` batches from THREADS threads; records/s and each request's seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}

    def work() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                started = time.perf_counter()
                response = client.post(f"{url}/v1/logs", content=body, headers=headers)
                spent = time.perf_counter() - started
                assert response.status_code == 200, response.text
                with lock:
                    latencies.append(spent)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return requests * BATCH / (time.perf_counter() - started), latencies


def row(org_id: int, session: str, body: bytes, now: float, expires: float) -> dict[str, object]:
    """One ``items`` row as the collector stores a log record."""
    return {
        "org_id": org_id,
        "session_id": session,
        "kind": "logs",
        "retention_class": "commercial",
        "received_at": now,
        "expires_at": expires,
        "idempotency_key": None,
        "blob": None,
        "size": len(body),
        "body": body,
    }


def plain_rows(
    org_id: int, session: str, body: bytes, count: int, expires: float
) -> list[dict[str, object]]:
    """The rows the collector stores for ``count`` records of the batch ``body``."""
    records = log_records(ExportLogsServiceRequest.FromString(body))
    now = time.time()
    rows: list[dict[str, object]] = []
    while len(rows) < count:
        rows += [row(org_id, found or session, data, now, expires) for found, data in records]
    return rows[:count]


def plain_insert(database: Database, rows: list[dict[str, object]], size: int = BATCH) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), size):
        with database.engine.begin() as connection:
            connection.execute(items.insert(), rows[start : start + size])
    return len(rows) / (time.perf_counter() - started)


def fill(database: Database, org_id: int, count: int, expires: float, sessions: int = 0) -> None:
    """``count`` rows (with ``sessions`` distinct sessions when given), in large batches."""
    body = b"x" * 200
    now = time.time()
    chunk = 20_000
    for start in range(0, count, chunk):
        rows = [
            row(org_id, f"s-{(n % sessions) if sessions else n}", body, now, expires)
            for n in range(start, min(count, start + chunk))
        ]
        with database.engine.begin() as connection:
            connection.execute(items.insert(), rows)


def settle(database: Database) -> None:
    """Bring freshly written rows to the state of rows written long ago, the same before the
    sweep and before the plain delete: on PostgreSQL vacuumed (hint bits and visibility map
    set) and checkpointed (dirty pages written, the log's files free for reuse); on SQLite the
    WAL checkpointed into the database file and emptied."""
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if database.dialect == "postgresql":
            connection.exec_driver_sql("VACUUM items")
            connection.exec_driver_sql("CHECKPOINT")
        else:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def each_round(measured: list[float], limits: list[float]) -> str:
    """Each round's own ratio, ``measured`` over ``limits``, in order."""
    return " ".join(f"{a / b:.2f}" for a, b in zip(measured, limits, strict=True))


def sweep_round(
    database: Database,
    org_id: int,
    count: int,
    service: str,
    key: str,
    body: bytes,
    folder: Path,
    by_kind: bool = False,
) -> tuple[float, list[float], int]:
    """``count`` expired rows written and settled, then swept while a client sends the batch
    ``body`` every 20 ms: the sweep's seconds, each request's seconds meanwhile, the rows
    removed. ``folder``: where the sweeping collector keeps its blobs; ``by_kind``: count
    what goes by kind, as ``airlock serve --sweep`` does (else the total, as on a schedule)."""
    past = time.time() - 1
    fill(database, org_id, count, past)
    settle(database)
    collector = Collector(database, FolderBlobs(folder / "blobs"), folder / "incoming")
    during: list[float] = []
    done = threading.Event()

    def steady() -> None:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.post(f"{service}/v1/logs", content=body, headers=headers)
                during.append(time.perf_counter() - started)
                time.sleep(0.02)

    sender = threading.Thread(target=steady)
    sender.start()
    started = time.perf_counter()
    removed = sweep(collector, now=past + 0.5, by_kind=by_kind)
    swept = time.perf_counter() - started
    done.set()
    sender.join()
    return swept, during, sum(removed.values())


def plain_delete_round(database: Database, org_id: int, count: int) -> float:
    """``count`` expired rows written and settled, then removed by one plain ``DELETE``: its
    seconds."""
    past = time.time() - 1
    fill(database, org_id, count, past)
    settle(database)
    started = time.perf_counter()
    with database.engine.begin() as connection:
        connection.execute(sa.delete(items).where(items.c.expires_at <= past + 0.5))
    return time.perf_counter() - started


@contextmanager
def backend(name: str, folder: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{folder / 'data' / 'collector.sqlite3'}"
    else:
        with postgres_cluster() as cluster:
            yield fresh_database(cluster)


def run_backend(name: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as temp, backend(name, Path(temp)) as url:
        folder = Path(temp)
        database = Database(url)
        database.migrate()
        key = database.create_org("bench", OrgTerms())
        org = database.org_for_key(key)
        assert org is not None
        body = batch("s-bench")
        serve = ["--data-dir", str(folder / "data")]
        if name == "postgresql":
            serve += ["--database-url", url]
        with airlock_serve(*serve) as (service, _):
            ingest(service, key, 20, body)  # warm up
            rates, limits, latencies = [], [], []
            for _ in range(args.rounds):  # alternating, so a busy moment hits both alike
                rate, spent = ingest(service, key, args.records // BATCH, body)
                rates.append(rate)
                latencies += spent
                rows = plain_rows(org.id, "s-plain", body, args.records, time.time() + 86400)
                limits.append(plain_insert(database, rows))
            rate, limit = statistics.median(rates), statistics.median(limits)
            print(
                f"== {name}: OTLP ingest, {args.rounds} rounds of {args.records:,} records in batches of {BATCH}, {THREADS} client threads"
            )
            print(
                f"  airlock serve      {rate:10,.0f} records/s   p50 {quantile(latencies, 50):6.1f} ms   p99 {quantile(latencies, 99):6.1f} ms   (median of rounds)"
            )
            print(
                f"  plain INSERT       {limit:10,.0f} records/s   (same rows, batches of {BATCH}, one connection)"
            )
            print(
                f"  ratio {rate / limit:.2f} (goal: at least 0.50); each round: {each_round(rates, limits)}"
            )

            swept, plain, during, removed = [], [], [], 0
            counted, during_counted = [], []
            for _ in range(args.sweep_rounds):  # alternating, as the ingest rounds
                seconds, spent, gone = sweep_round(
                    database, org.id, args.expired, service, key, body, folder
                )
                swept.append(seconds)
                during += spent
                removed += gone
                plain.append(plain_delete_round(database, org.id, args.expired))
                seconds, spent, gone = sweep_round(
                    database, org.id, args.expired, service, key, body, folder, by_kind=True
                )
                counted.append(seconds)
                during_counted += spent
                removed += gone
            ratio = statistics.median(swept) / statistics.median(plain)
            print(
                f"== {name}: sweep of {args.expired:,} expired records, {args.sweep_rounds} rounds"
            )
            print(
                f"  airlock sweep      {statistics.median(swept):8.2f} s   (as on its schedule; {removed:,} removed in all, median of rounds)"
            )
            print(
                f"  plain DELETE       {statistics.median(plain):8.2f} s   ratio {ratio:.2f} (goal: within 2); each round: {each_round(swept, plain)}"
            )
            print(
                f"  counted by kind    {statistics.median(counted):8.2f} s   (airlock serve --sweep) ratio {statistics.median(counted) / statistics.median(plain):.2f}; each round: {each_round(counted, plain)}"
            )
            print(
                f"  ingest during the sweeps: {len(during)} requests, p99 {quantile(during, 99):.1f} ms, max {max(during, default=0) * 1e3:.1f} ms (goal: p99 under 50 ms); counting by kind: p99 {quantile(during_counted, 99):.1f} ms over {len(during_counted)}"
            )

            fill(database, org.id, args.sessions * 3, time.time() + 86400, sessions=args.sessions)
            times = []
            for n in range(20):
                started = time.perf_counter()
                response = httpx.delete(
                    f"{service}/v1/sessions/s-{n * 7}", headers={"Authorization": f"Bearer {key}"}
                )
                times.append(time.perf_counter() - started)
                assert response.json()["removed"] == {"logs": 3}, response.text
            print(
                f"== {name}: delete one session among {args.sessions:,} (3 records each), 20 deletes"
            )
            print(
                f"  median {statistics.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms (goal: under 100 ms)"
            )
        database.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="records a round of ingest")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of ingest, each service then plain"
    )
    parser.add_argument(
        "--expired", type=int, default=1_000_000, help="expired records a sweep round removes"
    )
    parser.add_argument(
        "--sweep-rounds",
        type=int,
        default=3,
        help="rounds of sweep, each airlock's then the plain DELETE",
    )
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if args.rounds < 1 or args.sweep_rounds < 1 or args.records < BATCH:
        parser.error(f"--rounds and --sweep-rounds must be at least 1, --records at least {BATCH}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for name in args.backends.split(","):
        run_backend(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
