"""Opening the upstream answer for one request: choose an account, send, and on a refusal
follow the pool's policy (wait on the same account, cool it down and move on, or give up),
within a bounded number of attempts and a total deadline. Everything here happens before the
first byte goes to the client, so every retry is invisible to it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..accounts.model import Account
from ..accounts.tokens import AccountUnavailable
from ..errors import ErrorKind, ProxyError
from ..http_client.errors import HTTPClientError
from ..http_client.pool import UpstreamResponse
from ..metrics import outcome_of
from ..pool import policy
from ..pool.selection import NoAccount
from ..pool.state import quota_family
from ..redact import mask_email
from ..upstream import endpoints, models
from ..upstream.failures import FailureKind, UpstreamFailure, classify, client_error

if TYPE_CHECKING:
    from ..app import App
    from .runner import Generation

log = logging.getLogger(__name__)

_MAX_ERROR_BODY = 1024 * 1024
MAX_ATTEMPTS = 12  # upstream requests for one client request, whatever the pool size
BUSY_POLL = 0.2  # seconds between looks when every account is at its concurrency cap
JITTER = 0.25  # ± share of every backoff, so retrying requests spread out


@dataclass(frozen=True, slots=True)
class Opened:
    response: UpstreamResponse
    account: Account


class _Failed(Exception):
    def __init__(self, error: ProxyError, failure: UpstreamFailure | None = None, *, backoff: bool = True,
                 outcome: str = "connection") -> None:
        self.error = error
        self.failure = failure  # None: no answer (connection, token), not a refusal
        self.backoff = backoff  # False: the account itself cannot serve, another one may at once
        self.outcome = outcome_of(failure.kind) if failure is not None else outcome  # for app.metrics


async def open_upstream(app: App, generation: Generation) -> Opened:
    """A 200 upstream response and the account it came from; ProxyError otherwise."""
    loop = asyncio.get_running_loop()
    settings = app.settings
    deadline = loop.time() + settings.retry_deadline
    family = quota_family(generation.model)
    tried: set[str] = set()
    waits: dict[str, int] = {}
    last: ProxyError | None = None
    prefer = ""  # the account a wait was for
    attempts = 0
    while attempts < MAX_ATTEMPTS:
        choice = app.pool.choose(family, session=generation.session, pinned=generation.pinned, tried=tried, prefer=prefer,
                                 allowed=generation.accounts)
        if isinstance(choice, NoAccount):
            wait = _wait_for(choice, time.time(), tried)
            if wait is None or loop.time() + wait > deadline or wait > settings.max_wait:
                raise _nothing_serves(choice, last, family)
            await asyncio.sleep(wait)
            continue
        account = choice.account
        attempts += 1
        generation.attempts += 1
        app.pool.begin(account.id, generation.session)
        try:
            response = await _attempt(app, generation, account)
            app.metrics.upstream_attempt("ok")
            return Opened(response, account)
        except BaseException as failure:  # a cancelled request (client gone) must give the account back too
            app.pool.end(account.id)
            if not isinstance(failure, _Failed):
                raise
            failed = failure
            app.metrics.upstream_attempt(failed.outcome)
            last = failed.error
            decision = (policy.decide(failed.failure, same_account_retries=waits.get(account.id, 0),
                                      max_wait=settings.max_wait)
                        if failed.failure is not None
                        else policy.Decision(policy.Action.NEXT_ACCOUNT, policy.SERVER_BACKOFF if failed.backoff else 0.0))
            if decision.cooldown is not None and failed.failure is not None:
                app.pool.cool_down(account.id, family, decision.cooldown, failed.failure.message)
            if decision.action is policy.Action.GIVE_UP:
                raise failed.error from None
            if decision.action is policy.Action.RETRY_SAME:
                waits[account.id] = waits.get(account.id, 0) + 1
                prefer = account.id
            else:
                tried.add(account.id)
                prefer = ""
            delay = decision.delay * random.uniform(1 - JITTER, 1 + JITTER)
            if loop.time() + delay > deadline:
                raise failed.error from None
            if delay:
                await asyncio.sleep(delay)
    raise last or ProxyError(ErrorKind.UNAVAILABLE, "no upstream attempt succeeded")


def _wait_for(choice: NoAccount, now: float, tried: set[str]) -> float | None:
    """How long until an account this request has not used up can serve again."""
    if choice.busy:
        return BUSY_POLL
    untried = [cooldown.until for account, cooldown in choice.cooling if account.id not in tried]
    return max(0.0, min(untried) - now) if untried else None


def _nothing_serves(choice: NoAccount, last: ProxyError | None, family: str) -> ProxyError:
    """429 with the earliest reset when accounts are only cooling down; the last failure, or
    503, when every account is broken (so chained gateways try elsewhere)."""
    if choice.cooling:
        now = time.time()
        retry_at = choice.retry_at or now
        cooling = "; ".join(
            f"{mask_email(account.email)} until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(cooldown.until))}"
            f" ({cooldown.reason[:120]})" for account, cooldown in choice.cooling)
        return ProxyError(ErrorKind.RATE_LIMITED, f"every account is rate-limited for {family} models: {cooling}",
                          retry_after=max(1.0, retry_at - now), resets_at=retry_at)
    if choice.unknown_pin:
        return ProxyError(ErrorKind.NOT_FOUND, f"X-Account: {choice.message}")
    if last is not None:
        return last
    return ProxyError(ErrorKind.UNAVAILABLE, choice.message)


async def _attempt(app: App, generation: Generation, account: Account) -> UpstreamResponse:
    body = orjson.dumps({
        "project": account.project_id,
        "model": generation.model,
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": f"agent-{uuid.uuid4()}",
        "request": generation.request,
    })
    rejected: str | None = None
    for _ in range(2):  # a 401 earns one refresh and one retry
        try:
            token = await app.tokens.access_token(account.id, rejected=rejected)
        except AccountUnavailable as exc:
            raise _Failed(ProxyError(ErrorKind.UNAVAILABLE, f"account {account.id}: {exc}"), backoff=False,
                          outcome="auth") from None
        try:
            response = await app.http.request(
                "POST", app.settings.upstream_urls[0] + (endpoints.GENERATE if generation.unary else endpoints.STREAM_GENERATE),
                _headers(generation, token, app.settings.user_agent), body,
                first_byte_timeout=app.settings.upstream_first_byte_timeout,
                idle_timeout=app.settings.upstream_idle_timeout,
            )
        except HTTPClientError as exc:
            raise _Failed(ProxyError(ErrorKind.UPSTREAM, f"upstream unreachable: {exc}")) from None
        if response.status == 200:
            return response
        try:
            failure = classify(response.status, await response.read(_MAX_ERROR_BODY))
        except HTTPClientError as exc:
            raise _Failed(ProxyError(ErrorKind.UPSTREAM, f"upstream failed: {exc}")) from None
        finally:
            response.close()
        log.info("upstream %d (%s) for account %s model %s", failure.status, failure.kind.value, account.id, generation.model)
        if failure.kind is FailureKind.AUTH and rejected is None:
            rejected = token
            continue
        await app.accounts.record_failure(account.id, failure)
        raise _Failed(client_error(failure), failure)
    raise _Failed(ProxyError(ErrorKind.UPSTREAM, "the upstream refused a freshly refreshed token"), outcome="auth")


def _headers(generation: Generation, token: str, user_agent: str) -> list[tuple[bytes, bytes]]:
    headers = endpoints.json_headers(token, user_agent)
    headers.append((b"accept", b"text/event-stream"))
    request: dict[str, Any] = generation.request
    if models.family(generation.model) == "claude" and "thinkingConfig" in request.get("generationConfig", {}):
        headers.append((b"anthropic-beta", b"interleaved-thinking-2025-05-14"))
    return headers
