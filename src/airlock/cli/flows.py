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
        hosts = _hosts(loaded.context, decisions)
        for flow in data["flows"]:
            flow["hosts"] = hosts.get(flow["id"], [])
        data["settings_problems"] = [problem.to_json() for problem in loaded.problems]
        dump_json(data)
    elif args.explain:
        _explain(decisions, FlowId(args.explain), _hosts(loaded.context, decisions))
    elif args.graph is None:
        _table(decisions)
    return 0


CAPTION = "airlock flows --explain FLOW for every reason; --json for scripts"

# Below this many columns the six-column table squeezes its cells to a word or two a line
# (an 80-column terminal showed "destinat…" and reasons one word high): each flow is then
# shown as a block of labelled lines instead, every field whole.
TABLE_COLUMNS = 120


def _table(decisions: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from airlock.cli._common import plain, stdout_console

    console = stdout_console()
    if decisions.fail_closed:
        console.print("[bold white on red] managed settings invalid: failing closed [/]")
    if console.width < TABLE_COLUMNS:
        _blocks(console, decisions)
        return
    table = Table(
        title=plain(f"Data flows — provider: {decisions.provider.label}"),
        caption=CAPTION,
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
            plain(state, _style(state)),
            plain(decision.destination),
            plain(decision.what),
            plain(decision.retention.summary),
            Text("\n").join(plain(f"• {reason}") for reason in decision.reasons),
        )
    console.print(table)


def _blocks(console: Any, decisions: Any) -> None:
    """The table's rows for a narrow terminal: a flow and its state, then its fields, each
    labelled, wrapped under its own start."""
    from rich.table import Table
    from rich.text import Text

    from airlock.cli._common import plain

    console.print(plain(f"Data flows — provider: {decisions.provider.label}", "bold"))
    for decision in decisions:
        state = str(decision.state)
        console.print()
        console.print(plain(str(decision.id), "bold") + "  " + plain(state, _style(state)))
        fields = Table.grid(padding=(0, 2))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column(overflow="fold")  # a long URL broken, never cut short
        fields.add_row("  destination", plain(decision.destination))
        fields.add_row("  what leaves", plain(decision.what))
        fields.add_row("  kept", plain(decision.retention.summary))
        reasons = Text("\n").join(plain(f"• {reason}") for reason in decision.reasons)
        fields.add_row("  why", reasons)
        console.print(fields)
    console.print()
    console.print(CAPTION, style="dim")


def _hosts(context: Any, decisions: Any) -> dict[str, list[str]]:
    """Per flow, the hosts ``airlock run``'s proxy lets out for it by default (the engine's
    :func:`~airlock.policy.endpoints.flow_hosts`: the same table the proxy's rules are made
    from), so what is shown here is what a run lets out."""
    from airlock.policy.endpoints import flow_hosts

    hosts: dict[str, list[str]] = {}
    for flow, host in flow_hosts(context, decisions):
        hosts.setdefault(str(flow), []).append(host)
    return hosts


def _style(state: str) -> str:
    return STATE_STYLES.get(state, "bold")


def _explain(decisions: Any, flow: FlowId, hosts: dict[str, list[str]]) -> None:
    """Every field of one flow's decision, labelled, in a two-column grid: a long value (what
    leaves, how long it is kept, a reason) wraps under its own start, never back to column
    0, on a terminal or not."""
    from rich.table import Table
    from rich.text import Text

    from airlock.cli._common import plain, stdout_console

    console = stdout_console()
    decision = decisions[flow]
    style = _style(str(decision.state))
    console.print(plain(f"{flow}", "bold") + ": " + plain(decision.state, style))
    fields = Table.grid(padding=(0, 2))
    fields.add_column(no_wrap=True)
    fields.add_column(overflow="fold")  # a long URL broken, never cut short
    fields.add_row("  provider", plain(decisions.provider.label))
    for reason in decisions.provider_reasons:
        fields.add_row("", plain(reason))
    fields.add_row("  destination", plain(decision.destination))
    let_out = ", ".join(hosts.get(str(flow), [])) or "none by default (allow one by rule)"
    if decision.active and flow is not FlowId.LOCAL_TRANSCRIPTS:
        fields.add_row("  hosts", plain(f"{let_out} (what airlock run lets out for it)"))
    fields.add_row("  what", plain(decision.what))
    fields.add_row("  kept", plain(f"{decision.retention.summary} by {decision.retention.keeper}"))
    fields.add_row("  training", plain(decision.training))
    connection = "required" if decision.required else "optional or user-initiated"
    fields.add_row("  connection", connection)
    for key, value in decision.parameters.items():
        fields.add_row(plain(f"  {key}"), plain(value))
    fields.add_row(
        "  because", Text("\n").join(plain(f"• {reason}") for reason in decision.reasons)
    )
    console.print(fields)
