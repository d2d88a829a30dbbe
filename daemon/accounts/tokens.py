"""Access tokens: refreshed ahead of expiry, one refresh at a time per account.

A burst of requests on an expired token shares one refresh call. `invalid_grant` (and the
other permanent OAuth errors) marks the account `needs_login` for good; network trouble
and 5xx are retried with jittered backoff and leave the account as it was.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..upstream.calls import UpstreamCallError, UpstreamCalls
from ..upstream.failures import FailureKind
from ..upstream.oauth import OAuthError
from .model import Account, AccountState
from .registry import AccountRegistry

log = logging.getLogger(__name__)

REFRESH_AHEAD = 300.0  # seconds before expiry at which a token is renewed
RETRY_DELAYS = (0.5, 2.0, 5.0)  # seconds (jittered ±50%) between refresh attempts
PAUSE_AFTER_FAILURE = 60.0  # after a failed round of attempts, the token endpoint is left alone this long

T = TypeVar("T")


class AccountUnavailable(Exception):
    """No access token can be had for this account now; `state` says whether that is for good."""

    def __init__(self, account: Account, message: str, state: AccountState) -> None:
        super().__init__(message)
        self.account_id = account.id
        self.state = state


class TokenManager:
    def __init__(
        self,
        registry: AccountRegistry,
        calls: UpstreamCalls,
        *,
        clock: Callable[[], float] = time.time,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self._registry = registry
        self._calls = calls
        self._clock = clock
        self._retry_delays = retry_delays
        self._pending: dict[str, asyncio.Task[str]] = {}

    async def access_token(self, account_id: str, *, rejected: str | None = None) -> str:
        """A valid access token; `rejected` is one the upstream just refused (forces a refresh
        unless another caller has already replaced it)."""
        account = self._account(account_id)
        fresh = account.access_token and account.access_expires_at - self._clock() > REFRESH_AHEAD
        if fresh and account.access_token != rejected:
            return account.access_token
        if account.next_retry_at > self._clock():
            raise AccountUnavailable(account, account.last_error or "token refresh failed recently", AccountState.ACTIVE)
        task = self._pending.get(account_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(account_id))
            self._pending[account_id] = task
            task.add_done_callback(lambda done: self._settle(account_id, done))
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' refresh

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        if self._pending:
            await asyncio.wait(list(self._pending.values()))

    def _settle(self, account_id: str, task: asyncio.Task[str]) -> None:
        self._pending.pop(account_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, so a refresh nobody waits for is not reported

    def _account(self, account_id: str) -> Account:
        account = self._registry.get(account_id)
        if account is None:
            raise KeyError(account_id)
        if account.state is not AccountState.ACTIVE:
            raise AccountUnavailable(account, account.reason or account.state.value, account.state)
        return account

    async def _refresh(self, account_id: str) -> str:
        account = self._account(account_id)
        error: OAuthError | None = None
        for attempt, delay in enumerate((0.0, *self._retry_delays)):
            if delay:
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            try:
                grant = await self._calls.refresh(account.refresh_token, account.client_id)
            except OAuthError as exc:
                error = exc
                if exc.permanent:
                    await self._registry.update(account_id, state=AccountState.NEEDS_LOGIN, reason=str(exc),
                                                last_error=str(exc), access_token="", access_expires_at=0.0)
                    log.warning("account %s needs a new login: %s", account_id, exc)
                    raise AccountUnavailable(account, str(exc), AccountState.NEEDS_LOGIN) from None
                log.info("token refresh for %s failed (attempt %d): %s", account_id, attempt + 1, exc)
                continue
            changes = {"access_token": grant.access_token, "access_expires_at": self._clock() + grant.expires_in,
                       "last_error": "", "next_retry_at": 0.0}
            if grant.refresh_token:
                changes["refresh_token"] = grant.refresh_token
            await self._registry.update(account_id, **changes)
            return grant.access_token
        await self._registry.update(account_id, last_error=f"token refresh failed: {error}",
                                    next_retry_at=self._clock() + PAUSE_AFTER_FAILURE)
        raise AccountUnavailable(account, f"token refresh failed: {error}", AccountState.ACTIVE)


async def with_access_token(tokens: TokenManager, account_id: str, call: Callable[[str], Awaitable[T]]) -> T:
    """Run `call(token)`; on a 401 refresh once and retry once (never a loop)."""
    token = await tokens.access_token(account_id)
    try:
        return await call(token)
    except UpstreamCallError as exc:
        if exc.failure.kind is not FailureKind.AUTH:
            raise
    return await call(await tokens.access_token(account_id, rejected=token))
