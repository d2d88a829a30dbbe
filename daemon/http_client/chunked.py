"""Incremental decoder for HTTP/1.1 chunked response bodies (pure).

h11 frames response heads; bodies of upstream streams are decoded here because an SSE
stream arrives as hundreds of tiny chunks per response and h11's general state machine
costs more per chunk than the rest of the pipeline together. Bytes in, body bytes out.
"""

from __future__ import annotations

import re

MAX_SIZE_LINE = 1024  # a chunk-size line (hex size plus extensions); longer is an attack or garbage


_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class ChunkedError(ValueError):
    """The body breaks chunked framing."""


_SIZE, _DATA, _CRLF, _TRAILER = range(4)  # reading a size line, inside a chunk, after its data, after the last


class ChunkedDecoder:
    __slots__ = ("_buffer", "_remaining", "_state", "done")

    def __init__(self) -> None:
        self._buffer = b""  # an incomplete size line or chunk end, kept for the next feed
        self._remaining = 0  # data bytes still due in the current chunk
        self._state = _SIZE
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes `data` completes; check `done` for the end of the body.

        One pass per call, falling through size line → data → CRLF within a chunk; chunk data is
        sliced through a memoryview, so it is copied once, by the final join."""
        if self._buffer:
            data = self._buffer + data
        view = memoryview(data)
        size = len(data)
        out: list[memoryview] = []
        position, state, remaining = 0, self._state, self._remaining
        while not self.done:
            if state == _DATA:
                take = min(remaining, size - position)
                if take:
                    out.append(view[position:position + take])
                    position += take
                    remaining -= take
                if remaining:
                    break
                state = _CRLF
            if state == _CRLF:
                if size - position < 2:
                    break
                if data[position:position + 2] != b"\r\n":
                    raise ChunkedError("chunk data not followed by CRLF")
                position += 2
                state = _SIZE
            end = data.find(b"\r\n", position)  # a size line, or a trailer line
            if end < 0:
                if size - position > MAX_SIZE_LINE:
                    raise ChunkedError("chunk-size line too long")
                break
            line = data[position:end]
            position = end + 2
            if state == _TRAILER:
                self.done = not line  # trailer fields (rare) are read and ignored
                continue
            remaining = _chunk_size(line)
            state = _DATA if remaining else _TRAILER
        self._state, self._remaining = state, remaining
        self._buffer = data[position:]
        return b"".join(out)

    @property
    def leftover(self) -> int:
        """Bytes received after the end of the body (a well-behaved server sends none)."""
        return len(self._buffer)


def _chunk_size(line: bytes) -> int:
    extensions = line.find(b";")
    text = (line if extensions < 0 else line[:extensions]).strip(b" \t")
    if not _HEX.fullmatch(text):
        raise ChunkedError(f"bad chunk size {text[:20]!r}")
    return int(text, 16)
