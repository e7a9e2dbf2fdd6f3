"""The egress side of ``airlock run``: the proxy, its audit log, inspection and the git gateway."""
