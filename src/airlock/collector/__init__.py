"""The collector (``airlock serve``): one ASGI app for the domain-safety service, feedback bundles and survey ratings."""

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
from airlock.collector.feedback import FeedbackStore, feedback_routes

__all__ = [
    "BlockList",
    "BlocklistReport",
    "DomainTable",
    "FeedbackStore",
    "ReloadingBlockList",
    "ServiceRoute",
    "create_app",
    "domain_safety_routes",
    "feedback_routes",
    "parse_lines",
    "read_blocklist",
]
