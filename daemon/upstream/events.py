"""Neutral model events: what an upstream generation says, independent of any client protocol (pure).

The upstream decoder produces them; one translator per client protocol consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    prompt: int = 0  # includes `cached`
    candidates: int = 0  # visible output, excluding thoughts
    thoughts: int = 0
    cached: int = 0


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThoughtDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThoughtSignature:
    """A signature that closes the thinking so far (on a thought part, a text part, or a
    trailing signature-only part)."""

    signature: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str | None  # the upstream's id, when it gave one
    name: str  # the upstream (sanitised) function name
    args: dict[str, Any] = field(default_factory=dict)
    signature: str | None = None  # the thoughtSignature sibling of the functionCall


@dataclass(frozen=True, slots=True)
class InlineImage:
    mime_type: str
    data: str  # base64


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # the upstream finishReason (or the prompt's blockReason), e.g. "STOP"
    usage: Usage
    blocked: bool = False  # the prompt itself was refused (no candidates)
    stop_sequence: str | None = None  # the client's stop sequence that ended the text


ModelEvent = TextDelta | ThoughtDelta | ThoughtSignature | ToolCall | InlineImage | Usage | Finish
