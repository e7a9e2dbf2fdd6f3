"""What a hostile destination's answer does through the real proxy (the response side's
review): each test has an origin on loopback write its bytes by hand, sends raw bytes to
the proxy and reads what came back, and failed before its fix.

- plain HTTP: a status below ``100`` (``HTTP/1.1 000``) was taken for an interim answer and
  passed on with the answer after it as one response, recorded with the second's status;
  Node's client (llhttp, as airlock) takes it for the final answer, with a body by its
  length, and a client that does reads the second answer, the destination's bytes, as the
  answer to its next request, maybe to another host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.egress.origin import config, running
from tests.egress.test_framing_review_smuggling_second import _exchange, _requests, canned_origin

FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nFORGED"
"""An answer a hostile destination writes after its first, for a request it never got."""


@pytest.mark.parametrize(
    "before", [b"", b"HTTP/1.1 100 Continue\r\n\r\n"], ids=["alone", "after_100"]
)
@pytest.mark.parametrize("status", [b"000", b"099"])
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_status_below_100_is_refused_not_taken_for_an_interim_answer(
    tmp_path: Path, before: bytes, status: bytes, version: bytes
) -> None:
    canned = before + b"HTTP/1.1 " + status + b" X\r\nContent-Length: 3\r\n\r\nabc" + FORGED
    cfg = config(tmp_path)
    asked = b"GET http://127.0.0.1:%d/a HTTP/%s\r\nHost: 127.0.0.1\r\n\r\n"
    with (
        canned_origin(canned) as hostile,
        canned_origin(b"HTTP/1.1 200 OK\r\n\r\n") as other,
        running(cfg) as (url, _),
    ):
        data = asked % (hostile.port, version)
        if version == b"1.1":  # a next request on the same connection, to another host
            data += asked % (other.port, version)
        answer, _ = _exchange(url, data)
    assert b"FORGED" not in answer
    assert b" " + status + b" X" not in answer
    final = answer.split(b"HTTP/1.1 100 Continue\r\n\r\n")[-1]
    assert final.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"status " + status + b", below 100" in final
    assert b"\r\nConnection: close\r\n" in final
    assert other.heads == []  # the connection ended with the refusal
    [record] = _requests(cfg.audit_log)
    assert record["status"] == 502
    assert record["bytes_in"] == len(answer)
    assert "below 100" in str(record["error"])
