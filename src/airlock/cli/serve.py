"""``airlock serve``: the collector app on 127.0.0.1, with the domain-safety service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "serve the domain-safety service (and the collector) on 127.0.0.1"

DESCRIPTION = """\
Serve the collector app on 127.0.0.1 (uvicorn, one worker). It answers the WebFetch preflight
from the blocklist FILE given with --blocklist (required), and receives feedback:

  GET  /api/web/domain_info?domain=HOST      -> {"domain": HOST, "can_fetch": true|false}
  GET  /api/web/domain_hashes?prefix=HEX...  -> {"hashes": [...]}  (private mode)
  POST /v1/feedback-bundles, /v1/survey-ratings  (airlock feedback, the survey)
  GET  /openapi.json                         -> the OpenAPI description

The blocklist has one domain a line, or hosts format ("0.0.0.0 example.com"); '#' starts a
comment; a listed domain blocks its subdomains. Lines that are not a hostname are skipped and
reported (how many, and the first line numbers); a file whose entries are mostly invalid (a
binary file) is refused: at start with exit 2, on a reload by keeping the previous list in
force, with a warning. Edit the file and it is reloaded within a second, without a restart
(SIGHUP reloads at once). Point clients at the service with
AIRLOCK_DOMAIN_SAFETY_URL=http://127.0.0.1:PORT or the setting airlock.domainSafetyUrl, and
feedback at it with AIRLOCK_COLLECTOR_URL=http://127.0.0.1:PORT.

Bundles and ratings are stored under --data-dir DIR (folders 0700, files 0600) and deleted
when their retention class's period is over (at start, every hour, or with --sweep). The class
is the server's, from the policy (feedback 5 years, shared transcripts 6 months, ratings 30
days); a class a client names is ignored.

Limits: request line and headers 64 KB (431), complete within 10 s (408); a body pausing more
than 30 s is cut; idle connections close after 5 s; bodies are bounded while read (413:
bundles --max-bundle-mb, ratings 64 KB, anything else 1 MB); at --max-connections the
longest-waiting connection without a request under way is closed.
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
        "--blocklist",
        metavar="FILE",
        type=Path,
        required=True,
        help="the blocklist file (required)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        help="where feedback bundles and survey ratings are stored "
        "(default $XDG_DATA_HOME/airlock/collector, else ~/.local/share/airlock/collector)",
    )
    parser.add_argument(
        "--max-bundle-mb",
        metavar="N",
        type=int,
        default=200,
        help="largest feedback bundle accepted, in MB (default 200; larger: HTTP 413)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="delete the stored records past their retention period, then exit "
        "(serve also does it at start and every hour)",
    )
    parser.add_argument(
        "--port",
        metavar="N",
        type=int,
        default=8787,
        help="port (default 8787; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        metavar="H",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=int,
        default=256,
        help="open connections at most (default 256); beyond it the longest-waiting "
        "connection without a request under way is closed",
    )


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import sys
    import threading
    import time

    from airlock.extras import require

    require("serve", "airlock serve")
    from airlock.collector import ReloadingBlockList, create_app, domain_safety_routes
    from airlock.collector.feedback import (
        FeedbackStore,
        default_data_dir,
        feedback_routes,
        utc_now,
    )
    from airlock.collector.limits import Limits
    from airlock.collector.server import listen, make_server
    from airlock.errors import UsageError

    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    if args.max_connections < 1:
        raise UsageError(f"--max-connections {args.max_connections}: expected 1 or more")
    if args.max_bundle_mb < 1:
        raise UsageError(f"--max-bundle-mb {args.max_bundle_mb}: expected 1 or more")
    data_dir = args.data_dir or default_data_dir(os.environ, Path.home())
    try:
        store = FeedbackStore(
            data_dir, clock=utc_now, max_bundle_bytes=args.max_bundle_mb * 1024 * 1024
        )
    except OSError as error:
        raise UsageError(
            f"--data-dir {data_dir}: cannot be used ({error.strerror or error})"
        ) from error
    gone = store.sweep()
    if args.sweep:
        print(f"airlock serve: {gone} records past their retention period deleted", file=sys.stderr)
        return 0

    def sweep_hourly() -> None:
        while not stopping.wait(3600):
            store.sweep()

    stopping = threading.Event()
    threading.Thread(target=sweep_hourly, name="retention-sweep", daemon=True).start()
    started = time.perf_counter()
    blocklist = ReloadingBlockList(args.blocklist, clock=time.monotonic)
    seconds = time.perf_counter() - started
    app = create_app([*domain_safety_routes(blocklist), *feedback_routes(store)])
    listener = listen(args.host, args.port)
    port = listener.getsockname()[1]
    print(
        f"airlock serve: {len(blocklist.current)} blocked domains from {args.blocklist} "
        f"(loaded in {seconds:.1f} s); "
        f"feedback to {data_dir}; listening on http://{args.host}:{port}",
        file=sys.stderr,
        flush=True,
    )
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: blocklist.reload(wait=False))
    try:
        make_server(app, Limits(max_connections=args.max_connections)).run(sockets=[listener])
    finally:
        stopping.set()
        store.close()
    return 0
