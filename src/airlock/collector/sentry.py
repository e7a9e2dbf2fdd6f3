"""Sentry ingest: the envelope and store endpoints, so ``sentry-sdk`` with a DSN pointing here
works unchanged (``http://KEY@HOST:PORT/PROJECT``).

The DSN's key counts here in Sentry's ways too (``X-Sentry-Auth`` or ``?sentry_key=``, as
well as ``Authorization: Bearer``), and bodies may be compressed as sentry-sdk sends them
(``Content-Encoding: br`` when the brotli package is installed, else gzip).

Error events (``event`` items of an envelope, or a ``store`` body) are stored as error reports
of the key's organisation, under the session their ``session.id`` tag names. Other item types
(sessions, client reports, attachments) are accepted and not kept. An envelope is parsed whole
before anything is stored; a malformed one is a ``400`` saying what is wrong. An event is
stored once per organisation by its ``event_id`` (32 hex characters, as Sentry's SDKs make
them): an envelope sent again, after an answer that never arrived, stores nothing new.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock.collector.app import ServiceRoute
from airlock.collector.db import AlreadyStored, Filing
from airlock.collector.service import BadRequest, Collector, authorize, json_body, read_body
from airlock.policy.collection import ItemKind, storing

ENVELOPE_PATH = "/api/{project_id}/envelope/"
STORE_PATH = "/api/{project_id}/store/"
MAX_SENTRY_BYTES = 16 * 1024 * 1024
STORED_TYPES = frozenset({"event"})
EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")
"""An event id as Sentry's SDKs make them; one stores its event once (see the notes above)."""


def envelope_events(data: bytes) -> tuple[str | None, list[dict[str, Any]]]:
    """The envelope's event id and its error events.

    Raises:
        BadRequest: 400, the envelope does not parse (which line, and why).
    """
    header_line, _, rest = data.partition(b"\n")
    header = json_body(header_line, "the envelope header")
    if not isinstance(header, dict):
        raise BadRequest(400, "body: the envelope header is not a JSON object")
    events: list[dict[str, Any]] = []
    position = 0
    number = 0
    while position < len(rest):
        if rest[position : position + 1] == b"\n":
            position += 1
            continue
        number += 1
        end = rest.find(b"\n", position)
        end = len(rest) if end < 0 else end
        item_header = json_body(rest[position:end], f"the header of item {number}")
        if not isinstance(item_header, dict) or not isinstance(item_header.get("type"), str):
            raise BadRequest(400, f"body: item {number} has no type in its header")
        position = end + 1
        length = item_header.get("length")
        if length is None:
            end = rest.find(b"\n", position)
            end = len(rest) if end < 0 else end
        elif isinstance(length, int) and 0 <= length <= len(rest) - position:
            end = position + length
        else:
            raise BadRequest(400, f"body: item {number} says length {length!r}, past the end")
        payload = rest[position:end]
        position = end + 1
        if item_header["type"] in STORED_TYPES:
            event = json_body(payload, f"the payload of item {number} ({item_header['type']})")
            if not isinstance(event, dict):
                raise BadRequest(400, f"body: item {number}'s event is not a JSON object")
            events.append(event)
    event_id = header.get("event_id")
    return (event_id if isinstance(event_id, str) else None), events


def event_session(event: dict[str, Any]) -> str | None:
    """The session an event belongs to: its ``session.id`` tag."""
    tags = event.get("tags")
    value: Any = None
    if isinstance(tags, dict):
        value = tags.get("session.id")
    elif isinstance(tags, list):
        value = next(
            (
                pair[1]
                for pair in tags
                if isinstance(pair, list) and len(pair) == 2 and pair[0] == "session.id"
            ),
            None,
        )
    return str(value)[:200] if value else None


def sentry_routes(collector: Collector) -> Sequence[ServiceRoute]:
    """``POST /api/{project}/envelope/`` and ``POST /api/{project}/store/``."""

    async def receive(request: Request, envelope: bool) -> JSONResponse:
        try:
            org = await authorize(request, collector, sentry=True)
            data = await read_body(request)
            if envelope:
                event_id, events = envelope_events(data)
            else:
                event = json_body(data, "the event")
                if not isinstance(event, dict):
                    raise BadRequest(400, "body: the event is not a JSON object")
                event_id, events = event.get("event_id"), [event]
        except BadRequest as refused:
            return refused.response()
        verdict = storing(ItemKind.ERROR_REPORT, org.terms)
        if verdict.persisted and events:
            now = collector.clock()
            expires = None if verdict.days is None else now + verdict.days * 86400.0
            once = event_id if isinstance(event_id, str) and EVENT_ID.fullmatch(event_id) else None
            filing = Filing(
                str(ItemKind.ERROR_REPORT), str(verdict.retention_class), now, expires, once
            )
            records = [
                (event_session(event), json.dumps(event, separators=(",", ":")).encode())
                for event in events
            ]
            with contextlib.suppress(AlreadyStored):  # sent again: a success, storing nothing
                await collector.inserts.insert_records(org, filing, records)
        return JSONResponse({"id": event_id})

    async def envelope(request: Request) -> JSONResponse:
        return await receive(request, envelope=True)

    async def store(request: Request) -> JSONResponse:
        return await receive(request, envelope=False)

    def doc(summary: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "parameters": [
                    {
                        "name": "project_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "200": {"description": "accepted"},
                    "400": {"description": "a malformed body, named"},
                    "401": {"description": "no key, or an unknown one"},
                    "413": {"description": "too large"},
                    "415": {"description": "an encoding other than gzip, deflate or br"},
                },
            }
        }

    return (
        ServiceRoute(
            Route(ENVELOPE_PATH, envelope, methods=["POST"]),
            doc("Sentry envelope (error events stored as error reports)"),
            max_body=MAX_SENTRY_BYTES,
        ),
        ServiceRoute(
            Route(STORE_PATH, store, methods=["POST"]),
            doc("Sentry store endpoint (one event)"),
            max_body=MAX_SENTRY_BYTES,
        ),
    )
