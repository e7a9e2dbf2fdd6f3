"""Feedback bundles end to end: engine first, redacted bundle, upload with retries, archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airlock.errors import AirlockError, RefusedError, UsageError
from airlock.feedback import (
    BundleKind,
    Retry,
    deliver,
    read_members,
    request_feedback,
    request_share,
)
from airlock.policy import decide
from airlock.policy.model import FlowId, State
from airlock.redact import Redactor
from airlock.sessions import SessionStore
from airlock.settings import load
from tests.feedback.servers import collector
from tests.feedback.sessionfiles import make_session

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SID = "9f3c2a1e-4b5d-4c6e-8f70-112233445566"
FAST = Retry(attempts=4, first_delay=0.01, max_delay=0.05, timeout=10)


def setup(config_dir: Path, project: Path, home: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    make_session(config_dir, SID)
    loaded = load(project, {**os.environ, "HOME": str(home), **(env or {})})
    return loaded, decide(loaded.context), SessionStore(config_dir).get(SID)


def run(request, loaded, collector_url=None):  # type: ignore[no-untyped-def]
    return deliver(
        request,
        Redactor.from_loaded(loaded),
        config_dir=loaded.config_dir,
        collector=collector_url,
        now=NOW,
        version="0.1.0",
        sleep=time.sleep,
        retry=FAST,
    )


def members(data: bytes) -> dict[str, bytes]:
    return dict(read_members(io.BytesIO(data)))


def test_dry_run_manifest_writes_nothing(config_dir: Path, project: Path, home: Path) -> None:
    """A dry run gives the manifest (sizes, hashes, redactions, retention) and writes nothing."""
    loaded, decisions, session = setup(config_dir, project, home)
    before = sorted(p for p in config_dir.rglob("*"))
    outcome = run(
        request_feedback(decisions, session, description="it broke", dry_run=True), loaded
    )
    manifest = outcome.manifest.to_json()
    assert sorted(p for p in config_dir.rglob("*")) == before
    roles = sorted(item["role"] for item in manifest["files"])
    assert roles == ["raw_session_log", "subagent_transcript", "transcript"]
    assert manifest["retention"]["class"] == "feedback"
    assert manifest["session"] == SID and manifest["kind"] == "feedback"
    assert sum(manifest["redactions"].values()) >= 3
    assert all(len(item["sha256"]) == 64 for item in manifest["files"])
    assert str(home) not in json.dumps(manifest)


def test_upload_bundle_is_redacted_and_matches_manifest(
    config_dir: Path, project: Path, home: Path
) -> None:
    """The uploaded bundle holds the redacted files whose sizes and hashes the manifest gives."""
    loaded, decisions, session = setup(config_dir, project, home)
    files = make_session(config_dir, SID)
    with collector() as server:
        outcome = run(request_feedback(decisions, session, description="x"), loaded, server.url)
    assert outcome.receipt is not None and outcome.receipt.status == 201
    (body,) = server.stored.values()
    content = members(body)
    manifest = json.loads(content["manifest.json"])
    assert manifest == outcome.manifest.to_json()
    for item in manifest["files"]:
        data = content[item["path"]]
        assert len(data) == item["size"]
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
    for secret in files.secrets:
        assert secret.encode() not in body  # gzip'd, so check the members too
        assert all(secret.encode() not in data for data in content.values())
    for line in content[f"{SID}.jsonl"].splitlines():
        json.loads(line)
    key = outcome.manifest.bundle_id
    assert server.headers[key]["X-Airlock-Retention-Class"] == "feedback"


def test_cut_connection_mid_upload_is_retried_and_stored_once(
    config_dir: Path, project: Path, home: Path
) -> None:
    """Cut twice mid-body: nothing partial is stored; the retry stores the whole bundle once."""
    loaded, decisions, session = setup(config_dir, project, home)
    with collector() as server:
        server.cut_after = [100, 10]
        outcome = run(request_feedback(decisions, session), loaded, server.url)
    assert outcome.receipt is not None and outcome.receipt.attempts == 3
    assert len(server.attempts) == 3
    assert list(server.stored) == [outcome.manifest.bundle_id]
    assert "manifest.json" in members(server.stored[outcome.manifest.bundle_id])


def test_lost_answer_retry_never_stores_twice(config_dir: Path, project: Path, home: Path) -> None:
    """Stored but the answer lost: the retry with the same key is recognised, not stored again."""
    loaded, decisions, session = setup(config_dir, project, home)
    with collector() as server:
        server.drop_answer = 1
        server.fail_status = [503]
        outcome = run(request_feedback(decisions, session), loaded, server.url)
    assert outcome.receipt is not None
    assert outcome.receipt.duplicate is True and outcome.receipt.attempts == 3
    assert len(server.stored) == 1


def test_upload_gives_up_after_attempts(config_dir: Path, project: Path, home: Path) -> None:
    """Every attempt failing: an error that says nothing was stored, after exactly N attempts."""
    loaded, decisions, session = setup(config_dir, project, home)
    with collector() as server:
        server.fail_status = [503] * 10
        with pytest.raises(AirlockError, match="after 4 attempts"):
            run(request_feedback(decisions, session), loaded, server.url)
    assert len(server.attempts) == 4 and server.stored == {}


def test_client_error_is_not_retried(config_dir: Path, project: Path, home: Path) -> None:
    """A 4xx answer is final: one attempt."""
    loaded, decisions, session = setup(config_dir, project, home)
    with collector() as server:
        server.fail_status = [413]
        with pytest.raises(AirlockError, match="refused"):
            run(request_feedback(decisions, session), loaded, server.url)
    assert len(server.attempts) == 1


def test_plain_http_to_remote_host_refused(config_dir: Path, project: Path, home: Path) -> None:
    """A bundle never crosses a network in clear text: http:// is for loopback only."""
    loaded, decisions, session = setup(config_dir, project, home)
    with pytest.raises(RefusedError, match="HTTPS"):
        run(request_feedback(decisions, session), loaded, "http://collector.example.com")


