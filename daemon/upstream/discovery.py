"""Project discovery: loadCodeAssist, then onboardUser when no project comes back (pure).

Upstream doc §3: the project is a string or an {"id", "name"} object; onboarding uses the
default *allowed* tier (never a paidTier id) and answers with a long-running operation
that is done once `response.cloudaicompanionProject.id` is there. No complete real
capture of these replies exists publicly: the shapes come from typed peer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# The fewest metadata fields that work: `platform: LINUX` is rejected upstream, so no
# platform is claimed at all (doc §2.4).
CLIENT_METADATA = {"ideType": "ANTIGRAVITY", "pluginType": "GEMINI"}
DEFAULT_TIER = "free-tier"


@dataclass(frozen=True, slots=True)
class CodeAssistStatus:
    project_id: str | None
    tier: str | None  # subscription level shown to the user (paid tier first)
    onboard_tier: str  # the tier id onboardUser accepts


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    done: bool
    project_id: str | None


def load_code_assist_body() -> bytes:
    return orjson.dumps({"metadata": CLIENT_METADATA})


def parse_load_code_assist(body: bytes) -> CodeAssistStatus:
    document = _object(body)
    allowed = [tier for tier in document.get("allowedTiers") or [] if isinstance(tier, dict)]
    default_allowed = next((t.get("id") for t in allowed if t.get("isDefault")), None)
    onboard_tier = default_allowed or (allowed[0].get("id") if allowed else None) or DEFAULT_TIER
    shown_tier = _tier_id(document.get("paidTier")) or _tier_id(document.get("currentTier")) or default_allowed
    return CodeAssistStatus(_project_id(document), shown_tier, onboard_tier)


def onboard_user_body(tier_id: str) -> bytes:
    return orjson.dumps({"tierId": tier_id, "metadata": CLIENT_METADATA})


def parse_operation(body: bytes) -> Operation:
    document = _object(body)
    response = document.get("response") if isinstance(document.get("response"), dict) else {}
    return Operation(
        name=str(document.get("name") or ""),
        done=document.get("done") is True,
        project_id=_project_id(response),
    )


def _project_id(document: dict[str, Any]) -> str | None:
    for key in ("cloudaicompanionProject", "projectId", "project"):
        value = document.get(key)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value:
            return value
    return None


def _tier_id(tier: Any) -> str | None:
    return tier.get("id") if isinstance(tier, dict) and isinstance(tier.get("id"), str) else None


def _object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}
