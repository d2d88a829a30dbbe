"""The upstream's model catalogue (fetchAvailableModels) → what each model is (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from . import models
from .models import KNOWN_MODELS

# Output caps by family, for models the catalogue does not describe (upstream doc §4.3).
# The catalogue also lists the IDE's internal completion models (chat_…, tab_…): not for clients.
SERVED_PREFIXES = ("claude", "gemini", "gpt")
MAX_OUTPUT = {"claude": 64000, "gemini": 65535, "other": 32768}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    display_name: str
    input_limit: int
    output_limit: int
    thinking: bool


def static_catalogue() -> dict[str, ModelInfo]:
    """What the daemon knows without asking an account (upstream doc §5.1)."""
    return {name: describe(name) for name in KNOWN_MODELS}


def served_rows(body: bytes) -> dict[str, dict[str, Any]]:
    """The rows of a fetchAvailableModels answer for the models clients can be served from;
    empty when the body is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {name: entry for name, entry in entries.items()
            if isinstance(entry, dict) and name.startswith(SERVED_PREFIXES) and not entry.get("isInternal")}


def describe_rows(rows: dict[str, dict[str, Any]]) -> dict[str, ModelInfo]:
    return {name: describe(name, entry) for name, entry in rows.items()}


def describe(name: str, entry: dict[str, Any] | None = None) -> ModelInfo:
    """A model from its catalogue entry; what is missing comes from the family's usual limits."""
    entry = entry or {}

    def count(key: str, default: int) -> int:
        value = entry.get(key)
        return value if isinstance(value, int) and value > 0 else default

    gemini = models.family(name) == "gemini"
    return ModelInfo(
        name, str(entry.get("displayName") or name), count("maxTokens", 1048576 if gemini else 200000),
        count("maxOutputTokens", MAX_OUTPUT[models.family(name)]),
        bool(entry.get("supportsThinking", models.supports_thinking(name))),
    )
