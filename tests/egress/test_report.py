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
    assert "[b]d: the client refused" in text and "handshake\\x1b]8;;" in text


def test_the_lines_show_control_characters_as_escapes() -> None:
    """Off a terminal (a pipe, a file a terminal shows later), the same escapes."""
    lines = "\n".join(_report().lines())
    assert "\x1b" not in lines
    assert "a\\x1b]8;;https://evil.example/\\x1b\\b: 1 conn" in lines
    assert "refused 2×: no rule\\x1b[2K" in lines
    assert "failed 1×: cannot connect [red]to[/red] c:1" in lines
