"""The options of ``airlock run``: the network, the sandbox, inspection and the git gateway,
the report. Only ``argparse`` is imported: every command builds the parser."""

from __future__ import annotations

import argparse

from airlock.cli._egress_options import add_arguments as add_egress_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``airlock run``, and the command after ``--``."""
    network = parser.add_argument_group("network")
    network.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="P",
        help="allow host P (example.com, *.example.com, example.com:443, [2001:db8::1]:443); "
        "repeatable",
    )
    network.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="P",
        help="refuse host P; beats every allow; repeatable",
    )
    network.add_argument(
        "--allow-all",
        action="store_true",
        help="let every host through, still audited (audit-only runs)",
    )
    network.add_argument(
        "--upstream-proxy",
        metavar="URL",
        help="chain every connection through this proxy (default: airlock's own HTTPS_PROXY); "
        "hosts in airlock's own NO_PROXY are reached directly",
    )
    network.add_argument(
        "--max-upload-mb",
        type=float,
        metavar="N",
        help="send at most N MiB out (bodies, heads, the names looked up): transfers under way "
        "are cut there, new connections refused",
    )
    network.add_argument(
        "--new-connections-per-second",
        type=float,
        metavar="N",
        help="open at most N new connections a second to each host (bursts of N, at least "
        "one); past it a connection is answered 429 (default: no limit)",
    )
    network.add_argument(
        "--audit-log",
        metavar="FILE",
        help="the audit log (default: <config dir>/airlock/audit.jsonl)",
    )
    files = parser.add_argument_group("sandbox")
    files.add_argument(
        "--workspace", metavar="DIR", help="the writable workspace (default: the current folder)"
    )
    files.add_argument(
        "--rw", action="append", default=[], metavar="PATH", help="also writable; repeatable"
    )
    files.add_argument(
        "--ro",
        action="append",
        default=[],
        metavar="PATH",
        help="read-only, even inside a writable path; repeatable",
    )
    files.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PATH",
        help="hidden (an empty, read-only placeholder stands there; the workspace, the agent's "
        "state and --rw paths under it are bound back); repeatable",
    )
    files.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="pass variable NAME in although it looks like a credential, or set it; repeatable",
    )
    add_egress_arguments(parser)
    parser.add_argument(
        "--report-json", metavar="FILE", help="also write the end-of-run report as JSON to FILE"
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what to run")
