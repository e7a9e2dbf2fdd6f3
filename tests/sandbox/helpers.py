"""Run a command in a real bubblewrap sandbox, with the path rules ``airlock run`` uses.

The sandbox's door (the socket listening inside on 127.0.0.1:3128) is served here by a tiny
answering thread that stands for the outside world: every connection through it gets
``door: <first line of the request>``. The egress proxy itself is tested with ``airlock run``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from airlock.sandbox import Spec, check, launch, plan, scrub
from airlock.sandbox.paths import Mount, home_rules, socket_rules, visible, workspace_rules

TIMEOUT = 60.0


@dataclass
class Ran:
    code: int
    out: str
    err: str
    command_pid: int


def rules_for(workspace: Path, home: Path, extra: Iterable[Mount] = ()) -> list[Mount]:
    """The built-in rules of ``airlock run`` for this workspace and home, plus ``extra``."""
    return plan(
        [
            *workspace_rules(workspace),
            *home_rules(home, home / ".claude", [home / ".claude" / "airlock"]),
            *socket_rules(Path("/proc/net/unix").read_bytes()),
            *visible([Path(sys.executable), Path(__file__).parents[2] / "src"], "python"),
            *extra,
        ]
    )


def _answer(listener: socket.socket) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(5)
            try:
                first = connection.recv(4096).split(b"\r\n", 1)[0]
                body = b"door: " + first + b"\n"
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body)
                )
            except OSError:
                pass


def run_sandboxed(
    script: str,
    workspace: Path,
    home: Path,
    environ: dict[str, str] | None = None,
    wanted: dict[str, str | None] | None = None,
    extra: Iterable[Mount] = (),
) -> Ran:
    """Run ``sh -c script`` in the sandbox with ``workspace`` as its folder."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    scrubbed = scrub({**base, **(environ or {})}, wanted or {}, "http://127.0.0.1:3128")
    rules = rules_for(workspace, home, extra)
    out_path, err_path = workspace.parent / "out.txt", workspace.parent / "err.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        sandbox = launch(
            Spec(("sh", "-c", script), workspace, scrubbed.environ, tuple(rules)),
            check(os.environ),
            stdout=out.fileno(),
            stderr=err.fileno(),
        )
    answering = threading.Thread(target=_answer, args=(sandbox.listener,), daemon=True)
    answering.start()
    try:
        code = sandbox.process.wait(TIMEOUT)
    finally:
        sandbox.close()
        answering.join(TIMEOUT)
    return Ran(
        code,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        sandbox.command_pid,
    )


def processes_holding(*markers: str) -> list[tuple[str, str]]:
    """The processes whose command line holds any of ``markers``: each its command line
    (NULs as spaces) and its state (``S``, ``T`` stopped, ``Z``, …), read from ``/proc``."""
    found = []
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            line = (process / "cmdline").read_bytes()
            if not any(marker.encode() in line for marker in markers):
                continue
            stat = (process / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state = stat[stat.rfind(")") + 2 :].split()[0]  # its name, in (), may hold anything
        found.append((line.replace(b"\0", b" ").decode(errors="replace"), state))
    return found
