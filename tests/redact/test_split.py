"""A large file redacted by several processes gives the output and report of one process."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from airlock.redact import RedactionReport, Redactor
from airlock.redact.split import PART, cuts, processes_for, redact_file
from tests.cli import airlock
from tests.redact.cases import SECRETS

GITHUB = "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"
PEM = dict((kind, secret) for kind, _, secret in SECRETS)["private_key_pem"]


def one_process(redactor: Redactor, path: Path) -> tuple[bytes, RedactionReport]:
    dst = io.BytesIO()
    with path.open("rb") as src:
        report = redactor.redact_stream(src, dst)
    return dst.getvalue(), report


def split(redactor: Redactor, path: Path, processes: int) -> tuple[bytes, RedactionReport]:
    dst = io.BytesIO()
    report = RedactionReport()
    with path.open("rb") as src:
        redact_file(redactor, src, dst, report=report, processes=processes)
    return dst.getvalue(), report


def secrets_around_cuts(path: Path, size: int, processes: int) -> None:
    """A file of ``size`` bytes with secrets just before, across and just after every cut."""
    filler = bytearray(
        b"".join(b"line %08d of plain text, nothing here\n" % i for i in range(size // 38 + 1))[
            :size
        ]
    )
    for cut in cuts(size, processes)[1:-1]:
        for offset, secret in (
            (-300, GITHUB),
            (-7, GITHUB),
            (-1, "AKIAIOSFODNN7QZ3XK2M"),
            (5, GITHUB),
        ):
            at = cut + offset
            token = f" {secret} ".encode()
            filler[at : at + len(token)] = token
        pem = PEM.encode().replace(b"\n", b"\\n")
        filler[cut - 900 : cut - 900 + len(pem)] = pem  # a key over the cut
    path.write_bytes(bytes(filler))


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_parts_give_the_output_and_report_of_one_process(tmp_path: Path, processes: int) -> None:
    """Secrets before, across and after every cut are redacted as one process does."""
    path = tmp_path / "big.txt"
    secrets_around_cuts(path, 3_000_000, processes)
    redactor = Redactor(chunk=1 << 16, overlap=1 << 12)
    alone, report_alone = one_process(redactor, path)
    together, report = split(redactor, path, processes)
    assert together == alone
    assert report.findings == report_alone.findings
    assert report.bytes_in >= path.stat().st_size
    assert GITHUB.encode() not in together
    assert b"PRIVATE KEY" not in together.replace(b"[REDACTED:private_key_pem]", b"")


class FailingHelpers(Redactor):
    """A redactor whose helpers fail part way (every part but the first)."""

    def windows(
        self, src: BinaryIO, report: RedactionReport, **kwargs: Any
    ) -> Iterator[tuple[bytes, int]]:
        for count, window in enumerate(super().windows(src, report, **kwargs)):
            if kwargs.get("base", 0) and count == 3:
                raise RuntimeError("a helper that breaks")
            yield window


def test_a_failed_helper_loses_nothing(tmp_path: Path) -> None:
    """When a helper dies part way, the writer scans the rest of its part itself."""
    path = tmp_path / "big.txt"
    secrets_around_cuts(path, 2_000_000, 3)
    text = path.read_bytes()
    path.write_bytes(
        b"".join(
            text[at : at + 100_000] + f" {GITHUB} ".encode() for at in range(0, len(text), 100_000)
        )
    )
    redactor = FailingHelpers(chunk=1 << 16, overlap=1 << 12)
    alone, report_alone = one_process(Redactor(chunk=1 << 16, overlap=1 << 12), path)
    together, report = split(redactor, path, 3)
    assert together == alone
    assert report.findings == report_alone.findings


def test_a_helper_far_ahead_waits_and_nothing_is_lost(tmp_path: Path) -> None:
    """More hits than the pipe holds: the helper blocks until the writer reads, and all are kept."""
    path = tmp_path / "dense.txt"
    path.write_bytes(f"token {GITHUB}\n".encode() * 150_000)  # 75,000 hits in the second half
    redactor = Redactor()
    alone, report_alone = one_process(redactor, path)
    together, report = split(redactor, path, 2)
    assert together == alone
    assert len(report.findings) == len(report_alone.findings) == 150_000


def test_no_helper_process_is_left_behind(tmp_path: Path) -> None:
    """Every helper is reaped when the copy ends, also when writing fails part way."""
    path = tmp_path / "big.txt"
    secrets_around_cuts(path, 2_000_000, 2)

    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError("the reader went away")

    with path.open("rb") as src, pytest.raises(BrokenPipeError):
        redact_file(Redactor(), src, Broken(), report=RedactionReport(), processes=2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_parts_cover_the_file_in_order(processes: int) -> None:
    """The parts start at 0, follow each other without gap or overlap and end at the end."""
    offsets = cuts(10_000_019, processes)
    assert len(offsets) == processes + 1
    assert offsets[0] == 0 and offsets[-1] == 10_000_019
    assert offsets == sorted(set(offsets))


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        (PART - 1, 8, 1),
        (2 * PART, 8, 2),
        (2 * PART, 1, 1),
        (100 * PART, 16, 4),
        (3 * PART, 3, 3),
    ],
    ids=["small-file-one", "two-parts", "one-cpu", "at-most-four", "three-cpus"],
)
def test_processes_follow_size_and_cpus(size: int, limit: int, expected: int) -> None:
    """A part is worth a process only when big enough; never more than the CPUs or four."""
    assert processes_for(size, limit) == expected


def test_cli_jobs_gives_the_same_output(tmp_path: Path) -> None:
    """``airlock redact --jobs 2`` on a large file prints what ``--jobs 1`` prints."""
    path = tmp_path / "big.txt"
    secrets_around_cuts(path, 2 * PART + 1000, 2)
    one = airlock("redact", "--jobs", "1", str(path))
    two = airlock("redact", "--jobs", "2", "--json", str(path))
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    assert GITHUB not in two.stdout


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_cli_refuses_a_bad_jobs_value(tmp_path: Path, value: str) -> None:
    """A number of processes that is not a whole number of 1 or more is refused, naming it."""
    path = tmp_path / "small.txt"
    path.write_text("nothing\n")
    result = airlock("redact", "--jobs", value, str(path))
    assert result.returncode == 2
    assert "--jobs" in result.stderr and value in result.stderr


class Handed:
    """Hits handed over for ``[start, end)``, taken from a one-process run of the same input."""

    def __init__(self, hits: list[tuple[int, int, str]], start: int, end: int) -> None:
        self.start, self.end = start, end
        self._hits = [hit for hit in hits if start <= hit[0] < end]
        self.asked: list[int] = []

    def hits_before(self, offset: int) -> list[tuple[int, int, str]]:
        self.asked.append(offset)
        taken = [hit for hit in self._hits if hit[0] < offset]
        self._hits = self._hits[len(taken) :]
        return taken


def test_beyond_the_handed_over_part_the_writer_scans_itself(tmp_path: Path) -> None:
    """Bytes past the last part (a file that grew since its parts were set) are still scanned."""
    path = tmp_path / "grown.txt"
    secrets_around_cuts(path, 1_000_000, 4)
    redactor = Redactor(chunk=1 << 16, overlap=1 << 12)
    alone, report_alone = one_process(redactor, path)
    hits = [(f.start, f.end, f.kind) for f in report_alone.findings]
    handed = Handed(hits, 250_000, 700_000)
    dst = io.BytesIO()
    with path.open("rb") as src:
        report = redactor.redact_stream(src, dst, handoff=handed)
    assert dst.getvalue() == alone
    assert report.findings == report_alone.findings
    assert any(f.start >= 700_000 for f in report.findings)
    assert max(handed.asked) <= 700_000


def test_many_secrets_keep_memory_flat_without_a_report(tmp_path: Path) -> None:
    """A file dense with secrets, redacted without --report or --json, keeps no finding in memory."""
    path = tmp_path / "dense.txt"
    path.write_bytes(f"{GITHUB}\n".encode() * 400_000)  # 400,000 secrets, 17 MB
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forked test runner before exec.
    script = (
        "import sys\n"
        "from airlock.cli.main import main\n"
        "code = main(['redact', '--jobs', '2', sys.argv[1]])\n"
        "status = open('/proc/self/status').read()\n"
        "sys.stderr.write(status.split('VmHWM:')[1].split()[0])\n"
        "sys.exit(code)\n"
    )
    import subprocess
    import sys

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


def test_helpers_that_cannot_start_leave_their_parts_to_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no more processes can be started, the parts left over are scanned by the writer."""
    path = tmp_path / "big.txt"
    secrets_around_cuts(path, 2_000_000, 4)
    real_fork = os.fork
    forks: list[int] = []

    def fork_once() -> int:
        if forks:
            raise BlockingIOError("Resource temporarily unavailable")
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork_once)
    redactor = Redactor(chunk=1 << 16, overlap=1 << 12)
    alone, report_alone = one_process(redactor, path)
    together, report = split(redactor, path, 4)
    assert forks == [1]
    assert together == alone
    assert report.findings == report_alone.findings
