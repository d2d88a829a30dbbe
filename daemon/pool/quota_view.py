"""What /quota shows: each account's quota and cooldowns per family, as JSON for scripts
and as a plain-text table for curl (pure: the time is passed in).

The table is ASCII only (bars of `#` and `-`, `-` for "not known"), one line per account,
columns padded to the widest cell, no trailing spaces.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from .. import text_table
from ..accounts.model import Account
from ..redact import mask_email
from .state import FAMILIES, AccountLoad

Row = tuple[Account, AccountLoad | None]

BAR_WIDTH = 10
FULL, EMPTY = "#", "-"
UNKNOWN = "-"
NO_DATA = "no data"


def iso(timestamp: float | None) -> str | None:
    """`2026-08-14T17:50:02Z` (whole seconds, UTC); None stays None."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(round(timestamp), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_until(timestamp: float | None, now: float) -> int | None:
    """Whole seconds from `now` to `timestamp`, rounded up; 0 once it has passed."""
    return None if timestamp is None else max(0, math.ceil(timestamp - now))


def duration(seconds: int | None) -> str:
    """`45m`, `2h05m`, `6d17h` (minutes rounded up); `-` when not known."""
    if seconds is None:
        return UNKNOWN
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _family(load: AccountLoad | None, family: str, now: float) -> dict[str, Any]:
    quota = load.quota.get(family) if load is not None else None
    cooldown = load.cooling(family, now) if load is not None else None
    resets_at = quota.resets_at if quota is not None else None
    return {
        "remaining": quota.remaining if quota is not None else None,
        "resets_at": iso(resets_at),
        "resets_in_s": seconds_until(resets_at, now),
        "cooling_until": iso(cooldown.until) if cooldown is not None else None,
        "cooling_reason": cooldown.reason if cooldown is not None else None,
    }


def quota_json(rows: Iterable[Row], now: float) -> dict[str, Any]:
    """The /quota document."""
    accounts = []
    for account, load in rows:
        checked = load.quota_checked_at if load is not None and load.quota_checked_at > 0 else None
        accounts.append({
            "id": account.id,
            "email": mask_email(account.email),
            "state": account.state.value,
            "families": {family: _family(load, family, now) for family in FAMILIES},
            "quota_checked_at": iso(checked),
            "in_flight": load.in_flight if load is not None else 0,
        })
    return {"accounts": accounts, "generated_at": iso(now)}


def bar(remaining: float) -> str:
    """`#####-----  50%`: the bar and the percentage agree (the bar fills per whole 10%)."""
    percent = round(min(1.0, max(0.0, remaining)) * 100)
    filled = percent * BAR_WIDTH // 100
    return f"{FULL * filled}{EMPTY * (BAR_WIDTH - filled)} {percent:>3d}%"


def _cell(load: AccountLoad | None, family: str, now: float) -> str:
    if load is not None:
        cooldown = load.cooling(family, now)
        if cooldown is not None:
            return f"cooling {duration(seconds_until(cooldown.until, now))}"
        quota = load.quota.get(family)
        if quota is not None and quota.remaining is not None:
            return f"{bar(quota.remaining)} {duration(seconds_until(quota.resets_at, now)):>6}"
    return NO_DATA


def quota_table(rows: Iterable[Row], now: float) -> str:
    """The /quota?format=table text: a header line, then one line per account."""
    lines = [["ACCOUNT", "STATE", *(family.upper() for family in FAMILIES)]]
    for account, load in rows:
        lines.append([mask_email(account.email), account.state.value,
                      *(_cell(load, family, now) for family in FAMILIES)])
    return text_table.render(lines)
