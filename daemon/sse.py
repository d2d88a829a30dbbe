"""Server-sent events: an incremental decoder (bytes in, events out) and frame encoders.

Sans-I/O. The decoder follows the WHATWG event-stream algorithm (CR, LF and CRLF line
ends, split anywhere, multi-line `data:`, comments, `data:` with or without its space)
with two differences a proxy needs: events have a size limit, and `finish()` delivers a
last event that the stream ended without its blank line, so an upstream that stops
early loses nothing.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from . import limits

_LINE_END = re.compile(rb"\r\n|\r|\n")
_CR = 0x0D


class SSEError(ValueError):
    """The byte stream breaks a limit; the stream cannot be trusted any further."""


class SSEEvent(NamedTuple):  # a tuple: the cheapest immutable record, made once per upstream event
    data: bytes
    event: str = ""  # "" when the stream gave no `event:` field
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    __slots__ = ("_buffer", "_scan_from", "_skip_lf", "_data", "_data_bytes", "_event", "_id", "_retry", "_max")

    def __init__(self, max_event_bytes: int = limits.SSE_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._scan_from = 0  # bytes before this offset are known to hold no line end
        self._skip_lf = False  # the previous chunk ended in CR: an LF next belongs to it
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buffer = self._buffer
        buffer += chunk
        if b"\n" in chunk or b"\r" in chunk:
            if buffer[-1] == _CR:
                self._feed_lines(events)  # the next read may hold this CR's LF
            else:
                self._feed_blocks(bytes(buffer), events)
        self._scan_from = len(buffer)
        if len(buffer) + self._data_bytes > self._max:
            raise SSEError(f"SSE event larger than {self._max} bytes")
        return events

    def _feed_blocks(self, text: bytes, events: list[SSEEvent]) -> None:
        """Split at blank lines in C, and take an event that is one `data: ` line whole (what
        every upstream event is). A CRLF stream splits at CRLF CRLF; whatever else a block
        holds (more lines, other line ends) goes through the line rules, so any mix of line
        ends still gives the events the general scan would."""
        blocks = text.split(b"\r\n\r\n" if b"\r" in text else b"\n\n")
        rest = _LINE_END.split(blocks.pop())  # complete lines of the next event, then a partial one
        append, limit = events.append, self._max
        pending = bool(self._data or self._event or self._retry is not None)  # an event begun in an earlier read
        for block in blocks:
            if (not pending and block.startswith(b"data: ") and b"\n" not in block and b"\r" not in block
                    and len(block) <= limit):
                append(SSEEvent(block[6:], "", self._id))
                continue
            for line in _LINE_END.split(block):
                self._line(line, events)
            self._line(b"", events)  # dispatches, and leaves nothing pending
            pending = False
        self._buffer[:] = rest.pop()
        for line in rest:
            self._line(line, events)

    def _feed_lines(self, events: list[SSEEvent]) -> None:
        buffer = self._buffer
        start = 0
        search = _LINE_END.search
        match = search(buffer, self._scan_from)
        while match is not None:
            end = match.end()
            if end == len(buffer) and buffer[end - 1] == _CR:
                self._skip_lf = True
            self._line(bytes(buffer[start : match.start()]), events)
            start = end
            match = search(buffer, start)
        if start:
            del buffer[:start]

    def finish(self) -> list[SSEEvent]:
        """End of stream: flush an unterminated last line and a last event without its blank line."""
        events: list[SSEEvent] = []
        if self._buffer:
            self._line(bytes(self._buffer), events)
            self._buffer.clear()
            self._scan_from = 0
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(b"\n".join(self._data), self._event, self._id, self._retry))
            self._data = []
            self._data_bytes = 0
            self._event = ""
            self._retry = None
            return
        if line[0] == 0x3A:  # ":" starts a comment (heartbeats)
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_bytes += len(value) + 1
            if self._data_bytes > self._max:
                raise SSEError(f"SSE event larger than {self._max} bytes")
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():
                self._retry = int(value)
        # any other field name is ignored, as the spec says


def encode(data: bytes, event: bytes | None = None) -> bytes:
    """One SSE frame. `data` is normally a single-line JSON document from orjson."""
    if b"\n" in data or b"\r" in data:
        body = b"".join(b"data: " + line + b"\n" for line in data.splitlines())
    else:
        body = b"data: " + data + b"\n"
    if event is None:
        return body + b"\n"
    return b"event: " + event + b"\n" + body + b"\n"


def comment(text: bytes) -> bytes:
    """A comment frame (ignored by every SSE parser that follows the spec)."""
    return b": " + text + b"\n\n"
