"""The upstream's model catalogue (fetchAvailableModels) → what each model is (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from . import models
from .models import KNOWN_MODELS


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    display_name: str
    input_limit: int
    output_limit: int
    thinking: bool


def static_catalogue() -> dict[str, ModelInfo]:
    """What the daemon knows without asking an account (upstream doc §5.1)."""
    return {name: _info(name, {}) for name in KNOWN_MODELS}


def parse(body: bytes) -> dict[str, ModelInfo]:
    """The `models` map of a fetchAvailableModels answer; empty when it has none."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {name: _info(name, entry) for name, entry in entries.items() if isinstance(entry, dict)}


def _info(name: str, entry: dict[str, Any]) -> ModelInfo:
    def count(key: str, default: int) -> int:
        value = entry.get(key)
        return value if isinstance(value, int) and value > 0 else default

    default_output = {"claude": 64000, "gemini": 65535}.get(models.family(name), 32768)
    return ModelInfo(name, str(entry.get("displayName") or name), count("maxTokens", 1048576 if name.startswith("gemini")
                                                                    else 200000),
                     count("maxOutputTokens", default_output), bool(entry.get("supportsThinking", models.supports_thinking(name))))
