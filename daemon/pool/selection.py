"""Which account serves the next attempt of a request (pure: accounts, pool state and the
time in; a choice or the reason there is none out).

An account can serve a model family when it is active with a project, is not cooling down
for that family, has not been tried for this request, and is under the concurrency cap.
Accounts at or below the quota reserve are used only when nothing else can serve. Among
the rest the strategy decides: sticky keeps a conversation where it was (the upstream
prompt cache lives per account), round-robin takes the least recently used, quota-first
the most remaining quota.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..accounts.model import Account
from .state import AccountLoad, Cooldown, PoolState

STRATEGIES = ("sticky", "round-robin", "quota-first")


@dataclass(frozen=True, slots=True)
class Pick:
    account: Account


@dataclass(frozen=True, slots=True)
class NoAccount:
    """Nothing can serve. `cooling` lists (account, cooldown) for accounts that will be able
    to later (this request may have tried them); empty when every account is broken,
    disabled or was tried without being cooled down."""

    cooling: tuple[tuple[Account, Cooldown], ...]
    busy: bool  # some account is only at its concurrency cap
    message: str
    unknown_pin: bool = False  # the pinned account does not exist

    @property
    def retry_at(self) -> float | None:
        return min((cooldown.until for _, cooldown in self.cooling), default=None)


@dataclass(frozen=True, slots=True)
class Request:
    family: str  # quota family of the upstream model
    session: str = ""  # conversation key for sticky routing ("" → none)
    pinned: str = ""  # account id or e-mail the client asked for ("" → any)
    tried: Collection[str] = ()  # account ids this request already used up
    prefer: str = ""  # the account to take again when it can serve (a wait on it just ended)
    allowed: tuple[str, ...] = ()  # a route target's accounts (ids or e-mails); () = any


def select(accounts: list[Account], state: PoolState, request: Request, *, now: float, strategy: str = "sticky",
           reserve: float = 0.0, max_in_flight: int = 0) -> Pick | NoAccount:
    pool = [a for a in accounts if _matches(a, request.pinned)] if request.pinned else accounts
    if request.pinned and not pool:
        return NoAccount((), False, f"no account {request.pinned!r} is configured", unknown_pin=True)
    if request.allowed:
        pool = [a for a in pool if any(_matches(a, allowed) for allowed in request.allowed)]
        if not pool:
            return NoAccount((), False, f"none of this route's accounts is configured ({', '.join(request.allowed)})")
    cooling: list[tuple[Account, Cooldown]] = []
    busy = False
    ready: list[Account] = []
    for account in pool:
        if not account.usable:
            continue
        load = state.loads.get(account.id) or AccountLoad()
        cooldown = load.cooling(request.family, now)
        if cooldown is not None:
            cooling.append((account, cooldown))  # tried or not: its reset counts for the client's retry-after
        elif account.id in request.tried:
            continue
        elif max_in_flight and load.in_flight >= max_in_flight:
            busy = True
        else:
            ready.append(account)
    if not ready:
        return NoAccount(tuple(cooling), busy, _why(pool, cooling, busy, request))
    above = [a for a in ready if (left := _remaining(state, a, request.family)) is None or left > reserve / 100]
    choice = _by_strategy(above or ready, state, request, strategy)
    return Pick(choice)


def _matches(account: Account, pinned: str) -> bool:
    return account.id == pinned or account.email.lower() == pinned.lower()


def _remaining(state: PoolState, account: Account, family: str) -> float | None:
    load = state.loads.get(account.id)
    quota = load.quota.get(family) if load is not None else None
    return quota.remaining if quota is not None else None


def _by_strategy(ready: list[Account], state: PoolState, request: Request, strategy: str) -> Account:
    def last_used(account: Account) -> float:
        load = state.loads.get(account.id)
        return load.last_used if load is not None else 0.0

    def remaining(account: Account) -> float:
        value = _remaining(state, account, request.family)
        return 1.0 if value is None else value  # unknown quota: assume full, it will be read soon

    wanted = request.prefer or (state.sessions.get(request.session) if strategy == "sticky" and request.session else None)
    for account in ready:
        if account.id == wanted:
            return account
    if strategy == "round-robin":
        return min(ready, key=lambda a: (last_used(a), a.id))
    # quota-first, and sticky for a new conversation: where the most quota is left, least used first
    return min(ready, key=lambda a: (-remaining(a), last_used(a), a.id))


def _why(pool: list[Account], cooling: list[tuple[Account, Cooldown]], busy: bool, request: Request) -> str:
    if cooling:
        return "every account is rate-limited for this model family"
    if busy:
        return "every account is at its concurrency limit"
    if not pool:
        return "no Google account is configured: run `antigravity-proxy accounts add`"
    states = ", ".join(f"{a.email}: {'tried' if a.id in request.tried else a.state.value}" for a in pool)
    return f"no account can serve right now ({states})"
