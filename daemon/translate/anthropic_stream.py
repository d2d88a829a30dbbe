"""Neutral model events → Anthropic Messages stream events, and the non-stream aggregate (pure).

The grammar (client-protocols.md §2.5): message_start, then blocks with indexes 0, 1, 2 …
(one open at a time: start, deltas, stop), then message_delta and message_stop. A text
block is never opened for empty text; a signature is the last delta of its thinking block.
Transitions are a table keyed by (open block, event type); a pair with no entry raises
TranslatorError instead of being skipped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..errors import ProxyError
from ..upstream.events import Finish, InlineImage, TextDelta, ThoughtDelta, ThoughtSignature, ToolCall, Usage
from .client_errors import anthropic_error
from .turn_end import Ending, TranslatorError, client_arguments, ending, image_markdown

Event = dict[str, Any]

STOP_REASONS = {Ending.REFUSED: "refusal", Ending.TOOL_USE: "tool_use", Ending.MAX_TOKENS: "max_tokens",
                Ending.STOP_SEQUENCE: "stop_sequence", Ending.END_TURN: "end_turn"}


class Block(enum.Enum):
    NONE = "none"
    TEXT = "text"
    THINKING = "thinking"
    DONE = "done"  # message_stop or an error was sent: nothing may follow


class AnthropicStream:
    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        thinking: bool,
        tool_names: Mapping[str, str],
        new_tool_id: Callable[[], str],
    ) -> None:
        self.message_id = message_id
        self.model = model
        self.thinking = thinking  # the client asked for thinking blocks
        self.tool_names = tool_names  # upstream function name → the client's tool name
        self.new_tool_id = new_tool_id
        self.block = Block.NONE
        self.index = -1
        self.started = False
        self.usage = Usage()
        self.tool_used = False
        self.signed = False  # the open thinking block already carries its signature
        self.pending_signature = ""  # seen with no thinking block open
        self.thinking_text: list[str] = []  # the open thinking block's text so far
        self.sealed = ("", "")  # (text, signature) of the last signed thinking block of this message
        # For the signature store: (tool_use id or None, signature, the thinking text it seals).
        self.signatures: list[tuple[str | None, str, str]] = []

    def feed(self, event: object) -> list[Event]:
        out: list[Event] = []
        handler = TRANSITIONS.get((self.block, type(event)))
        if handler is None:
            raise TranslatorError(f"no transition for {type(event).__name__} in block state {self.block.value}")
        if not self.started and self.block is not Block.DONE:
            if isinstance(event, Usage):
                self.usage = event
            out.append(self._message_start())
        handler(self, event, out)
        return out

    def fail(self, error: ProxyError) -> list[Event]:
        """An in-band error after the response head; it ends the stream."""
        self.block = Block.DONE
        return [{"type": "error", "error": anthropic_error(error)}]

    # --- block plumbing --------------------------------------------------------------

    def _message_start(self) -> Event:
        self.started = True
        return {
            "type": "message_start",
            "message": {
                "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {**self._input_usage(), "output_tokens": 1},
            },
        }

    def _input_usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.usage.prompt - self.usage.cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.usage.cached,
        }

    def _open(self, block: Event, kind: Block, out: list[Event]) -> None:
        self.index += 1
        self.block = kind
        self.signed = False
        self.thinking_text = []
        out.append({"type": "content_block_start", "index": self.index, "content_block": block})

    def _close(self, out: list[Event]) -> None:
        if self.block in (Block.TEXT, Block.THINKING):
            out.append({"type": "content_block_stop", "index": self.index})
            self.block = Block.NONE

    def _delta(self, delta: Event, out: list[Event]) -> None:
        out.append({"type": "content_block_delta", "index": self.index, "delta": delta})


# --- transitions (state, event) → handler ----------------------------------------------


def _text(m: AnthropicStream, e: TextDelta, out: list[Event]) -> None:
    if not e.text:
        return  # never open (or feed) a block with nothing in it
    if m.block is not Block.TEXT:
        m._close(out)
        m._open({"type": "text", "text": ""}, Block.TEXT, out)
    m._delta({"type": "text_delta", "text": e.text}, out)


def _thought(m: AnthropicStream, e: ThoughtDelta, out: list[Event]) -> None:
    if not m.thinking or not e.text:
        return
    if m.block is not Block.THINKING or m.signed:  # a signed block is complete: start another
        m._close(out)
        m._open({"type": "thinking", "thinking": "", "signature": ""}, Block.THINKING, out)
    m._delta({"type": "thinking_delta", "thinking": e.text}, out)
    m.thinking_text.append(e.text)


def _sign_open_thinking(m: AnthropicStream, e: ThoughtSignature, out: list[Event]) -> None:
    if m.signed:  # a block carries one signature; a later one belongs to what follows
        _keep_signature(m, e, out)
        return
    m._delta({"type": "signature_delta", "signature": e.signature}, out)
    m.signed = True
    m.sealed = ("".join(m.thinking_text), e.signature)
    m.signatures.append((None, e.signature, m.sealed[0]))


def _keep_signature(m: AnthropicStream, e: ThoughtSignature, out: list[Event]) -> None:
    m.pending_signature = e.signature  # no thinking block to carry it: the next tool call may
    m.signatures.append((None, e.signature, ""))


def _tool_call(m: AnthropicStream, e: ToolCall, out: list[Event]) -> None:
    signature = e.signature or m.pending_signature
    m.pending_signature = ""
    if m.block is Block.THINKING and signature and not m.signed:
        # Gemini signs the call, not the thought: the thinking before the call carries it.
        _sign_open_thinking(m, ThoughtSignature(signature), out)
    m._close(out)
    tool_id = e.id or m.new_tool_id()
    if signature:
        m.signatures.append((tool_id, signature, m.sealed[0] if signature == m.sealed[1] else ""))
    elif m.sealed[1]:
        sealed_text, sealed_signature = m.sealed  # Claude signs the thinking, not the call
        m.signatures.append((tool_id, sealed_signature, sealed_text))
    m.tool_used = True
    name = m.tool_names.get(e.name, e.name)
    m._open({"type": "tool_use", "id": tool_id, "name": name, "input": {}}, Block.NONE, out)
    m._delta({"type": "input_json_delta", "partial_json": orjson.dumps(client_arguments(e.args)).decode()}, out)
    out.append({"type": "content_block_stop", "index": m.index})


def _image(m: AnthropicStream, e: InlineImage, out: list[Event]) -> None:
    _text(m, TextDelta(image_markdown(e)), out)


def _usage(m: AnthropicStream, e: Usage, out: list[Event]) -> None:
    m.usage = e


def _finish(m: AnthropicStream, e: Finish, out: list[Event]) -> None:
    m._close(out)
    m.usage = e.usage
    stop_reason = STOP_REASONS[ending(e, called=m.tool_used)]
    usage = {**m._input_usage(), "output_tokens": e.usage.candidates + e.usage.thoughts}
    delta = {"stop_reason": stop_reason, "stop_sequence": e.stop_sequence}
    out.append({"type": "message_delta", "delta": delta, "usage": usage})
    out.append({"type": "message_stop"})
    m.block = Block.DONE


_Handler = Callable[[AnthropicStream, Any, list[Event]], None]
_OPEN_STATES = (Block.NONE, Block.TEXT, Block.THINKING)

TRANSITIONS: dict[tuple[Block, type], _Handler] = {
    **{(state, TextDelta): _text for state in _OPEN_STATES},
    **{(state, ThoughtDelta): _thought for state in _OPEN_STATES},
    (Block.THINKING, ThoughtSignature): _sign_open_thinking,
    (Block.NONE, ThoughtSignature): _keep_signature,
    (Block.TEXT, ThoughtSignature): _keep_signature,
    **{(state, ToolCall): _tool_call for state in _OPEN_STATES},
    **{(state, InlineImage): _image for state in _OPEN_STATES},
    **{(state, Usage): _usage for state in _OPEN_STATES},
    **{(state, Finish): _finish for state in _OPEN_STATES},
}


# --- output: SSE frames, or one Message -------------------------------------------------

_PREFIXES = {
    name: b"event: " + name.encode() + b"\ndata: "
    for name in ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                 "message_delta", "message_stop", "ping", "error")
}
PROTOCOL = "anthropic"  # its name in the request monitor and the metrics
HEARTBEAT = b'event: ping\ndata: {"type":"ping"}\n\n'


def encode(events: list[Event]) -> bytes:
    return b"".join(_PREFIXES[event["type"]] + orjson.dumps(event) + b"\n\n" for event in events)


class Accumulator:
    """Builds the non-stream Message from the same events, the way the SDK's accumulate_event does."""

    def __init__(self) -> None:
        self.body: Event = {}
        self._json: dict[int, str] = {}

    def apply(self, events: list[Event]) -> None:
        for event in events:
            kind = event["type"]
            if kind == "message_start":
                self.body = {**event["message"], "content": []}
            elif kind == "content_block_start":
                self.body["content"].append(dict(event["content_block"]))
            elif kind == "content_block_delta":
                self._delta(event["index"], event["delta"])
            elif kind == "content_block_stop" and event["index"] in self._json:
                self.body["content"][event["index"]]["input"] = orjson.loads(self._json.pop(event["index"]) or "{}")
            elif kind == "message_delta":
                self.body.update(event["delta"])
                self.body["usage"] = {**self.body["usage"], **event["usage"]}

    def _delta(self, index: int, delta: Event) -> None:
        block = self.body["content"][index]
        kind = delta["type"]
        if kind == "text_delta":
            block["text"] += delta["text"]
        elif kind == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "input_json_delta":
            self._json[index] = self._json.get(index, "") + delta["partial_json"]
