"""The folders the stub's Landlock rules let the command open files for writing under
(:func:`airlock.sandbox.launcher.writable_trees`), as bubblewrap's command line gives them."""

from __future__ import annotations

from pathlib import Path

import airlock.sandbox
from airlock.sandbox import Spec
from airlock.sandbox.launcher import bwrap_arguments, writable_trees
from airlock.sandbox.paths import Kind, Mount
from tests.sandbox.helpers import rules_for

STUB = str(Path(airlock.sandbox.__file__).with_name("_stub.py"))


def _rule(kind: Kind, path: str, private: bool = False) -> Mount:
    return Mount(kind, Path(path), "test", True, True, private=private)


def test_every_writable_rule_and_the_sandboxs_own_folders_and_nothing_else() -> None:
    """``/dev``, ``/proc``, the private folders mounted, each ``WRITE`` rule (a private one
    too); a read-only, hidden or shown rule is none, and one under another is left out."""
    rules = [
        _rule(Kind.WRITE, "/home/u/ws"),
        _rule(Kind.READ, "/home/u/ws/.git/hooks"),
        _rule(Kind.WRITE, "/home/u/ws/.git/modules"),  # under the workspace: covered
        _rule(Kind.WRITE, "/home/u/.claude"),
        _rule(Kind.WRITE, "/home/u/.claude/shell-snapshots", private=True),
        _rule(Kind.HIDE, "/home/u/.ssh"),
        _rule(Kind.READ, "/home/u/.bashrc"),
        _rule(Kind.SHOW, "/opt/python"),
        _rule(Kind.WRITE, "/srv/cache"),
        _rule(Kind.WRITE, "/tmp/ws"),  # in the private /tmp: covered by it
    ]
    assert writable_trees(rules, ["/tmp", "/run"]) == [
        "/dev",
        "/proc",
        "/run",
        "/tmp",
        "/srv/cache",
        "/home/u/.claude",
        "/home/u/ws",
    ]


def test_the_stub_is_given_them_or_told_to_restrict_nothing(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """bubblewrap runs the stub with the count of the folders and the folders, after the
    loader's variables and before the command; with ``restrict_writes`` off (``airlock run
    --allow-mounts``), ``-`` instead."""
    workspace = project
    rules = tuple(rules_for(workspace, home))
    environ = {"PATH": "/usr/bin", "LD_PRELOAD": "libx.so"}
    spec = Spec(("true",), workspace, environ, rules)
    arguments = bwrap_arguments(spec, "/usr/bin/bwrap", tmp_path, 7)
    stub = arguments[arguments.index(STUB) + 1 :]
    count = int(stub[4])
    assert stub[:4] == ["7", "3128", "1", "LD_PRELOAD=libx.so"]
    assert stub[5 + count :] == ["true"]
    assert {"/dev", "/proc", "/tmp"} <= set(stub[5 : 5 + count])
    unrestricted = Spec(("true",), workspace, environ, rules, restrict_writes=False)
    arguments = bwrap_arguments(unrestricted, "/usr/bin/bwrap", tmp_path, 7)
    assert arguments[arguments.index(STUB) + 1 :] == [
        "7",
        "3128",
        "1",
        "LD_PRELOAD=libx.so",
        "-",
        "true",
    ]
