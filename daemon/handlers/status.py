"""Operational endpoints for curl and monitors: /health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import __version__
from ..accounts.model import counts_by_state
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router

if TYPE_CHECKING:
    from ..app import App


def register(router: Router, app: App) -> None:
    async def health(request: Request, response: Responder) -> None:
        accounts = app.accounts.all()
        response.respond_json(
            200,
            {
                "status": "ok",
                "version": __version__,
                "uptime_s": round(time.monotonic() - app.started_at, 3),
                "accounts": {"total": len(accounts), "by_state": counts_by_state(accounts)},
            },
        )

    router.add("GET", "/health", health)
