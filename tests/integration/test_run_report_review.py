"""``airlock run``'s end-of-run report against what the user's side may be: a file name near
the system's limit, a folder the command removed, a stderr pipe nobody empties, a narrow or
dumb terminal."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.cli import airlock, on_a_terminal

REFUSED = "import urllib.request as u\ntry: u.urlopen('http://{}/')\nexcept Exception: pass\n"
"""A request the proxy refuses (no rule names the host): it gives the report a host."""
LONG_HOST = "averyveryveryverylonghostnamepart.example.org"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=120)


def test_a_report_name_near_the_systems_limit_is_written(tmp_path: Path, project: Path) -> None:
    """A name of 245 characters is a valid one: the report is written under it (the
    temporary name it is written under first was longer than 255 bytes, and the run was
    refused: "File name too long")."""
    name = "r" * 240 + ".json"
    done = _run(tmp_path, "--report-json", name, "--", "true")
    assert done.returncode == 0, done.stderr
    assert json.loads((project / name).read_text())["complete"] is True


def test_a_report_folder_the_command_removed_is_said_so(tmp_path: Path, project: Path) -> None:
    (project / "out").mkdir()
    done = _run(tmp_path, "--report-json", "out/report.json", "--", "rm", "-r", "out")
    assert done.returncode == 125, done.stderr
    assert f"its folder {project / 'out'} was removed during the run" in done.stderr


def test_a_stderr_nobody_reads_does_not_hold_the_report_file(tmp_path: Path, project: Path) -> None:
    """stderr is a pipe of one page that the command fills: airlock's report there blocks
    until it is read, and the file must say the run ended meanwhile, not "not ended"."""
    reader, writer = os.pipe()
    size = fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 4096)
    fill = f"head -c {size - 64} /dev/zero >&2"  # room left for no report
    running = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airlock",
            "run",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--report-json",
            "report.json",
            "--",
            "sh",
            "-c",
            fill,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=writer,
        cwd=project,
    )
    os.close(writer)
    report = project / "report.json"
    try:
        deadline = time.monotonic() + 60
        complete = False
        while not complete and time.monotonic() < deadline and running.poll() is None:
            time.sleep(0.2)
            complete = report.exists() and json.loads(report.read_text())["complete"]
        assert complete, "the report file still says the run has not ended"
    finally:
        with os.fdopen(reader, "rb") as drained:
            drained.read()
        assert running.wait(timeout=60) == 0
    assert json.loads(report.read_text())["exit_code"] == 0


def _on_a_terminal(tmp_path: Path, project: Path, env: dict[str, str]) -> bytes:
    """What a run that sends a refused request shows on a terminal (``script``'s)."""
    (project / "send.py").write_text(REFUSED.format(LONG_HOST))
    log = tmp_path / "audit.jsonl"
    return on_a_terminal(
        "run", "--audit-log", str(log), "--", "python3", "send.py",
        cwd=project, typescript=tmp_path / "typescript", env=env,
    )  # fmt: skip


def test_on_a_narrow_terminal_the_report_is_in_lines(tmp_path: Path, project: Path) -> None:
    """At 20 columns the table's counts left the host's column none: the names were not
    shown, the sizes cut (``6…``). The report is in lines there, each host named whole."""
    shown = _on_a_terminal(tmp_path, project, {"COLUMNS": "20"})
    assert f"{LONG_HOST}: 0 conn, 0 req, 0 B out".encode() in shown, shown


def test_a_dumb_terminal_is_sent_no_escape(tmp_path: Path, project: Path) -> None:
    """``TERM=dumb`` (an editor's shell buffer) shows an escape as text: the report sets no
    text back to plain there (nothing can be hidden), as rich sends no styles."""
    shown = _on_a_terminal(tmp_path, project, {"COLUMNS": "120", "TERM": "dumb"})
    assert LONG_HOST.encode() in shown
    assert b"\x1b(B" not in shown, shown


def test_a_note_under_the_table_is_one_line_the_terminal_wraps(
    tmp_path: Path, project: Path
) -> None:
    """The note on a refused host holds the command that lets it out (``--allow HOST``): at 70
    columns rich folded it into lines, so that a copy of it held line breaks. Each line under
    the table is written whole, as the refusals' reasons are, and the terminal wraps it."""
    shown = _on_a_terminal(tmp_path, project, {"COLUMNS": "70"})
    text = re.sub(rb"\x1b\[[0-9;]*m", b"", shown).decode()
    note = (
        "refused as no rule names them; if the command needed them, run again with "
        f"--allow {LONG_HOST}, or name them in sandbox.network.allowedDomains"
    )
    assert note in text, text
