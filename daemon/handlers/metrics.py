"""GET /metrics: the daemon's counters in the Prometheus text format (admin only: basic auth
with AGPROXY_ADMIN_PASSWORD when it is set, loopback only otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..metrics import CONTENT_TYPE
from .common import NO_STORE, management

if TYPE_CHECKING:
    from ..app import App


def register(router: Router, app: App) -> None:
    async def metrics(request: Request, response: Responder) -> None:
        text = app.metrics.render(app.accounts.all(), app.pool.state.loads)
        response.respond(200, [(b"content-type", CONTENT_TYPE), NO_STORE], text.encode())

    router.add("GET", "/metrics", management(app, metrics))
