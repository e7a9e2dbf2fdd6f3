"""``airlock redact`` as a real subprocess: stdout, --output, --report, --json, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GITHUB = "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"


def airlock(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_a_file_with_a_secret_exits_1_with_the_marker_on_stdout(tmp_path: Path) -> None:
    """The redacted content goes to stdout and the exit code says something was found."""
    source = tmp_path / "t.jsonl"
    source.write_text(json.dumps({"text": f"token {GITHUB}"}) + "\n")
    result = airlock("redact", str(source))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"text": "token [REDACTED:github_token]"}
    assert GITHUB.encode() not in result.stdout + result.stderr


def test_clean_input_exits_0_and_is_copied_unchanged() -> None:
    """Nothing found: exit 0 and the bytes come back as they went in."""
    result = airlock("redact", "-", stdin=b"nothing to see\n\xff\xfe binary too\n")
    assert result.returncode == 0
    assert result.stdout == b"nothing to see\n\xff\xfe binary too\n"


def test_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    """An unreadable input is an error (exit 2) that names the file."""
    result = airlock("redact", str(tmp_path / "absent.jsonl"))
    assert result.returncode == 2
    assert b"absent.jsonl" in result.stderr


def test_output_file_and_report_by_kind_and_line(tmp_path: Path) -> None:
    """--output writes the file; --report lists kind and line on stderr, never the secret."""
    target = tmp_path / "out.txt"
    result = airlock(
        "redact", "-", "--output", str(target), "--report", stdin=f"a\nb {GITHUB}\n".encode()
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert target.read_text() == "a\nb [REDACTED:github_token]\n"
    assert b"line 2: github_token" in result.stderr
    assert GITHUB.encode() not in result.stderr


def test_json_report_on_stderr(tmp_path: Path) -> None:
    """--json prints counts and findings as JSON on stderr."""
    result = airlock(
        "redact", "-", "--json", stdin=f"PASSWORD=UufgJ4UUE8d458y55x\n{GITHUB}\n".encode()
    )
    report = json.loads(result.stderr)
    assert report["counts"] == {"generic_password": 1, "github_token": 1}
    assert [f["line"] for f in report["findings"]] == [1, 2]


def test_settings_add_rules_and_allow_values(project: Path) -> None:
    """Rules and allow-listed values under airlock.redaction in project settings are used."""
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "airlock": {
                    "redaction": {
                        "rules": [{"kind": "acme", "pattern": "acme-[0-9]{6}", "keyword": "acme-"}],
                        "allow": [GITHUB],
                    }
                }
            }
        )
    )
    result = airlock("redact", "-", stdin=f"acme-123456 {GITHUB}".encode(), cwd=project)
    assert result.stdout == f"[REDACTED:acme] {GITHUB}".encode()
    assert result.returncode == 1
