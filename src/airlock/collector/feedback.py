"""The collector's feedback routes: bundles and survey ratings, stored once, kept per class.

Theory of operation
-------------------
``POST /v1/feedback-bundles`` receives a gzip'd tar streamed with a ``Content-Length``, its
SHA-256 (``X-Airlock-Bundle-Sha256``), an ``Idempotency-Key`` and its kind (``feedback`` or
``shared_transcript``). The body goes to a temporary file in the data directory while it is
hashed; only a complete body whose hash matches is kept: fsync'd, renamed into ``bundles/``
and recorded in the SQLite index with its class and the time it arrived. A cut connection or a
wrong hash leaves nothing behind. A key already stored is answered ``200`` (the client's retry
after a lost answer); a new one ``201``.

``POST /v1/survey-ratings`` stores the JSON rating alone (no link to any other record), with
the day it arrived and no finer time.

The retention class of each record is the server's: :func:`airlock.policy.collection.storing`
answers it from the kind of record and the organisation's terms; a class a client names
(``X-Airlock-Retention-Class``) is ignored. A record is kept for its class's period;
:meth:`FeedbackStore.sweep` deletes what is past it. A class whose period is ``0`` (zero
data retention) is never persisted: the collector answers ``202`` and stores nothing.

The data directory and its folders are ``0700`` and every file in them ``0600``, whatever the
umask of the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock.collector.app import ServiceRoute
from airlock.policy.collection import ItemKind, OrgTerms, Storing, storing
from airlock.policy.retention import RETENTION_DAYS, RetentionClass

BUNDLES_PATH = "/v1/feedback-bundles"
RATINGS_PATH = "/v1/survey-ratings"
MAX_BUNDLE_BYTES = 200 * 1024 * 1024
"""Default size limit of one bundle; larger ones are answered ``413``."""
MAX_RATING_BYTES = 64 * 1024
MAX_KEY_LENGTH = 200
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    key TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    retention_class TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    retention_class TEXT NOT NULL,
    received_day TEXT NOT NULL
);
"""


