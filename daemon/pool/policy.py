"""What one upstream refusal means for the next attempt (pure: the failure and the request's
history in, a decision out). The upstream doc §7 catalogues the refusals; the rules:

- quota exhausted: the account's family cools down until the reset; another account next.
  A reset within AGPROXY_MAX_WAIT is waited out on the same account (its prompt cache stays).
- short rate limit: waited out on the same account when within the wait, else a cooldown.
- a bare 429 with no details says nothing about quota (the upstream answers one to some
  client identity lines): retried once on the same account, then another account, and the
  account is never cooled down for it.
- capacity exhausted is the server's, not the account's: a backoff and a retry, no penalty.
- 5xx and broken connections: another account after a short backoff.
- a request the upstream refuses as invalid, or a model it does not have: no retry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..upstream.failures import FailureKind, UpstreamFailure

QUOTA_COOLDOWN = 300.0  # seconds, when an exhausted quota comes without a reset time
SAME_ACCOUNT_RETRIES = 2  # waits on one account within one request
BARE_429_BACKOFF = 1.0
CAPACITY_BACKOFF = 2.0
SERVER_BACKOFF = 0.5


class Action(enum.Enum):
    RETRY_SAME = "retry_same"  # wait `delay`, then the same account again
    NEXT_ACCOUNT = "next_account"  # wait `delay`, then another account
    GIVE_UP = "give_up"  # the client gets this failure


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0  # before the next attempt (the caller adds jitter)
    cooldown: float | None = None  # seconds the account's family cools down for


def decide(failure: UpstreamFailure, *, same_account_retries: int, max_wait: float) -> Decision:
    """`same_account_retries`: how often this request already waited on this account."""
    kind, delay = failure.kind, failure.retry_after
    can_wait = same_account_retries < SAME_ACCOUNT_RETRIES
    if kind in (FailureKind.QUOTA_EXHAUSTED, FailureKind.RATE_LIMITED) and delay is not None:
        if delay <= max_wait and can_wait:
            return Decision(Action.RETRY_SAME, delay)
        return Decision(Action.NEXT_ACCOUNT, cooldown=delay)
    if kind is FailureKind.QUOTA_EXHAUSTED:
        return Decision(Action.NEXT_ACCOUNT, cooldown=QUOTA_COOLDOWN)
    if kind is FailureKind.RATE_LIMITED:  # bare: maybe not about quota at all
        if same_account_retries == 0:
            return Decision(Action.RETRY_SAME, BARE_429_BACKOFF)
        return Decision(Action.NEXT_ACCOUNT)
    if kind is FailureKind.CAPACITY:
        wait = min(delay if delay is not None else CAPACITY_BACKOFF, max_wait)
        return Decision(Action.RETRY_SAME if can_wait else Action.NEXT_ACCOUNT, wait)
    if kind in (FailureKind.SERVER_ERROR, FailureKind.AUTH, FailureKind.VERIFICATION_REQUIRED, FailureKind.FORBIDDEN):
        return Decision(Action.NEXT_ACCOUNT, SERVER_BACKOFF if kind is FailureKind.SERVER_ERROR else 0.0)
    return Decision(Action.GIVE_UP)  # invalid request, unknown model
