"""``airlock flows``: what the agent would send, where, and why, for the settings in force."""

from __future__ import annotations

import argparse
from pathlib import Path

from airlock.policy.model import FlowId

# ``typing`` is not imported at run time: it costs ``airlock flows`` start-up time and the
# annotations are strings anyway. mypy reads the block below as if TYPE_CHECKING were true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HELP = "show every data flow: on or off, why, where it goes, what it carries, how long it is kept"

DESCRIPTION = """\
Decide every data flow for the current directory, environment and settings, and show it.

Flows: model_requests, metrics, error_reporting, feedback_command, survey_rating,
transcript_share, webfetch_preflight, auto_update, local_transcripts.

Settings problems are reported on stderr; --json still prints the decisions on stdout.
"""

STATE_STYLES = {
    "on": "bold green",
    "upload": "bold yellow",
    "otel_only": "bold cyan",
    "local_archive": "bold cyan",
    "off": "dim",
}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "flows",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the decisions as JSON for scripts")
    out.add_argument(
        "--explain",
        metavar="FLOW",
        choices=[str(flow) for flow in FlowId],
        help="print the full reasoning for one flow",
    )
    parser.add_argument(
        "--graph",
        metavar="FILE",
        type=Path,
        help="draw the data-flow diagram (.svg, .png, .pdf, or .dot for the Graphviz source)",
    )


def run(args: argparse.Namespace) -> int:
    from airlock.cli._common import dump_json, load_reported
    from airlock.policy import decide

    loaded = load_reported(args)
    decisions = decide(loaded.context)
    if args.graph is not None:
        from airlock import diagram

        written = diagram.write(decisions, args.graph)
        import sys

        print(f"airlock flows: diagram written to {written}", file=sys.stderr)
    if args.json:
        data = decisions.to_json()
        data["settings_problems"] = [problem.to_json() for problem in loaded.problems]
        dump_json(data)
    elif args.explain:
        _explain(decisions, FlowId(args.explain))
    elif args.graph is None:
        _table(decisions)
    return 0


def _table(decisions: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from airlock.cli._common import plain, stdout_console

    console = stdout_console()
    table = Table(
        title=plain(f"Data flows — provider: {decisions.provider.label}"),
        caption="airlock flows --explain FLOW for every reason; --json for scripts",
        show_lines=True,
    )
    table.add_column("flow", style="bold", no_wrap=True, min_width=len(max(FlowId, key=len)))
    table.add_column("state")
    table.add_column("destination")
    table.add_column("what leaves")
    table.add_column("kept")
    table.add_column("why", max_width=60)
    for decision in decisions:
        state = str(decision.state)
        table.add_row(  # the settings' values are in these (a base URL, a host): plain text
            str(decision.id),
            plain(state, STATE_STYLES.get(state, "bold")),
            plain(decision.destination),
            plain(decision.what),
            plain(decision.retention.summary),
            Text("\n").join(plain(f"• {reason}") for reason in decision.reasons),
        )
    if decisions.fail_closed:
        console.print("[bold white on red] managed settings invalid: failing closed [/]")
    console.print(table)


def _explain(decisions: Any, flow: FlowId) -> None:
    from airlock.cli._common import plain, stdout_console

    console = stdout_console()
    decision = decisions[flow]
    style = STATE_STYLES.get(str(decision.state), "bold")
    console.print(plain(f"{flow}", "bold") + ": " + plain(decision.state, style))
    console.print(plain(f"  provider     {decisions.provider.label}"))
    for reason in decisions.provider_reasons:
        console.print(plain(f"               {reason}"))
    console.print(plain(f"  destination  {decision.destination}"))
    console.print(plain(f"  what         {decision.what}"))
    console.print(
        plain(f"  kept         {decision.retention.summary} by {decision.retention.keeper}")
    )
    console.print(plain(f"  training     {decision.training}"))
    connection = "required" if decision.required else "optional or user-initiated"
    console.print(f"  connection   {connection}")
    for key, value in decision.parameters.items():
        console.print(plain(f"  {key:<12} {value}"))
    console.print("  because:")
    for reason in decision.reasons:
        console.print(plain(f"    • {reason}"))
