"""App: the one owner of process-wide state, built from Settings and passed to handlers."""

from __future__ import annotations

import ssl
import time
from http import HTTPStatus

import orjson

from .config import Settings
from .handlers import status
from .http_client.dial import ProxyConfig
from .http_client.pool import ConnectionPool
from .http_server.response import JSON
from .http_server.router import Router


class App:
    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.http = ConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            proxies=ProxyConfig(settings.https_proxy, settings.http_proxy, settings.no_proxy),
            connect_timeout=settings.upstream_connect_timeout,
            max_idle_per_origin=settings.upstream_pool_size,
        )
        self.router = Router()
        status.register(self.router, self)

    def render_error(self, path: str | None, status_code: int, message: str) -> tuple[bytes, bytes]:
        """The body of errors raised below the protocol handlers (HTTP framing, routing, limits)."""
        body = {"error": {"type": _error_type(status_code), "message": message, "code": status_code}}
        return JSON, orjson.dumps(body)

    async def aclose(self) -> None:
        await self.http.aclose()


def _error_type(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"
