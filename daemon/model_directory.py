"""Which models the upstream serves: the static catalogue, refined by a cached
fetchAvailableModels answer from any usable account."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .accounts.tokens import AccountUnavailable
from .http_client.errors import HTTPClientError
from .upstream import catalog
from .upstream.calls import UpstreamCallError
from .upstream.catalog import ModelInfo

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

REFRESH_AFTER = 600.0  # seconds a fetched catalogue stays fresh
RETRY_AFTER = 60.0  # seconds before asking again after a failed fetch


class ModelDirectory:
    def __init__(self, app: App) -> None:
        self._app = app
        self._models = catalog.static_catalogue()
        self._served = frozenset(self._models)
        self._next_fetch = 0.0
        self._fetching: asyncio.Task[None] | None = None

    def served(self) -> frozenset[str]:
        return self._served

    async def catalogue(self) -> dict[str, ModelInfo]:
        """The current catalogue, refreshed first when stale (one fetch at a time)."""
        if time.monotonic() >= self._next_fetch:
            if self._fetching is None or self._fetching.done():
                self._fetching = asyncio.get_running_loop().create_task(self._fetch())
            await asyncio.shield(self._fetching)
        return self._models

    async def _fetch(self) -> None:
        self._next_fetch = time.monotonic() + RETRY_AFTER
        account = next((a for a in self._app.accounts.all() if a.usable), None)
        if account is None:
            return
        try:
            token = await self._app.tokens.access_token(account.id)
            fetched = catalog.parse(await self._app.calls.fetch_available_models(token, account.project_id))
        except (AccountUnavailable, UpstreamCallError, HTTPClientError) as exc:
            log.info("model catalogue not refreshed (account %s): %s", account.id, exc)
            return
        self.learn(fetched)

    def learn(self, fetched: dict[str, ModelInfo]) -> None:
        """A catalogue read by anyone (the pool reads one per account for quota): fresh for a while."""
        if fetched:
            self._models = {**catalog.static_catalogue(), **fetched}
            self._served = frozenset(self._models)
            self._next_fetch = time.monotonic() + REFRESH_AFTER
