"""HTTP/1.1 read from a stream: any bytes give a head, nothing, or a clear 4xx/5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.egress.framing import HttpError, body_pieces, read_head

PARTS = st.sampled_from(
    [b"GET / HTTP/1.1\r\n", b"POST /v1/messages HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n",
     b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n",
     b"Transfer-Encoding: gzip\r\n", b" folded\r\n", b"X: \x00\xff\r\n", b"5\r\nhello\r\n",
     b"0\r\n\r\n", b"zz\r\n", b"hello", b"HTTP/1.1 200 OK\r\n", b":\r\n", b"\r\n\r\n"]
)  # fmt: skip


async def _read(data: bytes) -> None:
    reader = asyncio.StreamReader(limit=4096)
    reader.feed_data(data)
    reader.feed_eof()
    for _ in range(8):
        head = await read_head(reader, request=True)
        if head is None:
            return
        async for _raw, _payload in body_pieces(reader, head.framing(), head.check):
            pass


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.lists(PARTS, max_size=12).map(b"".join)))
def test_any_bytes_give_a_head_nothing_or_an_http_error(
    loop: asyncio.AbstractEventLoop, data: bytes
) -> None:
    """Whatever arrives, reading ends normally or with an HttpError carrying a 4xx/5xx."""
    try:
        loop.run_until_complete(_read(data))
    except HttpError as error:
        assert 400 <= error.status < 600
        assert error.message
