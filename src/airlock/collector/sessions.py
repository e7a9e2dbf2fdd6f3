"""What is stored about a session, its deletion, and the retention summary (all per organisation).

``GET /v1/sessions/{id}`` counts a session's items by kind, with the oldest and newest time and
each class's latest expiry. ``DELETE`` removes every blob the session's rows name and then the
rows, and answers what went (a bucket that fails leaves the rows, to delete again: never an
object no row names). A session with nothing stored for the caller's organisation
is a ``404``, for ``GET`` and ``DELETE`` alike, with the same answer whether no organisation
holds it or another one does, so the answer tells nothing of other tenants; the latter is
counted (``other_organisation``) for the organisation that holds it, which alone sees the count.
``GET /v1/retention`` shows, per class, how many items are kept and the age of the oldest, and
the refused requests: those without a valid key (for the whole collector) and those that named
this organisation's sessions with another organisation's key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airlock.collector.app import ServiceRoute
from airlock.collector.db import REFUSAL_REASONS, Org
from airlock.collector.service import BadRequest, Collector, authorize, error
from airlock.policy.retention import RETENTION_DAYS

SESSION_PATH = "/v1/sessions/{session_id}"
RETENTION_PATH = "/v1/retention"
MAX_SESSION_ID = 200
NOT_FOUND = "nothing is stored about this session for the key's organisation"
"""The ``404`` of a session unknown to the caller's organisation (the same whoever holds it)."""


def _session_id(request: Request) -> str:
    session_id = request.path_params["session_id"]
    if not 0 < len(session_id) <= MAX_SESSION_ID or not session_id.isprintable():
        raise BadRequest(400, f"session id: expected 1 to {MAX_SESSION_ID} printable characters")
    return str(session_id)


def _delete(collector: Collector, org: Org, session_id: str) -> dict[str, int]:
    """Delete a session's blobs, then its rows: a deletion cut short (a bucket that fails)
    leaves rows to find and delete again, never an object no row names.

    Raises:
        BadRequest: 503 when a blob could not be deleted (no row was; the client retries).
    """
    deleted: list[str] = []
    for name in collector.db.session_blobs(org, session_id):
        try:
            collector.blobs.delete(name)
        except Exception as failure:  # the store's own errors (OSError, botocore's)
            raise BadRequest(
                503,
                f"a stored bundle of this session could not be deleted ({failure}); its rows "
                f"are kept and {len(deleted)} of its bundles were deleted: try again",
            ) from failure
        deleted.append(name)
    return collector.db.delete_session(org, session_id, deleted)


def session_routes(collector: Collector) -> Sequence[ServiceRoute]:
    """``GET``/``DELETE /v1/sessions/{id}`` and ``GET /v1/retention``."""

    async def session(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
            session_id = _session_id(request)
        except BadRequest as refused:
            return refused.response()
        if request.method == "DELETE":
            try:
                removed = await run_in_threadpool(_delete, collector, org, session_id)
            except BadRequest as failed:
                return failed.response()
            answer: dict[str, Any] = {"session_id": session_id, "removed": removed}
        else:
            answer = await run_in_threadpool(collector.db.session, org, session_id)
        if answer.get("removed" if request.method == "DELETE" else "items"):
            return JSONResponse(answer)
        # Nothing of this organisation's: if another holds the session, it is counted for that one
        await run_in_threadpool(collector.db.count_if_elsewhere, org, session_id)
        return error(404, NOT_FOUND, session_id=session_id)

    async def retention(request: Request) -> JSONResponse:
        try:
            org = await authorize(request, collector)
        except BadRequest as refused:
            return refused.response()
        kept = await run_in_threadpool(collector.db.retention, org)
        classes = {name: {**entry, "period_days": _days(name)} for name, entry in kept.items()}
        counted = await run_in_threadpool(collector.db.refusal_counts, org)
        refusals = {reason: counted.get(reason, 0) for reason in REFUSAL_REASONS}
        return JSONResponse({"organisation": org.name, "classes": classes, "refusals": refusals})

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
_ERROR: dict[str, Any] = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "session_id": {"type": "string"}},
        }
    }
}
_NOT_FOUND: dict[str, Any] = {
    "404": {
        "description": "nothing stored about the session for the key's organisation "
        "(the same answer whether another organisation holds it or none does)",
        "content": _ERROR,
    }
}
_PARAM = [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_SESSION_DOC: dict[str, Any] = {
    "get": {
        "summary": "What is stored about a session: counts by kind, times, classes and expiry",
        "security": [{"bearer": []}],
        "parameters": _PARAM,
        "responses": {
            "200": {
                "description": "items by kind, times, and each class with its expiry",
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
            "400": {"description": "a bad session id", "content": _ERROR},
            **_AUTH,
            **_NOT_FOUND,
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
            "400": {"description": "a bad session id", "content": _ERROR},
            **_AUTH,
            **_NOT_FOUND,
        },
    },
}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_REFUSALS: dict[str, Any] = {
    "type": "object",
    "required": list(REFUSAL_REASONS),
    "properties": {
        "no_key": {**_COUNT, "description": "401s without a key (whole collector)"},
        "unknown_key": {**_COUNT, "description": "401s with an unknown key (whole collector)"},
        "other_organisation": {
            **_COUNT,
            "description": "requests naming this organisation's sessions with another "
            "organisation's key, answered 404 as for an unknown session",
        },
    },
}
_CLASS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": _COUNT,
        "oldest_age_seconds": {"type": "number"},
        "period_days": {"type": ["integer", "null"]},
    },
}
_RETENTION_DOC: dict[str, Any] = {
    "get": {
        "summary": "Per retention class: items kept and the age of the oldest; refused requests",
        "security": [{"bearer": []}],
        "responses": {
            "200": {
                "description": "classes, and refused requests counted by reason",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["organisation", "classes", "refusals"],
                            "properties": {
                                "organisation": {"type": "string"},
                                "classes": {"type": "object", "additionalProperties": _CLASS},
                                "refusals": _REFUSALS,
                            },
                        }
                    }
                },
            },
            **_AUTH,
        },
    }
}
