"""The labelled corpus: recall by kind, false positives per MB, valid JSON out."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from airlock.redact import Redactor

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpora" / "redaction-dev"


def _labels() -> dict[str, list[dict[str, Any]]]:
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name in ("labels.jsonl", "negatives.jsonl"):
        for line in (CORPUS / name).read_text().splitlines():
            label = json.loads(line)
            by_file[label["file"]].append(label)
    return by_file


@pytest.fixture(scope="module")
def scored() -> dict[str, Any]:
    labels = _labels()
    redactor = Redactor()
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    false_positives = 0
    size = 0
    invalid = 0
    for path in sorted((CORPUS / "transcripts").rglob("*.jsonl")):
        data = path.read_bytes()
        size += len(data)
        out = io.BytesIO()
        report = redactor.redact_stream(io.BytesIO(data), out)
        for original, redacted in zip(data.splitlines(), out.getvalue().splitlines(), strict=True):
            if _shape(json.loads(original)) != _shape(json.loads(redacted)):
                invalid += 1
        spans = [(f.start, f.end) for f in report.findings]
        mine = labels[path.relative_to(CORPUS).as_posix()]
        secrets = [label for label in mine if not label["kind"].startswith("neg:")]
        for label in secrets:
            total[label["kind"]] += 1
            if any(s <= label["start"] and label["end"] <= e for s, e in spans):
                found[label["kind"]] += 1
        false_positives += sum(
            1 for s, e in spans if not any(s < x["end"] and x["start"] < e for x in secrets)
        )
    return {
        "found": found,
        "total": total,
        "fp": false_positives,
        "mb": size / 1e6,
        "invalid": invalid,
    }


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_corpus_is_there() -> None:
    """The labelled corpus is found relative to the repository."""
    assert (CORPUS / "labels.jsonl").is_file()


def test_recall_overall_is_at_least_99_percent(scored: dict[str, Any]) -> None:
    """At least 99% of the labelled secrets are fully covered by a marker."""
    assert sum(scored["found"].values()) / sum(scored["total"].values()) >= 0.99


def test_recall_is_at_least_95_percent_on_every_kind(scored: dict[str, Any]) -> None:
    """Every kind of secret in the corpus is found at least 95% of the time."""
    for kind, count in scored["total"].items():
        assert scored["found"][kind] / count >= 0.95, kind


def test_at_most_half_a_false_positive_per_megabyte(scored: dict[str, Any]) -> None:
    """Markers that cover no labelled secret (hashes, ids, examples, placeholders) stay rare."""
    assert scored["fp"] / scored["mb"] <= 0.5


def test_every_redacted_line_is_json_of_the_same_shape(scored: dict[str, Any]) -> None:
    """Each output line parses as JSON with the same keys, nesting and value types."""
    assert scored["invalid"] == 0
