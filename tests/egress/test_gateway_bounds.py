"""The git credential gateway keeps a bounded account of what code inside asks of it."""

from __future__ import annotations

import gc
import socket
import tracemalloc
from pathlib import Path

from airlock.egress.gateway import GatewayConfig, RepoGrant, load_token
from airlock.egress.report import MAX_REASONS
from tests.egress.codehost import TOKEN
from tests.egress.test_gateway import gateway_running

SHOWN = 100
"""How many characters of a repository name a refusal quotes."""


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(address: str, requests: list[bytes]) -> list[bytes]:
    """Each of ``requests`` sent on a connection of its own to the gateway's socket; each
    whole answer."""
    answers = []
    for request in requests:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(10)
            conn.connect(address)
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while data := conn.recv(65536):
                answer += data
            answers.append(answer)
    return answers


def test_refusals_and_failures_do_not_grow_the_gateway(tmp_path: Path) -> None:
    """Code inside asks for 150 repositories not granted, each named with 60,000 characters,
    and 30 times for a granted one whose code host cannot be reached: git is told each
    refusal with the name cut to 100 characters and ``…``, and the gateway keeps no more than
    a few hundred KB for it all (it used to keep every refusal, the name whole twice), and the
    failures counted under one reason."""
    grants = (RepoGrant.parse("octo/allowed"),)
    upstream = f"http://127.0.0.1:{_closed_port()}"
    cfg = GatewayConfig(grants, load_token({"GH_TOKEN": TOKEN}), upstream)
    with gateway_running(cfg) as (gate, address):
        refused = [
            f"GET /octo/{'a' * 60_000}{index}/info/refs?service=git-upload-pack HTTP/1.1\r\n"
            "Host: x\r\nConnection: close\r\n\r\n".encode()
            for index in range(150)
        ]
        failing = [
            b"GET /octo/allowed/info/refs?service=git-upload-pack HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\n\r\n"
        ] * 30
        _answers(address, refused[:1] + failing[:1])  # the first of each, outside the count
        gc.collect()
        tracemalloc.start()
        try:
            answers = _answers(address, refused[1:] + failing[1:])
            gc.collect()
            kept, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert kept < 500_000, kept
    shown = "octo/" + "a" * (SHOWN - len("octo/")) + "…"
    assert all(f"'{shown}' is not granted".encode() in a for a in answers[:149]), answers[0][:400]
    assert all(b"a" * (SHOWN + 1) not in answer for answer in answers)
    assert all(answer.startswith(b"HTTP/1.1 502") for answer in answers[149:]), answers[-1]
    assert sum(gate.errors.values()) == 30 and len(gate.errors) <= MAX_REASONS
    assert not hasattr(gate, "refusals")
