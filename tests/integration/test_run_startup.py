"""What ``airlock run -- true`` imports: only what a run without inspection needs.

Start-up time is a goal of ``airlock run`` (``benchmarks/sandbox_startup.py``); these modules
cost tens of millions of instructions and a plain run has no use for them: they load when
``--inspect`` or ``--repo`` asks for them, when a host name is not plain ASCII, and when the
report is drawn as a table on a terminal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NOT_ON_THE_PLAIN_PATH = (
    "airlock.redact",
    "airlock.egress.inspect",
    "airlock.egress.inspected",
    "airlock.egress.plain",
    "airlock.egress.scan",
    "airlock.egress.gateway",
    "airlock.egress.ca",
    "cryptography",
    "httpx",
    "rich",
    "idna",
)


def test_a_plain_run_imports_no_inspection_redaction_or_table_modules(tmp_path: Path) -> None:
    """`airlock run -- true` (report on a pipe) loads none of the modules only inspection, the
    git gateway, IDNA names or a terminal table need."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "airlock",
            "run",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "airlock.egress.server" in imported  # the proxy did load: the check means something
    loaded = sorted(
        name
        for name in imported
        if any(name == root or name.startswith(root + ".") for root in NOT_ON_THE_PLAIN_PATH)
    )
    assert loaded == []
