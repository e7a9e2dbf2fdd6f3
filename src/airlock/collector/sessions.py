"""What is stored about a session, its deletion, and the retention summary (all per organisation).

``GET /v1/sessions/{id}`` counts a session's items by kind, with the oldest and newest time and
each class's latest expiry; an unknown session answers ``items`` empty. ``DELETE`` removes every
row of the session and then every blob its rows named, and answers what went. ``GET
/v1/retention`` shows, per class, how many items are kept and the age of the oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock.collector.app import ServiceRoute
from airlock.collector.service import BadRequest, Collector, authorize
from airlock.policy.retention import RETENTION_DAYS

SESSION_PATH = "/v1/sessions/{session_id}"
RETENTION_PATH = "/v1/retention"
MAX_SESSION_ID = 200


def _session_id(request: Request) -> str:
    session_id = request.path_params["session_id"]
    if not 0 < len(session_id) <= MAX_SESSION_ID or not session_id.isprintable():
        raise BadRequest(400, f"session id: expected 1 to {MAX_SESSION_ID} printable characters")
    return str(session_id)


def session_routes(collector: Collector) -> Sequence[ServiceRoute]:
    """``GET``/``DELETE /v1/sessions/{id}`` and ``GET /v1/retention``."""

    async def session(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
            session_id = _session_id(request)
        except BadRequest as refused:
            return refused.response()
        if request.method == "DELETE":
            removed, blobs = await run_in_threadpool(collector.db.delete_session, org, session_id)
            for name in blobs:
                await run_in_threadpool(collector.blobs.delete, name)
            return JSONResponse({"session_id": session_id, "removed": removed})
        return JSONResponse(await run_in_threadpool(collector.db.session, org, session_id))

    async def retention(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
        except BadRequest as refused:
            return refused.response()
        kept = await run_in_threadpool(collector.db.retention, org)
        classes = {name: {**entry, "period_days": _days(name)} for name, entry in kept.items()}
        return JSONResponse({"organisation": org.name, "classes": classes})

    return (
        ServiceRoute(Route(SESSION_PATH, session, methods=["GET", "DELETE"]), _SESSION_DOC),
        ServiceRoute(Route(RETENTION_PATH, retention, methods=["GET"]), _RETENTION_DOC),
    )


def _days(name: str) -> int | None:
    for retention_class, days in RETENTION_DAYS.items():
        if retention_class.value == name:
            return days
    return None


def health_route() -> ServiceRoute:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return ServiceRoute(
        Route("/healthz", healthz, methods=["GET"]),
        {
            "get": {
                "summary": "200 when the collector is ready",
                "responses": {"200": {"description": "ready"}},
            }
        },
    )


_AUTH: dict[str, Any] = {"401": {"description": "no key, or an unknown one"}}
_PARAM = [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_SESSION_DOC: dict[str, Any] = {
    "get": {
        "summary": "What is stored about a session: counts by kind, times, classes and expiry",
        "security": [{"bearer": []}],
        "parameters": _PARAM,
        "responses": {
            "200": {
                "description": "items by kind (empty for an unknown session)",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["session_id", "items"],
                            "properties": {
                                "session_id": {"type": "string"},
                                "items": {
                                    "type": "object",
                                    "additionalProperties": {"type": "integer"},
                                },
                            },
                        }
                    }
                },
            },
            "400": {"description": "a bad session id"},
            **_AUTH,
        },
    },
    "delete": {
        "summary": "Remove everything stored about a session (rows and blobs)",
        "security": [{"bearer": []}],
        "parameters": _PARAM,
        "responses": {
            "200": {
                "description": "what was removed, by kind",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["removed"],
                            "properties": {
                                "removed": {
                                    "type": "object",
                                    "additionalProperties": {"type": "integer"},
                                }
                            },
                        }
                    }
                },
            },
            "400": {"description": "a bad session id"},
            **_AUTH,
        },
    },
}
_RETENTION_DOC: dict[str, Any] = {
    "get": {
        "summary": "Per retention class: items kept and the age of the oldest",
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "classes"}, **_AUTH},
    }
}
