"""A labelled corpus of our own making, for the redaction tests and benchmark.

Transcripts shaped like the reference agent's (``transcripts/<project>/<session>.jsonl``, one
JSON record a line: assistant text and tool calls, tool results echoed in ``toolUseResult``,
pasted images), with planted secrets of every kind and hard negatives (commit hashes, message
ids, integrity strings, UUIDs, base64 images, documentation examples, placeholders,
certificates). Every secret is random and of a valid shape; none is a live credential.

Labels follow ``../shared/corpora/README.md``: ``file``, ``start``/``end`` (byte offsets in the
raw file, so a secret inside a JSON string is labelled in its escaped form), ``line`` (1-based),
``kind`` (``neg:…`` for a hard negative), ``variant`` and ``escape``. Scoring: a secret is found
when a replaced span covers it whole; a replaced span that overlaps no labelled secret is a
false positive.

    python -m airlock.redact.corpus OUT_DIR [--megabytes 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from airlock.redact import samples
from airlock.redact.samples import Plant

ESCAPES = ("json", "json+slash", "json+go", "json+ascii")
"""How a line is written: plain JSON, with ``/`` as ``\\/``, with ``<>&`` as ``\\u003c``…, or
with every non-ASCII character as a ``\\uXXXX`` escape."""
ESCAPE_WEIGHTS = (0.8, 0.05, 0.07, 0.08)


@dataclass(frozen=True, slots=True)
class Label:
    """One planted item: where it is in the corpus, and what it is."""

    file: str
    start: int
    end: int
    line: int
    kind: str
    variant: str
    escape: str

    @property
    def negative(self) -> bool:
        """Whether the item is a hard negative (must not be redacted)."""
        return self.kind.startswith("neg:")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Files (relative path, bytes) and the labels of what was planted in them."""

    files: tuple[tuple[str, bytes], ...]
    labels: tuple[Label, ...]

    @property
    def size(self) -> int:
        """Bytes in all files."""
        return sum(len(data) for _, data in self.files)


def _escape_line(line: str, style: str) -> str:
    if style == "json+slash":
        return line.replace("/", "\\/")
    if style == "json+go":
        return line.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return line


def _in_json(value: str, depth: int, style: str) -> str:
    """``value`` as written inside ``depth`` nested JSON strings (the outermost in ``style``)."""
    for level in range(depth):
        ascii_only = style == "json+ascii" and level == depth - 1
        value = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
    return value


class _Session:
    """One transcript being written: its records, and the plants in each."""

    def __init__(self, rng: random.Random, project: str) -> None:
        self.rng = rng
        self.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.cwd = f"/home/dev/projects/{project}"
        self.parent: str | None = None
        self.lines: list[tuple[str, list[tuple[Plant, int]], str]] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _base(self, kind: str) -> dict[str, object]:
        record: dict[str, object] = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.id,
            "version": "2.1.30",
            "gitBranch": "main",
            "type": kind,
        }
        self.parent = self._uuid()
        return record

    def add(self, record: dict[str, object], plants: list[tuple[Plant, int]]) -> None:
        """Add a record; each plant is written at the given JSON nesting depth in it."""
        record["uuid"] = self.parent
        record["timestamp"] = f"2026-11-21T03:{self.rng.randrange(60):02d}:00.000Z"
        style = self.rng.choices(ESCAPES, ESCAPE_WEIGHTS)[0]
        ascii_only = style == "json+ascii"
        line = json.dumps(record, ensure_ascii=ascii_only, separators=(",", ":"))
        line = _escape_line(line, style)
        self.lines.append((line, plants, style))

    def assistant_text(self, text: str, plants: list[Plant]) -> None:
        """An assistant message with text (plants at depth 1)."""
        record = self._base("assistant")
        record["message"] = {
            "id": samples.message_id(self.rng),
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": self.rng.randrange(1, 90), "output_tokens": 512},
        }
        record["requestId"] = samples.request_id(self.rng)
        self.add(record, [(plant, 1) for plant in plants])

    def tool_call(self, command: str, output: str, plants: list[Plant], nested: bool) -> None:
        """A Bash call and its result, echoed in ``toolUseResult``.

        With ``nested``, the output is a JSON document (its plants are two strings deep).
        """
        call_id = samples.tool_id(self.rng)
        record = self._base("assistant")
        record["message"] = {
            "id": samples.message_id(self.rng),
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": call_id, "name": "Bash", "input": {"command": command}}
            ],
        }
        record["requestId"] = samples.request_id(self.rng)
        in_command = [plant for plant in plants if plant.text in command]
        self.add(record, [(plant, 1) for plant in in_command])
        result = self._base("user")
        result["message"] = {
            "role": "user",
            "content": [{"tool_use_id": call_id, "type": "tool_result", "content": output}],
        }
        result["toolUseResult"] = {"stdout": output, "stderr": "", "interrupted": False}
        depth = 2 if nested else 1
        self.add(result, [(plant, depth) for plant in plants if plant not in in_command])

    def image(self) -> None:
        """A pasted screenshot: a large base64 PNG (a hard negative)."""
        record = self._base("user")
        data = samples.png_base64(self.rng, self.rng.randrange(8_000, 60_000))
        plant = Plant("neg:image", "png", data[:120], 0, 120)
        record["message"] = {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": data},
                },
                {"type": "text", "text": "Here is what the page looks like now."},
            ],
        }
        self.add(record, [(plant, 1)])

    def render(self, name: str, labels: list[Label]) -> bytes:
        """The file's bytes; labels of every plant's occurrences are appended to ``labels``."""
        out = bytearray()
        for number, (line, plants, style) in enumerate(self.lines, 1):
            raw = line.encode()
            for plant, depth in plants:
                needle = _escape_line(_in_json(plant.value, depth, style), style).encode()
                at = raw.find(needle)
                while at >= 0:
                    start = len(out) + at
                    labels.append(
                        Label(
                            name,
                            start,
                            start + len(needle),
                            number,
                            plant.kind,
                            plant.variant,
                            style if depth == 1 else f"{style}*{depth}",
                        )
                    )
                    at = raw.find(needle, at + len(needle))
            out += raw + b"\n"
        return bytes(out)


