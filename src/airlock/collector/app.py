"""The collector's ASGI app: one Starlette app that capabilities add their routes to.

Each capability contributes :class:`ServiceRoute` values (a Starlette route and its OpenAPI
path item); :func:`create_app` mounts them and publishes the OpenAPI document at
``/openapi.json``. The domain-safety service (:func:`domain_safety_routes`) is the first;
the collector for metrics, error reports and feedback uploads joins with its own routes.

Every request body is bounded while it is read (:class:`limits.BodyLimit`): a route names
its own limit with ``max_body``, else :data:`limits.MAX_BODY_BYTES` applies.

Bad requests are answered ``400`` with ``{"error": …}`` naming the parameter, the value and
what is valid; the service's own failures are ``500`` (Starlette's default), so a client can
tell its mistakes from ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from airlock.collector.blocklist import ReloadingBlockList, canonical
from airlock.collector.limits import MAX_BODY_BYTES, BodyLimit
from airlock.policy.hosts import HostError
from airlock.webfetch import hashing

MAX_PREFIXES = 16
"""Prefixes one private-mode request may ask about (a host and its parents)."""


class DomainTable(Protocol):
    """What the domain-safety endpoints ask of a blocklist (:class:`BlockList` is the one)."""

    def blocks(self, host: str) -> bool: ...

    def hashes_with_prefix(self, prefix: str) -> list[str]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ServiceRoute:
    """A route of the collector app and its OpenAPI description."""

    route: Route
    openapi: dict[str, Any] = field(default_factory=dict)
    """The OpenAPI path item for ``route.path`` (``{"get": {…}}``)."""
    max_body: int | None = None
    """Largest request body on ``route.path`` (``None``: :data:`limits.MAX_BODY_BYTES`)."""


def create_app(
    routes: Iterable[ServiceRoute] = (), *, title: str = "airlock collector", version: str = ""
) -> ASGIApp:
    """The collector's ASGI app with ``routes`` and ``/openapi.json`` describing them."""
    from airlock import __version__

    mounted = list(routes)
    document = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version or __version__},
        "paths": {item.route.path: item.openapi for item in mounted},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a key of an organisation",
                }
            }
        },
    }

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    framework = Starlette(
        routes=[*(item.route for item in mounted), Route("/openapi.json", openapi, methods=["GET"])]
    )
    bodies = [
        (item.route.path_regex, item.max_body) for item in mounted if item.max_body is not None
    ]
    return BodyLimit(framework, MAX_BODY_BYTES, bodies)


def _bad(parameter: str, value: str, expected: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"{parameter}={value[:300]!r}: expected {expected}", "parameter": parameter},
        status_code=400,
    )


def domain_safety_routes(
    source: ReloadingBlockList | Callable[[], DomainTable],
) -> Sequence[ServiceRoute]:
    """The domain-safety endpoints, answering from ``source``'s blocklist in force."""
    table: Callable[[], DomainTable] = (
        source.get if isinstance(source, ReloadingBlockList) else source
    )

    async def domain_info(request: Request) -> JSONResponse:
        raw = request.query_params.get("domain", "")
        try:
            host = canonical(raw.strip().lower())
        except HostError:
            return _bad("domain", raw, "a hostname such as example.com")
        return JSONResponse({"domain": raw, "can_fetch": not table().blocks(host)})

    async def domain_hashes(request: Request) -> JSONResponse:
        prefixes = request.query_params.getlist("prefix")
        digits = f"{hashing.MIN_PREFIX_HEX} to {hashing.MAX_PREFIX_HEX} hex digits"
        if not prefixes:
            return JSONResponse(
                {
                    "error": f"missing query parameter 'prefix': expected 1 to {MAX_PREFIXES} "
                    f"parameters prefix=HEX ({digits} each, the start of a domain's SHA-256), "
                    "e.g. ?prefix=1a2b&prefix=3c4d",
                    "parameter": "prefix",
                },
                status_code=400,
            )
        if len(prefixes) > MAX_PREFIXES:
            return JSONResponse(
                {
                    "error": f"{len(prefixes)} prefix parameters: expected at most {MAX_PREFIXES}",
                    "parameter": "prefix",
                },
                status_code=400,
            )
        blocklist = table()
        found: list[str] = []
        for prefix in prefixes:
            try:
                found += blocklist.hashes_with_prefix(prefix.lower())
            except ValueError:
                return _bad("prefix", prefix, digits)
        return JSONResponse({"hashes": sorted(set(found))})

    async def status(request: Request) -> JSONResponse:
        body: dict[str, Any] = {"domains": len(table())}
        if isinstance(source, ReloadingBlockList):
            body["reloads"] = source.reloads
        return JSONResponse(body)

    return (
        ServiceRoute(Route("/api/web/domain_info", domain_info, methods=["GET"]), _INFO_DOC),
        ServiceRoute(Route("/api/web/domain_hashes", domain_hashes, methods=["GET"]), _HASHES_DOC),
        ServiceRoute(Route("/api/web/blocklist", status, methods=["GET"]), _STATUS_DOC),
    )


def _error_doc() -> dict[str, Any]:
    return {
        "description": "a bad parameter, named with what is valid",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "parameter": {"type": "string"}},
                }
            }
        },
    }


_INFO_DOC: dict[str, Any] = {
    "get": {
        "summary": "May this hostname be fetched? (the hostname alone, as the reference agent asks)",
        "parameters": [
            {"name": "domain", "in": "query", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": {
                "description": "can_fetch is false when the host or a parent domain is listed",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["domain", "can_fetch"],
                            "properties": {
                                "domain": {"type": "string"},
                                "can_fetch": {"type": "boolean"},
                            },
                        }
                    }
                },
            },
            "400": _error_doc(),
        },
    }
}

_HASHES_DOC: dict[str, Any] = {
    "get": {
        "summary": "Private mode: every listed SHA-256 hash under the given prefixes",
        "description": "The client sends short hex prefixes of the SHA-256 of its host and parent "
        "domains, never the host, and decides locally from the full hashes returned.",
        "parameters": [
            {
                "name": "prefix",
                "in": "query",
                "required": True,
                "schema": {
                    "type": "array",
                    "maxItems": MAX_PREFIXES,
                    "items": {
                        "type": "string",
                        "pattern": f"^[0-9a-f]{{{hashing.MIN_PREFIX_HEX},{hashing.MAX_PREFIX_HEX}}}$",
                    },
                },
                "style": "form",
                "explode": True,
            }
        ],
        "responses": {
            "200": {
                "description": "full hashes (64 hex digits) of listed domains",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "hashes": {"type": "array", "items": {"type": "string"}}
                            },
                        }
                    }
                },
            },
            "400": _error_doc(),
        },
    }
}

_STATUS_DOC: dict[str, Any] = {
    "get": {
        "summary": "How many domains the blocklist in force holds, and how often it was reloaded",
        "responses": {"200": {"description": "counts"}},
    }
}
