"""``airlock fetch URL``: fetch a page the way the agent's WebFetch tool should, guarded."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "fetch a URL through the permission rules and the domain-safety preflight"

DESCRIPTION = """\
Fetch URL after the checks the agent's WebFetch tool makes, and print it (HTML as Markdown).

The host is read once in its canonical form (IDNA 2008 names as xn-- A-labels; an IP address
however written: 2130706433, 0x7f.1 and [::ffff:127.0.0.1] are 127.0.0.1), and every check and
the connection use that one value.

1. WebFetch(domain:...) rules in permissions.deny, .ask, .allow of every settings file:
   a deny refuses; an ask refuses unless confirmed (a terminal prompt, or --yes).
2. The destination: the name is resolved once; an address that is not public (loopback,
   private networks, link-local, cloud metadata such as 169.254.169.254, this machine's own)
   refuses unless an allow rule names the host or the address, e.g.
   WebFetch(domain:intranet.example) or WebFetch(domain:10.0.0.5). The page is fetched from
   the address checked, never from a second DNS answer.
3. The preflight: the hostname alone goes to the domain-safety service
   (AIRLOCK_DOMAIN_SAFETY_URL, else airlock.domainSafetyUrl, else the vendor's); allowed
   answers are cached 5 minutes; a block or a failure refuses. skipWebFetchPreflight: true
   skips it; airlock.webFetchPrivateMode: true sends hash prefixes instead of the hostname.
4. The request, within --max-bytes; every redirect to another host goes through 1 to 3
   again before it is followed. --timeout bounds the whole fetch, preflight included,
   however slowly any server answers; a preflight answer is read up to 1 MB.

Exit codes:
  0  fetched: the page was printed
  1  the server answered an error (HTTP status 400 or above): the status goes to stderr and
     nothing to stdout (with --json, the result is printed, its "status" field the error)
  2  bad input (URL, options, settings), or the page could not be fetched (connection,
     timeout)
  3  refused by a rule or by the preflight (the message names the rule, or the preflight's
     answer or failure)
"""

ERROR_STATUS = 400
"""From this HTTP status on, the server answered an error: exit 1."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "fetch",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", help="an http:// or https:// URL")
    parser.add_argument(
        "--prompt",
        help="what the agent wants from the page; carried in --json output with the content",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result and its checks as JSON"
    )
    parser.add_argument("--yes", action="store_true", help="confirm a fetch an ask rule matches")
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=5_000_000,
        metavar="N",
        help="read at most N bytes of the body (default 5000000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds for the whole fetch, preflight and redirects included (default 30)",
    )
    parser.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR",
        help="connect to ADDR for HOST:PORT instead of asking DNS (as curl --resolve); the "
        "address is checked as a DNS answer would be; repeatable",
    )


def _confirm_in_terminal(args: argparse.Namespace) -> Any:
    import sys

    from airlock.policy.rules import RuleVerdict

    def confirm(verdict: RuleVerdict) -> bool:
        if args.yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            return False
        sys.stderr.write(f"{verdict.describe()}. Fetch it? [y/N] ")
        sys.stderr.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    import time

    import httpx

    from airlock.cli._common import dump_json, load_reported
    from airlock.destinations import system_resolver
    from airlock.errors import UsageError
    from airlock.policy import FlowId, decide
    from airlock.policy.rules import invalid_webfetch_rules
    from airlock.webfetch import (
        FetchLimits,
        GuardedFetcher,
        LimitedTransport,
        PreflightClient,
        parse_pin,
        pinned_resolver,
    )

    if args.max_bytes < 1 or args.timeout <= 0:
        raise UsageError("--max-bytes and --timeout must be positive")
    loaded = load_reported(args)
    for problem in invalid_webfetch_rules(loaded.context.permissions):
        print(f"airlock fetch: ignored rule {problem}", file=sys.stderr)
    decision = decide(loaded.context)[FlowId.WEBFETCH_PREFLIGHT]
    pins = [parse_pin(text) for text in args.resolve]
    # One transport for the pages and the preflight: proxies from HTTP(S)_PROXY and NO_PROXY,
    # every wait cut at the fetch's deadline.
    transport = LimitedTransport.from_environment(os.environ)
    with httpx.Client(transport=transport, trust_env=False) as client:
        preflight = PreflightClient.from_decision(
            decision, timeout=min(10.0, args.timeout), client=client
        )
        fetcher = GuardedFetcher(
            permissions=loaded.context.permissions,
            preflight=preflight,
            client=client,
            clock=time.monotonic,
            limits=FetchLimits(max_bytes=args.max_bytes, timeout=args.timeout),
            confirm=_confirm_in_terminal(args),
            resolver=pinned_resolver(pins, system_resolver),
            proxy_for=transport.proxy_for,
        )
        try:
            result = fetcher.fetch(args.url)
        finally:
            if preflight is not None:
                preflight.close()
    failed = result.status >= ERROR_STATUS
    if failed:
        from http import HTTPStatus

        try:
            phrase = f" {HTTPStatus(result.status).phrase}"
        except ValueError:
            phrase = ""
        print(
            f"airlock fetch: {result.final_url} answered HTTP {result.status}{phrase}"
            + ("" if args.json else "; the error page is not printed (--json shows it)"),
            file=sys.stderr,
        )
    if args.json:
        dump_json({**result.to_json(), "prompt": args.prompt})
        return 1 if failed else 0
    if failed:
        return 1
    sys.stdout.write(result.content if result.content.endswith("\n") else result.content + "\n")
    if result.truncated:
        print(f"airlock fetch: cut at {args.max_bytes} bytes (--max-bytes)", file=sys.stderr)
    return 0
