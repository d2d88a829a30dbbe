"""The byte side of one upstream socket: a bounded buffer between asyncio and one reader."""

from __future__ import annotations

import asyncio

from .. import limits
from ..http_server.flow import FlowControl
from .errors import ReadError, ReadTimeout


class StreamProtocol(asyncio.Protocol):
    """Buffers what the socket delivers; reading pauses above a high-water mark (backpressure)."""

    def __init__(self, high_water: int = limits.UPSTREAM_READ_HIGH_WATER) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self._buffer = bytearray()
        self._high_water = high_water
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self.flow = FlowControl()  # request bodies wait while the socket buffer is full

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > self._high_water and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._error = exc
        self.flow.resume_writing()
        self._wake()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    async def read(self, timeout: float) -> bytes:
        """The bytes buffered so far (waiting up to `timeout` for some); b"" at end of stream."""
        if not self._buffer and not self.eof:
            waiter = self._waiter = self.loop.create_future()
            timer = self.loop.call_later(timeout, _expire, waiter, timeout)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._reading_paused and self.transport is not None:
                self._reading_paused = False
                self.transport.resume_reading()
            return data
        if self._error is not None:
            raise ReadError(str(self._error) or type(self._error).__name__) from self._error
        return b""

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(f"no data from upstream for {timeout:g}s"))
