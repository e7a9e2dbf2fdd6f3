"""The collector (``airlock serve``): one ASGI app; the domain-safety service is its first part."""

from airlock.collector.app import (
    CollectorApp,
    DomainTable,
    ServiceRoute,
    create_app,
    domain_safety_routes,
)
from airlock.collector.blocklist import BlockList, ReloadingBlockList, parse_lines

__all__ = [
    "BlockList",
    "CollectorApp",
    "DomainTable",
    "ReloadingBlockList",
    "ServiceRoute",
    "create_app",
    "domain_safety_routes",
    "parse_lines",
]
