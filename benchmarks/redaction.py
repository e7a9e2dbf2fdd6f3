"""Redaction benchmark: airlock beside detect-secrets 1.5 and secretlint, in one run.

On the labelled dev corpus (../shared/corpora/redaction-dev): recall overall and by kind, false
positives per MB, and MB/s of each whole command; then a bare scan of our own patterns with RE2
(the limit of the engine), a 10 MB hostile line for every tool, and airlock's peak memory while
redacting a generated stream of 1 GB with no newline.

Peers are installed apart from the project, under benchmarks/out/ (never at run time here):

    python3 -m venv benchmarks/out/venv-detect-secrets
    benchmarks/out/venv-detect-secrets/bin/pip install detect-secrets==1.5.0
    (cd benchmarks/out && mkdir -p secretlint && cd secretlint && npm init -y \
        && npm install secretlint @secretlint/secretlint-rule-preset-recommend)

A peer that is not installed is reported as missing. Usage:

    .venv/bin/python benchmarks/redaction.py [--gigabytes 1] [--hostile-mb 10] [--timeout 30]

Scoring, the corpus README's: a secret is found when no part of it survives — for airlock, the
label's byte span lies inside a replaced span. detect-secrets and secretlint do not rewrite the
file, so one of their reports counts when it overlaps the label (generous to them). A reported or
replaced span that overlaps no labelled secret is a false positive.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora" / "redaction-dev"
CORPUS = SHARED
"""The corpus scored: the shared one when it is there, else ``--corpus generated``'s."""
OUT = ROOT / "benchmarks" / "out"
DETECT_SECRETS = OUT / "venv-detect-secrets" / "bin" / "python"
SECRETLINT = OUT / "secretlint" / "node_modules" / ".bin" / "secretlint"
AIRLOCK = [sys.executable, "-m", "airlock"]
ENTROPY_PLUGINS = ("Base64HighEntropyString", "HexHighEntropyString")

Spans = dict[str, list[tuple[int, int]]]


