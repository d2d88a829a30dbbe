"""GET /usage: requests, errors and tokens per client key and per account (admin only)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from .common import NO_STORE, management

if TYPE_CHECKING:
    from ..app import App


def register(router: Router, app: App) -> None:
    async def usage(request: Request, response: Responder) -> None:
        book = app.usage
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(book.since))
        response.respond_json(200, {"since": since, **book.snapshot()}, [NO_STORE])

    router.add("GET", "/usage", management(app, usage))
