"""Model names: which upstream model serves a client's model name, and what that model is (pure).

Clients ask for names the upstream does not have (Claude Code 2.1 defaults to
`claude-opus-5-5`; dated ids like `claude-sonnet-4-5-20250929`; a `[1m]` suffix). A name
resolves in this order: an id the upstream serves, the user's AGPROXY_MODEL_MAP patterns,
then the family defaults below. Anything else is unknown: each protocol answers 404.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

# Upstream ids of the current catalogue (upstream doc §5.1, the Aug 2026 capture).
# fetchAvailableModels adds whatever an account really lists.
KNOWN_MODELS = frozenset({
    "claude-sonnet-4-6", "claude-opus-4-6-thinking",
    "gemini-3-flash", "gemini-3-flash-agent", "gemini-3.1-pro-low", "gemini-pro-agent", "gemini-3.5-flash-low",
    "gemini-3.6-flash-high", "gemini-3.6-flash-medium", "gemini-3.6-flash-low", "gemini-3.7-flash-high",
    "gemini-3.7-flash-medium", "gemini-3.7-flash-low", "gemini-3.1-flash-lite", "gemini-2.5-pro",
    "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-flash-thinking", "gpt-oss-120b-medium",
    "gemini-3.1-flash-image",
})

# Family defaults for client names the upstream lacks (including ids it retired, doc §5.2);
# user patterns come first.
DEFAULT_MODEL_MAP: tuple[tuple[str, str], ...] = (
    ("claude-opus-*", "claude-opus-4-6-thinking"),
    ("claude-sonnet-*", "claude-sonnet-4-6"),
    ("claude-haiku-*", "claude-sonnet-4-6"),
    ("claude-3-*", "claude-sonnet-4-6"),
    ("gemini-3-pro-high", "gemini-pro-agent"),
    ("gemini-3.1-pro-high", "gemini-pro-agent"),
    ("gemini-3-pro-low", "gemini-3.1-pro-low"),
    ("gemini-3-pro-image*", "gemini-3.1-flash-image"),
)

_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")  # Claude Code's "[1m]"


class UnknownModel(LookupError):
    def __init__(self, name: str, served: Iterable[str]) -> None:
        self.name = name
        self.served = sorted(served)
        super().__init__(f"model {name!r} is not served here; available: {', '.join(self.served)}")


def resolve(name: str, served: frozenset[str], user_map: tuple[tuple[str, str], ...]) -> str:
    """The upstream id for a client's model name (UnknownModel when there is none)."""
    cleaned = _CONTEXT_SUFFIX.sub("", name.strip())
    if cleaned in served:
        return cleaned
    for pattern, target in (*user_map, *DEFAULT_MODEL_MAP):
        if fnmatch.fnmatchcase(cleaned, pattern):
            return target
    raise UnknownModel(name, served)


def family(model: str) -> str:
    """Signature and quota family: "claude", "gemini" or "other" (gpt-oss)."""
    if model.startswith("claude"):
        return "claude"
    if model.startswith("gemini"):
        return "gemini"
    return "other"


def supports_thinking(model: str) -> bool:
    """Whether the upstream model produces thoughts (static rule; the catalogue's
    supportsThinking would refine it)."""
    if model.startswith("claude"):
        return "thinking" in model or model.startswith(("claude-sonnet-4-6", "claude-opus-4-6"))
    return model.startswith(("gemini-3", "gemini-pro-agent")) or "thinking" in model or model == "gemini-2.5-pro"


def is_gemini3(model: str) -> bool:
    return model.startswith(("gemini-3", "gemini-pro-agent"))
