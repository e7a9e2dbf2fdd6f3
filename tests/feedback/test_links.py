"""Bundling never follows a link: what a session's files point to outside the config dir stays.

Every variant plants something in a real session on disk (a link to a file or a folder outside,
a link among the folders on the way, a loop, a FIFO, a socket, a hard link), bundles the session
as ``airlock feedback`` does, and checks that the outside secret is in no bundled byte and that
the manifest names what was skipped, and why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.errors import UsageError
from airlock.feedback import BundleKind, Role, Source, read_members, session_sources, stage
from airlock.feedback.bundle import Staged, write_bundle
from airlock.feedback.sources import Skip, check_opened, not_regular
from airlock.redact import Redactor
from airlock.sessions import SessionStore
from tests.cli import airlock
from tests.feedback.sessionfiles import make_session

SID = "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716"
PROJECT = "-tmp-project"
OUTSIDE_SECRET = "OUTSIDE-THE-CONFIG-DIR-7f3a9c"


class Tree:
    """A config dir with one session in it, and a folder outside holding a secret."""

    def __init__(self, base: Path) -> None:
        self.config = base / "config"
        self.config.mkdir()
        self.outside = base / "outside"
        self.outside.mkdir()
        self.secret = self.outside / "secret.txt"
        self.secret.write_text(f"{OUTSIDE_SECRET}\n")
        self.files = make_session(self.config, SID, PROJECT)
        self.subagents = self.files.subagent.parent
        self.folder = self.subagents.parent

    def outside_copy(self, relative: str) -> Path:
        """A copy of ``relative`` (a folder of the config dir) outside, every file the secret."""
        target = self.outside / relative.replace("/", "_")
        shutil.copytree(self.config / relative, target, ignore=_only_files_and_folders)
        for path in target.rglob("*"):
            if path.is_file():
                path.write_text(json.dumps({"type": "user", "text": OUTSIDE_SECRET}) + "\n")
        return target

    def move_out(self, relative: str) -> None:
        """``relative`` becomes a link to its copy outside (the real one is gone)."""
        target = self.outside_copy(relative)
        shutil.rmtree(self.config / relative)
        (self.config / relative).symlink_to(target, target_is_directory=True)


def _only_files_and_folders(folder: str, names: list[str]) -> list[str]:
    """What a copy leaves out: links, FIFOs, sockets (only regular files and folders go)."""
    left_out = []
    for name in names:
        mode = (Path(folder) / name).lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            left_out.append(name)
    return left_out


def _link_subagent_to_file(tree: Tree) -> None:
    (tree.subagents / "agent-evil.jsonl").symlink_to(tree.secret)


def _link_subagent_to_folder(tree: Tree) -> None:
    (tree.subagents / "agent-dir.jsonl").symlink_to(tree.outside, target_is_directory=True)


def _link_raw_log(tree: Tree) -> None:
    tree.files.raw_log.unlink()
    tree.files.raw_log.symlink_to(tree.secret)


def _link_loop(tree: Tree) -> None:
    (tree.subagents / "agent-loop.jsonl").symlink_to(tree.subagents / "agent-loop.jsonl")


def _link_chain_inside(tree: Tree) -> None:
    (tree.subagents / "agent-chain.jsonl").symlink_to(tree.files.subagent)


def _link_relative_up(tree: Tree) -> None:
    up = os.path.relpath(tree.secret, tree.subagents)
    (tree.subagents / "agent-up.jsonl").symlink_to(up)


def _fifo(tree: Tree) -> None:
    os.mkfifo(tree.subagents / "agent-fifo.jsonl")


def _socket(tree: Tree) -> None:
    here = Path.cwd()
    os.chdir(tree.subagents)  # a socket's path is limited to 108 bytes: bind a short one
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("agent-sock.jsonl")
        server.close()
    finally:
        os.chdir(here)


def _hard_link(tree: Tree) -> None:
    os.link(tree.secret, tree.subagents / "agent-hard.jsonl")


def _subagents_folder_is_link(tree: Tree) -> None:
    tree.move_out(f"projects/{PROJECT}/{SID}/subagents")


def _session_folder_is_link(tree: Tree) -> None:
    tree.move_out(f"projects/{PROJECT}/{SID}")


def _project_folder_is_link(tree: Tree) -> None:
    tree.move_out(f"projects/{PROJECT}")


def _projects_is_link(tree: Tree) -> None:
    tree.move_out("projects")


def _debug_is_link(tree: Tree) -> None:
    tree.move_out("debug")


VARIANTS: dict[str, tuple[Callable[[Tree], None], str, str]] = {
    # name: (plant it, the skipped member, words of the reason)
    "subagent_link_to_file_outside": (
        _link_subagent_to_file,
        "subagents/agent-evil.jsonl",
        "symbolic link",
    ),
    "subagent_link_to_folder_outside": (
        _link_subagent_to_folder,
        "subagents/agent-dir.jsonl",
        "symbolic link",
    ),
    "raw_log_link_to_file_outside": (_link_raw_log, f"raw/{SID}.txt", "symbolic link"),
    "link_loop": (_link_loop, "subagents/agent-loop.jsonl", "symbolic link"),
    "link_to_a_file_inside": (_link_chain_inside, "subagents/agent-chain.jsonl", "symbolic link"),
    "relative_link_up_and_out": (_link_relative_up, "subagents/agent-up.jsonl", "symbolic link"),
    "fifo": (_fifo, "subagents/agent-fifo.jsonl", "FIFO"),
    "socket": (_socket, "subagents/agent-sock.jsonl", "socket"),
    "hard_link_to_file_outside": (_hard_link, "subagents/agent-hard.jsonl", "hard link"),
    "subagents_folder_is_link": (_subagents_folder_is_link, "subagents/subagents", "symbolic link"),
    "session_folder_is_link": (_session_folder_is_link, f"subagents/{SID}", "symbolic link"),
    "project_folder_is_link": (
        _project_folder_is_link,
        f"{SID}.jsonl",
        f"folder projects/{PROJECT} on the way is a symbolic link",
    ),
    "projects_is_link": (
        _projects_is_link,
        f"{SID}.jsonl",
        "folder projects on the way is a symbolic link",
    ),
    "debug_is_link": (
        _debug_is_link,
        f"raw/{SID}.txt",
        "folder debug on the way is a symbolic link",
    ),
}


def _sources(tree: Tree) -> tuple[Source, ...]:
    """The session's sources as the scan finds them; the files as written when the scan does
    not list the session (its project folder is a link: a caller may still name the paths)."""
    try:
        return session_sources(SessionStore(tree.config).get(SID))
    except UsageError:
        return (
            Source(tree.files.transcript, Role.TRANSCRIPT),
            Source(tree.files.subagent, Role.SUBAGENT_TRANSCRIPT),
            Source(tree.files.raw_log, Role.RAW_SESSION_LOG),
        )


def _stage(tree: Tree, sources: tuple[Source, ...] | None = None) -> Staged:
    return stage(
        _sources(tree) if sources is None else sources,
        Redactor(),
        root=tree.config,
        kind=BundleKind.FEEDBACK,
        session_id=SID,
        bundle_id="b",
        now=datetime(2026, 12, 1, tzinfo=UTC),
        version="t",
        retention_class="feedback",
        retention_days=None,
        delivery="upload",
    )


def _bundled(staged: Staged) -> bytes:
    """Every byte of the bundle's members, the manifest included, gzip undone."""
    with tempfile.TemporaryFile() as out:
        write_bundle(staged, out)
        out.seek(0)
        return b"".join(name.encode() + content for name, content in read_members(out))


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_nothing_outside_is_bundled_and_the_manifest_says_why(tmp_path: Path, variant: str) -> None:
    """Each planted variant is skipped by name with its reason; no outside byte is bundled."""
    plant, member, reason = VARIANTS[variant]
    tree = Tree(tmp_path)
    plant(tree)
    with _stage(tree) as staged:
        content = _bundled(staged)
        skipped = {item.path: item.reason for item in staged.manifest.skipped}
        assert member in skipped, skipped
        assert reason in skipped[member]
        assert OUTSIDE_SECRET.encode() not in content
        assert staged.manifest.files, "the session's real files are still bundled"
        manifest = staged.manifest.to_json()
        assert {"path", "role", "reason"} == set(manifest["skipped"][0])
        assert str(tree.config) not in json.dumps(manifest)


