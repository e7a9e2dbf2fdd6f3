"""The collector's HTTP server: uvicorn with :mod:`airlock.collector.limits` in force."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp

from airlock.collector.limits import Limits, guarded_protocol
from airlock.errors import UsageError

if TYPE_CHECKING:
    from airlock.collector.blocklist import ReloadingBlockList
    from airlock.collector.service import Collector


def make_server(
    app: ASGIApp, limits: Limits | None = None, *, log_level: str = "warning"
) -> uvicorn.Server:
    """A uvicorn server for ``app`` whose connections keep to ``limits``."""
    limits = limits or Limits()
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=max(1, round(limits.idle_timeout)),
    )
    return uvicorn.Server(config)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (``0``: a free port).

    Raises:
        UsageError: The address cannot be used (in use, or not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only when it is, and
    # without it every answer waits for the peer's delayed ACK (about 40 ms).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise UsageError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror}); "
            "choose a free port, or an address of this machine"
        ) from error
    return listener


def build_app(collector: Collector, blocklist: ReloadingBlockList | None = None) -> ASGIApp:
    """The collector's app: every ingest and read route, and the domain-safety endpoints when
    a blocklist is given (without one they are not served)."""
    from airlock.collector.app import create_app, domain_safety_routes
    from airlock.collector.feedback import feedback_routes
    from airlock.collector.otlp import otlp_routes
    from airlock.collector.sentry import sentry_routes
    from airlock.collector.sessions import health_route, session_routes

    routes = [
        health_route(),
        *otlp_routes(collector),
        *sentry_routes(collector),
        *feedback_routes(collector),
        *session_routes(collector),
    ]
    if blocklist is not None:
        routes += domain_safety_routes(blocklist)
    return create_app(routes)
