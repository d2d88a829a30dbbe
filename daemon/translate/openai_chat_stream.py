"""Neutral model events → OpenAI chat.completion.chunk events, and the non-stream aggregate (pure).

The grammar (client-protocols.md §3.4): the role only in the first chunk, content and
`reasoning_content` deltas, each tool call introduced once (index, id, name) and then fed
argument fragments, one finish chunk with an empty delta, an optional usage chunk with no
choices, then `data: [DONE]`. The SDK concatenates strings and merges list entries by
`index`, so nothing may repeat. Transitions are a table keyed by (state, event type).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..errors import ProxyError
from ..upstream.events import Finish, InlineImage, TextDelta, ThoughtDelta, ThoughtSignature, ToolCall, Usage
from .client_errors import openai_error
from .turn_end import Ending, TranslatorError, client_arguments, ending, image_markdown

Event = dict[str, Any]
DONE: Event = {"done": True}  # stands for the `data: [DONE]` line

FINISH_REASONS = {Ending.REFUSED: "content_filter", Ending.TOOL_USE: "tool_calls", Ending.MAX_TOKENS: "length",
                  Ending.STOP_SEQUENCE: "stop", Ending.END_TURN: "stop"}


class State(enum.Enum):
    FRESH = "fresh"  # nothing sent yet: the next chunk carries the role
    OPEN = "open"
    DONE = "done"


class ChatStream:
    def __init__(
        self,
        *,
        completion_id: str,
        model: str,
        created: int,
        reasoning: bool,
        include_usage: bool,
        tool_names: Mapping[str, str],
        new_call_id: Callable[[], str],
    ) -> None:
        self.completion_id = completion_id
        self.model = model
        self.created = created
        self.reasoning = reasoning  # surface thoughts as reasoning_content
        self.include_usage = include_usage
        self.tool_names = tool_names
        self.new_call_id = new_call_id
        self.state = State.FRESH
        self.calls = 0
        self.usage = Usage()
        self.pending_signature = ""
        self.thinking: list[str] = []  # the thought text a signature seals (Claude checks the pair)
        self.signatures: list[tuple[str | None, str, str]] = []  # (call id or None, signature, thinking)

    def feed(self, event: object) -> list[Event]:
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise TranslatorError(f"no transition for {type(event).__name__} in state {self.state.value}")
        out: list[Event] = []
        handler(self, event, out)
        return out

    def fail(self, error: ProxyError) -> list[Event]:
        """An in-band error; the stream then ends without [DONE] (§3.4.4)."""
        self.state = State.DONE
        return [openai_error(error)]

    def chunk(self, delta: Event, finish_reason: str | None = None) -> Event:
        chunk: Event = {
            "id": self.completion_id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def delta(self, delta: Event, out: list[Event]) -> None:
        if self.state is State.FRESH:  # the role goes alone in the first chunk, as OpenAI sends it
            self.state = State.OPEN
            out.append(self.chunk({"role": "assistant", "content": ""}))
        if delta:
            out.append(self.chunk(delta))

    def usage_body(self) -> Event:
        u = self.usage
        completion = u.candidates + u.thoughts
        return {
            "prompt_tokens": u.prompt, "completion_tokens": completion, "total_tokens": u.prompt + completion,
            "prompt_tokens_details": {"cached_tokens": u.cached},
            "completion_tokens_details": {"reasoning_tokens": u.thoughts},
        }


def _text(m: ChatStream, e: TextDelta, out: list[Event]) -> None:
    if e.text:
        m.delta({"content": e.text}, out)


def _thought(m: ChatStream, e: ThoughtDelta, out: list[Event]) -> None:
    m.thinking.append(e.text)
    if m.reasoning and e.text:
        m.delta({"reasoning_content": e.text}, out)


def _signature(m: ChatStream, e: ThoughtSignature, out: list[Event]) -> None:
    m.pending_signature = e.signature  # OpenAI has no field for it: the signature store keeps it
    m.signatures.append((None, e.signature, "".join(m.thinking)))


def _tool_call(m: ChatStream, e: ToolCall, out: list[Event]) -> None:
    call_id = e.id or m.new_call_id()
    signature = e.signature or m.pending_signature
    m.pending_signature = ""
    if signature:
        m.signatures.append((call_id, signature, "".join(m.thinking)))
    index = m.calls
    m.calls += 1
    name = m.tool_names.get(e.name, e.name)
    arguments = orjson.dumps(client_arguments(e.args)).decode()
    m.delta({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}, out)
    out.append(m.chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}))


def _image(m: ChatStream, e: InlineImage, out: list[Event]) -> None:
    m.delta({"content": image_markdown(e)}, out)  # its multi-MB signature never reaches the client


def _usage(m: ChatStream, e: Usage, out: list[Event]) -> None:
    m.usage = e


def _finish(m: ChatStream, e: Finish, out: list[Event]) -> None:
    m.usage = e.usage
    reason = FINISH_REASONS[ending(e, called=bool(m.calls))]
    if m.state is State.FRESH:
        m.delta({}, out)  # the role chunk still comes first
    out.append(m.chunk({}, reason))
    if m.include_usage:
        out.append({"id": m.completion_id, "object": "chat.completion.chunk", "created": m.created, "model": m.model,
                    "choices": [], "usage": m.usage_body()})
    out.append(DONE)
    m.state = State.DONE


_LIVE = (State.FRESH, State.OPEN)
TRANSITIONS: dict[tuple[State, type], Callable[[ChatStream, Any, list[Event]], None]] = {
    **{(state, TextDelta): _text for state in _LIVE},
    **{(state, ThoughtDelta): _thought for state in _LIVE},
    **{(state, ThoughtSignature): _signature for state in _LIVE},
    **{(state, ToolCall): _tool_call for state in _LIVE},
    **{(state, InlineImage): _image for state in _LIVE},
    **{(state, Usage): _usage for state in _LIVE},
    **{(state, Finish): _finish for state in _LIVE},
}

PROTOCOL = "openai-chat"  # its name in the request monitor and the metrics
HEARTBEAT = b": keep-alive\n\n"  # an SSE comment: the openai SDK skips it


def encode(events: list[Event]) -> bytes:
    return b"".join(b"data: [DONE]\n\n" if event is DONE else b"data: " + orjson.dumps(event) + b"\n\n"
                    for event in events)


class Accumulator:
    """Builds the non-stream chat.completion from the same chunks."""

    def __init__(self) -> None:
        self.body: Event = {}
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[Event] = []

    def apply(self, events: list[Event]) -> None:
        for event in events:
            if event is DONE:
                continue
            if not self.body:
                self.body = {"id": event["id"], "object": "chat.completion", "created": event["created"],
                                   "model": event["model"], "choices": []}
            if not event["choices"]:
                self.body["usage"] = event["usage"]
                continue
            choice = event["choices"][0]
            delta = choice["delta"]
            self._content.append(delta.get("content") or "")
            self._reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls", ()):
                if "id" in call:
                    self._calls.append({"id": call["id"], "type": "function", "function": dict(call["function"])})
                else:
                    self._calls[call["index"]]["function"]["arguments"] += call["function"]["arguments"]
            if choice["finish_reason"]:
                self._finish(choice["finish_reason"])

    def _finish(self, reason: str) -> None:
        message: Event = {"role": "assistant", "content": "".join(self._content) or None, "refusal": None}
        if any(self._reasoning):
            message["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            message["tool_calls"] = self._calls
        self.body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}]