def test_a_plain_session_skips_nothing(tmp_path: Path) -> None:
    """With no link anywhere, all three files are bundled and the skipped list is empty."""
    tree = Tree(tmp_path)
    with _stage(tree) as staged:
        assert [item.role for item in staged.manifest.files] == [
            Role.TRANSCRIPT,
            Role.SUBAGENT_TRANSCRIPT,
            Role.RAW_SESSION_LOG,
        ]
        assert staged.manifest.to_json()["skipped"] == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside/secret.txt", "not a plain path"),
        (f"projects/{PROJECT}/../../../outside/secret.txt", "not a plain path"),
        ("/outside/secret.txt", "not a plain path"),
    ],
    ids=["dot_dot_from_root", "dot_dot_deep", "absolute_elsewhere"],
)
def test_sources_outside_the_config_dir_are_refused(tmp_path: Path, path: str, reason: str) -> None:
    """A source path that is not plainly under the config dir is skipped, never opened."""
    tree = Tree(tmp_path)
    target = tmp_path / path.lstrip("/") if path.startswith("/") else tree.config / path
    sources = (
        Source(tree.files.transcript, Role.TRANSCRIPT),
        Source(target, Role.SUBAGENT_TRANSCRIPT),
    )
    with _stage(tree, sources) as staged:
        (skipped,) = staged.manifest.skipped
        assert reason in skipped.reason
        assert OUTSIDE_SECRET.encode() not in _bundled(staged)


