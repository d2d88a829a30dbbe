"""The pool as the daemon runs it: the pure selection and state, plus the clock and the
background quota reading (never in a request's path)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

from ..accounts.tokens import AccountUnavailable
from ..http_client.errors import HTTPClientError
from ..upstream import catalog
from ..upstream.calls import UpstreamCallError
from . import selection
from .quota import family_quota
from .state import PoolState

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

REFRESH_JITTER = 0.1  # ± share of AGPROXY_QUOTA_REFRESH, so accounts are not read in lockstep
REFRESH_AFTER_429 = 30.0  # seconds: at most one extra reading per account this often


class AccountPool:
    def __init__(self, app: App) -> None:
        self._app = app
        self.state = PoolState()
        self._wake = asyncio.Event()
        self._due: dict[str, float] = {}  # account id → when its quota is read next
        self._task: asyncio.Task[None] | None = None

    def choose(self, family: str, *, session: str, pinned: str, tried: set[str], prefer: str = "",
               allowed: tuple[str, ...] = ()) -> selection.Pick | selection.NoAccount:
        settings = self._app.settings
        request = selection.Request(family, session, pinned, tried, prefer, allowed)
        return selection.select(
            self._app.accounts.all(), self.state, request, now=time.time(),
            strategy=settings.strategy, reserve=settings.quota_reserve,
            max_in_flight=settings.max_concurrent_per_account,
        )

    def begin(self, account_id: str, session: str) -> None:
        load = self.state.load(account_id)
        load.in_flight += 1
        load.last_used = time.time()
        if session:
            self.state.stick(session, account_id)

    def end(self, account_id: str) -> None:
        self.state.load(account_id).in_flight -= 1

    def cool_down(self, account_id: str, family: str, seconds: float, reason: str) -> None:
        self.state.cool_down(account_id, family, time.time() + seconds, reason)
        self.read_soon(account_id)

    def read_soon(self, account_id: str) -> None:
        """Read this account's quota again shortly (after a 429), at most every REFRESH_AFTER_429."""
        soon = time.time() + 1.0
        load = self.state.load(account_id)
        if load.quota_checked_at + REFRESH_AFTER_429 <= soon < self._due.get(account_id, float("inf")):
            self._due[account_id] = soon
            self._wake.set()

    # --- background quota reading -------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read_quotas())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read_quotas(self) -> None:
        while True:
            now = time.time()
            for account in self._app.accounts.all():
                if account.usable and self._due.setdefault(account.id, now) <= now:
                    await self.read_quota(account.id)
                    interval = self._app.settings.quota_refresh
                    self._due[account.id] = time.time() + interval * random.uniform(1 - REFRESH_JITTER, 1 + REFRESH_JITTER)
            pending = [due for account_id, due in self._due.items() if self._app.accounts.get(account_id) is not None]
            sleep = max(1.0, min(pending, default=now + 60.0) - time.time())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(sleep, 60.0))

    async def read_quota(self, account_id: str) -> None:
        account = self._app.accounts.get(account_id)
        if account is None or not account.usable:
            return
        try:
            token = await self._app.tokens.access_token(account.id)
            body = await self._app.calls.fetch_available_models(token, account.project_id)
        except (AccountUnavailable, UpstreamCallError, HTTPClientError) as exc:
            log.info("quota of account %s not read: %s", account.id, exc)
            return
        rows = catalog.served_rows(body)
        self.state.set_quota(account.id, family_quota(rows), time.time())
        self._app.models.learn(catalog.describe_rows(rows))
