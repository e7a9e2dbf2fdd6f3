"""The collector on a real loopback port, in this process, over a real database."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from airlock.collector.blobs import BlobStore, FolderBlobs
from airlock.collector.db import Database
from airlock.collector.feedback import private_dir
from airlock.collector.limits import Limits
from airlock.collector.server import build_app, listen, make_server
from airlock.collector.service import Collector
from airlock.policy.collection import OrgTerms


@dataclass
class Running:
    url: str
    collector: Collector
    data_dir: Path

    def key(self, org: str, terms: OrgTerms | None = None) -> str:
        return self.collector.db.create_org(org, terms or OrgTerms())


@contextlib.contextmanager
def running(
    database_url: str,
    data_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    blocklist: object | None = None,
    limits: Limits | None = None,
    blobs: BlobStore | None = None,
) -> Iterator[Running]:
    """The whole collector app served on 127.0.0.1 (a free port) until the block ends."""
    database = Database(database_url, clock=clock)
    database.migrate()
    collector = Collector(
        database,
        blobs or FolderBlobs(data_dir / "bundles"),
        private_dir(data_dir / "incoming"),
        clock=clock,
        max_bundle_bytes=1024 * 1024,
    )
    app = build_app(collector, blocklist)  # type: ignore[arg-type]
    listener = listen("127.0.0.1", 0)
    server = make_server(app, limits, log_level="error")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the collector did not start"
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{listener.getsockname()[1]}", collector, data_dir)
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
        database.close()


def post_bundle(
    url: str,
    key: str,
    body: bytes,
    idem: str,
    *,
    session: str | None = None,
    kind: str = "feedback",
    retention: str | None = None,
    sha: str | None = None,
) -> httpx.Response:
    """POST a feedback bundle as airlock's client does, with the organisation's key."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Idempotency-Key": idem,
        "X-Airlock-Bundle-Sha256": sha or hashlib.sha256(body).hexdigest(),
        "X-Airlock-Bundle-Kind": kind,
        "Content-Type": "application/gzip",
    }
    if session is not None:
        headers["X-Airlock-Session-Id"] = session
    if retention is not None:
        headers["X-Airlock-Retention-Class"] = retention
    return httpx.post(f"{url}/v1/feedback-bundles", content=body, headers=headers, timeout=30)