def test_nothing_left_to_bundle_names_every_reason(tmp_path: Path) -> None:
    """When every file is a link, nothing is made and the error names each one and why."""
    tree = Tree(tmp_path)
    _projects_is_link(tree)
    _debug_is_link(tree)
    with pytest.raises(UsageError, match="nothing that can be bundled") as caught:
        _stage(tree)
    assert "folder projects on the way" in str(caught.value)
    assert "folder debug on the way" in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        (Path("/dev/null").stat().st_mode, "character device"),
        (stat.S_IFBLK | 0o600, "block device"),
        (stat.S_IFIFO | 0o600, "FIFO"),
        (stat.S_IFSOCK | 0o600, "socket"),
        (stat.S_IFDIR | 0o700, "folder"),
        (stat.S_IFLNK | 0o777, "symbolic link"),
    ],
    ids=["char_device", "block_device", "fifo", "socket", "folder", "link"],
)
def test_what_is_not_a_regular_file_is_named(mode: int, words: str) -> None:
    """Every kind of file that is not regular is skipped with its kind named."""
    assert words in not_regular(mode)


def _status(
    *, mode: int = stat.S_IFREG | 0o600, ino: int = 7, nlink: int = 1, uid: int = 0
) -> os.stat_result:
    return os.stat_result((mode, ino, 1, nlink, uid, 0, 10, 0, 0, 0))


@pytest.mark.parametrize(
    ("opened", "words"),
    [
        (_status(mode=stat.S_IFIFO | 0o600), "FIFO"),
        (_status(ino=8), "another file"),
        (_status(nlink=2), "hard link"),
        (_status(uid=4242), "another user"),
    ],
    ids=["became_fifo", "swapped_file", "hard_link", "other_owner"],
)
def test_an_open_file_that_changed_is_skipped(opened: os.stat_result, words: str) -> None:
    """What was opened must be the regular file looked at, with one name, of the owner."""
    with pytest.raises(Skip, match=words):
        check_opened(opened, _status(), owner=0)


def test_an_unchanged_open_file_passes() -> None:
    """The regular file looked at, one name, the owner's: nothing to say."""
    check_opened(_status(), _status(), owner=0)


@contextmanager
def _flipping(flip: Callable[[], None], seconds: float) -> Iterator[None]:
    """Run ``flip`` over and over in a thread while the block runs (bounded in time)."""
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            flip()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=seconds + 5)


