"""Writing responses: a whole body at once, or a chunked stream with backpressure."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

import h11
import orjson

if TYPE_CHECKING:
    from .flow import FlowControl

Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and similar must not buffer the stream
]


class ClientDisconnected(Exception):
    """The client went away while a response was being written."""


class _Connection(Protocol):
    flow: FlowControl

    def send_event(self, event: h11.Response | h11.EndOfMessage) -> None: ...
    def send_data(self, data: bytes) -> None: ...
    def send_complete(self, head: h11.Response, body: bytes) -> None: ...
    def response_headers(self, headers: Headers) -> Headers: ...


class Responder:
    """One response. Either `respond()` once, or `start()`, `await write()` …, `end()`."""

    __slots__ = ("_connection", "status", "bytes_sent", "created_at", "first_byte_at", "complete", "_started")

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.bytes_sent = 0
        self.created_at = time.monotonic()  # the request was read whole; first_byte_at is on this clock too
        self.first_byte_at: float | None = None
        self.complete = False
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def respond(self, status: int, headers: Headers, body: bytes = b"") -> None:
        """A complete response, written to the socket in one go."""
        self._connection.send_complete(self._make_head(status, [*headers, (b"content-length", b"%d" % len(body))]), body)
        self.first_byte_at = time.monotonic()
        self.bytes_sent += len(body)
        self.complete = True

    def respond_json(self, status: int, body: object, headers: Headers | None = None) -> None:
        self.respond(status, [(b"content-type", JSON), *(headers or ())], orjson.dumps(body))

    def start(self, status: int, headers: Headers) -> None:
        """Send the head of a streamed response (chunked: no content-length)."""
        self._head(status, headers)

    async def write(self, data: bytes) -> None:
        connection = self._connection
        connection.send_data(data)
        self.bytes_sent += len(data)
        if connection.flow.write_paused:
            await connection.flow.drain()

    def end(self) -> None:
        self._connection.send_event(h11.EndOfMessage())
        self.complete = True

    def _head(self, status: int, headers: Headers) -> None:
        self._connection.send_event(self._make_head(status, headers))
        self.first_byte_at = time.monotonic()

    def _make_head(self, status: int, headers: Headers) -> h11.Response:
        if self._started:
            raise RuntimeError("response already started")
        self._started = True
        self.status = status
        return h11.Response(status_code=status, headers=self._connection.response_headers(headers), reason=_reason(status))


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def raw_response(status: int, content_type: bytes, body: bytes, date: bytes) -> bytes:
    """A complete response that closes the connection, written without h11.

    Used when h11 cannot frame one: before a request head was parsed (400, 408, 431),
    or to turn a connection away (503).
    """
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _reason(status)),
            b"content-type: " + content_type + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"date: " + date + b"\r\n\r\n",
            body,
        )
    )
