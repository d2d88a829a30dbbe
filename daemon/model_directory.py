"""Which models the upstream serves: the static catalogue, refined by a cached
fetchAvailableModels answer from any usable account."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .upstream import catalog
from .upstream.catalog import ModelInfo

if TYPE_CHECKING:
    from .app import App

REFRESH_AFTER = 600.0  # seconds a fetched catalogue stays fresh
RETRY_AFTER = 60.0  # seconds before asking again after a failed fetch
STATIC = catalog.static_catalogue()  # what is known without asking (never changed in place)


class ModelDirectory:
    def __init__(self, app: App) -> None:
        self._app = app
        self._models = STATIC
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
        if account is not None:
            await self._app.pool.read_quota(account.id)  # the same answer: its quota, and the models (learn)

    def learn(self, fetched: dict[str, ModelInfo]) -> None:
        """A catalogue read by anyone (the pool reads one per account for quota): fresh for a while."""
        if fetched:
            self._models = {**STATIC, **fetched}
            self._served = frozenset(self._models)
            self._next_fetch = time.monotonic() + REFRESH_AFTER
