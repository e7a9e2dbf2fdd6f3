"""Run the proxy on its own event loop in a background thread of the calling process.

:func:`start_proxy` takes sockets that already listen (``airlock run`` makes one inside the
sandbox's network namespace and passes its descriptor out, so no relay process exists on
either side of the wall), opens the audit log, writes the run's ``start`` record and serves
until :meth:`RunningProxy.close`, which ends the connections, writes the ``run`` record,
flushes the log durably and returns the :class:`~airlock.egress.report.ProxyReport`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airlock.egress.addresses import AddressCheck, check_address
from airlock.egress.audit import AuditLog, audit_paths
from airlock.egress.config import EgressConfig
from airlock.egress.report import ProxyReport, host_reports
from airlock.egress.server import Proxy
from airlock.errors import AirlockError


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def new_run_id(now: float) -> str:
    """``20261202T102453Z-1a2b3c``: sortable by time, unique by its random tail."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)


class RunningProxy:
    """A proxy serving in a background thread; :meth:`close` ends it and returns the report."""

    def __init__(
        self,
        proxy: Proxy,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        started: float,
    ) -> None:
        self._proxy = proxy
        self._loop = loop
        self._thread = thread
        self._started = started
        self._report: ProxyReport | None = None

    @property
    def run_id(self) -> str:
        return self._proxy.run_id

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the proxy listens (host, port) for each TCP listener."""
        found: list[tuple[str, int]] = []
        for server in self._proxy.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                found.append((str(name[0]), int(name[1])))
        return found

    @property
    def failed(self) -> BaseException | None:
        """Why traffic was stopped (the audit log could not be written), or ``None``."""
        return self._proxy.failed

    def close(self, run_record: dict[str, Any] | None = None, grace: float = 1.0) -> ProxyReport:
        """Stop accepting, end the connections, write the run record, flush the log.

        Args:
            run_record: what the run adds to its record (``command``, ``variables_dropped``,
                ``exit_code``, …); ``type``, ``run``, ``time`` and the totals are added here.
            grace: seconds open connections get to finish before they are cut.

        Returns:
            The report: per host, connections, requests, bytes each way and refusals; the
            final hash; ``error`` when the audit log failed (traffic was stopped then).
        """
        if self._report is not None:
            return self._report
        proxy = self._proxy
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(proxy.shutdown(grace), self._loop)
            future.result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        hosts = host_reports(proxy.hosts)
        final_hash: str | None = None
        error = None if proxy.failed is None else f"the audit log failed: {proxy.failed}"
        if proxy.audit is not None:
            record: dict[str, Any] = {
                "type": "run",
                "run": proxy.run_id,
                "time": self._started,
                "duration_ms": round((time.time() - self._started) * 1000, 3),
                **(run_record or {}),
                "hosts": [host.to_json() for host in hosts],
                "upload_budget_exhausted": proxy.budget.exhausted,
            }
            proxy.audit.append(record)
            try:
                final_hash = proxy.audit.close()
            except AirlockError as failure:
                error = str(failure)
        self._report = ProxyReport(
            run_id=proxy.run_id,
            hosts=hosts,
            final_hash=final_hash,
            audit_log=None if proxy.audit is None else proxy.audit.path,
            upload_budget_exhausted=proxy.budget.exhausted,
            error=error,
            flows=() if proxy.inspector is None else tuple(proxy.inspector.flow_summaries()),
            refused_by_client=()
            if proxy.inspector is None
            else tuple(sorted(proxy.inspector.refused_by_client.items())),
        )
        return self._report


def start_proxy(
    config: EgressConfig,
    listeners: list[socket.socket],
    *,
    check: AddressCheck = check_address,
    run_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> RunningProxy:
    """Serve ``listeners`` (already listening) with ``config``, in a background thread.

    Args:
        config: rules, limits, audit log.
        listeners: listening TCP sockets; the proxy owns them from now on.
        check: the address check before dialling (the default resolves once and refuses
            loopback, link-local, metadata and private addresses unless explicitly allowed).
        run_id: the run's id; a new one (time and random) by default.
        clock: seconds since the epoch, for the run's start time.

    Raises:
        AirlockError: the audit log cannot be opened, or a listener cannot be served.
    """
    started = clock()
    run = run_id or new_run_id(started)
    audit = _open_audit(config, run)
    proxy = Proxy(config, audit, run, check)
    loop = new_event_loop()
    if audit is not None:

        def stop_traffic(error: BaseException) -> None:
            loop.call_soon_threadsafe(proxy.fail, error)

        audit.on_failure = stop_traffic
        audit.append(_start_record(config, run, started))
    ready = threading.Event()
    problems: list[BaseException] = []
    thread = threading.Thread(
        target=_serve,
        args=(loop, proxy, listeners, ready, problems),
        name=f"egress-proxy-{run}",
        daemon=True,
    )
    thread.start()
    ready.wait()
    if problems:
        thread.join()
        if audit is not None:
            audit.close(final=False)
        raise AirlockError(f"the egress proxy could not start: {problems[0]}") from problems[0]
    return RunningProxy(proxy, loop, thread, started)


def _open_audit(config: EgressConfig, run: str) -> AuditLog | None:
    if config.audit_log is None:
        return None
    log = Path(config.audit_log)
    heads = config.heads_file or audit_paths(os.environ, log)[1]
    audit = AuditLog(log, Path(heads), run, config.flush_interval)
    audit.open()
    return audit


def _start_record(config: EgressConfig, run: str, started: float) -> dict[str, Any]:
    limits = config.limits
    return {
        "type": "start",
        "run": run,
        "time": started,
        "allow": [f"{rule.text} ({rule.origin})" for rule in config.allow],
        "deny": [f"{rule.text} ({rule.origin})" for rule in config.deny],
        "default_allow": [f"{rule.text} ({rule.origin})" for rule in config.default_allow],
        "allow_all": config.allow_all,
        "allow_private": config.allow_private,
        "upstream_proxy": config.upstream_proxy,
        "limits": {
            "max_connections": limits.max_connections,
            "max_header_bytes": limits.max_header_bytes,
            "idle_seconds": limits.idle_seconds,
            "new_connections_per_second": limits.new_connections_per_second,
            "max_upload_mb": limits.max_upload_mb,
        },
    }


def _serve(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    listeners: list[socket.socket],
    ready: threading.Event,
    problems: list[BaseException],
) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(proxy.start(listeners))
    except BaseException as error:  # handed to the starting thread, raised there
        problems.append(error)
        ready.set()
        loop.close()
        return
    ready.set()
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
