"""The chunked body decoder: every split point, extensions, trailers, and broken framing."""

from __future__ import annotations

import pytest

from daemon.http_client.chunked import ChunkedDecoder, ChunkedError

pytestmark = pytest.mark.unit

BODY = b"5\r\nhello\r\n1;ext=1\r\n \r\nC\r\ndata: {}\r\n\r\n\r\n0\r\nx-trailer: 1\r\n\r\n"
EXPECTED = b"hello data: {}\r\n\r\n"


def decode(pieces: list[bytes]) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(piece) for piece in pieces), decoder


def test_whole_body() -> None:
    body, decoder = decode([BODY])
    assert body == EXPECTED and decoder.done and decoder.leftover == 0


def test_every_split_point_and_byte_at_a_time() -> None:
    for index in range(len(BODY) + 1):
        body, decoder = decode([BODY[:index], BODY[index:]])
        assert body == EXPECTED and decoder.done, index
    body, decoder = decode([BODY[i : i + 1] for i in range(len(BODY))])
    assert body == EXPECTED and decoder.done


def test_bytes_after_the_body_are_counted_not_returned() -> None:
    body, decoder = decode([b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200"])
    assert body == b"a" and decoder.done and decoder.leftover == len(b"HTTP/1.1 200")


@pytest.mark.parametrize("broken", [b"zz\r\n", b"0x5\r\nhello\r\n", b"-1\r\n", b"5\r\nhelloXX", b"1" * 2000])
def test_broken_framing_raises(broken: bytes) -> None:
    with pytest.raises(ChunkedError):
        decode([broken])
