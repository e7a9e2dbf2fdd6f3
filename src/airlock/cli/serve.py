"""``airlock serve``: the collector app on 127.0.0.1, with the domain-safety service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "serve the domain-safety service (and the collector) on 127.0.0.1"

DESCRIPTION = """\
Serve the collector app on 127.0.0.1 (uvicorn, one worker). It answers the WebFetch preflight
from the blocklist FILE given with --blocklist (required):

  GET /api/web/domain_info?domain=HOST      -> {"domain": HOST, "can_fetch": true|false}
  GET /api/web/domain_hashes?prefix=HEX...  -> {"hashes": [...]}  (private mode)
  GET /openapi.json                         -> the OpenAPI description

The blocklist has one domain a line, or hosts format ("0.0.0.0 example.com"); '#' starts a
comment; a listed domain blocks its subdomains. Lines that are not a hostname are skipped and
reported (how many, and the first line numbers); a file whose entries are mostly invalid (a
binary file) is refused: at start with exit 2, on a reload by keeping the previous list in
force, with a warning. Edit the file and it is reloaded within a second, without a restart
(SIGHUP reloads at once). Point clients at it with AIRLOCK_DOMAIN_SAFETY_URL=
http://127.0.0.1:PORT or the setting airlock.domainSafetyUrl.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "serve",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--blocklist", metavar="FILE", type=Path, required=True, help="the blocklist file (required)"
    )
    parser.add_argument(
        "--port",
        metavar="N",
        type=int,
        default=8787,
        help="port on 127.0.0.1 (default 8787; 0 picks a free one)",
    )


def run(args: argparse.Namespace) -> int:
    import signal
    import socket
    import sys
    import time

    import uvicorn

    from airlock.collector import ReloadingBlockList, create_app, domain_safety_routes
    from airlock.errors import UsageError

    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    started = time.perf_counter()
    blocklist = ReloadingBlockList(args.blocklist, clock=time.monotonic)
    seconds = time.perf_counter() - started
    app = create_app(domain_safety_routes(blocklist))
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only when it is, and
    # without it every answer waits for the peer's delayed ACK (about 40 ms).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", args.port))
    except OSError as error:
        listener.close()
        raise UsageError(
            f"--port {args.port}: cannot listen on 127.0.0.1 ({error.strerror})"
        ) from error
    port = listener.getsockname()[1]
    print(
        f"airlock serve: {len(blocklist.current)} blocked domains from {args.blocklist} "
        f"(loaded in {seconds:.1f} s); "
        f"listening on http://127.0.0.1:{port}",
        file=sys.stderr,
        flush=True,
    )
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: blocklist.reload(wait=False))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])
    return 0
