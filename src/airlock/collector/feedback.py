"""The collector's feedback routes: bundles and survey ratings, stored once, kept per class.

Theory of operation
-------------------
``POST /v1/feedback-bundles`` receives a gzip'd tar streamed with a ``Content-Length``, its
SHA-256 (``X-Airlock-Bundle-Sha256``), an ``Idempotency-Key``, its kind (``feedback`` or
``shared_transcript``) and optionally its session (``X-Airlock-Session-Id``). The body goes to
a temporary file while it is hashed; only a complete body whose hash matches is kept: handed
to the blob store (renamed into the bundles folder, or put in the bucket) and recorded as an
item of the caller's organisation. A cut connection or a wrong hash leaves nothing behind. A
key already stored is answered ``200`` (the client's retry after a lost answer); a new one
``201``.

``POST /v1/survey-ratings`` stores the JSON rating alone (no session, no link to any other
record), with the day it arrived and no finer time.

The retention class of each record is the server's: :func:`airlock.policy.collection.storing`
answers it from the kind of record and the organisation's terms; a class a client names
(``X-Airlock-Retention-Class``) is ignored. Under zero data retention nothing is persisted
(``202``); an organisation that disabled product feedback has its bundles refused (``403``).

The data directory and its folders are ``0700`` and every file in them ``0600``, whatever the
umask of the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock._atomic import sync_file
from airlock.collector.app import ServiceRoute
from airlock.collector.db import Item, Org
from airlock.collector.service import BadRequest, Collector, authorize, error, json_body, read_body
from airlock.policy.collection import ItemKind, Storing, storing

BUNDLES_PATH = "/v1/feedback-bundles"
RATINGS_PATH = "/v1/survey-ratings"
MAX_BUNDLE_BYTES = 200 * 1024 * 1024
"""Default size limit of one bundle; larger ones are answered ``413``."""
MAX_RATING_BYTES = 64 * 1024
MAX_KEY_LENGTH = 200
DAY = 86400.0
BUNDLE_KINDS = {
    "feedback": ItemKind.FEEDBACK_BUNDLE,
    "shared_transcript": ItemKind.SHARED_TRANSCRIPT,
}


def default_data_dir(environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_DATA_HOME/airlock/collector``, else ``~/.local/share/airlock/collector``."""
    base = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(base) / "airlock" / "collector"


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


def blob_name(org: Org, kind: str, key: str) -> str:
    """The blob of one bundle: chosen by the collector, the same for a retried upload."""
    return hashlib.sha256(f"{org.id}\0{kind}\0{key}".encode()).hexdigest() + ".tar.gz"


