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


class ChunkedDecoder:
    __slots__ = ("_buffer", "_remaining", "_state", "done")

    # States: "size" (reading a size line), "data" (inside a chunk), "crlf" (after a
    # chunk's data), "trailer" (after the last chunk, until the empty line).
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0
        self._state = "size"
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes `data` completes; check `done` for the end of the body."""
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        position = 0
        while not self.done:
            state = self._state
            if state == "data":
                take = min(self._remaining, len(buffer) - position)
                if take == 0:
                    break
                out.append(bytes(buffer[position:position + take]))
                position += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
            elif state == "crlf":
                if len(buffer) - position < 2:
                    break
                if buffer[position:position + 2] != b"\r\n":
                    raise ChunkedError("chunk data not followed by CRLF")
                position += 2
                self._state = "size"
            else:  # "size" or "trailer": line based
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    if len(buffer) - position > MAX_SIZE_LINE:
                        raise ChunkedError("chunk-size line too long")
                    break
                line = bytes(buffer[position:end])
                position = end + 2
                if state == "trailer":
                    if not line:
                        self.done = True  # trailer fields (rare) are read and ignored
                    continue
                self._size(line)
        del buffer[:position]
        return b"".join(out)

    @property
    def leftover(self) -> int:
        """Bytes received after the end of the body (a well-behaved server sends none)."""
        return len(self._buffer)

    def _size(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise ChunkedError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            self._state = "trailer"
        else:
            self._remaining = size
            self._state = "data"
