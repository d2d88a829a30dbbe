"""The protocol-neutral request: what every client protocol asks for, in one shape (pure).

Each client parser (anthropic_request, openai_chat_request, responses_request) only reads
its own wire format into a Conversation; upstream_request.py alone turns a Conversation
into the upstream's Gemini-shaped request, so the rules for roles, tool ids, signatures
and thinking exist once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ErrorKind, ProxyError


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Media:
    mime_type: str
    data: str  # base64


@dataclass(frozen=True, slots=True)
class Thought:
    """Signed thinking the client replays (Anthropic thinking block, Responses reasoning item)."""

    text: str
    signature: str


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    name: str  # the client's tool name
    args: dict[str, Any]
    signature: str = ""  # a signature the client carried on the call itself, if its format has a place


@dataclass(frozen=True, slots=True)
class Result:
    call_id: str
    text: str
    is_error: bool = False
    media: tuple[Media, ...] = ()


Part = Text | Media | Thought | Call | Result


@dataclass(slots=True)
class Turn:
    role: Literal["user", "model"]
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str  # the client's name
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thinking:
    """What the client asked for: "enabled" (with a budget), "adaptive" (with an effort),
    "disabled", or "default" (on for the upstream's `*-thinking` ids, else off)."""

    requested: str = "disabled"
    budget: int | None = None
    effort: str | None = None


@dataclass(slots=True)
class Conversation:
    system: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = "auto"  # "auto", "any", "none", or "tool" with `forced_tool`
    forced_tool: str = ""
    thinking: Thinking = Thinking()
    max_tokens: int | None = None  # None: the model's own limit
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    json_output: bool = False
    response_schema: dict[str, Any] | None = None
    stop_sequences: tuple[str, ...] = ()
    stream: bool = False

    def add(self, role: Literal["user", "model"], parts: list[Part]) -> None:
        self.turns.append(Turn(role, parts))


def invalid(message: str, param: str | None = None) -> ProxyError:
    return ProxyError(ErrorKind.INVALID_REQUEST, message, param=param)


def number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    """An optional numeric field within [low, high]."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise invalid(f"{key}: must be a number from {low:g} to {high:g}", key)
    return value


def positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"{key}: must be a positive integer", key)
    return value
