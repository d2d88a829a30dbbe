"""What every client protocol's machine decides the same way (pure): how a turn ended, what
a call's arguments look like to the client, and how an image shows in a text-only answer.
Each machine only names the result in its own vocabulary (client-protocols.md §6)."""

from __future__ import annotations

import enum
from typing import Any

from ..upstream.events import Finish, InlineImage
from .schema import PLACEHOLDER_PROPERTY

# Upstream finish (or block) reasons that mean the content was refused (client-protocols.md §6).
REFUSAL_REASONS = frozenset({
    "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "LANGUAGE", "MODEL_ARMOR", "JAILBREAK", "OTHER_BLOCK",
})


class TranslatorError(Exception):
    """An event arrived that a machine has no transition for in its current state."""


class Ending(enum.Enum):
    REFUSED = "refused"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    END_TURN = "end_turn"


def ending(finish: Finish, *, called: bool) -> Ending:
    """§6, top to bottom: Antigravity reports tool turns as STOP, so the calls decide."""
    if finish.blocked or finish.reason in REFUSAL_REASONS:
        return Ending.REFUSED
    if called:
        return Ending.TOOL_USE
    if finish.reason == "MAX_TOKENS":
        return Ending.MAX_TOKENS
    if finish.stop_sequence is not None:
        return Ending.STOP_SEQUENCE
    return Ending.END_TURN


def client_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments without the placeholder the schema sanitiser added (ours, not the client's)."""
    return {key: value for key, value in args.items() if key != PLACEHOLDER_PROPERTY}


def image_markdown(image: InlineImage) -> str:
    """No client protocol has an image output block for a model turn: peers render markdown."""
    return f"![image](data:{image.mime_type};base64,{image.data})"
