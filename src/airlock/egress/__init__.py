"""The egress side of ``airlock run``: the proxy, its audit log, inspection and the git gateway.

    >>> config = EgressConfig(allow=EgressConfig.rules(["example.com"], "--allow"),
    ...                       audit_log=default_log_path(config_dir))
    >>> running = start_proxy(config, [listening_socket])
    >>> ...                                   # the sandboxed command runs
    >>> report = running.close({"command": [...], "exit_code": 0})

Modules: :mod:`~airlock.egress.config` (what the proxy is told), :mod:`~airlock.egress.rules`
(allow or deny), :mod:`~airlock.egress.addresses` (the address check before dialling),
:mod:`~airlock.egress.http1` (request parsing), :mod:`~airlock.egress.server` (the proxy),
:mod:`~airlock.egress.client` (one connection), :mod:`~airlock.egress.tunnels` (CONNECT),
:mod:`~airlock.egress.forwarding` (plain HTTP), :mod:`~airlock.egress.connection` (what they share),
:mod:`~airlock.egress.running` (its thread), :mod:`~airlock.egress.standby` (the log open,
the proxy loaded on demand), :mod:`~airlock.egress.audit` (the chained log),
:mod:`~airlock.egress.audit_read` (reading it back: listing, verifying, rotating),
:mod:`~airlock.egress.flows` (which data flow a request is), :mod:`~airlock.egress.ca` (the run's CA).
"""

from airlock.extras import require

require("run", "airlock.egress (airlock run, airlock audit)")  # names the extra to install

from airlock.egress.audit import AuditLog, audit_paths, default_log_path, heads_path
from airlock.egress.config import EgressConfig, HostRule, Limits
from airlock.egress.report import HostReport, ProxyReport
from airlock.egress.rules import default_rules
from airlock.egress.standby import StandbyProxy

# The proxy itself (asyncio, uvloop, the server) loads when first named: ``airlock run`` opens
# the audit log and builds the sandbox without it (see :mod:`airlock.egress.standby`); so does
# what reads a log back (``airlock audit``), which a run never needs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from airlock.egress.audit_read import verify
    from airlock.egress.running import RunningProxy, start_proxy


def __getattr__(name: str) -> object:
    if name in ("RunningProxy", "start_proxy"):
        from airlock.egress import running

        return getattr(running, name)
    if name == "verify":
        from airlock.egress import audit_read

        return audit_read.verify
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditLog",
    "EgressConfig",
    "HostReport",
    "HostRule",
    "Limits",
    "ProxyReport",
    "RunningProxy",
    "StandbyProxy",
    "audit_paths",
    "default_log_path",
    "default_rules",
    "heads_path",
    "start_proxy",
    "verify",
]
