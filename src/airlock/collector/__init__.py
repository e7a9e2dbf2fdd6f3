"""The collector (``airlock serve``): one ASGI app for what the flows send, kept per class.

:func:`server.build_app` assembles it: OTLP logs and metrics (:mod:`.otlp`), Sentry envelopes
(:mod:`.sentry`), feedback bundles and ratings (:mod:`.feedback`), sessions and retention
(:mod:`.sessions`), and with a blocklist the domain-safety service (:mod:`.app`,
:mod:`.blocklist`); stored in :mod:`.db` and :mod:`.blobs`, swept by :mod:`.sweeper`, served
under the limits of :mod:`.limits`.
"""

from airlock.extras import require

require("serve", "airlock.collector")  # before the imports below: it names the extra to install

from airlock.collector.app import (
    DomainTable,
    ServiceRoute,
    create_app,
    domain_safety_routes,
)
from airlock.collector.blocklist import (
    BlockList,
    BlocklistReport,
    ReloadingBlockList,
    parse_lines,
    read_blocklist,
)
from airlock.collector.feedback import feedback_routes

__all__ = [
    "BlockList",
    "BlocklistReport",
    "DomainTable",
    "ReloadingBlockList",
    "ServiceRoute",
    "create_app",
    "domain_safety_routes",
    "feedback_routes",
    "parse_lines",
    "read_blocklist",
]
