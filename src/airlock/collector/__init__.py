"""The collector (``airlock serve``): one ASGI app; the domain-safety service is its first part."""

from airlock.collector.app import ServiceRoute, create_app, domain_safety_routes
from airlock.collector.blocklist import BlockList, ReloadingBlockList, parse_lines

__all__ = [
    "BlockList",
    "ReloadingBlockList",
    "ServiceRoute",
    "create_app",
    "domain_safety_routes",
    "parse_lines",
]
