"""An account's quota per family, read from a fetchAvailableModels answer (pure).

Each served model's `quotaInfo` is `{"remainingFraction": 0..1, "resetTime": RFC3339}`; the
fraction is absent when the model is exhausted, and internal models have no resetTime
(upstream doc §6.1). A family is as full as its emptiest model and resets at its earliest
reset (§6.3). Models without quotaInfo, internal models and the IDE's own completion models
say nothing about the families clients are served from.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from ..upstream.catalog import served_rows
from .state import FamilyQuota, quota_family

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def parse_rfc3339(text: object) -> float | None:
    """Epoch seconds of an RFC3339 date-time; None when `text` is not one."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.upper()).timestamp()
    except (ValueError, OverflowError):
        return None


def _fraction(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, float(value)))


def model_quota(entry: Any) -> FamilyQuota | None:
    """One catalogue row's quota; None when the row reports none."""
    info = entry.get("quotaInfo") if isinstance(entry, dict) else None
    if not isinstance(info, dict):
        return None
    reset_text = info.get("resetTime")
    resets_at = parse_rfc3339(reset_text)
    if "remainingFraction" in info:
        remaining = _fraction(info["remainingFraction"])
        if remaining is None:
            return None  # a fraction we cannot read says nothing
    elif isinstance(reset_text, str) and reset_text:
        remaining = 0.0  # exhausted: the upstream drops the fraction and keeps the reset time
    else:
        return None
    return FamilyQuota(remaining, resets_at)


def parse_quota(body: bytes) -> dict[str, FamilyQuota]:
    """Family → quota of a fetchAvailableModels body; {} when the body is not one."""
    return family_quota(served_rows(body))


def family_quota(rows: dict[str, dict[str, Any]]) -> dict[str, FamilyQuota]:
    """Family → quota of the served rows of a catalogue (catalog.served_rows)."""
    families: dict[str, FamilyQuota] = {}
    for model_id, entry in rows.items():
        quota = model_quota(entry)
        if quota is None:
            continue
        family = quota_family(model_id)
        known = families.get(family)
        families[family] = quota if known is None else merge(known, quota)
    return families


def merge(a: FamilyQuota, b: FamilyQuota) -> FamilyQuota:
    """Two models of one family: the smaller remaining fraction, the earlier reset."""
    remaining = min((r for r in (a.remaining, b.remaining) if r is not None), default=None)
    resets_at = min((t for t in (a.resets_at, b.resets_at) if t is not None), default=None)
    return FamilyQuota(remaining, resets_at)