class _Kinds:
    """Kinds to plant, in shuffled rounds: every kind is planted before any is planted twice."""

    def __init__(self, rng: random.Random, kinds: list[str]) -> None:
        self._rng = rng
        self._kinds = kinds
        self._queue: list[str] = []

    def take(self, count: int) -> list[str]:
        """The next ``count`` kinds."""
        taken = []
        for _ in range(count):
            if not self._queue:
                self._queue = self._rng.sample(self._kinds, len(self._kinds))
            taken.append(self._queue.pop())
        return taken


def _session(rng: random.Random, project: str, target: int, kinds: _Kinds) -> _Session:
    session = _Session(rng, project)
    size = 0
    while size < target:
        choice = rng.random()
        plants: list[Plant] = []
        if choice < 0.08:
            session.image()
        elif choice < 0.3:
            plants = [samples.plant(rng, kind) for kind in kinds.take(rng.randrange(0, 3))]
            plants += [samples.negative(rng) for _ in range(rng.randrange(0, 2))]
            session.assistant_text(samples.prose(rng, plants), plants)
        else:
            plants = [samples.plant(rng, kind) for kind in kinds.take(rng.randrange(0, 4))]
            plants += [samples.negative(rng) for _ in range(rng.randrange(0, 3))]
            nested = rng.random() < 0.15
            command, output = samples.tool_output(rng, plants, nested)
            session.tool_call(command, output, plants, nested)
        size += len(session.lines[-1][0])
    return session


def generate(seed: int = 1, megabytes: float = 2.0, kinds: list[str] | None = None) -> Corpus:
    """A corpus of about ``megabytes`` MB, the same for the same seed.

    Args:
        seed: The random seed.
        megabytes: The size to reach (whole sessions: a little more).
        kinds: The secret kinds to plant (every kind the samples know by default).
    """
    rng = random.Random(seed)  # noqa: S311 - test data, the same for the same seed
    chosen = _Kinds(rng, sorted(kinds if kinds is not None else samples.KINDS))
    files: list[tuple[str, bytes]] = []
    labels: list[Label] = []
    total = 0
    while total < megabytes * 1e6:
        project = "-home-dev-projects-" + "-".join(rng.sample(samples.WORDS, 2))
        session = _session(rng, project[19:], rng.randrange(80_000, 400_000), chosen)
        name = f"transcripts/{project}/{session.id}.jsonl"
        data = session.render(name, labels)
        files.append((name, data))
        total += len(data)
    return Corpus(tuple(files), tuple(labels))


def write(corpus: Corpus, directory: Path) -> None:
    """Write the corpus in the layout of ``../shared/corpora/redaction-dev``."""
    for name, data in corpus.files:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    secrets = [asdict(label) for label in corpus.labels if not label.negative]
    negatives = [asdict(label) for label in corpus.labels if label.negative]
    (directory / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in secrets))
    (directory / "negatives.jsonl").write_text("".join(json.dumps(x) + "\n" for x in negatives))
    manifest = {
        "bytes": corpus.size,
        "files": len(corpus.files),
        "labels": len(secrets),
        "negatives": len(negatives),
        "scan_dir": "transcripts",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Write a generated corpus to a directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--megabytes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    write(generate(args.seed, args.megabytes), args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
