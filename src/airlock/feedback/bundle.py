"""Build a feedback bundle: a session's files, each redacted, and their manifest.

Theory of operation: each source file is streamed once through the redactor into an
anonymous temporary file (or, for a dry run, into nothing), hashing what comes out; the
manifest is then known, and :func:`write_bundle` streams a gzip'd tar of ``manifest.json`` and
the staged files into whatever the delivery gives it. Nothing is read whole, nothing
unredacted is ever written, and a dry run writes nothing at all.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, cast

from airlock.errors import UsageError
from airlock.feedback.manifest import BundleFile, BundleKind, Manifest, Role, SkippedFile
from airlock.feedback.sources import Gone, Skip, Source, open_inside, open_root

if TYPE_CHECKING:
    import hashlib

    from airlock.redact import Redactor

CHUNK = 1024 * 1024
MANIFEST_NAME = "manifest.json"


class _Digest(io.RawIOBase):
    """A writable stream that hashes and counts what goes through it, then passes it on."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        import hashlib

        self.sink = sink
        self.size = 0
        self.hash: hashlib._Hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        self.hash.update(view)
        self.size += view.nbytes
        if self.sink is not None:
            self.sink.write(view)
        return view.nbytes


@dataclass(slots=True)
class Staged:
    """The redacted files of a bundle, in anonymous temporary files, and its manifest."""

    manifest: Manifest
    contents: tuple[IO[bytes] | None, ...]

    def close(self) -> None:
        self.close_all(self.contents)

    @staticmethod
    def close_all(contents: Sequence[IO[bytes] | None]) -> None:
        for content in contents:
            if content is not None:
                content.close()

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stage(
    sources: Sequence[Source],
    redactor: Redactor,
    *,
    root: Path,
    kind: BundleKind,
    session_id: str,
    bundle_id: str,
    now: datetime,
    version: str,
    retention_class: str,
    retention_days: int | None,
    delivery: str,
    description: str = "",
    dry_run: bool = False,
) -> Staged:
    """Redact every source and compute the manifest.

    Args:
        sources: The files to bundle (:func:`~airlock.feedback.sources.session_sources`).
        root: The config dir: every source is opened inside it, no link followed
            (:func:`~airlock.feedback.sources.open_inside`); what cannot be is skipped.
        redactor: The redaction engine, configured from the settings in force.
        kind: Which flow the bundle travels under.
        session_id: The session's id.
        bundle_id: The bundle's id (and upload idempotency key).
        now: When the bundle is made.
        version: airlock's version.
        retention_class: The class the engine gives what this flow carries.
        retention_days: Days that class is kept (``None`` when not a fixed period).
        delivery: The engine's delivery state (``upload`` or ``local_archive``).
        description: The user's description, redacted here as well.
        dry_run: Hash the redacted output but keep nothing.

    Returns:
        The staged files and the manifest; close it (or use ``with``) when done.

    Raises:
        UsageError: No source could be bundled (each reason named), or one failed mid-read.
    """
    files: list[BundleFile] = []
    skipped: list[SkippedFile] = []
    contents: list[IO[bytes] | None] = []
    taken: set[str] = set()
    root_fd = open_root(root)
    try:
        for source in sources:
            try:
                fd = open_inside(root_fd, root, source.path)
            except Skip as skip:
                skipped.append(SkippedFile(_member_name(source, taken), source.role, skip.reason))
                continue
            except Gone:
                continue
            sink = None if dry_run else tempfile.TemporaryFile()  # noqa: SIM115 - kept open on purpose
            contents.append(sink)
            digest = _Digest(sink)
            try:
                with os.fdopen(fd, "rb") as handle:
                    report = redactor.redact_stream(handle, cast(BinaryIO, digest))
            except OSError as error:
                raise UsageError(
                    f"cannot read {source.role.value} {source.path}: {error.strerror}"
                ) from error
            files.append(
                BundleFile(
                    path=_member_name(source, taken),
                    role=source.role,
                    size=digest.size,
                    sha256=digest.hash.hexdigest(),
                    redactions=report.counts(),
                )
            )
        if not files:
            raise UsageError(_nothing_left(session_id, skipped))
        text, text_report = redactor.redact_text(description)
    except BaseException:
        Staged.close_all(contents)
        raise
    finally:
        os.close(root_fd)
    manifest = Manifest(
        bundle_id=bundle_id,
        kind=kind,
        session=session_id,
        created_at=now.isoformat(),
        airlock_version=version,
        retention_class=retention_class,
        retention_days=retention_days,
        delivery=delivery,
        files=tuple(files),
        description=text,
        description_redactions=text_report.counts(),
        skipped=tuple(skipped),
    )
    return Staged(manifest, tuple(contents))


def _nothing_left(session_id: str, skipped: Sequence[SkippedFile]) -> str:
    if not skipped:
        return f"session {session_id} has no transcript or log left to bundle"
    reasons = "; ".join(f"{item.path}: {item.reason}" for item in skipped)
    return (
        f"session {session_id} has nothing that can be bundled: {reasons}. Links are never "
        "followed; move the real files into the config dir to send them"
    )


_FOLDERS = {
    Role.TRANSCRIPT: "",
    Role.SUBAGENT_TRANSCRIPT: "subagents/",
    Role.RAW_SESSION_LOG: "raw/",
}


def _member_name(source: Source, taken: set[str]) -> str:
    base = f"{_FOLDERS[source.role]}{source.path.name}"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}.{number}"
    taken.add(name)
    return name


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as it is stored in the bundle."""
    return (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_bundle(staged: Staged, dst: IO[bytes]) -> None:
    """Stream the bundle (gzip'd tar: ``manifest.json``, then each file) into ``dst``.

    Args:
        staged: What :func:`stage` made (not a dry run).
        dst: Where the bundle goes; written sequentially, never seeked.

    Raises:
        UsageError: ``staged`` is a dry run, with nothing to write.
    """
    if any(handle is None for handle in staged.contents):
        raise UsageError("a dry run has no content to write")
    mtime = int(datetime.fromisoformat(staged.manifest.created_at).timestamp())
    with tarfile.open(fileobj=dst, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
        head = manifest_bytes(staged.manifest)
        tar.addfile(_member(MANIFEST_NAME, len(head), mtime), io.BytesIO(head))
        for item, content in zip(staged.manifest.files, staged.contents, strict=True):
            staged_file = cast(IO[bytes], content)
            staged_file.seek(0)
            tar.addfile(_member(item.path, item.size, mtime), staged_file)


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = mtime
    return info


def read_members(bundle: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    """Each member of a bundle and its content (for inspection and tests; small bundles)."""
    with tarfile.open(fileobj=bundle, mode="r|gz") as tar:
        for info in tar:
            handle = tar.extractfile(info)
            if handle is not None:
                with contextlib.closing(handle):
                    yield info.name, handle.read()