def default_data_dir(environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_DATA_HOME/airlock/collector``, else ``~/.local/share/airlock/collector``."""
    base = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(base) / "airlock" / "collector"


class FeedbackStore:
    """Bundles as files and an SQLite index, ratings in SQLite, under ``data_dir``.

    Args:
        data_dir: created when missing.
        clock: the current time (aware, UTC).
        max_bundle_bytes: bundles above this are refused.
        terms: the organisation's terms, from which each record's class comes.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], datetime],
        max_bundle_bytes: int = MAX_BUNDLE_BYTES,
        terms: OrgTerms | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.terms = terms or OrgTerms()
        self.clock = clock
        self.max_bundle_bytes = max_bundle_bytes
        self.bundles_dir = data_dir / "bundles"
        self.incoming_dir = data_dir / "incoming"
        for folder in (data_dir, self.bundles_dir, self.incoming_dir):
            private_dir(folder)
        for leftover in self.incoming_dir.iterdir():  # parts of uploads cut by a stop
            leftover.unlink(missing_ok=True)
        self._lock = threading.Lock()
        database = private_file(data_dir / "collector.sqlite3")
        self._db = sqlite3.connect(database, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def has_bundle(self, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM bundles WHERE key = ?", (key,)).fetchone()
        return row is not None

    def bundle_keys(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT key FROM bundles ORDER BY key")]

    def bundle_file(self, key: str) -> Path:
        return self.bundles_dir / (hashlib.sha256(key.encode()).hexdigest() + ".tar.gz")

    def publish(
        self, key: str, temp: Path, *, sha256: str, size: int, kind: str, retention: str
    ) -> bool:
        """Move a complete, verified temp file into place and record it; ``False``: a duplicate."""
        final = self.bundle_file(key)
        with self._lock:
            if self._db.execute("SELECT 1 FROM bundles WHERE key = ?", (key,)).fetchone():
                temp.unlink(missing_ok=True)
                return False
            temp.replace(final)
            _fsync_dir(self.bundles_dir)
            with self._db:
                self._db.execute(
                    "INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, final.name, sha256, size, kind, retention, self.clock().isoformat()),
                )
        return True

    def add_rating(self, key: str, payload: Mapping[str, Any], retention: str) -> bool:
        """Store a rating with the day only; ``False`` when the key is already stored."""
        day = self.clock().date().isoformat()
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO ratings VALUES (?, ?, ?, ?)",
                (key, json.dumps(dict(payload), sort_keys=True), retention, day),
            )
        return cursor.rowcount == 1

    def ratings(self) -> list[tuple[str, dict[str, Any], str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM ratings ORDER BY key").fetchall()
        return [(key, json.loads(payload), cls, day) for key, payload, cls, day in rows]

    def sweep(self) -> int:
        """Delete every record past its class's period; returns how many went."""
        now = self.clock()
        gone = 0
        with self._lock:
            rows = self._db.execute("SELECT key, file, retention_class, received_at FROM bundles")
            for key, name, retention, received in rows.fetchall():
                days = _days(retention)
                if days is not None and datetime.fromisoformat(received) + timedelta(days) <= now:
                    (self.bundles_dir / name).unlink(missing_ok=True)
                    with self._db:
                        self._db.execute("DELETE FROM bundles WHERE key = ?", (key,))
                    gone += 1
            rows = self._db.execute("SELECT key, retention_class, received_day FROM ratings")
            for key, retention, day in rows.fetchall():
                days = _days(retention)
                if days is not None and date.fromisoformat(day) + timedelta(days) <= now.date():
                    with self._db:
                        self._db.execute("DELETE FROM ratings WHERE key = ?", (key,))
                    gone += 1
        return gone


def _days(retention: str) -> int | None:
    try:
        return RETENTION_DAYS[RetentionClass(retention)]
    except ValueError:
        return min(d for d in RETENTION_DAYS.values() if d)  # unknown: the shortest period


def private_dir(path: Path) -> Path:
    """``path`` made (with missing parents) and set to ``0700``, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty when missing, and set to ``0600``, whatever the umask."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _error(status: int, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"error": message, **more}, status_code=status)


_BUNDLE_KINDS = {
    "feedback": ItemKind.FEEDBACK_BUNDLE,
    "shared_transcript": ItemKind.SHARED_TRANSCRIPT,
}


def _dropped(key: str, verdict: Storing) -> JSONResponse:
    return JSONResponse(
        {
            "id": key,
            "stored": False,
            "reason": f"retention class {verdict.retention_class}: never persisted",
        },
        status_code=202,
    )


async def _drain(request: Request) -> None:
    """Read and drop the body, so the client can finish sending before it reads the answer."""
    with contextlib.suppress(ClientDisconnect):
        async for _ in request.stream():
            pass


def _key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key", "").strip()
    return key if 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable() else None


def feedback_routes(store: FeedbackStore) -> Sequence[ServiceRoute]:
    """``POST /v1/feedback-bundles`` and ``POST /v1/survey-ratings``, stored in ``store``."""

    async def bundles(request: Request) -> JSONResponse:
        key = _key(request)
        if key is None:
            return _error(
                400, f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} printable characters"
            )
        wanted = request.headers.get("x-airlock-bundle-sha256", "").lower()
        if len(wanted) != 64 or not all(c in "0123456789abcdef" for c in wanted):
            return _error(
                400, "X-Airlock-Bundle-Sha256: expected the body's SHA-256, 64 hex digits"
            )
        length_text = request.headers.get("content-length")
        if length_text is None or not length_text.isdigit():
            return _error(411, "Content-Length: expected the body's size in bytes")
        length = int(length_text)
        if length > store.max_bundle_bytes:
            return _error(413, f"bundle of {length} bytes: the limit is {store.max_bundle_bytes}")
        kind_name = request.headers.get("x-airlock-bundle-kind", "feedback")
        kind = _BUNDLE_KINDS.get(kind_name)
        if kind is None:
            return _error(
                400,
                f"X-Airlock-Bundle-Kind={kind_name[:64]!r}: expected one of {', '.join(_BUNDLE_KINDS)}",
            )
        verdict = storing(kind, store.terms)
        if verdict.refused:
            await _drain(request)
            return _error(403, verdict.refused)
        if not verdict.persisted:
            await _drain(request)
            return _dropped(key, verdict)
        if store.has_bundle(key):
            await _drain(request)
            return JSONResponse({"id": key, "duplicate": True}, status_code=200)
        digest = hashlib.sha256()
        received = 0
        handle, name = tempfile.mkstemp(dir=store.incoming_dir, suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > length:
                        return _error(400, f"body longer than Content-Length {length}")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if received != length:
                return _error(400, f"body of {received} bytes: Content-Length said {length}")
            if digest.hexdigest() != wanted:
                return _error(
                    400, "hash mismatch: the body's SHA-256 is not X-Airlock-Bundle-Sha256"
                )
            stored = store.publish(
                key,
                temp,
                sha256=wanted,
                size=length,
                kind=kind_name,
                retention=str(verdict.retention_class),
            )
        except ClientDisconnect:
            return _error(400, "the client went away before the whole body arrived")
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return JSONResponse(
            {"id": key, "duplicate": not stored}, status_code=201 if stored else 200
        )

    async def ratings(request: Request) -> JSONResponse:
        key = _key(request)
        if key is None:
            return _error(
                400, f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} printable characters"
            )
        body = await request.body()  # bounded by BodyLimit (MAX_RATING_BYTES)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _error(400, "body: expected a JSON object")
        verdict = storing(ItemKind.SURVEY_RATING, store.terms)
        if not verdict.persisted:
            return _dropped(key, verdict)
        stored = store.add_rating(key, payload, str(verdict.retention_class))
        return JSONResponse(
            {"id": key, "duplicate": not stored}, status_code=201 if stored else 200
        )

    post = {
        "requestBody": {"required": True},
        "responses": {
            "201": {"description": "stored"},
            "200": {"description": "already stored under this Idempotency-Key"},
            "202": {"description": "the retention class is never persisted: nothing stored"},
            "403": {"description": "the organisation does not accept this kind"},
            "400": {"description": "a bad header or body, named"},
            "413": {"description": "too large"},
        },
    }
    return (
        ServiceRoute(
            Route(BUNDLES_PATH, bundles, methods=["POST"]),
            {
                "post": {
                    "summary": "Store a feedback bundle (gzip'd tar), once, if its SHA-256 matches",
                    **post,
                }
            },
            max_body=store.max_bundle_bytes,
        ),
        ServiceRoute(
            Route(RATINGS_PATH, ratings, methods=["POST"]),
            {"post": {"summary": "Store a survey rating alone, with the day only", **post}},
            max_body=MAX_RATING_BYTES,
        ),
    )


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
