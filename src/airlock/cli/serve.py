"""``airlock serve``: the collector (and the domain-safety service with ``--blocklist``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "run the collector (OpenTelemetry, Sentry, feedback; the domain-safety service with --blocklist)"

DESCRIPTION = """\
Run the collector an organisation points its agents at (uvicorn, one worker; several processes
may share one PostgreSQL). It binds 127.0.0.1:8787 unless --host / --port say otherwise.

  POST /v1/logs, /v1/metrics          OTLP/HTTP, protobuf or JSON; gzip, deflate or br
  POST /api/PROJECT/envelope/, store/ Sentry (sentry-sdk with DSN http://KEY@HOST:PORT/1)
  POST /v1/feedback-bundles, /v1/survey-ratings   airlock feedback, the survey
  GET|DELETE /v1/sessions/ID          what is stored about a session; remove all of it
  GET  /v1/retention                  items kept per retention class, age of the oldest
  GET  /healthz, /openapi.json
  GET  /api/web/domain_info?domain=HOST, /api/web/domain_hashes?prefix=HEX  (with --blocklist)

Every ingest and read needs a key: Authorization: Bearer KEY (Sentry: the DSN's public key).
A key reads and deletes only its organisation's data: a session with nothing stored for it is
404, whoever else holds it; requests without a valid key are 401 (counted). Create
keys with `airlock serve keys create --org NAME [--zdr] [--no-product-feedback]`. The first
start with an empty database creates the organisation "local" and writes its key (0600) to
$XDG_CONFIG_HOME/airlock/collector.key (else ~/.config/airlock/collector.key), where airlock's
own clients (airlock feedback, the survey) find it; AIRLOCK_COLLECTOR_KEY overrides it.

Each item gets its retention class and expiry from the policy (commercial and consumer data 30
days, or 5 years with model improvement; /feedback bundles 5 years; shared transcripts 6
months; ratings apart). Under zero data retention nothing is persisted; an organisation that
disabled product feedback has its bundles refused. The sweeper deletes what is past its expiry
at start and every --sweep-every seconds, in batches, and stored bundles no item names (a stop
between storing one and writing its item) once an hour old, and says on stderr how many went;
`--sweep` sweeps once, prints what went by kind, and exits.
A session's deletion removes its bundles first, then its items: a bucket that fails leaves the
items (503), to delete again.

Storage: SQLite (WAL) in --data-dir (folders 0700, files 0600), or PostgreSQL with
--database-url postgresql://USER@HOST/DB; bundles in DATA_DIR/bundles or a bucket with
--blob-url s3://BUCKET/PREFIX (AWS_ENDPOINT_URL and the AWS credential variables apply).
Collectors on several hosts sharing one PostgreSQL need one bucket (a warning says so).
--data-dir and --database-url may also come before `keys create`.

The blocklist (--blocklist FILE) has one domain a line, or hosts format ("0.0.0.0 example.com");
'#' starts a comment; a listed domain blocks its subdomains. Invalid lines are skipped and
reported; a file mostly invalid is refused (exit 2 at start; the previous list kept on reload).
It is reloaded within a second of a change (SIGHUP: at once). Without --blocklist the
domain-safety endpoints are not served, and clients fail closed.

Limits: request line and headers 64 KB (431), complete within 10 s (408); a body pausing more
than 30 s is cut; idle connections close after 5 s; bodies are bounded while read (413);
at --max-connections the longest-waiting connection without a request under way is closed.
"""


def _storage(parser: argparse.ArgumentParser, *, inner: bool = False) -> None:
    """``--data-dir`` and ``--database-url``. ``inner``: on ``keys create``, where they may
    also be given before ``keys`` (``airlock serve --data-dir DIR keys create …``); given
    there only, the outer value stands (an inner default would overwrite it)."""
    default = argparse.SUPPRESS if inner else None
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        help="the SQLite database, bundles and uploads in progress "
        "(default $XDG_DATA_HOME/airlock/collector, else ~/.local/share/airlock/collector)",
        default=default,
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL instead of SQLite: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB",
        default=default,
    )


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "serve",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--blocklist", metavar="FILE", type=Path, help="serve the domain-safety endpoints from FILE"
    )
    _storage(parser)
    parser.add_argument(
        "--blob-url", metavar="URL", help="bundles in an S3-compatible bucket: s3://BUCKET[/PREFIX]"
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
        help="delete what is past its retention period, print what went, and exit",
    )
    parser.add_argument(
        "--sweep-every",
        metavar="SECONDS",
        type=float,
        default=3600.0,
        help="seconds between two sweeps while serving (default 3600)",
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
    commands = parser.add_subparsers(dest="serve_command", metavar="keys", required=False)
    keys = commands.add_parser("keys", help="manage organisations' keys")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="create", required=True)
    create = key_commands.add_parser(
        "create",
        help="create a key for an organisation (created when new); the key is the last line printed",
    )
    create.add_argument("--org", metavar="NAME", required=True, help="the organisation's name")
    create.add_argument(
        "--zdr", action="store_true", help="zero data retention: nothing it sends is persisted"
    )
    create.add_argument(
        "--no-product-feedback",
        action="store_true",
        help="the organisation disabled product feedback: its bundles are refused",
    )
    create.add_argument(
        "--account-class",
        choices=["commercial", "consumer_standard", "consumer_model_improvement"],
        default="commercial",
        help="the retention class of its metrics, logs and error reports (default commercial)",
    )
    _storage(create, inner=True)


def _database(args: argparse.Namespace, data_dir: Path) -> Any:
    from airlock.collector.db import Database, sqlite_url
    from airlock.collector.feedback import private_dir
    from airlock.errors import UsageError

    if not args.database_url:
        try:
            private_dir(data_dir)
        except OSError as error:
            raise UsageError(
                f"--data-dir {data_dir}: cannot be used ({error.strerror or error})"
            ) from error
    database = Database(args.database_url or sqlite_url(data_dir))
    database.migrate()
    return database


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from airlock.extras import require

    require("serve", "airlock serve")
    from airlock.collector.feedback import default_data_dir
    from airlock.errors import UsageError

    data_dir = args.data_dir or default_data_dir(os.environ, Path.home())
    if args.serve_command == "keys":
        from airlock.collector.db import Org  # noqa: F401 - the database's vocabulary
        from airlock.policy.collection import OrgTerms
        from airlock.policy.retention import RetentionClass

        database = _database(args, data_dir)
        try:
            terms = OrgTerms(
                RetentionClass(args.account_class),
                zero_data_retention=args.zdr,
                product_feedback=not args.no_product_feedback,
            )
            key = database.create_org(args.org, terms)
        finally:
            database.close()
        print(f"airlock serve: a key for organisation {args.org!r} (stored hashed; shown once):")
        print(key)
        return 0
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    if args.max_bundle_mb < 1:
        raise UsageError(f"--max-bundle-mb {args.max_bundle_mb}: expected 1 or more")
    if args.max_connections < 1:
        raise UsageError(f"--max-connections {args.max_connections}: expected 1 or more")
    if args.sweep_every <= 0:
        raise UsageError(f"--sweep-every {args.sweep_every}: expected more than 0 seconds")
    return _serve(args, data_dir, sys.stderr)


def _serve(args: argparse.Namespace, data_dir: Path, err: Any) -> int:
    import os
    import signal
    import threading
    import time

    from airlock.collector.blobs import blob_store
    from airlock.collector.feedback import private_dir
    from airlock.collector.limits import Limits
    from airlock.collector.server import build_app, listen, make_server
    from airlock.collector.service import Collector, key_file, write_key
    from airlock.collector.sweeper import remove_strays, sweep, sweep_every
    from airlock.policy.collection import OrgTerms

    database = _database(args, data_dir)
    incoming = private_dir(data_dir / "incoming")
    for leftover in incoming.iterdir():  # parts of uploads cut by a stop
        leftover.unlink(missing_ok=True)
    collector = Collector(
        database,
        blob_store(args.blob_url, data_dir),
        incoming,
        max_bundle_bytes=args.max_bundle_mb * 1024 * 1024,
    )
    try:
        if args.sweep:
            removed = sweep(collector)
            total = sum(removed.values())
            print(f"airlock serve: {total} items past their retention period removed")
            for kind, count in sorted(removed.items()):
                print(f"  {kind}: {count}")
            strays = remove_strays(collector)
            if strays:
                print(
                    f"airlock serve: {strays} stored bundles that no item named removed (left "
                    "by a stop between storing a bundle and writing its item)"
                )
            return 0
        created = None
        if not database.has_orgs():
            created = key_file(os.environ, Path.home())
            write_key(created, database.create_org("local", OrgTerms()))
        blocklist = None
        loaded = ""
        if args.blocklist is not None:
            from airlock.collector.blocklist import ReloadingBlockList

            started = time.perf_counter()
            blocklist = ReloadingBlockList(args.blocklist, clock=time.monotonic)
            loaded = (
                f"{len(blocklist.current)} blocked domains from {args.blocklist} "
                f"(loaded in {time.perf_counter() - started:.1f} s); "
            )
            if hasattr(signal, "SIGHUP"):
                signal.signal(signal.SIGHUP, lambda *_: blocklist.reload(wait=False))
        app = build_app(collector, blocklist)
        listener = listen(args.host, args.port)
        port = listener.getsockname()[1]
        stopping = threading.Event()
        sweep_every(collector, args.sweep_every, stopping)
        where = "PostgreSQL" if args.database_url else str(data_dir)
        print(
            f"airlock serve: {loaded}storing in {where}; listening on http://{args.host}:{port}",
            file=err,
            flush=True,
        )
        if created is not None:
            print(
                f"airlock serve: created the organisation 'local'; its key is in {created} (0600)",
                file=err,
                flush=True,
            )
        if args.database_url and not (args.blob_url or "").startswith("s3://"):
            print(
                f"airlock serve: WARNING: bundles are kept in a folder of this host "
                f"({getattr(collector.blobs, 'folder', data_dir)}) while the database may be "
                "shared: collectors on other hosts cannot delete them (a session's deletion, the "
                "sweep). Several hosts need one bucket: --blob-url s3://BUCKET/PREFIX",
                file=err,
                flush=True,
            )
        try:
            make_server(app, Limits(max_connections=args.max_connections)).run(sockets=[listener])
        finally:
            stopping.set()
    finally:
        database.close()
    return 0