def _key(request: Request) -> str:
    key = request.headers.get("idempotency-key", "").strip()
    if not (0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise BadRequest(
            400, f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return key


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


def _expiry(verdict: Storing, now: float) -> float | None:
    return None if verdict.days is None else now + verdict.days * DAY


def feedback_routes(collector: Collector) -> Sequence[ServiceRoute]:
    """``POST /v1/feedback-bundles`` and ``POST /v1/survey-ratings``, under the caller's org."""

    async def bundles(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
            key = _key(request)
            wanted = request.headers.get("x-airlock-bundle-sha256", "").lower()
            if len(wanted) != 64 or not all(c in "0123456789abcdef" for c in wanted):
                raise BadRequest(
                    400, "X-Airlock-Bundle-Sha256: expected the body's SHA-256, 64 hex digits"
                )
            length_text = request.headers.get("content-length")
            if length_text is None or not length_text.isdigit():
                raise BadRequest(411, "Content-Length: expected the body's size in bytes")
            length = int(length_text)
            if length > collector.max_bundle_bytes:
                raise BadRequest(
                    413, f"bundle of {length} bytes: the limit is {collector.max_bundle_bytes}"
                )
            kind_name = request.headers.get("x-airlock-bundle-kind", "feedback")
            kind = BUNDLE_KINDS.get(kind_name)
            if kind is None:
                raise BadRequest(
                    400,
                    f"X-Airlock-Bundle-Kind={kind_name[:64]!r}: expected one of {', '.join(BUNDLE_KINDS)}",
                )
            session = request.headers.get("x-airlock-session-id", "").strip()[:200] or None
        except BadRequest as refused:
            return refused.response()
        verdict = storing(kind, org.terms)
        if verdict.refused:
            await _drain(request)
            return error(403, verdict.refused)
        if not verdict.persisted:
            await _drain(request)
            return _dropped(key, verdict)
        if await run_in_threadpool(collector.db.has, org, str(kind), key):
            await _drain(request)
            return JSONResponse({"id": key, "duplicate": True}, status_code=200)
        digest = hashlib.sha256()
        received = 0
        handle, name = tempfile.mkstemp(dir=collector.incoming, suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > length:
                        return error(400, f"body longer than Content-Length {length}")
                    digest.update(chunk)
                    out.write(chunk)
                sync_file(out)
            if received != length:
                return error(400, f"body of {received} bytes: Content-Length said {length}")
            if digest.hexdigest() != wanted:
                return error(
                    400, "hash mismatch: the body's SHA-256 is not X-Airlock-Bundle-Sha256"
                )
            blob = blob_name(org, str(kind), key)
            now = collector.clock()
            row = Item(
                session,
                str(kind),
                str(verdict.retention_class),
                now,
                _expiry(verdict, now),
                length,
                None,
                key,
                blob,
            )
            await run_in_threadpool(collector.blobs.put, blob, temp)
            try:
                stored = await run_in_threadpool(collector.db.insert_once, org, row)
            except Exception:
                await run_in_threadpool(collector.blobs.delete, blob)
                raise
        except ClientDisconnect:
            return error(400, "the client went away before the whole body arrived")
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return JSONResponse(
            {"id": key, "duplicate": not stored}, status_code=201 if stored else 200
        )

    async def ratings(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
            key = _key(request)
            body = await read_body(request, MAX_RATING_BYTES)
            payload = json_body(body, "the rating")
            if not isinstance(payload, dict):
                raise BadRequest(400, "body: expected a JSON object")
        except BadRequest as refused:
            return refused.response()
        verdict = storing(ItemKind.SURVEY_RATING, org.terms)
        if not verdict.persisted:
            return _dropped(key, verdict)
        day = collector.clock() // DAY * DAY  # the day only, no finer time
        row = Item(
            None,
            str(ItemKind.SURVEY_RATING),
            str(verdict.retention_class),
            day,
            _expiry(verdict, day),
            len(body),
            body,
            key,
        )
        stored = await run_in_threadpool(collector.db.insert_once, org, row)
        return JSONResponse(
            {"id": key, "duplicate": not stored}, status_code=201 if stored else 200
        )

    post: dict[str, Any] = {
        "security": [{"bearer": []}],
        "responses": {
            "201": {"description": "stored"},
            "200": {"description": "already stored under this Idempotency-Key"},
            "202": {"description": "zero data retention: accepted, nothing stored"},
            "400": {"description": "a bad header or body, named"},
            "401": {"description": "no key, or an unknown one"},
            "403": {"description": "the organisation does not accept this kind"},
            "413": {"description": "too large"},
        },
    }
    return (
        ServiceRoute(
            Route(BUNDLES_PATH, bundles, methods=["POST"]),
            {
                "post": {
                    "summary": "Store a feedback bundle (gzip'd tar), once, if its SHA-256 matches",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/gzip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **post,
                }
            },
            max_body=collector.max_bundle_bytes,
        ),
        ServiceRoute(
            Route(RATINGS_PATH, ratings, methods=["POST"]),
            {
                "post": {
                    "summary": "Store a survey rating alone, with the day only",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **post,
                }
            },
            max_body=MAX_RATING_BYTES,
        ),
    )


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
