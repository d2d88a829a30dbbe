"""Opening upstream connections: TCP, TLS with the system CAs, and HTTP CONNECT tunnels.

The proxy rules follow curl's environment variables: HTTPS_PROXY for https origins
(tunnelled with CONNECT, TLS end to end), HTTP_PROXY for plain http origins (requests
in absolute form), NO_PROXY for hosts reached directly.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from .errors import ConnectError, ConnectTimeout, ProxyError, map_exceptions
from .stream import StreamProtocol

_MAX_CONNECT_RESPONSE = 16 * 1024


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return cls(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Proxy:
    origin: Origin
    authorization: bytes | None  # Proxy-Authorization value, from user:password in the URL

    @classmethod
    def of(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        authorization = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = b"Basic " + base64.b64encode(credentials)
        return cls(Origin.of(url), authorization)


class ProxyConfig:
    def __init__(self, https_proxy: str | None, http_proxy: str | None, no_proxy: tuple[str, ...]) -> None:
        self._https = Proxy.of(https_proxy) if https_proxy else None
        self._http = Proxy.of(http_proxy) if http_proxy else None
        self._no_proxy = no_proxy

    def for_origin(self, origin: Origin) -> Proxy | None:
        proxy = self._https if origin.scheme == "https" else self._http
        if proxy is None or self._bypass(origin.host):
            return None
        return proxy

    def _bypass(self, host: str) -> bool:
        host = host.lower()
        for entry in self._no_proxy:
            if entry == "*":
                return True
            domain = entry.lstrip(".").split(":")[0]
            if host == domain or host.endswith("." + domain):
                return True
        return False


@dataclass(slots=True)
class Dialed:
    transport: asyncio.Transport
    protocol: StreamProtocol
    via_http_proxy: bool  # requests go in absolute form to a plain-http proxy
    proxy_authorization: bytes | None


async def dial(origin: Origin, *, ssl_context: ssl.SSLContext, proxy: Proxy | None, timeout: float) -> Dialed:
    """Open a connection to `origin`, through `proxy` if given, within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    target = proxy.origin if proxy else origin
    tls_now = target.scheme == "https"
    try:
        async with asyncio.timeout(timeout):
            with map_exceptions(ConnectError):
                transport, protocol = await loop.create_connection(
                    StreamProtocol,
                    target.host,
                    target.port,
                    ssl=ssl_context if tls_now else None,
                    server_hostname=target.host if tls_now else None,
                )
                if proxy is None:
                    return Dialed(transport, protocol, False, None)
                if origin.scheme == "http":
                    return Dialed(transport, protocol, True, proxy.authorization)
                try:
                    await _open_tunnel(transport, protocol, origin, proxy)
                    tls_transport = await loop.start_tls(transport, protocol, ssl_context, server_hostname=origin.host)
                except BaseException:
                    transport.abort()
                    raise
                assert tls_transport is not None
                protocol.transport = tls_transport  # type: ignore[assignment]
                return Dialed(tls_transport, protocol, False, None)  # type: ignore[arg-type]
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {origin.authority} took longer than {timeout:g}s") from exc


async def _open_tunnel(transport: asyncio.Transport, protocol: StreamProtocol, origin: Origin, proxy: Proxy) -> None:
    authority = f"{origin.host}:{origin.port}".encode()
    head = [b"CONNECT " + authority + b" HTTP/1.1", b"Host: " + authority]
    if proxy.authorization:
        head.append(b"Proxy-Authorization: " + proxy.authorization)
    transport.write(b"\r\n".join(head) + b"\r\n\r\n")
    response = bytearray()
    while b"\r\n\r\n" not in response:
        chunk = await protocol.read(timeout=3600)  # bounded by the caller's connect timeout
        if not chunk:
            raise ProxyError(f"proxy {proxy.origin.authority} closed the connection during CONNECT")
        response += chunk
        if len(response) > _MAX_CONNECT_RESPONSE:
            raise ProxyError(f"proxy {proxy.origin.authority} sent an oversized CONNECT response")
    status_line = bytes(response).split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].startswith(b"2"):
        shown = status_line[:100].decode("latin-1")
        raise ProxyError(f"proxy {proxy.origin.authority} refused CONNECT to {origin.authority}: {shown}")