def load_corpus() -> tuple[list[tuple[str, bytes]], dict[str, list[dict[str, Any]]]]:
    files = [
        (path.relative_to(CORPUS).as_posix(), path.read_bytes())
        for path in sorted((CORPUS / "transcripts").rglob("*.jsonl"))
    ]
    labels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (CORPUS / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        labels[label["file"]].append(label)
    return files, labels


def score(
    files: list[tuple[str, bytes]],
    labels: dict[str, list[dict[str, Any]]],
    spans: Spans,
    covering: bool,
) -> dict[str, Any]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    false_positives = 0
    for name, _data in files:
        mine = spans.get(name, [])
        for label in labels[name]:
            total[label["kind"]] += 1
            s, e = label["start"], label["end"]
            if covering:
                hit = any(a <= s and e <= b for a, b in mine)
            else:
                hit = any(a < e and s < b for a, b in mine)
            found[label["kind"]] += hit
        false_positives += sum(
            1 for a, b in mine if not any(a < x["end"] and x["start"] < b for x in labels[name])
        )
    megabytes = sum(len(data) for _, data in files) / 1e6
    return {
        "recall": sum(found.values()) / sum(total.values()),
        "by_kind": {kind: found[kind] / total[kind] for kind in sorted(total)},
        "false_positives": false_positives,
        "fp_per_mb": false_positives / megabytes,
    }


def timed(command: list[str], timeout: float, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    try:
        result = subprocess.run(command, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired:
        return timeout, None
    return time.perf_counter() - started, result


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------- airlock


PAIRS = 5
"""Runs of airlock on the 50 MB, each paired with a bare scan just before it."""


def run_airlock(files: list[tuple[str, bytes]], work: Path, timeout: float) -> dict[str, Any]:
    whole = b"".join(data for _, data in files)
    source = work / "corpus.jsonl"
    source.write_bytes(whole)
    cpu = cpu_of_children()
    elapsed, result = timed(
        [*AIRLOCK, "redact", str(source), "--json"],
        timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cpu = cpu_of_children() - cpu
    report = json.loads(result.stderr)
    spans: Spans = defaultdict(list)
    offset = 0
    bounds = []
    for name, data in files:
        bounds.append((offset, offset + len(data), name))
        offset += len(data)
    for finding in report["findings"]:
        for low, high, name in bounds:
            if low <= finding["start"] < high:
                spans[name].append((finding["start"] - low, finding["end"] - low))
    big = work / "corpus-x10.jsonl"
    with big.open("wb") as handle:
        for _ in range(10):
            handle.write(whole)
    figures: dict[str, Any] = {"spans": spans, "mb_s": len(whole) / 1e6 / elapsed}
    # Best of five; each run paired with a bare scan just before it (the machine's speed drifts
    # by tens of percent within minutes), for a ratio in the same moment.
    import bare_scan as bare

    compiled = bare.program()
    bare.scan(compiled, whole)  # the DFA built, as for the bare scan's best of three
    walls, cpus, ratios = [], [], []
    for _ in range(PAIRS):
        started = time.perf_counter()
        bare.scan(compiled, whole)
        bare_mb_s = len(whole) / 1e6 / (time.perf_counter() - started)
        before = cpu_of_children()
        wall, result = timed(
            [*AIRLOCK, "redact", str(big)],
            timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if result is None or result.returncode != 1:
            raise SystemExit("airlock redact failed or timed out on the 50 MB corpus")
        walls.append(wall)
        cpus.append(cpu_of_children() - before)
        ratios.append(len(whole) * 10 / 1e6 / wall / bare_mb_s)
    figures["paired_ratios"] = sorted(ratios)
    figures["mb_s_50mb"] = len(whole) * 10 / 1e6 / min(walls)
    figures["cpu_mb_s_50mb"] = len(whole) * 10 / 1e6 / min(cpus)
    figures["cpu_mb_s"] = len(whole) / 1e6 / cpu
    figures["seconds"] = elapsed
    return figures


def bare_command(path: Path, timeout: float) -> float:
    """MB/s of the bare scan run as a command on ``path`` (best of three)."""
    command = [sys.executable, str(Path(__file__).with_name("bare_scan.py")), str(path)]
    walls = [timed(command, timeout)[0] for _ in range(3)]
    return path.stat().st_size / 1e6 / min(walls)


def bare_scan(files: list[tuple[str, bytes]]) -> dict[str, float]:
    """Our rule table as one RE2 program, scanned with no per-match work: the engine's limit."""
    import bare_scan as bare
    from airlock.redact import RULES

    compiled = bare.program()
    whole = b"".join(data for _, data in files)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        bare.scan(compiled, whole)
        best = max(best, len(whole) / 1e6 / (time.perf_counter() - started))
    figures = {"re2": best}
    try:
        import hyperscan
    except ImportError:
        return figures
    database = hyperscan.Database()
    expressions = [
        pattern.encode("latin-1")
        for pattern in (f"{rule.pattern.replace('(?P<secret>', '(?:')}" for rule in RULES)
    ]
    try:
        database.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[0] * len(expressions),
        )
    except hyperscan.error:
        return figures
    reports = [0]

    def count(*_args: Any) -> None:
        reports[0] += 1

    started = time.perf_counter()
    database.scan(whole, match_event_handler=count)
    figures["hyperscan (every match end reported)"] = (
        len(whole) / 1e6 / (time.perf_counter() - started)
    )
    return figures


# ---------------------------------------------------------------------------- detect-secrets

DETECT_HELPER = r"""
import json, sys, time
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings
root, disabled = sys.argv[1], sys.argv[2:]
out = []
with default_settings() as settings:
    if disabled:
        settings.disable_plugins(*disabled)
    collection = SecretsCollection(root=root)
    started = time.perf_counter()
    import glob
    for path in sorted(glob.glob(root + "/transcripts/**/*.jsonl", recursive=True)):
        collection.scan_file(path[len(root) + 1:])
    elapsed = time.perf_counter() - started
    for filename, secret in collection:
        out.append({"file": filename, "line": secret.line_number, "value": secret.secret_value})
print(json.dumps({"elapsed": elapsed, "found": out}))
"""


def run_detect_secrets(
    files: list[tuple[str, bytes]], work: Path, timeout: float
) -> dict[str, Any]:
    if not DETECT_SECRETS.exists():
        return {"missing": True}
    corpus = work / "ds"
    if not corpus.exists():
        shutil.copytree(CORPUS, corpus)
    results: dict[str, Any] = {}
    for label, disabled in (("default", ()), ("no_entropy", ENTROPY_PLUGINS)):
        done = subprocess.run(
            [str(DETECT_SECRETS), "-c", DETECT_HELPER, str(corpus), *disabled],
            capture_output=True,
            timeout=timeout * 20,
            check=True,
            cwd=corpus,
        )
        data = json.loads(done.stdout)
        results[label] = {
            "spans": _locate(files, [(x["file"], x["line"], x["value"]) for x in data["found"]]),
            "mb_s": sum(len(d) for _, d in files) / 1e6 / data["elapsed"],
        }
    return results


def _locate(files: list[tuple[str, bytes]], found: list[tuple[str, int, str | None]]) -> Spans:
    """Byte spans of reported values: every occurrence of the value on its line."""
    by_name = dict(files)
    spans: Spans = defaultdict(list)
    for name, line_number, value in found:
        data = by_name.get(name)
        if data is None or not value:
            continue
        starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == 10]
        low = starts[line_number - 1]
        high = starts[line_number] if line_number < len(starts) else len(data)
        needle = value.encode()
        at = data.find(needle, low, high)
        while at != -1:
            spans[name].append((at, at + len(needle)))
            at = data.find(needle, at + 1, high)
    return spans


# -------------------------------------------------------------------------------- secretlint


def run_secretlint(files: list[tuple[str, bytes]], work: Path, timeout: float) -> dict[str, Any]:
    if not SECRETLINT.exists():
        return {"missing": True}
    corpus = work / "sl"
    if not corpus.exists():
        shutil.copytree(CORPUS / "transcripts", corpus / "transcripts")
    rc = work / "secretlintrc.json"
    rc.write_text(json.dumps({"rules": [{"id": "@secretlint/secretlint-rule-preset-recommend"}]}))
    report = work / "secretlint.json"
    elapsed, _ = timed(
        [
            str(SECRETLINT),
            "--format",
            "json",
            "--output",
            str(report),
            "--secretlintrc",
            str(rc),
            "transcripts/**/*.jsonl",
        ],
        timeout * 20,
        capture_output=True,
        cwd=corpus,
    )
    spans: Spans = defaultdict(list)
    for entry in json.loads(report.read_text() if report.exists() else "[]"):
        name = Path(entry["filePath"]).relative_to(corpus).as_posix()
        text = entry.get("sourceContent") or (corpus / name).read_text()
        for message in entry["messages"]:
            begin, end = message["range"]
            spans[name].append((_utf8_at(text, begin), _utf8_at(text, end)))
    return {"spans": spans, "mb_s": sum(len(d) for _, d in files) / 1e6 / elapsed}


def _utf8_at(text: str, index: int) -> int:
    """The UTF-8 byte offset of a JavaScript (UTF-16) string index."""
    units = 0
    for position, char in enumerate(text):
        if units >= index:
            return len(text[:position].encode())
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text.encode())


# ------------------------------------------------------------------------- hostile, memory


HOSTILE_UNITS = {
    "sk-proj-": b"sk-proj-",
    "eyJ+50a+.": b"eyJ" + b"a" * 50 + b".",
    "base64": b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/",
    "-----BEGIN": b"-----BEGIN",
    "pem header": b"-----BEGIN RSA PRIVATE KEY-----\\n",
    "://a:": b"://a:",
    "backslashes": b"\\",
    "quotes": b'"',
    "\\u0041": b"\\u0041",
    "pwd=aaaaaaa": b"pwd=aaaaaaa ",
    "https://a:b@c": b"https://a:b@c ",
}
"""Units repeated into one hostile line each (airlock is timed on every one)."""


def hostile(work: Path, megabytes: int, timeout: float) -> dict[str, Any]:
    size = megabytes * 1024 * 1024
    seconds: dict[str, Any] = {}
    for name, unit in HOSTILE_UNITS.items():
        shape = work / "hostile-shape.txt"
        shape.write_bytes(unit * (size // len(unit)))
        elapsed, _ = timed([*AIRLOCK, "redact", str(shape)], timeout, stdout=subprocess.DEVNULL)
        seconds[f"airlock {name}"] = elapsed
    line = work / "hostile.txt"
    line.write_bytes(b"sk-proj-" * (size // 8))
    seconds["airlock"] = seconds["airlock sk-proj-"]
    if DETECT_SECRETS.exists():
        code = (
            "import sys\nfrom detect_secrets import SecretsCollection\n"
            "from detect_secrets.settings import default_settings\n"
            "with default_settings():\n    SecretsCollection().scan_file(sys.argv[1])\n"
        )
        elapsed, result = timed(
            [str(DETECT_SECRETS), "-c", code, str(line)], timeout, capture_output=True
        )
        seconds["detect-secrets"] = None if result is None else elapsed
    if SECRETLINT.exists():
        elapsed, result = timed(
            [str(SECRETLINT), "--format", "json", line.name], timeout, capture_output=True, cwd=work
        )
        seconds["secretlint"] = None if result is None else elapsed
    return seconds


MEMORY_CHILD = r"""
import os, random, resource, subprocess, sys, time
size = int(sys.argv[1])
command = sys.argv[2:]
rng = random.Random(1)
alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
block = bytes(rng.choice(alphabet) for _ in range(1 << 20))
secret = b" 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 AKIAFD4GBQ3YLVNH5MH3 "
piece = block[: (1 << 20) - len(secret)] + secret
started = time.perf_counter()
child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
sent = 0
while sent < size:
    child.stdin.write(piece)
    sent += len(piece)
child.stdin.close()
child.wait()
elapsed = time.perf_counter() - started
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, elapsed, sent)
"""


def memory(gigabytes: float, timeout: float) -> dict[str, float]:
    size = int(gigabytes * (1 << 30))
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(size), *AIRLOCK, "redact", "-"],
        capture_output=True,
        timeout=max(timeout, 600),
        check=True,
    )
    peak_kb, elapsed, sent = done.stdout.split()
    return {
        "peak_mb": int(peak_kb) / 1024,
        "mb_s": int(sent) / 1e6 / float(elapsed),
        "gigabytes": int(sent) / (1 << 30),
    }


# ------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the memory run")
    parser.add_argument("--hostile-mb", type=int, default=10, help="size of the hostile line")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per hostile run")
    parser.add_argument(
        "--corpus",
        choices=("shared", "generated"),
        default="shared" if SHARED.is_dir() else "generated",
        help="the labelled corpus: ../shared/corpora/redaction-dev, or our generator's "
        "(written to benchmarks/out/generated-corpus)",
    )
    parser.add_argument("--megabytes", type=float, default=5.0, help="size of a generated corpus")
    args = parser.parse_args()
    global CORPUS
    if args.corpus == "generated":
        from airlock.redact.corpus import generate, write

        CORPUS = OUT / "generated-corpus"
        shutil.rmtree(CORPUS, ignore_errors=True)
        write(generate(seed=1, megabytes=args.megabytes), CORPUS)
    files, labels = load_corpus()
    megabytes = sum(len(data) for _, data in files) / 1e6
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict[str, Any], float]] = []
    with tempfile.TemporaryDirectory(dir=OUT) as scratch:
        work = Path(scratch)
        ours = run_airlock(files, work, timeout=120)
        rows.append(("airlock redact", score(files, labels, ours["spans"], True), ours["mb_s"]))
        ds = run_detect_secrets(files, work, args.timeout)
        for variant in ("default", "no_entropy"):
            if variant in ds:
                result = ds[variant]
                rows.append(
                    (
                        f"detect-secrets 1.5 ({variant})",
                        score(files, labels, result["spans"], False),
                        result["mb_s"],
                    )
                )
        sl = run_secretlint(files, work, args.timeout)
        if "spans" in sl:
            rows.append(
                ("secretlint (recommended)", score(files, labels, sl["spans"], False), sl["mb_s"])
            )
        bare = bare_scan(files)
        bare_as_command = bare_command(work / "corpus-x10.jsonl", timeout=120)
        hostile_seconds = hostile(work, args.hostile_mb, args.timeout)
    footprint = memory(args.gigabytes, args.timeout)

    print(
        f"corpus ({args.corpus}): {megabytes:.1f} MB, "
        f"{sum(len(v) for v in labels.values())} labelled secrets"
    )
    from airlock.redact import RULES

    print(f"patterns: {len(RULES)} rows in airlock's table (redact/rules.py)")
    print(f"{'tool':34} {'recall':>7} {'FP':>5} {'FP/MB':>7} {'MB/s':>8}")
    for name, figures, speed in rows:
        print(
            f"{name:34} {figures['recall']:7.3f} {figures['false_positives']:5d} "
            f"{figures['fp_per_mb']:7.2f} {speed:8.2f}"
        )
    if ds.get("missing"):
        print("detect-secrets: not installed (see the docstring)")
    if sl.get("missing"):
        print("secretlint: not installed (see the docstring)")
    print(
        f"airlock redact on the corpus x10 (50 MB), best of {PAIRS}: {ours['mb_s_50mb']:.1f} MB/s; "
        f"per CPU second (user+sys, less sensitive to other load): {ours['cpu_mb_s']:.1f} MB/s "
        f"on 5 MB, {ours['cpu_mb_s_50mb']:.1f} MB/s on 50 MB"
    )
    print("bare scan of our patterns: " + ", ".join(f"{k} {v:.0f} MB/s" for k, v in bare.items()))
    print(
        f"bare scan as a whole command on the 50 MB (start-up, cold DFA, reading): "
        f"{bare_as_command:.0f} MB/s; airlock is {ours['mb_s_50mb'] / bare_as_command:.2f} of it"
    )
    quarter = bare["re2"] / 4
    paired = ours["paired_ratios"]
    median = paired[len(paired) // 2]
    verdict = "met" if ours["mb_s_50mb"] >= 50.0 and median >= 0.25 else "missed"
    print(
        f"speed goal (at least 50 MB/s, and a quarter of the bare scan: {quarter:.0f} MB/s for "
        f"its best): {verdict}; best against best {ours['mb_s_50mb'] / bare['re2']:.2f}, each "
        f"run against a bare scan just before it {', '.join(f'{r:.2f}' for r in paired)} "
        f"(median {median:.2f})"
    )
    print(
        "recall by kind (airlock): "
        + ", ".join(f"{k} {v:.2f}" for k, v in rows[0][1]["by_kind"].items())
    )
    print(
        f"hostile {args.hostile_mb} MB lines (timeout {args.timeout:.0f} s; peers on 'sk-proj-'): "
        + ", ".join(
            f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}"
            for k, v in hostile_seconds.items()
        )
    )
    print(
        f"memory: {footprint['gigabytes']:.2f} GB without a newline through 'airlock redact -': "
        f"peak RSS {footprint['peak_mb']:.0f} MB, {footprint['mb_s']:.0f} MB/s"
    )
    summary = {
        "rows": [{"tool": n, **f, "mb_s": s} for n, f, s in rows],
        "airlock_mb_s_50mb": ours["mb_s_50mb"],
        "paired_ratios": ours["paired_ratios"],
        "airlock_cpu_mb_s": ours["cpu_mb_s"],
        "airlock_cpu_mb_s_50mb": ours["cpu_mb_s_50mb"],
        "bare": bare,
        "bare_as_command_mb_s": bare_as_command,
        "hostile_seconds": hostile_seconds,
        "memory": footprint,
    }
    (OUT / "redaction.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