def test_no_collector_is_a_usage_error(config_dir: Path, project: Path, home: Path) -> None:
    """Upload with no collector configured says how to configure one."""
    loaded, decisions, session = setup(config_dir, project, home)
    with pytest.raises(UsageError, match=r"airlock\.collectorUrl"):
        run(request_feedback(decisions, session), loaded, None)


def test_local_archive_private_and_complete(config_dir: Path, project: Path, home: Path) -> None:
    """On Bedrock the share is archived: folder 0700, file 0600, a complete bundle, nothing else."""
    loaded, decisions, session = setup(
        config_dir, project, home, {"CLAUDE_CODE_USE_BEDROCK": "1", "DISABLE_TELEMETRY": ""}
    )
    assert decisions[FlowId.TRANSCRIPT_SHARE].state is State.LOCAL_ARCHIVE
    outcome = run(request_share(decisions, session), loaded)
    assert outcome.path is not None and outcome.manifest.kind is BundleKind.SHARED_TRANSCRIPT
    folder = config_dir / "feedback-bundles"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(outcome.path.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == [outcome.path.name]
    content = members(outcome.path.read_bytes())
    assert json.loads(content["manifest.json"])["retention"]["class"] == "shared_transcript"


CRASHER = """
import sys, time
from pathlib import Path
from airlock.feedback import write_private

def fill(handle):
    handle.write(b"x" * 65536)
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)

write_private(Path(sys.argv[1]), "bundle.tar.gz", fill)
"""


def test_crash_mid_write_leaves_nothing(tmp_path: Path) -> None:
    """A process killed while writing a bundle leaves no file, partial or whole, in the folder."""
    folder = tmp_path / "feedback-bundles"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert list(folder.iterdir()) == []
    assert folder.stat().st_mode & 0o777 == 0o700


ENGINE_STATES = [
    # (env, feedback_command, transcript_share)
    ({}, State.ON, State.UPLOAD),
    ({"CLAUDE_CODE_USE_BEDROCK": "1"}, State.OFF, State.LOCAL_ARCHIVE),
    ({"airlock_gateway": "1"}, State.ON, State.LOCAL_ARCHIVE),
    ({"DISABLE_FEEDBACK_COMMAND": "1"}, State.OFF, State.UPLOAD),
    ({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, State.OFF, State.OFF),
    ({"airlock_zdr": "1"}, State.OFF, State.OFF),
    ({"managed_invalid": "1"}, State.OFF, State.OFF),
    ({"airlock_declined": "1"}, State.ON, State.OFF),
]


@pytest.mark.parametrize(
    ("env", "feedback_state", "share_state"),
    ENGINE_STATES,
    ids=[
        "first_party",
        "bedrock",
        "gateway",
        "feedback_disabled",
        "nonessential",
        "zdr",
        "managed_invalid_fails_closed",
        "dont_ask_again",
    ],
)
def test_every_engine_state(
    config_dir: Path,
    managed_dir: Path,
    project: Path,
    home: Path,
    env: dict[str, str],
    feedback_state: State,
    share_state: State,
) -> None:
    """Each engine state of feedback_command and transcript_share: delivered or refused with why."""
    airlock: dict[str, bool] = {}
    if env.pop("airlock_gateway", None):
        airlock["gateway"] = True
    if env.pop("airlock_zdr", None):
        airlock["zeroDataRetention"] = True
    if env.pop("managed_invalid", None):
        (managed_dir / "managed-settings.json").write_text("{not json")
    if env.pop("airlock_declined", None):
        (config_dir / "airlock").mkdir()
        (config_dir / "airlock" / "state.json").write_text('{"transcriptShareDeclined": true}')
    if airlock:
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.json").write_text(json.dumps({"airlock": airlock}))
    loaded, decisions, session = setup(config_dir, project, home, env)
    assert decisions[FlowId.FEEDBACK_COMMAND].state is feedback_state
    assert decisions[FlowId.TRANSCRIPT_SHARE].state is share_state
    with collector() as server:
        if feedback_state is State.OFF:
            with pytest.raises(RefusedError) as error:
                request_feedback(decisions, session)
            assert decisions[FlowId.FEEDBACK_COMMAND].reasons[-1] in str(error.value)
        else:
            outcome = run(request_feedback(decisions, session), loaded, server.url)
            expected_local = share_state is State.LOCAL_ARCHIVE
            assert (outcome.path is not None) is expected_local
            assert (outcome.receipt is not None) is not expected_local
        if share_state is State.OFF:
            with pytest.raises(RefusedError) as error:
                request_share(decisions, session)
            assert decisions[FlowId.TRANSCRIPT_SHARE].reasons[-1] in str(error.value)
        else:
            outcome = run(request_share(decisions, session), loaded, server.url)
            assert outcome.manifest.retention_class == "shared_transcript"
            assert (outcome.path is not None) is (share_state is State.LOCAL_ARCHIVE)
