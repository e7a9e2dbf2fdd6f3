"""The proxy on stand-by: the audit log open and the listener held, the proxy loaded on demand.

``airlock run`` opens the run's audit log and writes its ``start`` record (durably) before the
command runs, so a log that cannot be written stops the run with nothing run. The proxy itself (asyncio,
uvloop, the server: the largest part of airlock's start-up) need not be loaded by then: the
sandbox's only way out is a socket that already listens, and a connection the command opens
waits in its queue, unanswered and going nowhere, until the proxy accepts it. So
:meth:`StandbyProxy.start` loads and starts the proxy when the first connection waits, or once
the command has run for :data:`STANDBY_SECONDS` (an agent starting up gets it loaded, on the
other core, before its first request). A command that ends sooner having connected nowhere
(``ls``, ``git status``) never needs it: :meth:`StandbyProxy.close` writes the run's record
and ends the log as the proxy would have, with no host in the report.

No module of the proxy is imported here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airlock.egress.audit import AuditLog, audit_paths
from airlock.egress.config import EgressConfig, shown_url
from airlock.egress.report import HostReport, ProxyReport, refusal_counts
from airlock.errors import AirlockError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from airlock.egress.addresses import AddressCheck
    from airlock.egress.running import RunningProxy

STANDBY_SECONDS = 0.05
"""How long the command may run, connecting nowhere, before the proxy is loaded anyway."""


def new_run_id(now: float) -> str:
    """``20261202T102453Z-1a2b3c``: sortable by time, unique by its random tail."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)


class StandbyProxy:
    """A run's audit log, open with its ``start`` record written, and the listener the proxy
    will serve; :meth:`start` loads and starts the proxy, :meth:`close` ends the run.

    Raises (on creation):
        AirlockError: the audit log cannot be opened.
    """

    def __init__(
        self,
        config: EgressConfig,
        listeners: Sequence[socket.socket],
        *,
        run_id: str | None = None,
        clock: Callable[[], float] = time.time,
        repos: Sequence[str] = (),
        git_upstream: str | None = None,
    ) -> None:
        self.config = config
        self.listeners = list(listeners)
        self.started = clock()
        self.run_id = run_id or new_run_id(self.started)
        self.audit = open_audit(config, self.run_id)
        if self.audit is not None:
            self.audit.append(
                start_record(
                    config, self.run_id, self.started, repos=repos, git_upstream=git_upstream
                )
            )
            self._write_start(self.audit)
        self.running: RunningProxy | None = None
        self.start_error: str | None = None
        """Why :meth:`start` failed, for the run's record (the command may have run)."""

    def _write_start(self, audit: AuditLog) -> None:
        """Write the ``start`` record now, durably, before the command runs: a run killed
        at once is in the log, and a log that cannot be written (a full disk) stops the run
        with nothing run.

        Raises:
            AirlockError: it could not be written (the log is ended).
        """
        try:
            audit.flush()
        except Exception as error:  # whatever it is, nothing runs without its start record
            self.abandon()
            said = getattr(error, "strerror", None) or error
            raise AirlockError(
                f"audit log {audit.path}: the run's start could not be written ({said}); "
                "nothing ran"
            ) from error

    def start(self, check: AddressCheck | None = None) -> RunningProxy:
        """Load the proxy and serve the listeners in a background thread (once).

        Raises:
            AirlockError: the proxy could not start (the log stays open: :meth:`close` writes
                the run's record with why, :meth:`abandon` ends it without one).
        """
        if self.running is None:
            from airlock.egress.running import serve

            try:
                self.running = serve(self, check)
            except BaseException as error:
                self.start_error = f"the egress proxy could not start: {error}"
                raise
        return self.running

    def close(self, run_record: dict[str, Any] | None = None) -> ProxyReport:
        """End the run: the proxy's own :meth:`~airlock.egress.running.RunningProxy.close`
        when it was started; else the run's record with no traffic (and why the proxy did
        not start, if it failed to), and the log ended."""
        if self.running is not None:
            return self.running.close(run_record)
        return finish(self, run_record, hosts=(), budget_exhausted=False, error=self.start_error)

    def abandon(self) -> None:
        """End the log, not as final, without a run record (nothing ran: a proxy started
        on its own, by :func:`~airlock.egress.running.start_proxy`, failed)."""
        if self.audit is not None:
            with contextlib.suppress(AirlockError):  # the error raised says why
                self.audit.close(final=False)
            self.audit = None


