"""``airlock feedback --json``: one shape for dry and real runs, refusals as JSON, counts that add up."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.feedback import BundleFile, BundleKind, Manifest, Role, read_members
from tests.feedback.servers import collector
from tests.feedback.sessionfiles import AWS_KEY, make_session
from tests.feedback.test_cli import SID, airlock


def counted(counts: dict[str, int]) -> str:
    """Counts as the issue body writes them: ``kind ×n, …`` sorted by kind."""
    return ", ".join(f"{kind} ×{n}" for kind, n in sorted(counts.items())) or "nothing"


def test_dry_run_json_is_exactly_the_bundles_manifest(config_dir: Path) -> None:
    """The dry run prints the manifest alone: the same keys as manifest.json in a real bundle."""
    make_session(config_dir, SID)
    dry = airlock("feedback", SID, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    kept = airlock("feedback", SID, "--local", "--json")
    assert kept.returncode == 0, kept.stderr
    (bundle,) = (config_dir / "feedback-bundles").iterdir()
    with bundle.open("rb") as handle:
        members = dict(read_members(handle))
    in_bundle = json.loads(members["manifest.json"])
    assert set(json.loads(dry.stdout)) == set(in_bundle)
    assert "delivered" not in json.loads(dry.stdout)


@pytest.mark.parametrize("how", ["upload", "local_archive"])
def test_real_run_json_has_the_manifest_at_top_level(
    config_dir: Path, project: Path, how: str
) -> None:
    """A real run prints the manifest's fields at the top level, plus "delivered"; no wrapper."""
    make_session(config_dir, SID)
    dry = json.loads(airlock("feedback", SID, "--dry-run", "--json").stdout)
    with collector() as server:
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.json").write_text(
            json.dumps({"airlock": {"collectorUrl": server.url}})
        )
        extra = ["--local"] if how == "local_archive" else []
        result = airlock("feedback", SID, "--json", *extra)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == set(dry) | {"delivered"}
    assert "manifest" not in data and data["session"] == SID
    delivered = data["delivered"]
    assert delivered["how"] == data["delivery"] == how
    if how == "upload":
        assert delivered["receipt"]["status"] == 201 and delivered["path"] is None
        assert list(server.stored) == [data["bundle_id"]]
    else:
        assert delivered["receipt"] is None and Path(delivered["path"]).is_file()
        assert server.attempts == []


@pytest.mark.parametrize(
    ("args", "env", "flow", "variable"),
    [
        (
            ["feedback", SID, "--dry-run", "--json"],
            {"DISABLE_FEEDBACK_COMMAND": "1"},
            "feedback_command",
            "DISABLE_FEEDBACK_COMMAND",
        ),
        (
            ["feedback", SID, "--json"],
            {"CLAUDE_CODE_USE_BEDROCK": "1"},
            "feedback_command",
            "Bedrock",
        ),
        (
            ["survey", SID, "--rating", "good", "--json"],
            {"DISABLE_TELEMETRY": "1"},
            "survey_rating",
            "DISABLE_TELEMETRY",
        ),
    ],
    ids=["feedback_disabled", "feedback_bedrock", "survey_telemetry_off"],
)
def test_refusal_with_json_prints_a_json_object(
    config_dir: Path, args: list[str], env: dict[str, str], flow: str, variable: str
) -> None:
    """Exit 3 with --json: {"refused": true, "flow", "reasons"} on stdout, the message on stderr."""
    make_session(config_dir, SID)
    result = airlock(*args, env=env)
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert data["refused"] is True and data["flow"] == flow
    assert any(variable in reason for reason in data["reasons"])
    assert variable in result.stderr


def test_issue_counts_match_the_manifest(config_dir: Path) -> None:
    """The issue body's redaction counts are the manifest's: in the files, the description, in all."""
    make_session(config_dir, SID)
    result = airlock(
        "feedback", SID, "--dry-run", "--json", "--issue", "text",
        "--description", f"my key {AWS_KEY} leaked",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    per_file: Counter[str] = Counter()
    for item in data["files"]:
        per_file.update(item["redactions"])
    assert data["file_redactions"] == dict(per_file) == {"aws_access_key_id": 1, "github_token": 2}
    assert data["description_redactions"] == {"aws_access_key_id": 1}
    assert data["redactions"] == dict(per_file + Counter(data["description_redactions"]))
    body = data["issue"]
    found = dict(
        re.findall(r"- in (the bundle's 3 file\(s\)|the description|all)[^:]*: (.*)", body)
    )
    assert found == {
        "the bundle's 3 file(s)": counted(data["file_redactions"]),
        "the description": counted(data["description_redactions"]),
        "all": counted(data["redactions"]),
    }
    assert AWS_KEY not in result.stdout


def test_human_output_shows_the_description_and_total_counts(config_dir: Path) -> None:
    """Without --json the counts for the description and in all are printed beside each file's."""
    make_session(config_dir, SID)
    result = airlock("feedback", SID, "--dry-run", "--description", f"key {AWS_KEY}")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "redacted: aws_access_key_id ×1" in text
    assert "redacted in all (files and description): aws_access_key_id ×2, github_token ×2" in text


KINDS = st.sampled_from(["aws_access_key_id", "github_token", "private_key", "jwt"])
COUNTS = st.dictionaries(KINDS, st.integers(min_value=1, max_value=50), max_size=4)


@given(files=st.lists(COUNTS, max_size=5), description=COUNTS)
def test_manifest_counts_always_add_up(
    files: list[dict[str, int]], description: dict[str, int]
) -> None:
    """redactions == file_redactions + description_redactions, for any counts."""
    manifest = Manifest(
        bundle_id="b",
        kind=BundleKind.FEEDBACK,
        session="s",
        created_at="2026-11-23T12:00:00Z",
        airlock_version="0",
        retention_class="feedback",
        retention_days=None,
        delivery="upload",
        files=tuple(
            BundleFile(f"f{n}", Role.TRANSCRIPT, 0, "0" * 64, counts)
            for n, counts in enumerate(files)
        ),
        description_redactions=description,
    )
    data = manifest.to_json()
    total: Counter[str] = Counter()
    for counts in files:
        total.update(counts)
    assert data["file_redactions"] == dict(total)
    assert data["redactions"] == dict(total + Counter(description))