def _bundle_while(tree: Tree, sources: tuple[Source, ...], flip: Callable[[], None]) -> int:
    """Bundle again and again (at most 300 times, 2 s) while ``flip`` runs; no bundle may hold
    an outside byte. How many files were bundled in all."""
    bundled = 0
    deadline = time.monotonic() + 2
    with _flipping(flip, seconds=4):
        for _ in range(300):
            if time.monotonic() > deadline:
                break
            with _stage(tree, sources) as staged:
                assert OUTSIDE_SECRET.encode() not in _bundled(staged)
                bundled += len(staged.manifest.files)
    return bundled


def test_a_file_swapped_for_a_link_while_bundling_never_leaks(tmp_path: Path) -> None:
    """A file flipped between itself and a link outside, as fast as possible: never followed."""
    tree = Tree(tmp_path)
    real, link = tree.subagents / "agent-race.jsonl", tree.subagents / "agent-race.link"
    real.write_text('{"type": "user", "text": "inside"}\n')
    aside = tree.subagents / "agent-race.real"
    link.symlink_to(tree.secret)
    state = {"link": False}

    def flip() -> None:
        # Swap by rename: the name is always there, a regular file or a link outside.
        if state["link"]:
            aside.rename(real)  # the link it replaces is gone; make it again
            (tree.subagents / "agent-race.link").symlink_to(tree.secret)
        else:
            real.rename(aside)
            link.rename(real)
        state["link"] = not state["link"]

    sources = (
        Source(tree.files.transcript, Role.TRANSCRIPT),
        Source(real, Role.SUBAGENT_TRANSCRIPT),
    )
    assert _bundle_while(tree, sources, flip) > 0


def test_a_folder_swapped_for_a_link_while_bundling_never_leaks(tmp_path: Path) -> None:
    """The subagents folder flipped between itself and a link outside: never followed."""
    tree = Tree(tmp_path)
    target = tree.outside_copy(f"projects/{PROJECT}/{SID}/subagents")
    aside = tree.folder / "subagents.real"
    state = {"link": False}

    def flip() -> None:
        if state["link"]:
            tree.subagents.unlink()
            aside.rename(tree.subagents)
        else:
            tree.subagents.rename(aside)
            tree.subagents.symlink_to(target, target_is_directory=True)
        state["link"] = not state["link"]

    sources = (
        Source(tree.files.transcript, Role.TRANSCRIPT),
        Source(tree.files.subagent, Role.SUBAGENT_TRANSCRIPT),
    )
    assert _bundle_while(tree, sources, flip) > 0


@settings(max_examples=25, deadline=None)
@given(st.sets(st.sampled_from(sorted(VARIANTS)), min_size=1, max_size=5))
def test_any_mix_of_variants_leaks_nothing(chosen: set[str]) -> None:
    """Whatever variants are planted together, no outside byte is bundled and each is named."""
    with tempfile.TemporaryDirectory() as base:
        tree = Tree(Path(base))
        for name in sorted(chosen):
            try:
                VARIANTS[name][0](tree)
            except FileNotFoundError:
                continue  # an earlier variant moved the folder this one plants into
        try:
            staged = _stage(tree)
        except UsageError as error:
            assert "symbolic link" in str(error) or "no transcript" in str(error)
            return
        with staged:
            assert OUTSIDE_SECRET.encode() not in _bundled(staged)
            assert all(item.reason for item in staged.manifest.skipped)


def test_cli_feedback_through_a_linked_projects_folder(config_dir: Path, tmp_path: Path) -> None:
    """`airlock feedback --local` with projects/ a link: the archive holds only the raw log,
    and the manifest lists the transcripts as skipped."""
    make_session(config_dir, SID)
    outside = tmp_path / "elsewhere"
    shutil.move(config_dir / "projects", outside)
    (config_dir / "projects").symlink_to(outside, target_is_directory=True)
    result = airlock("feedback", SID, "--local", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [item["role"] for item in data["files"]] == ["raw_session_log"]
    assert {item["role"] for item in data["skipped"]} == {"transcript", "subagent_transcript"}
    (bundle,) = (config_dir / "feedback-bundles").iterdir()
    with bundle.open("rb") as handle:
        names = [name for name, _ in read_members(handle)]
    assert names == ["manifest.json", f"raw/{SID}.txt"]
