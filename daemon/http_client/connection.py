"""One upstream HTTP/1.1 connection driven by h11 (CLIENT role).

A connection serves one request at a time and may be reused only after h11 reports
DONE/DONE for a fully read response (httpcore's rule); anything else closes it.
"""

from __future__ import annotations

import time

import h11

from .dial import Dialed, Origin
from .errors import ReadError, WriteError, map_exceptions

Headers = list[tuple[bytes, bytes]]

_MAX_RESPONSE_HEAD = 64 * 1024


class UpstreamConnection:
    __slots__ = ("origin", "_dialed", "_h11", "requests_sent", "received_bytes", "idle_since")

    def __init__(self, origin: Origin, dialed: Dialed) -> None:
        self.origin = origin
        self._dialed = dialed
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        self.requests_sent = 0
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
        self.requests_sent += 1
        self.received_bytes = 0
        conn = self._h11
        with map_exceptions(WriteError):
            pieces = [conn.send(h11.Request(method=method, target=target, headers=all_headers))]
            if body:
                pieces += conn.send_with_data_passthrough(h11.Data(data=body))
            pieces.append(conn.send(h11.EndOfMessage()))
            dialed.transport.writelines(pieces)  # type: ignore[arg-type]
            await dialed.protocol.flow.drain()
        while True:
            event = await self._next_event(first_byte_timeout)
            if type(event) is h11.Response:
                return event  # type: ignore[return-value]
            # an InformationalResponse (100 Continue and friends) precedes the real one

    async def read_chunk(self, idle_timeout: float) -> bytes | None:
        """The next piece of the response body; None once the body is complete."""
        event = await self._next_event(idle_timeout)
        if type(event) is h11.Data:
            return event.data  # type: ignore[union-attr,no-any-return]
        return None  # EndOfMessage

    async def _next_event(self, timeout: float) -> h11.Event | type[h11.PAUSED]:
        conn = self._h11
        protocol = self._dialed.protocol
        while True:
            with map_exceptions(ReadError):
                event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await protocol.read(timeout)
            self.received_bytes += len(data)
            conn.receive_data(data)

    @property
    def reusable(self) -> bool:
        return (
            self._h11.our_state is h11.DONE
            and self._h11.their_state is h11.DONE
            and not self._dialed.protocol.eof
        )

    def start_idle(self) -> None:
        self._h11.start_next_cycle()
        self.idle_since = time.monotonic()

    def is_usable_idle(self, now: float, expiry: float) -> bool:
        """An idle connection can take a request unless it expired or the server closed it."""
        return not self._dialed.protocol.eof and now - self.idle_since < expiry

    def close(self) -> None:
        self._dialed.transport.close()

    def abort(self) -> None:
        self._dialed.transport.abort()
