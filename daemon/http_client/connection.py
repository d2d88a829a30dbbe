"""One upstream HTTP/1.1 connection: h11 (CLIENT role) writes the request and reads the
response head; the body is framed here (chunked, content-length or until close).

A connection serves one request at a time and is reused only when the whole body was
read, the server did not ask to close, and nothing extra arrived (httpcore's rule).
"""

from __future__ import annotations

import time

import h11

from .chunked import ChunkedDecoder, ChunkedError
from .dial import Dialed, Origin
from .errors import ReadError, RemoteProtocolError, WriteError, map_exceptions

Headers = list[tuple[bytes, bytes]]

_MAX_RESPONSE_HEAD = 64 * 1024


class _Body:
    """Framing of one response body: chunked, a length, or everything until close."""

    __slots__ = ("chunked", "remaining", "keep_alive", "done")

    def __init__(self, head: h11.Response, method: bytes) -> None:
        headers = {name: value for name, value in head.headers}
        self.chunked = ChunkedDecoder() if b"chunked" in headers.get(b"transfer-encoding", b"").lower() else None
        length = headers.get(b"content-length")
        no_body = method == b"HEAD" or head.status_code in (204, 304)
        self.remaining: int | None = 0 if no_body else (int(length) if length is not None and self.chunked is None else None)
        self.keep_alive = head.http_version == b"1.1" and b"close" not in headers.get(b"connection", b"").lower()
        self.done = self.remaining == 0 and self.chunked is None

    def feed(self, data: bytes) -> bytes:
        if self.chunked is not None:
            try:
                body = self.chunked.feed(data)
            except ChunkedError as exc:
                raise RemoteProtocolError(f"upstream body: {exc}") from None
            self.done = self.chunked.done
            if self.done and self.chunked.leftover:
                self.keep_alive = False  # bytes after the body: do not trust the connection
            return body
        if self.remaining is None:
            return data  # until close
        body = data[: self.remaining]
        self.remaining -= len(body)
        if len(data) > len(body):
            self.keep_alive = False
        self.done = self.remaining == 0
        return body

    def end_of_stream(self) -> None:
        """The server closed the connection: the end of a close-delimited body, else an error."""
        if self.remaining is None and self.chunked is None:
            self.done = True
            self.keep_alive = False
        else:
            raise RemoteProtocolError("upstream closed the connection in the middle of a response body")


class UpstreamConnection:
    __slots__ = ("origin", "_dialed", "_h11", "_body", "_pending", "received_bytes", "idle_since")

    def __init__(self, origin: Origin, dialed: Dialed) -> None:
        self.origin = origin
        self._dialed = dialed
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        self._body: _Body | None = None
        self._pending = b""  # body bytes that arrived together with the head
        self.received_bytes = 0  # for the current request: 0 means the peer never answered
        self.idle_since = 0.0

    async def send_request(
        self, method: bytes, target: bytes, headers: Headers, body: bytes, first_byte_timeout: float
    ) -> h11.Response:
        dialed = self._dialed
        if dialed.via_http_proxy:
            target = f"{self.origin.scheme}://{self.origin.authority}".encode() + target
        all_headers = [(b"host", self.origin.authority.encode()), *headers, (b"content-length", b"%d" % len(body))]
        if dialed.proxy_authorization:
            all_headers.append((b"proxy-authorization", dialed.proxy_authorization))
        self.received_bytes = 0
        # A fresh h11 state per request: the previous body was framed outside h11.
        conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        with map_exceptions(WriteError):
            pieces = [conn.send(h11.Request(method=method, target=target, headers=all_headers))]
            if body:
                pieces += conn.send_with_data_passthrough(h11.Data(data=body))
            pieces.append(conn.send(h11.EndOfMessage()))
            dialed.transport.writelines(pieces)  # type: ignore[arg-type]
            await dialed.protocol.flow.drain()
        head = await self._read_head(first_byte_timeout)
        self._body = _Body(head, method)
        self._pending = bytes(conn.trailing_data[0])
        return head

    async def read_chunk(self, idle_timeout: float) -> bytes | None:
        """All of the body that has arrived (waiting for some); None once it is complete."""
        body = self._body
        assert body is not None
        while not body.done:
            data, self._pending = self._pending, b""
            if not data:
                data = await self._dialed.protocol.read(idle_timeout)
                self.received_bytes += len(data)
                if not data:
                    body.end_of_stream()
                    return None
            piece = body.feed(data)
            if piece:
                return piece
        return None

    async def _read_head(self, timeout: float) -> h11.Response:
        conn = self._h11
        protocol = self._dialed.protocol
        while True:
            with map_exceptions(ReadError):
                event = conn.next_event()
            if type(event) is h11.Response:
                return event  # type: ignore[return-value]
            if event is h11.NEED_DATA:
                data = await protocol.read(timeout)
                self.received_bytes += len(data)
                conn.receive_data(data)
            # an InformationalResponse (100 Continue and friends) precedes the real one

    @property
    def reusable(self) -> bool:
        body = self._body
        return body is not None and body.done and body.keep_alive and not self._pending and not self._dialed.protocol.eof

    def start_idle(self) -> None:
        self._body = None
        self.idle_since = time.monotonic()

    def is_usable_idle(self, now: float, expiry: float) -> bool:
        """An idle connection can take a request unless it expired or the server closed it."""
        return not self._dialed.protocol.eof and now - self.idle_since < expiry

    def close(self) -> None:
        self._dialed.transport.close()

    def abort(self) -> None:
        self._dialed.transport.abort()
