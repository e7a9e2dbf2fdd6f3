"""``airlock audit --flow FLOW``: the inspected requests of one data flow (or the
unclassified ones), an unknown flow refused naming the valid ones, and the help saying that
inspected requests are records of their own."""

from __future__ import annotations

import json
import time
from pathlib import Path

from airlock.egress.audit import AuditLog, heads_path
from airlock.policy import FlowId
from tests.cli import airlock


def _request(path: str, flow: str | None, decision: str = "allow") -> dict[str, object]:
    record: dict[str, object] = {
        "type": "request",
        "method": "POST",
        "host": "localhost",
        "port": 18443,
        "path": path,
        "status": 200 if decision == "allow" else 403,
        "decision": decision,
        "reason": "r",
        "bytes_out": 10,
        "bytes_in": 20,
        "error": None,
    }
    if flow is not None:
        record.update(inspected=True, flow=flow, secrets={})
    return record


def _log(config_dir: Path) -> Path:
    """A run's log: its start, inspected requests of three flows, a plain-HTTP request (no
    flow), a tunnel, and its end."""
    log = config_dir.parent / "audit.jsonl"
    audit = AuditLog(log, heads_path(log, config_dir), "r1", flush_interval=3600)
    audit.open()
    records: list[dict[str, object]] = [
        {"type": "start"},
        _request("/v1/messages", "model_requests"),
        _request("/api/event_logging/batch", "metrics", "deny"),
        _request("/api/event_logging/batch", "unclassified"),
        _request("/plain", None),
        {"type": "tunnel", "host": "example.org", "port": 443, "decision": "allow"},
        {"type": "run", "exit_code": 0},
    ]
    for record in records:
        audit.append({"time": time.time(), "run": "r1", **record})
    audit.close()
    return log


def _listed(config_dir: Path, log: Path, *options: str) -> list[tuple[object, object]]:
    done = airlock(
        "audit", "--audit-log", str(log), "--json", *options,
        env={"CLAUDE_CONFIG_DIR": str(config_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [(r.get("path"), r.get("flow")) for r in json.loads(done.stdout)]


def test_flow_lists_the_requests_of_that_flow_alone(tmp_path: Path) -> None:
    """Each flow's requests, the unclassified ones too; with ``--decision`` as well, both
    select; start, run, tunnel and plain records (no flow) are left out."""
    config_dir = tmp_path / "config"
    log = _log(config_dir)
    assert _listed(config_dir, log, "--flow", "metrics") == [
        ("/api/event_logging/batch", "metrics")
    ]
    assert _listed(config_dir, log, "--flow", "unclassified") == [
        ("/api/event_logging/batch", "unclassified")
    ]
    assert _listed(config_dir, log, "--flow", "model_requests", "--decision", "deny") == []
    assert _listed(config_dir, log, "--flow", "auto_update") == []
    lines = airlock(
        "audit", "--audit-log", str(log), "--flow", "metrics",
        env={"CLAUDE_CONFIG_DIR": str(config_dir)},
    )  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    [line] = lines.stdout.splitlines()
    assert "/api/event_logging/batch" in line and "flow metrics" in line


def test_an_unknown_flow_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    """A flow that is not the engine's (a typo) would list nothing without a word: refused,
    exit 2, naming every flow ``--flow`` takes; nothing on stdout (no ``[`` left alone)."""
    config_dir = tmp_path / "config"
    log = _log(config_dir)
    for wrong in ("metric", "Metrics", ""):
        done = airlock(
            "audit", "--audit-log", str(log), "--json", "--flow", wrong,
            env={"CLAUDE_CONFIG_DIR": str(config_dir)},
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        if wrong:
            assert f"--flow {wrong!r}: not a data flow; expected one of " in done.stderr
            valid = ", ".join([*(str(flow) for flow in FlowId), "unclassified"])
            assert valid in done.stderr
        else:
            assert "--flow is empty" in done.stderr


def test_the_help_names_inspected_requests_and_flow(tmp_path: Path) -> None:
    """The help said "one record per CONNECT tunnel and per plain-HTTP request", leaving out
    the requests on an inspected host, each a record with its flow and secrets."""
    done = airlock("audit", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "per plain-HTTP request and per request on an inspected host" in text
    assert "an inspected request adds its flow and the secrets found in it" in text
    assert "[--flow FLOW]" in text
    assert "only inspected requests of this data flow" in text
