"""The end of ``airlock run``: what left the machine, on stderr (a table on a terminal, lines
otherwise) and as JSON with ``--report-json``."""

from __future__ import annotations

# ``typing`` is not imported at run time (start-up time); mypy reads the block as if true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from airlock.egress import ProxyReport
    from airlock.sandbox import ScrubbedEnvironment


def show(
    report: ProxyReport, scrubbed: ScrubbedEnvironment, report_json: str | None, code: int
) -> None:
    import json
    import sys

    data = {
        **report.to_json(),
        "variables_dropped": list(scrubbed.dropped),
        "variables_dropped_why": {
            name: scrubbed.reasons.get(name, "") for name in scrubbed.dropped
        },
        "exit_code": code,
    }
    if report_json:
        from pathlib import Path

        Path(report_json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if sys.stderr.isatty():
        _show_table(report, scrubbed)
        return
    lines = report.lines()
    if scrubbed.dropped:
        from airlock._visible import visible

        lines.append(
            "  variables not passed in (they look like credentials; --env NAME passes one): "
            + visible(_dropped(scrubbed))
        )
    print("\n".join(lines), file=sys.stderr)


def _show_table(report: ProxyReport, scrubbed: ScrubbedEnvironment) -> None:
    """The report as a table. Every cell and line holding text from the run (hosts, reasons,
    flows, names) is :func:`plain`: a host named ``[link=…]x`` is shown as written, not read
    as markup, and an escape sequence in it is shown, not sent to the terminal."""
    from rich.table import Table
    from rich.text import Text

    from airlock.cli._common import human_size, plain, stderr_console

    console = stderr_console()
    failures = any(host.errors for host in report.hosts)
    headings = ["host", "connections", "requests", "sent", "received", "refused"]
    if failures:
        headings.append("errors")
    table = Table(title="what left the machine", title_justify="left")
    for heading in headings:
        table.add_column(
            heading, justify="left" if heading in ("host", "refused", "errors") else "right"
        )
    for host in report.hosts:
        cells: list[str | Text] = [
            plain(host.host),
            str(host.connections),
            str(host.requests),
            human_size(host.bytes_out),
            human_size(host.bytes_in),
            Text("\n").join(plain(f"{count}× {reason}") for reason, count in host.refused),
        ]
        if failures:
            cells.append(
                Text("\n").join(plain(f"{count}× {error}") for error, count in host.errors)
            )
        table.add_row(*cells)
    if report.hosts:
        console.print(table)
    else:
        console.print("airlock: nothing left the machine")
    for line in report.flow_lines():
        console.print(plain(line))
    for note in report.notes():
        console.print(plain(note, "yellow"))
    if report.error:
        console.print(plain(f"traffic was stopped: {report.error}", "bold red"))
    if scrubbed.dropped:
        console.print(
            plain(
                "variables not passed in (they look like credentials; --env NAME passes one): "
                + _dropped(scrubbed)
            )
        )
    if report.audit_log is not None:
        console.print(plain(f"audit log {report.audit_log}, {report.final_words()}"))


def _dropped(scrubbed: ScrubbedEnvironment) -> str:
    """The names dropped; with why for those dropped for their value (the name alone does not
    say: ``REDIS_URL (a URL with a password in it …)``)."""
    from airlock.sandbox import credential_reason

    shown = []
    for name in scrubbed.dropped:
        by_value = credential_reason(name) is None
        why = scrubbed.reasons.get(name, "").split(" (")[0]
        shown.append(f"{name} (its value: {why})" if by_value else name)
    return ", ".join(shown)
