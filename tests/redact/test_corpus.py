"""Labelled corpora: recall by kind, false positives per MB, valid JSON out.

The corpus our own generator makes is always scored; ``../shared/corpora/redaction-dev`` is
scored as well when it is there (a clone on its own has no ``../shared``).
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airlock.redact import Redactor
from airlock.redact.corpus import Corpus, Label, generate, write
from airlock.redact.samples import KINDS

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "redaction-dev"


@dataclass(frozen=True, slots=True)
class Scored:
    found: Counter[str]
    total: Counter[str]
    false_positives: int
    megabytes: float
    invalid: int


def _read(directory: Path) -> Corpus:
    files = tuple(
        (path.relative_to(directory).as_posix(), path.read_bytes())
        for path in sorted((directory / "transcripts").rglob("*.jsonl"))
    )
    labels = [
        Label(**json.loads(line))
        for name in ("labels.jsonl", "negatives.jsonl")
        for line in (directory / name).read_text().splitlines()
    ]
    return Corpus(files, tuple(labels))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def score(corpus: Corpus) -> Scored:
    """Redact every file of ``corpus`` and score the findings against its labels."""
    by_file: dict[str, list[Label]] = defaultdict(list)
    for label in corpus.labels:
        by_file[label.file].append(label)
    redactor = Redactor()
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    false_positives = invalid = 0
    for name, data in corpus.files:
        out = io.BytesIO()
        report = redactor.redact_stream(io.BytesIO(data), out)
        for original, redacted in zip(data.splitlines(), out.getvalue().splitlines(), strict=True):
            if _shape(json.loads(original)) != _shape(json.loads(redacted)):
                invalid += 1
        spans = [(f.start, f.end) for f in report.findings]
        secrets = [label for label in by_file[name] if not label.negative]
        for label in secrets:
            total[label.kind] += 1
            found[label.kind] += any(s <= label.start and label.end <= e for s, e in spans)
        false_positives += sum(
            1 for s, e in spans if not any(s < x.end and x.start < e for x in secrets)
        )
    return Scored(found, total, false_positives, corpus.size / 1e6, invalid)


SOURCES = ["generated", "generated-seed-2"] + (["shared"] if SHARED.is_dir() else [])


@pytest.fixture(scope="module", params=SOURCES)
def scored(request: pytest.FixtureRequest) -> Scored:
    if request.param == "shared":
        return score(_read(SHARED))
    seed = 2 if request.param.endswith("2") else 1
    return score(generate(seed=seed, megabytes=2.0))


def test_recall_overall_is_at_least_99_percent(scored: Scored) -> None:
    """At least 99% of the labelled secrets are fully covered by a marker."""
    assert sum(scored.found.values()) / sum(scored.total.values()) >= 0.99


def test_recall_is_at_least_95_percent_on_every_kind(scored: Scored) -> None:
    """Every kind of secret in the corpus is found at least 95% of the time."""
    for kind, count in scored.total.items():
        assert scored.found[kind] / count >= 0.95, kind


def test_at_most_half_a_false_positive_per_megabyte(scored: Scored) -> None:
    """Markers that cover no labelled secret (hashes, ids, examples, placeholders) stay rare."""
    assert scored.false_positives / scored.megabytes <= 0.5


def test_every_redacted_line_is_json_of_the_same_shape(scored: Scored) -> None:
    """Each output line parses as JSON with the same keys, nesting and value types."""
    assert scored.invalid == 0


# ------------------------------------------------------------------- the generator itself


def test_generated_corpus_plants_every_kind_and_negatives() -> None:
    """Every secret kind the samples know is planted, and hard negatives of each sort too."""
    corpus = generate(seed=3, megabytes=2.0)
    kinds = {label.kind for label in corpus.labels}
    assert set(KINDS) <= kinds
    negatives = {kind for kind in kinds if kind.startswith("neg:")}
    assert {"neg:git_sha", "neg:uuid", "neg:message_id", "neg:integrity", "neg:image"} <= negatives
    assert {"neg:placeholder", "neg:aws_example", "neg:certificate"} <= negatives


def test_generated_corpus_is_the_same_for_the_same_seed() -> None:
    """The generator is deterministic: a seed names one corpus."""
    assert generate(seed=5, megabytes=0.3) == generate(seed=5, megabytes=0.3)
    assert generate(seed=5, megabytes=0.3) != generate(seed=6, megabytes=0.3)


def test_labels_point_at_their_line_and_parse_as_json_text() -> None:
    """Each label's span lies on its line, inside a JSON string that holds the planted text."""
    corpus = generate(seed=4, megabytes=0.5)
    data = dict(corpus.files)
    for label in corpus.labels:
        raw = data[label.file]
        assert raw.count(b"\n", 0, label.start) + 1 == label.line
        assert raw.count(b"\n", label.start, label.end) == 0
        line = raw.splitlines()[label.line - 1]
        json.loads(line)


def test_written_corpus_reads_back_the_same(tmp_path: Path) -> None:
    """The corpus written in the shared layout reads back to the same files and labels."""
    corpus = generate(seed=8, megabytes=0.3)
    write(corpus, tmp_path)
    again = _read(tmp_path)
    assert dict(again.files) == dict(corpus.files)
    assert sorted(again.labels, key=repr) == sorted(corpus.labels, key=repr)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["bytes"] == corpus.size
