"""Run the proxy on its own event loop in a background thread of the calling process.

:func:`start_proxy` takes sockets that already listen (``airlock run`` makes one inside the
sandbox's network namespace and passes its descriptor out, so no relay process exists on
either side of the wall), opens the audit log, writes the run's ``start`` record and serves
until :meth:`RunningProxy.close`, which ends the connections, writes the ``run`` record,
flushes the log durably and returns the :class:`~airlock.egress.report.ProxyReport`.
:func:`serve` does the same for a :class:`~airlock.egress.standby.StandbyProxy`, whose log is
already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from airlock.egress.addresses import AddressCheck, check_address
from airlock.egress.config import EgressConfig
from airlock.egress.report import ProxyReport, host_reports
from airlock.egress.server import Proxy
from airlock.egress.standby import StandbyProxy, finish
from airlock.errors import AirlockError


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class RunningProxy:
    """A proxy serving in a background thread; :meth:`close` ends it and returns the report."""

    def __init__(
        self,
        standby: StandbyProxy,
        proxy: Proxy,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
    ) -> None:
        self._standby = standby
        self._proxy = proxy
        self._loop = loop
        self._thread = thread
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
            final hash; ``error`` when traffic was stopped: the audit log failed, or the
            run's records reached their cap.
        """
        if self._report is not None:
            return self._report
        proxy = self._proxy
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(proxy.shutdown(grace), self._loop)
            future.result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        inspector = proxy.inspector
        self._report = finish(
            self._standby,
            run_record,
            hosts=host_reports(proxy.hosts),
            budget_exhausted=proxy.budget.exhausted,
            connections_refused=tuple(proxy.turned_away.most_common()),
            error=f"the audit log failed: {proxy.failed}" if proxy.failed else proxy.stopped,
            flows=() if inspector is None else tuple(inspector.flow_summaries()),
            refused_by_client=()
            if inspector is None
            else tuple(sorted(inspector.refused_by_client.items())),
            unchecked=() if inspector is None else tuple(inspector.unchecked.most_common()),
            uninspected=() if inspector is None else tuple(inspector.uninspected(proxy.hosts)),
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
    standby = StandbyProxy(config, listeners, run_id=run_id, clock=clock)
    try:
        return standby.start(check)
    except BaseException:
        standby.abandon()
        raise


def serve(standby: StandbyProxy, check: AddressCheck | None = None) -> RunningProxy:
    """Serve ``standby``'s listeners with its config and audit log, in a background thread
    (:meth:`StandbyProxy.start <airlock.egress.standby.StandbyProxy.start>`).

    Raises:
        AirlockError: a listener cannot be served.
    """
    audit = standby.audit
    proxy = Proxy(standby.config, audit, standby.run_id, check or check_address)
    loop = new_event_loop()
    if audit is not None:

        def stop_traffic(error: BaseException) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: no traffic is left
                loop.call_soon_threadsafe(proxy.fail, error)

        # First the hook, then the look: the writer sets ``failed`` before it calls the hook,
        # so a failure before this line is seen below, and one after it calls the hook.
        audit.on_failure = stop_traffic
        if audit.failed is not None:  # it failed while the proxy was not loaded
            proxy.fail(audit.failed)  # every connection is refused, saying why
    ready = threading.Event()
    problems: list[BaseException] = []
    thread = threading.Thread(
        target=_serve,
        args=(loop, proxy, standby.listeners, ready, problems),
        name=f"egress-proxy-{standby.run_id}",
        daemon=True,
    )
    thread.start()
    ready.wait()
    if problems:
        thread.join()
        raise AirlockError(f"the egress proxy could not start: {problems[0]}") from problems[0]
    return RunningProxy(standby, proxy, loop, thread)


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
