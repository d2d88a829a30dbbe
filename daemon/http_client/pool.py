"""Keep-alive connection pool per upstream origin, and the streaming response it hands out."""

from __future__ import annotations

import ssl
import time
from urllib.parse import urlsplit

import h11

from .. import limits
from .connection import Headers, UpstreamConnection
from .dial import Origin, ProxyConfig, dial
from .errors import ReadError, RemoteProtocolError, ResponseTooLarge, WriteError

class UpstreamResponse:
    """Status, headers and a body read chunk by chunk.

    The caller must `close()` it (in a `finally`): a response read to the end gives its
    connection back to the pool, anything else aborts the connection.
    """

    __slots__ = ("status", "headers", "_pool", "_connection", "_idle_timeout", "_done")

    def __init__(self, pool: ConnectionPool, connection: UpstreamConnection, head: h11.Response, idle_timeout: float):
        self.status: int = head.status_code
        self.headers: Headers = list(head.headers)
        self._pool = pool
        self._connection: UpstreamConnection | None = connection
        self._idle_timeout = idle_timeout
        self._done = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if connection is None:
            raise StopAsyncIteration
        chunk = await connection.read_chunk(self._idle_timeout)
        if chunk is None:
            self._done = True
            self.close()
            raise StopAsyncIteration
        return chunk

    async def read(self, limit: int) -> bytes:
        """The whole body, refusing more than `limit` bytes."""
        body = bytearray()
        async for chunk in self:
            body += chunk
            if len(body) > limit:
                self.close()
                raise ResponseTooLarge(f"upstream body exceeds {limit} bytes")
        return bytes(body)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection, reusable=self._done)


class ConnectionPool:
    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        proxies: ProxyConfig,
        connect_timeout: float,
        max_idle_per_origin: int,
        idle_expiry: float = limits.UPSTREAM_POOL_IDLE_EXPIRY,
    ) -> None:
        self._ssl_context = ssl_context
        self._proxies = proxies
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle_per_origin
        self._idle_expiry = idle_expiry
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._active: set[UpstreamConnection] = set()
        self.connections_opened = 0

    async def request(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes = b"",
        *,
        first_byte_timeout: float,
        idle_timeout: float,
    ) -> UpstreamResponse:
        """Send a request and return once the response head has arrived."""
        origin = Origin.of(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            connection = self._checkout(origin)
            reused = connection is not None
            if connection is None:
                connection = await self._open(origin)
            self._active.add(connection)
            try:
                head = await connection.send_request(
                    method.encode(), target.encode(), headers, body, first_byte_timeout
                )
            except (RemoteProtocolError, ReadError, WriteError):
                self._discard(connection)
                # A kept-alive connection the server closed just before we used it: the
                # request never reached it, so one retry on a fresh connection is safe.
                if reused and connection.received_bytes == 0:
                    continue
                raise
            except BaseException:
                self._discard(connection)
                raise
            return UpstreamResponse(self, connection, head, idle_timeout)

    def release(self, connection: UpstreamConnection, *, reusable: bool) -> None:
        self._active.discard(connection)
        idle = self._idle.setdefault(connection.origin, [])
        if reusable and connection.reusable and len(idle) < self._max_idle:
            connection.start_idle()
            idle.append(connection)
        else:
            connection.abort()

    def idle_count(self, origin: Origin | None = None) -> int:
        if origin is not None:
            return len(self._idle.get(origin, ()))
        return sum(len(idle) for idle in self._idle.values())

    @property
    def active_count(self) -> int:
        return len(self._active)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in self._active:
            connection.abort()
        self._active.clear()

    def _checkout(self, origin: Origin) -> UpstreamConnection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used is the least likely to be stale
            if connection.is_usable_idle(now, self._idle_expiry):
                return connection
            connection.close()
        return None

    async def _open(self, origin: Origin) -> UpstreamConnection:
        dialed = await dial(
            origin,
            ssl_context=self._ssl_context,
            proxy=self._proxies.for_origin(origin),
            timeout=self._connect_timeout,
        )
        self.connections_opened += 1
        return UpstreamConnection(origin, dialed)

    def _discard(self, connection: UpstreamConnection) -> None:
        self._active.discard(connection)
        connection.abort()
