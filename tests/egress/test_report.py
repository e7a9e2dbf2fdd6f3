"""The end-of-run report as shown: what a run recorded (hosts, reasons, names) is text, never
markup or terminal control."""

from __future__ import annotations

import io
import sys

import pytest

from airlock.cli._run_report import _show_table
from airlock.egress import HostReport, ProxyReport
from airlock.sandbox import ScrubbedEnvironment

LINK = "\x1b]8;;https://evil.example/\x1b\\"
"""An OSC 8 hyperlink: a terminal shows the text after it as a link to evil.example."""


def _report() -> ProxyReport:
    """Hosts and reasons as a command inside can make them: rich markup, escape sequences."""
    return ProxyReport(
        run_id="run",
        hosts=(
            HostReport("[/bold]x", 1, 0, 10, 20, (("[link=https://evil.example/]why", 1),)),
            HostReport(f"a{LINK}b", 1, 0, 5, 5, ((f"no rule\x1b[2K{LINK}", 2),)),
            HostReport("c", 1, 1, 1, 1, (), (("cannot connect [red]to[/red] c:1", 1),)),
        ),
        final_hash=None,
        audit_log=None,
        refused_by_client=(("[b]d", f"handshake{LINK}"),),
    )


def test_the_table_shows_recorded_text_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal (colours forced): a host named ``[/bold]x`` does not end the report with a
    markup error, ``[link=…]`` writes no hyperlink, and an escape sequence from the run is
    shown as ``\\x1b``; each is shown as it was written."""
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stderr", shown)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "250")
    _show_table(_report(), ScrubbedEnvironment(environ={}, dropped=(), kept=()))
    text = shown.getvalue()
    assert "\x1b[1m" in text  # styled: a terminal's output, where a link would be written
    assert "\x1b]8;" not in text and "\x1b[2K" not in text
    assert "[/bold]x" in text and "[link=https://evil.example/]why" in text
    assert "a\\x1b]8;;https://evil.example/\\x1b\\b" in text
    assert "no rule\\x1b[2K\\x1b]8;;" in text
    assert "cannot connect [red]to[/red] c:1" in text  # the errors column
    assert "[b]d: the client ended the handshake (handshake\\x1b]8;;" in text


def test_the_lines_show_control_characters_as_escapes() -> None:
    """Off a terminal (a pipe, a file a terminal shows later), the same escapes."""
    lines = "\n".join(_report().lines())
    assert "\x1b" not in lines
    assert "a\\x1b]8;;https://evil.example/\\x1b\\b: 1 conn" in lines
    assert "refused 2×: no rule\\x1b[2K" in lines
    assert "failed 1×: cannot connect [red]to[/red] c:1" in lines


def _refused(*hosts: tuple[str, str]) -> ProxyReport:
    return ProxyReport(
        run_id="run",
        hosts=tuple(HostReport(host, 0, 0, 0, 0, ((reason, 1),)) for host, reason in hosts),
        final_hash=None,
        audit_log=None,
    )


def test_hosts_refused_for_want_of_a_rule_are_named_with_how_to_allow_them() -> None:
    """A host no rule named may be why the command failed: the report says what lets it
    out; one a deny rule refused is not offered."""
    report = _refused(
        ("platform.claude.com", "no allow rule matches platform.claude.com:443 (default: deny)"),
        ("2001:db8::1", "no allow rule matches [2001:db8::1]:443 (default: deny)"),
        ("evil.example", "denied by --deny evil.example"),
    )
    [note] = [line for line in report.lines() if "run again with" in line]
    assert "--allow platform.claude.com --allow [2001:db8::1]," in note
    assert "evil.example" not in note
    assert not [line for line in _refused().lines() if "run again" in line]


def _table_rows(text: str) -> list[list[str]]:
    """The table's body rows, cell by cell (columns apart by two spaces or more)."""
    import re

    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "requests" in line) + 2
    rows = []
    for line in lines[start:]:
        if not line.strip() or not line.startswith(" "):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_the_table_keeps_a_host_name_whole_in_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 80 columns a host name of 30 characters stays on one line (the table split
    ``api.anthr|opic.com`` and its headings), its refusal's reason on a line of its own under
    the table (it wrapped a word a line in a column), nothing cut short with '…'."""
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stderr", shown)
    monkeypatch.setenv("COLUMNS", "80")
    name = "objects.githubusercontent.com"
    reason = f"no allow rule matches {name}:443 (default: deny)"
    _show_table(_refused((name, reason)), ScrubbedEnvironment(environ={}, dropped=(), kept=()))
    text = shown.getvalue()
    assert "…" not in text
    assert _table_rows(text) == [[name, "0", "0", "0 B", "0 B", "1"]]
    assert f"  {name}: refused 1× {reason}" in text.splitlines()
    assert f"--allow {name}" in " ".join(text.split())
    assert all(len(line) <= 80 for line in text.splitlines()[:6])


def test_a_long_host_name_is_folded_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name longer than the room left (a made-up one from inside) is folded in its cell."""
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stderr", shown)
    monkeypatch.setenv("COLUMNS", "80")
    name = "b" * 120 + ".example.com"
    _show_table(_refused((name, "no rule")), ScrubbedEnvironment(environ={}, dropped=(), kept=()))
    rows = _table_rows(shown.getvalue())
    assert len(rows) > 1 and "".join(row[0] for row in rows) == name


def test_no_heading_over_no_inspected_request() -> None:
    """``--inspect`` of a host nothing went to: no "inspected requests by data flow" heading
    with nothing under it."""
    from airlock.egress.flows import FlowSummary

    quiet = ProxyReport(
        run_id="run",
        hosts=(),
        final_hash=None,
        audit_log=None,
        flows=(FlowSummary("metrics", "off", 0, 0, 0, 0, ""),),
    )
    assert quiet.flow_lines() == []


def test_sizes_are_named_in_binary_units() -> None:
    """A KiB is 1,024 bytes and is called so (5,000,000 bytes showed as "4.8 MB")."""
    from airlock._sizes import human_size

    assert [human_size(n) for n in (512, 1536, 5_000_000, 3 << 30)] == [
        "512 B",
        "1.5 KiB",
        "4.8 MiB",
        "3.0 GiB",
    ]
