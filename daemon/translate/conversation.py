"""The protocol-neutral request: what every client protocol asks for, in one shape (pure).

Each client parser (anthropic_request, openai_chat_request, responses_request) only reads
its own wire format into a Conversation; upstream_request.py alone turns a Conversation
into the upstream's Gemini-shaped request, so the rules for roles, tool ids, signatures
and thinking exist once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

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


def data_url(url: str, where: str) -> Media:
    """A `data:<mime>;base64,<data>` URL as inline media (http URLs were fetched before)."""
    head, comma, data = url.partition(",")
    if not (url.startswith("data:") and comma and head.endswith(";base64")) or not data:
        raise invalid(f"{where}: expected a data:<type>;base64, URL or an http(s) URL", where)
    return Media(head[5:].removesuffix(";base64") or "application/octet-stream", data)


def call_arguments(arguments: Any) -> dict[str, Any]:
    """An OpenAI-style JSON `arguments` string as an object; text that is not a JSON object
    is kept, wrapped, rather than refused (client-protocols.md §7.6)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, (str, bytes)) and arguments else {}
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"raw": arguments}


def text_of(content: Any, where: str) -> str:
    """A string, or the text of an array of text parts (OpenAI system, tool and assistant content)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise invalid(f"{where}: must be a string or an array of text parts", where)
    return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))


EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def effort_thinking(effort: Any, param: str) -> Thinking:
    """OpenAI's reasoning effort as a thinking request (client-protocols.md §7.8)."""
    if effort is None:
        return Thinking("default")
    if effort not in EFFORTS:
        raise invalid(f"{param}: must be one of {', '.join(EFFORTS)}", param)
    return Thinking("disabled") if effort == "none" else Thinking("adaptive", effort=str(effort))
