"""What the daemon knows about each account's capacity, per quota family (pure: no clock;
every time is epoch seconds passed in by the caller).

Quota is shared within a family of models (upstream doc §6.3): Claude and GPT-OSS share
one, Gemini Pro models another, Gemini Flash models a third. A cooldown is a family of one
account the upstream said is exhausted until a time; quota is what fetchAvailableModels
last reported.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

FAMILIES = ("claude", "gemini-pro", "gemini-flash")
STICKY_SESSIONS = 10_000  # conversations remembered for sticky routing, oldest first out


def quota_family(model: str) -> str:
    """The quota family of an upstream model id."""
    if model.startswith(("claude", "gpt")):
        return "claude"
    if model.startswith("gemini") and "pro" in model:
        return "gemini-pro"
    return "gemini-flash"


@dataclass(frozen=True, slots=True)
class FamilyQuota:
    remaining: float | None  # 0..1; None when the upstream did not say
    resets_at: float | None  # when the family's window resets; None when not reported


@dataclass(frozen=True, slots=True)
class Cooldown:
    until: float
    reason: str  # the upstream's words, for /quota and error messages


@dataclass(slots=True)
class AccountLoad:
    """The pool's runtime view of one account."""

    quota: dict[str, FamilyQuota] = field(default_factory=dict)
    quota_checked_at: float = 0.0
    cooldowns: dict[str, Cooldown] = field(default_factory=dict)
    last_used: float = 0.0
    in_flight: int = 0

    def cooling(self, family: str, now: float) -> Cooldown | None:
        cooldown = self.cooldowns.get(family)
        return cooldown if cooldown is not None and cooldown.until > now else None


class PoolState:
    def __init__(self) -> None:
        self.loads: dict[str, AccountLoad] = {}
        self.sessions: OrderedDict[str, str] = OrderedDict()  # conversation key → account id

    def load(self, account_id: str) -> AccountLoad:
        load = self.loads.get(account_id)
        if load is None:
            load = self.loads[account_id] = AccountLoad()
        return load

    def cool_down(self, account_id: str, family: str, until: float, reason: str) -> None:
        current = self.load(account_id).cooldowns.get(family)
        if current is None or current.until < until:
            self.load(account_id).cooldowns[family] = Cooldown(until, reason)

    def set_quota(self, account_id: str, quota: dict[str, FamilyQuota], now: float) -> None:
        """A fresh catalogue reading. A family it reports empty cools down until its reset, so
        no request is spent learning that; a cooldown is never shortened by a reading (the
        429 that set it is the better witness)."""
        load = self.load(account_id)
        load.quota, load.quota_checked_at = quota, now
        for family, info in quota.items():
            if info.remaining == 0 and info.resets_at is not None and info.resets_at > now:
                self.cool_down(account_id, family, info.resets_at, "no quota left (fetchAvailableModels)")

    def stick(self, session: str, account_id: str) -> None:
        self.sessions[session] = account_id
        self.sessions.move_to_end(session)
        while len(self.sessions) > STICKY_SESSIONS:
            self.sessions.popitem(last=False)
