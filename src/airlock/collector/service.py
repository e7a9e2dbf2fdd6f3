"""What every collector route shares: the database, the blobs, keys, bodies and answers.

Every ingest and read needs a key of an organisation: ``Authorization: Bearer KEY``, or, on
Sentry's routes only (envelope and store, for Sentry's SDKs), the DSN's public key
(``X-Sentry-Auth: Sentry sentry_key=KEY`` or the ``sentry_key`` query parameter). Elsewhere
those two do not count, so that keys are not invited into the URLs and logs of other routes.
A missing or unknown key is answered ``401`` and counted; a key only ever reaches its own
organisation's rows, so another organisation's session is a ``404``, never its data.

Bodies are read through :func:`read_body`: already bounded by :class:`limits.BodyLimit` as
sent, and bounded again once decompressed (``Content-Encoding: gzip``, ``deflate`` or ``br``),
chunk by chunk, so that a small body that expands enormously (a "bomb") is refused after at
most the limit's worth of output, never held whole in memory.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from airlock.collector.blobs import BlobStore
from airlock.collector.db import NO_KEY, UNKNOWN_KEY, Database, Org
from airlock.collector.grouping import GroupedInserts
from airlock.collector_key import key_path

MAX_DECODED_BYTES = 64 * 1024 * 1024
"""A decompressed body may be at most this large (413 beyond)."""

ENCODINGS = ("gzip", "deflate", "br")
"""The ``Content-Encoding`` values :func:`read_body` decodes (besides none, ``identity``)."""

_STEP = 1024 * 1024
"""At most about this much decompressed output is produced at a time, then counted."""

SENTRY_ONLY = (
    "X-Sentry-Auth and the sentry_key query parameter are accepted only on Sentry's routes "
    "(/api/PROJECT/envelope/ and /api/PROJECT/store/): send Authorization: Bearer KEY"
)
"""The 401's message when a request elsewhere carries its key only in Sentry's ways."""


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


def presented_key(request: Request, *, sentry: bool = False) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY``, and on Sentry's routes
    (``sentry=True``) also Sentry's auth header or the ``sentry_key`` query parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if not sentry:
        return None
    return sentry_key(request)


def sentry_key(request: Request) -> str | None:
    """The key a request carries in Sentry's ways: ``X-Sentry-Auth``'s ``sentry_key``, or the
    ``sentry_key`` query parameter."""
    header = request.headers.get("x-sentry-auth", "")
    if header:
        for part in header.removeprefix("Sentry").split(","):
            name, _, value = part.strip().partition("=")
            if name == "sentry_key" and value:
                return value
    return request.query_params.get("sentry_key") or None


async def authorize(request: Request, collector: Collector, *, sentry: bool = False) -> Org:
    """The organisation of the request's key (see :func:`presented_key`; ``sentry=True`` on
    Sentry's routes only).

    Raises:
        BadRequest: 401, no key or an unknown one (counted). Off Sentry's routes, a request
            whose only key is in ``X-Sentry-Auth`` or ``?sentry_key=`` has no key, and is told
            to send ``Authorization: Bearer KEY``.
    """
    key = presented_key(request, sentry=sentry)
    if key is None:
        await run_in_threadpool(collector.db.count_refusal, NO_KEY)
        if not sentry and sentry_key(request) is not None:
            raise BadRequest(401, f"no key: {SENTRY_ONLY}")
        raise BadRequest(
            401, "no key: send Authorization: Bearer KEY (airlock serve keys create --org NAME)"
        )
    org = collector.db.known_org(key) or await run_in_threadpool(collector.db.org_for_key, key)
    if org is None:
        await run_in_threadpool(collector.db.count_refusal, UNKNOWN_KEY)
        raise BadRequest(401, "the key is not known to this collector")
    return org


class _Decoder(Protocol):
    """A ``Content-Encoding``'s streaming decompressor."""

    name: str
    """The format's name in messages: gzip, deflate, brotli."""

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The output of the next compressed ``data``, a piece of at most about
        :data:`_STEP` bytes at a time, so that the caller can stop a bomb after the limit."""
        ...

    def finished(self) -> bool:
        """Whether the stream has reached its end (else it was cut short)."""
        ...


class _Zlib:
    """gzip (``wbits`` 16 + 15) or deflate, i.e. a zlib stream (``wbits`` 15)."""

    def __init__(self, name: str, wbits: int) -> None:
        self.name = name
        self.inflater = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self.inflater.eof:
                raise BadRequest(400, f"body: data after the end of the {self.name} stream")
            try:
                yield self.inflater.decompress(data, _STEP)
            except zlib.error as problem:
                raise BadRequest(400, f"body: not valid {self.name} ({problem})") from None
            data = self.inflater.unconsumed_tail or self.inflater.unused_data

    def finished(self) -> bool:
        return self.inflater.eof


class _Brotli:
    """Brotli (``br``), as sentry-sdk sends whenever the ``brotli`` package is installed."""

    name = "brotli"

    def __init__(self) -> None:
        try:
            import brotli  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise BadRequest(
                415,
                f"Content-Encoding: 'br': this collector lacks the brotli package "
                f"(pip install 'airlock[serve]'); send one of {', '.join(ENCODINGS[:2])} or none",
            ) from None
        self.error: type[Exception] = brotli.error
        self.decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self.decompressor.is_finished():
            raise BadRequest(400, "body: data after the end of the brotli stream")
        try:
            # output_buffer_limit (brotli 1.2) bounds each step's output: a bomb's first
            # chunk of 64 KiB could otherwise be decompressed to gigabytes at once.
            piece: bytes = self.decompressor.process(data, output_buffer_limit=_STEP)
            yield piece
            # Drain what the decoder holds: it may accept more input while output is still
            # waiting inside it, so ask until it has finished or gives nothing more.
            while piece and not self.decompressor.is_finished():
                piece = self.decompressor.process(b"", output_buffer_limit=_STEP)
                yield piece
        except self.error as problem:
            # brotli says no more than "decoder failed", for corrupt data and for bytes after
            # the stream's end in the same chunk alike (the decoder cannot be asked which)
            reason = str(problem).removeprefix("brotli: ")
            raise BadRequest(
                400, f"body: not valid brotli ({reason}: corrupt, or data after its end)"
            ) from None

    def finished(self) -> bool:
        return bool(self.decompressor.is_finished())


def _decoder(encoding: str) -> _Decoder | None:
    """The decompressor of ``encoding`` (None for none).

    Raises:
        BadRequest: 415, an encoding not in :data:`ENCODINGS`.
    """
    if encoding in ("identity", ""):
        return None
    if encoding == "gzip":
        return _Zlib("gzip", 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Zlib("deflate", zlib.MAX_WBITS)
    if encoding == "br":
        return _Brotli()
    raise BadRequest(
        415, f"Content-Encoding: {encoding!r}: expected one of {', '.join(ENCODINGS)} or none"
    )


async def read_body(request: Request, limit: int = MAX_DECODED_BYTES) -> bytes:
    """The request body, decompressed as its ``Content-Encoding`` says (gzip, deflate, br or
    none), at most ``limit`` bytes once decompressed.

    Raises:
        BadRequest: 400 (a corrupt or cut-short stream, data after its end, the client went
            away), 413 (too large, as sent or once decompressed), 415 (another encoding).
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    decoder = _decoder(encoding)
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if decoder is None:
                size += len(chunk)
                if size > limit:
                    raise BadRequest(413, f"a body over {limit} bytes: the limit here")
                parts.append(chunk)
                continue
            for out in decoder.decode(chunk):
                size += len(out)
                if size > limit:
                    raise BadRequest(413, f"a body over {limit} bytes once decompressed")
                parts.append(out)
    except ClientDisconnect:
        raise BadRequest(400, "the client went away before the whole body arrived") from None
    if decoder is not None and not decoder.finished():
        raise BadRequest(400, f"body: the {decoder.name} stream is cut short")
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
