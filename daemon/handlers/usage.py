"""GET /usage: requests, errors and tokens per client key and per account (admin only)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from .common import require_admin

if TYPE_CHECKING:
    from ..app import App

BASIC_CHALLENGE = b'Basic realm="antigravity-proxy"'


def register(router: Router, app: App) -> None:
    async def usage(request: Request, response: Responder) -> None:
        try:
            require_admin(app, request)
        except ProxyError as error:
            content_type, body = app.render_error(request.path, error.status, error.message)
            headers = [(b"content-type", content_type), (b"cache-control", b"no-store")]
            if error.status == 401:
                headers.append((b"www-authenticate", BASIC_CHALLENGE))
            response.respond(error.status, headers, body)
            return
        book = app.usage
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(book.since))
        response.respond_json(200, {"since": since, **book.snapshot()}, [(b"cache-control", b"no-store")])

    router.add("GET", "/usage", usage)