def open_audit(config: EgressConfig, run: str) -> AuditLog | None:
    """The run's audit log, open for appending (``None`` when the config has none)."""
    if config.audit_log is None:
        return None
    log = Path(config.audit_log)
    heads = config.heads_file or audit_paths(os.environ, log)[1]
    audit = AuditLog(log, Path(heads), run, config.flush_interval)
    audit.open()
    return audit


def start_record(
    config: EgressConfig,
    run: str,
    started: float,
    *,
    repos: Sequence[str] = (),
    git_upstream: str | None = None,
) -> dict[str, Any]:
    """The run's first record: its rules and limits, the hosts inspected and what a secret
    found there does (``secrets``, ``null`` when nothing is inspected: a ``report`` and a
    ``redact`` run's request records read alike, so the log tells them apart here), and the
    git gateway's repositories as given (``:ro`` kept) and its code host (``git_upstream``,
    ``null`` without ``--repo``; the caller leaves out a user or password in it). The upstream
    proxy's URL is kept without its user and password: those go to that proxy alone, never to
    the log that ``airlock audit`` prints."""
    limits = config.limits
    inspection = config.inspection
    upstream = config.upstream_proxy
    return {
        "type": "start",
        "run": run,
        "time": started,
        "allow": [f"{rule.text} ({rule.origin})" for rule in config.allow],
        "deny": [f"{rule.text} ({rule.origin})" for rule in config.deny],
        "default_allow": [f"{rule.text} ({rule.origin})" for rule in config.default_allow],
        "allow_all": config.allow_all,
        "allow_private": config.allow_private,
        "upstream_proxy": upstream if upstream is None else shown_url(upstream),
        "limits": {
            "max_connections": limits.max_connections,
            "max_header_bytes": limits.max_header_bytes,
            "idle_seconds": limits.idle_seconds,
            "head_seconds": limits.head_seconds,
            "new_connections_per_second": limits.new_connections_per_second,
            "max_upload_mb": limits.max_upload_mb,
            "max_log_bytes": limits.max_log_bytes,
        },
        "inspect": [] if inspection is None else sorted(inspection.hosts),
        "secrets": None if inspection is None else inspection.secrets.value,
        "repos": list(repos),
        "git_upstream": git_upstream if repos else None,
    }


def finish(
    standby: StandbyProxy,
    run_record: dict[str, Any] | None,
    *,
    hosts: Sequence[HostReport],
    budget_exhausted: bool,
    error: str | None,
    connections_refused: tuple[tuple[str, int], ...] = (),
    **more: Any,
) -> ProxyReport:
    """Write the run's last record (``run_record`` with the per-host totals), end the log
    durably, and make the report; ``more``: the report's inspection fields."""
    final_hash: str | None = None
    audit = standby.audit
    if audit is not None:
        record: dict[str, Any] = {
            "type": "run",
            "run": standby.run_id,
            "time": standby.started,
            "duration_ms": round((time.time() - standby.started) * 1000, 3),
            **(run_record or {}),
            "hosts": [host.to_json() for host in hosts],
            "upload_budget_exhausted": budget_exhausted,
            "connections_refused": refusal_counts(connections_refused),
            **({"error": error} if error is not None else {}),
        }
        audit.append(record)
        try:
            final_hash = audit.close()
        except AirlockError as failure:
            error = str(failure)
    return ProxyReport(
        run_id=standby.run_id,
        hosts=tuple(hosts),
        final_hash=final_hash,
        audit_log=None if audit is None else audit.path,
        upload_budget_exhausted=budget_exhausted,
        connections_refused=connections_refused,
        error=error,
        **more,
    )
