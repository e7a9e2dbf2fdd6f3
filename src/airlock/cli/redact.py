"""``airlock redact``: copy a file or stdin with every secret replaced by ``[REDACTED:<kind>]``."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

HELP = "replace secrets in a file or stdin with [REDACTED:<kind>] markers"

DESCRIPTION = """\
Copy FILE (or stdin, with -) to stdout, or to --output, with every secret replaced by
[REDACTED:<kind>]. JSON lines stay valid JSON: secrets are found in their escaped form.

Exit codes: 0 nothing found; 1 something was redacted; 2 an error.
--report prints what was found, by kind and line, on stderr (never the secret itself);
--json prints the same report as JSON on stderr.
Rules and allow-listed values can be added under "airlock": {"redaction": {...}} in settings.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "redact",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the file to redact, or - for stdin")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the redacted content here (atomically)"
    )
    parser.add_argument(
        "--report", action="store_true", help="print what was found by kind and line on stderr"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON on stderr (for scripts)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from airlock.cli._common import load_reported
    from airlock.redact import RedactionReport, Redactor
    from airlock.redact.output import redact_path

    loaded = load_reported(args)
    redactor = Redactor.from_loaded(loaded, split_scan=True)  # input read once: new text
    # Each finding is kept only to be printed; otherwise counts alone keep memory flat.
    wanted = bool(args.report or args.json)
    report = RedactionReport(keep_findings=wanted, lines=wanted)
    finished = False
    try:
        redact_path(redactor, args.file, args.output, sys.stdin.buffer, sys.stdout.buffer, report)
        finished = True
    finally:
        if finished or report.bytes_in:
            _report(args, report, finished)
    return 1 if report.found else 0


def _report(args: argparse.Namespace, report: Any, finished: bool) -> None:
    import sys

    # Asked for, the report is printed even when the copy failed part way (the error itself
    # still ends the command with exit 2): what was found so far, and that it is so.
    if args.json:
        import json

        data = {**report.to_json(), "complete": finished}
        sys.stderr.write(json.dumps(data, indent=2) + "\n")
    elif args.report:
        _print_report(report, finished)


def _print_report(report: Any, finished: bool) -> None:
    import sys

    if not finished:
        print(
            f"airlock redact: stopped after {report.bytes_in} bytes read; found so far:",
            file=sys.stderr,
        )
    if not report.found:
        print("airlock redact: no secrets found", file=sys.stderr)
        return
    counts = ", ".join(f"{kind} {n}" for kind, n in report.counts().items())
    total = sum(report.counts().values())
    print(f"airlock redact: {total} redacted ({counts})", file=sys.stderr)
    for finding in report.findings:
        print(f"  line {finding.line}: {finding.kind}", file=sys.stderr)
