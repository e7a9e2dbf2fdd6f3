"""What every collector route shares: the database, the blobs, keys, bodies and answers.

Every ingest and read needs a key of an organisation: ``Authorization: Bearer KEY``, or, for
Sentry's SDKs, the DSN's public key (``X-Sentry-Auth: Sentry sentry_key=KEY`` or the
``sentry_key`` query parameter). A missing or unknown key is answered ``401`` and counted;
a key only ever reaches its own organisation's rows, so another organisation's session is a
``404``, never its data.

Bodies are read through :func:`read_body`: already bounded by :class:`limits.BodyLimit` as
sent, and bounded again once decompressed (``Content-Encoding: gzip``), chunk by chunk.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from airlock.collector.blobs import BlobStore
from airlock.collector.db import NO_KEY, UNKNOWN_KEY, Database, Org
from airlock.collector.grouping import GroupedInserts
from airlock.collector_key import key_path

MAX_DECODED_BYTES = 64 * 1024 * 1024
"""A decompressed body may be at most this large (413 beyond)."""


@dataclass(frozen=True, slots=True)
class Collector:
    """The collector's stores and settings, shared by its routes."""

    db: Database
    blobs: BlobStore
    incoming: Path
    """Where uploads are written while they arrive (same file system as a folder blob store)."""
    clock: Callable[[], float] = time.time
    """Seconds since the epoch (injected in tests)."""
    max_bundle_bytes: int = 200 * 1024 * 1024
    inserts: GroupedInserts = field(init=False)
    """Ingest's inserts, grouped with those of requests arriving meanwhile."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inserts", GroupedInserts(self.db))


class BadRequest(Exception):
    """A request the collector refuses; ``status`` and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        return error(self.status, self.message)


def error(status: int, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"error": message, **more}, status_code=status)


def presented_key(request: Request) -> str | None:
    """The key a request carries: Bearer, Sentry's auth header, or ``sentry_key``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    sentry = request.headers.get("x-sentry-auth", "")
    if sentry:
        for part in sentry.removeprefix("Sentry").split(","):
            name, _, value = part.strip().partition("=")
            if name == "sentry_key" and value:
                return value
    return request.query_params.get("sentry_key") or None


async def authorize(request: Request, collector: Collector) -> Org:
    """The organisation of the request's key.

    Raises:
        BadRequest: 401, no key or an unknown one (counted).
    """
    key = presented_key(request)
    if key is None:
        await run_in_threadpool(collector.db.count_refusal, NO_KEY)
        raise BadRequest(
            401, "no key: send Authorization: Bearer KEY (airlock serve keys create --org NAME)"
        )
    org = collector.db.known_org(key) or await run_in_threadpool(collector.db.org_for_key, key)
    if org is None:
        await run_in_threadpool(collector.db.count_refusal, UNKNOWN_KEY)
        raise BadRequest(401, "the key is not known to this collector")
    return org


async def read_body(request: Request, limit: int = MAX_DECODED_BYTES) -> bytes:
    """The request body, decompressed when ``Content-Encoding: gzip``, at most ``limit`` bytes.

    Raises:
        BadRequest: 400 (bad gzip, unknown encoding, the client went away), 413 (too large).
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise BadRequest(415, f"Content-Encoding: {encoding!r}: expected gzip or none")
    parts: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    try:
        async for chunk in request.stream():
            if inflater is None:
                size += len(chunk)
                if size > limit:
                    raise BadRequest(413, f"a body over {limit} bytes: the limit here")
                parts.append(chunk)
                continue
            data = chunk
            while data:
                try:
                    out = inflater.decompress(data, limit + 1 - size)
                except zlib.error as problem:
                    raise BadRequest(400, f"body: not valid gzip ({problem})") from None
                size += len(out)
                if size > limit:
                    raise BadRequest(413, f"a body over {limit} bytes once decompressed")
                parts.append(out)
                data = inflater.unconsumed_tail
    except ClientDisconnect:
        raise BadRequest(400, "the client went away before the whole body arrived") from None
    if inflater is not None and not inflater.eof:
        raise BadRequest(400, "body: the gzip stream is cut short")
    return b"".join(parts)


def key_file(environ: Mapping[str, str], home: Path) -> Path:
    """Where the local organisation's key is written, for airlock's own clients to find."""
    return key_path(environ, home)


def write_key(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` (0600, folder 0700), replacing what was there."""
    from airlock.collector.feedback import private_dir

    private_dir(path.parent)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    temp.chmod(0o600)
    temp.replace(path)


def json_body(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as problem:
        raise BadRequest(400, f"body: {what} is not valid JSON ({problem})") from None
