"""The bodies of the fake's read-only Cloud Code answers: the fetchAvailableModels catalog
(real fixture + synthesized rows + per-account quota), loadCodeAssist tier objects, and the
countTokens estimate. Pure data, no sockets.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from . import scripts
from .accounts import FakeAccount

FETCH_MODELS_FIXTURE = "fetchAvailableModels.response.excerpt.real.json"
DEFAULT_RESET_AFTER = 5 * 3600.0  # resetTime of a synthesized row, seconds from now

# Rows for model ids the tests use, SYNTHESIZED in the shape of the real fixture's rows (the
# excerpt holds only 4 of 28 real rows). Values come from the real catalog's summary table
# (cddchen/antigravityide2api docs/fetch-available-models.md); `vertexModelId` and the
# omitted modelExperiments/supportedMimeTypes are ours. quotaInfo.resetTime is set per call.
_GEMINI = {"apiProvider": "API_PROVIDER_GOOGLE_GEMINI", "modelProvider": "MODEL_PROVIDER_GOOGLE"}
_CLAUDE = {"apiProvider": "API_PROVIDER_ANTHROPIC_VERTEX", "modelProvider": "MODEL_PROVIDER_ANTHROPIC"}
SYNTHESIZED_MODEL_ROWS: dict[str, dict[str, Any]] = {
    "claude-sonnet-4-6": {
        "displayName": "Claude Sonnet 4.6 (Thinking)", "supportsImages": True, "supportsThinking": True,
        "thinkingBudget": 1024, "recommended": True, "maxTokens": 250000, "maxOutputTokens": 64000,
        "model": "MODEL_PLACEHOLDER_M35", **_CLAUDE, "vertexModelId": "claude-sonnet-4-6@default",
    },
    "claude-opus-4-6-thinking": {
        "displayName": "Claude Opus 4.6 (Thinking)", "supportsImages": True, "supportsThinking": True,
        "thinkingBudget": 1024, "recommended": True, "maxTokens": 250000, "maxOutputTokens": 64000,
        "model": "MODEL_PLACEHOLDER_M26", **_CLAUDE, "vertexModelId": "claude-opus-4-6@default",
    },
    "gemini-3-flash": {
        "displayName": "Gemini 3 Flash", "supportsImages": True, "supportsVideo": True, "supportsThinking": True,
        "thinkingBudget": -1, "recommended": True, "maxTokens": 1048576, "maxOutputTokens": 65536,
        "model": "MODEL_PLACEHOLDER_M18", **_GEMINI,
    },
    "gemini-3.1-pro-low": {
        "displayName": "Gemini 3.1 Pro (Low)", "supportsImages": True, "supportsVideo": True,
        "supportsThinking": True, "thinkingBudget": 1001, "recommended": True, "maxTokens": 1048576,
        "maxOutputTokens": 65535, "model": "MODEL_PLACEHOLDER_M36", **_GEMINI,
    },
    "gemini-pro-agent": {
        "displayName": "Gemini 3.1 Pro (High)", "supportsImages": True, "supportsVideo": True,
        "supportsThinking": True, "thinkingBudget": 10001, "recommended": True, "maxTokens": 1048576,
        "maxOutputTokens": 65535, "model": "MODEL_PLACEHOLDER_M16", **_GEMINI,
    },
}

# A per-account quotaInfo override: (remainingFraction or None to drop it, RFC3339 resetTime or None to keep it).
QuotaOverride = tuple[float | None, str | None]


def rfc3339(value: str | dt.datetime | float) -> str:
    """RFC3339 UTC text from text (kept as is), a datetime, or seconds from now."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_catalog(quota: Mapping[str, QuotaOverride]) -> dict[str, Any]:
    """The real fixture's inner `response` (verbatim; its resetTimes are the capture's),
    plus the synthesized rows, plus the account's quota overrides."""
    catalog = scripts.fixture_json(FETCH_MODELS_FIXTURE)["response"]
    models = catalog["models"]
    reset = rfc3339(DEFAULT_RESET_AFTER)
    for model_id, row in SYNTHESIZED_MODEL_ROWS.items():
        if model_id not in models:
            row = copy.deepcopy(row)
            row["quotaInfo"] = {"remainingFraction": 1, "resetTime": reset}
            models[model_id] = row
    for model_id, (fraction, reset_time) in quota.items():
        row = models.setdefault(model_id, {"displayName": model_id, "model": "MODEL_UNSPECIFIED", **_GEMINI})
        info = row.get("quotaInfo", {})
        new_info: dict[str, Any] = {}
        if fraction is not None:
            new_info["remainingFraction"] = fraction
        if reset_time is not None:
            new_info["resetTime"] = reset_time
        elif "resetTime" in info:
            new_info["resetTime"] = info["resetTime"]
        row["quotaInfo"] = new_info
    return catalog


# loadCodeAssist tier objects. SYNTHESIZED: no complete real Antigravity capture exists (doc
# §3.1, §9.7); field names follow gemini-cli's typed LoadCodeAssistResponse, texts are ours.
_TIER_TEXT = {
    "free-tier": ("Gemini Code Assist for individuals", False),
    "standard-tier": ("Gemini Code Assist", True),
    "legacy-tier": ("Gemini Code Assist (legacy)", True),
}


def tier_object(tier_id: str, *, is_default: bool | None = None) -> dict[str, Any]:
    name, user_defined = _TIER_TEXT.get(tier_id, (tier_id, False))
    tier: dict[str, Any] = {"id": tier_id, "name": name, "description": f"{name} (fake upstream)"}
    if is_default is not None:
        tier["isDefault"] = is_default
    tier["userDefinedCloudaicompanionProject"] = user_defined
    tier["privacyNotice"] = {}
    return tier


def load_code_assist_reply(account: FakeAccount) -> dict[str, Any]:
    """loadCodeAssist's answer: current tier and project once onboarded (doc §3.1)."""
    reply: dict[str, Any] = {}
    if account.project:
        reply["currentTier"] = tier_object(account.tier)
    reply["allowedTiers"] = [tier_object(account.tier, is_default=True)]
    if account.project:
        reply["cloudaicompanionProject"] = account.project
    if account.paid_tier:
        reply["paidTier"] = tier_object(account.paid_tier)
    reply["gcpManaged"] = False
    return reply


def count_text_tokens(obj: Any) -> int:
    """A crude, deterministic token estimate: ceil(characters of every `text` / 4) plus 258
    per inline image (Gemini's per-image count). Not what the real tokenizer says."""
    chars = images = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "text" and isinstance(value, str):
                    chars += len(value)
                elif key in ("inlineData", "inline_data"):
                    images += 1
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return math.ceil(chars / 4) + 258 * images
