"""Chunk boundaries never change what is found: the scan goes on where the last one stopped."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.redact import Redactor

GITHUB = "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"
AWS = "AKIAIOSFODNN7QZ3XK2M"
# A long generic value that ends in another assignment, then a token: scanned from inside the
# first value, a different candidate (``password=…;ghp_…``) would run over the token.
LONG_VALUE = "Q7vK2mZ9xR4tL8pW3nB6yH1cF5gJ0dS" * 3
RUN_OVER = f"\napi_key={LONG_VALUE}password=Zk3Pq9Lm2Xw7abc;{GITHUB} tail\n"


def redact(redactor: Redactor, text: str) -> tuple[bytes, list[tuple[str, int, int]]]:
    dst = io.BytesIO()
    report = redactor.redact_stream(io.BytesIO(text.encode()), dst)
    return dst.getvalue(), [(f.kind, f.start, f.end) for f in report.findings]


@pytest.mark.parametrize("chunk", [64, 256, 1000])
def test_a_boundary_inside_a_redacted_value_hides_nothing_after_it(chunk: int) -> None:
    """Wherever a chunk boundary falls in a long redacted value, the token after it is found."""
    whole = Redactor()
    small = Redactor(chunk=chunk, overlap=256)
    for pad in range(0, 420, 3):
        text = "x" * pad + RUN_OVER + "y" * 600
        expected = redact(whole, text)
        assert redact(small, text) == expected, pad
        assert GITHUB.encode() not in expected[0]


def _mixed_text(seed: int) -> str:
    """Tokens, assignments, URLs, escapes and filler in a random order (a fixed seed), each
    followed by a separator (glued together, tokens would not be tokens)."""
    pick = random.Random(seed)
    pieces = [
        GITHUB,
        AWS,
        RUN_OVER,
        f"password={LONG_VALUE[:20]};",
        f'"token": "{LONG_VALUE[:40]}"',
        "postgres://admin:Zk3Pq9Lm2Xw7@db.internal:5432/app",
        "\\u0067hp_Gmgdxr6SUtPeZ4KIonrmzAPslTyCmq4Gbu6c",
        "api_key=" + LONG_VALUE,
        "plain words and numbers 12345 ",
    ]
    separators = [" ", "\n", ";", "\\n", ","]
    return "".join(pick.choice(pieces) + pick.choice(separators) for _ in range(300))


@pytest.mark.parametrize("seed", range(12))
def test_any_chunk_size_finds_what_one_window_finds(seed: int) -> None:
    """On mixed text, small chunks give the output and the findings of a single window."""
    text = _mixed_text(seed)
    expected = redact(Redactor(), text)
    for chunk in (97, 500, 4096):
        assert redact(Redactor(chunk=chunk, overlap=8192), text) == expected, chunk


@pytest.mark.parametrize("seed", range(12))
def test_candidates_longer_than_the_overlap_leave_no_secret(seed: int) -> None:
    """A candidate cut by the end of a window is scanned on from the cut: no token survives."""
    text = _mixed_text(seed)
    whole, _ = redact(Redactor(), text)
    assert GITHUB.encode() not in whole and AWS.encode() not in whole
    for chunk in (97, 500):
        out, _ = redact(Redactor(chunk=chunk, overlap=256), text)
        assert GITHUB.encode() not in out, chunk
        assert GITHUB[4:20].encode() not in out, chunk  # not even the tail of a token
        assert AWS.encode() not in out, chunk


def test_many_secrets_keep_memory_flat_without_a_report(tmp_path: Path) -> None:
    """A file dense with secrets, redacted without --report or --json, keeps no finding in memory."""
    path = tmp_path / "dense.txt"
    path.write_bytes(f"{GITHUB}\n".encode() * 400_000)  # 400,000 secrets, 17 MB
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forked test runner before exec.
    script = (
        "import sys\n"
        "from airlock.cli.main import main\n"
        "code = main(['redact', sys.argv[1]])\n"
        "status = open('/proc/self/status').read()\n"
        "sys.stderr.write(status.split('VmHWM:')[1].split()[0])\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 1
    peak_mb = int(result.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mb < 60, peak_mb


@pytest.mark.parametrize(
    "text",
    [
        "password=Q7vK2mZ9xR4tL8pW3nB6;\\nAKIAIOSFODNN7QZ3XK2M;",
        "password=Q7vK2mZ9xR4tL8pW3nB6;\\n\\u0067hp_Gmgdxr6SUtPeZ4KIonrmzAPslTyCmq4Gbu6c,",
        'token="Q7vK2mZ9xR4tL8pW3nB6"\\n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',
        "api_key=Q7vK2mZ9xR4tL8pW3nB6\\t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",
    ],
    ids=["escaped-newline-aws", "escaped-newline-escaped-token", "quote-newline", "escaped-tab"],
)
def test_the_byte_that_ends_a_value_can_begin_the_next_secret(text: str) -> None:
    """An assignment's value ends at a backslash or quote; the token right after is still found."""
    out, report = Redactor().redact_text(text)
    assert len(report.findings) == 2
    assert "ghp_" not in out and "AKIA" not in out and "u0067hp" not in out
