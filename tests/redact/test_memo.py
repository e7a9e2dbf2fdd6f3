"""Answers remembered by their text: bounded memory, and the same output as asking again."""

from __future__ import annotations

import io

from airlock.redact import RedactionReport, Redactor
from airlock.redact.corpus import generate
from airlock.redact.memo import LONGEST_TEXT, Memo
from airlock.redact.patterns import Rule
from airlock.redact.table import Table
from tests.redact.cases import SECRETS

PEM = dict((kind, secret) for kind, _, secret in SECRETS)["private_key_pem"]


def test_a_memo_forgets_everything_past_its_count_or_its_bytes() -> None:
    memo: Memo[bytes, int] = Memo(answers=10, held=1000)
    for number in range(25):
        memo.put(b"%03d" % number, 3, number)
        assert len(memo) <= 10
    assert memo.get(b"024") == 24
    assert memo.get(b"000") is None  # forgotten when the eleventh came
    for number in range(5):
        memo.put(b"k%d" % number, 300, number)
        assert memo.held <= 1000
    assert memo.get(b"k4") == 4
    memo.put(b"long", LONGEST_TEXT + 1, 1)
    assert memo.get(b"long") is None  # too long to keep


def _findings(redactor: Redactor, data: bytes) -> tuple[bytes, list[object]]:
    out = io.BytesIO()
    report = redactor.redact_stream(io.BytesIO(data), out, report=RedactionReport(lines=True))
    return out.getvalue(), list(report.findings)


def test_remembered_answers_give_what_asking_again_gives() -> None:
    """A redactor that has seen the text (key files, rejected assignments holding tokens, the
    same span with other bytes around it) redacts it again exactly as a new redactor does."""
    corpus = b"".join(data for _, data in generate(11, 0.2).files)
    json_pem = PEM.replace("\n", "\\n").encode()
    around = [b"", b"x", b"_", b"\\", b"\n", b'"', b"a1"]
    tricky = b"".join(
        before + text + after
        for before in around
        for after in around
        for text in (
            json_pem,
            b"DATADOG_TOKEN=ghp_aaaa secret is ghp_abc-",
            b"password=ghp_" + b"a" * 36,
            b"api_key=changeme-xoxb-123456789012-abcdefghij",
        )
    )
    for data in (corpus, tricky, PEM.encode() * 40):
        seasoned = Redactor(split_scan=True, chunk=1 << 16, overlap=1 << 12)
        first = _findings(seasoned, data)
        assert _findings(seasoned, data) == first
        assert _findings(Redactor(), data) == first


def test_a_span_is_remembered_with_the_bytes_around_it() -> None:
    """The same span of text may be a candidate or not by the byte on either side (``\\b``):
    the answer remembered for one is not given for the other."""
    table = Table((Rule(kind="word", pattern=r"\bfoo7\b", keyword="foo7"),))
    assert table.candidate(b" foo7 ", 1, 5) is not None
    assert table.candidate(b"xfoo7 ", 1, 5) is None
    assert table.candidate(b" foo7x", 1, 5) is None
    assert table.candidate(b"foo7", 0, 4) is not None
    assert table.candidate(b" foo7 ", 1, 5) is not None
