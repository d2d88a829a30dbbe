"""Neutral model events → OpenAI Responses stream events, and the non-stream aggregate (pure).

The grammar (client-protocols.md §4.4): response.created and response.in_progress, then output
items one at a time (output_item.added, the item's part/delta/done events, output_item.done with
the complete item: Codex builds its history only from that), then one terminal event
(response.completed, .incomplete or .failed) whose response holds every item and the usage.
Every event carries a sequence_number counting from 0. Thoughts become a reasoning item and a
thought signature its `encrypted_content` (§7.8), which Codex sends back on the next turn.
Transitions are a table keyed by (state, event type).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..errors import ErrorKind, ProxyError
from ..upstream.events import Finish, InlineImage, TextDelta, ThoughtDelta, ThoughtSignature, ToolCall, Usage
from .turn_end import Ending, TranslatorError, client_arguments, ending, image_markdown

Event = dict[str, Any]

# Request fields every response object echoes, with the §4.3 values for those the request left out.
ECHO_DEFAULTS: Event = {
    "instructions": None, "max_output_tokens": None, "parallel_tool_calls": True, "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None}, "store": False, "temperature": None,
    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": None,
    "truncation": "disabled", "metadata": {},
}
# Codex decides from response.failed error.code whether and how to retry (§4.5.5).
FAILURE_CODES = {ErrorKind.RATE_LIMITED: "rate_limit_exceeded", ErrorKind.OVERLOADED: "server_is_overloaded",
                 ErrorKind.UNAVAILABLE: "server_is_overloaded", ErrorKind.INVALID_REQUEST: "invalid_prompt"}
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class State(enum.Enum):
    FRESH = "fresh"  # nothing sent: any first event starts the response
    IDLE = "idle"  # no item open
    MESSAGE = "message"
    REASONING = "reasoning"  # an unsigned reasoning item with its one summary part open
    DONE = "done"  # a terminal event was sent: nothing may follow


class ResponsesStream:
    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        created: int,
        reasoning: bool,
        tools: Mapping[str, tuple[str, str]],
        new_call_id: Callable[[], str],
        new_item_id: Callable[[str], str],
        echo: Mapping[str, Any],
    ) -> None:
        self.response_id = response_id
        self.model = model
        self.created = created
        self.reasoning = reasoning  # surface thoughts as reasoning summaries
        self.tools = tools  # upstream function name → (client tool name, kind)
        self.new_call_id = new_call_id
        self.new_item_id = new_item_id
        self.echo = {**ECHO_DEFAULTS, **echo}
        self.state = State.FRESH
        self.sequence = 0
        self.output: list[Event] = []  # the completed items
        self.item_id = ""  # the open message or reasoning item
        self.parts: list[str] = []  # its text so far
        self.signature: str | None = None  # the open reasoning item's encrypted_content
        self.call_ids: set[str] = set()
        self.usage = Usage()
        self.thinking: list[str] = []  # thought text not yet sealed by a signature, shown or not
        self.pending: tuple[str, str] | None = None  # (signature, thinking) no call has claimed yet
        self.signatures: list[tuple[str | None, str, str]] = []  # (call id or None, signature, thinking)
        self.response: Event | None = None  # the terminal event's response, for the previous_response_id store

    def feed(self, event: object) -> list[Event]:
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise TranslatorError(f"no transition for {type(event).__name__} in state {self.state.value}")
        out: list[Event] = []
        if self.state is State.FRESH:
            self._start(out)
        handler(self, event, out)
        return out

    def fail(self, error: ProxyError) -> list[Event]:
        """An in-band failure (§4.5.5): response.failed ends the stream."""
        if self.state is State.DONE:
            return []
        out: list[Event] = []
        if self.state is State.FRESH:
            self._start(out)
        self._close(out)  # the grammar has no open item before the terminal event
        message = error.message
        if error.retry_after is not None:  # Codex waits this long before retrying (CODEX sse/responses.rs)
            message += f" Please try again in {error.retry_after:.1f}s."
        error_body = {"code": FAILURE_CODES.get(error.kind, "server_error"), "message": message}
        self._end("response.failed", "failed", out, error=error_body)
        return out

    # --- plumbing ----------------------------------------------------------------------

    def _emit(self, kind: str, out: list[Event], **fields: Any) -> None:
        out.append({"type": kind, **fields, "sequence_number": self.sequence})
        self.sequence += 1

    def _response(self, status: str, **fields: Any) -> Event:
        return {"id": self.response_id, "object": "response", "created_at": self.created, "status": status,
                "error": None, "incomplete_details": None, "model": self.model, "output": list(self.output),
                **self.echo, "usage": None, **fields}

    def _start(self, out: list[Event]) -> None:
        self.state = State.IDLE
        self._emit("response.created", out, response=self._response("in_progress"))
        self._emit("response.in_progress", out, response=self._response("in_progress"))

    def _end(self, kind: str, status: str, out: list[Event], **fields: Any) -> None:
        u = self.usage
        output = u.candidates + u.thoughts
        # cache_write_tokens: the current SDK type requires it; caching is implicit upstream (as Anthropic's 0).
        usage = {"input_tokens": u.prompt, "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": 0},
                 "output_tokens": output, "output_tokens_details": {"reasoning_tokens": u.thoughts},
                 "total_tokens": u.prompt + output}
        self.response = self._response(status, usage=usage, **fields)
        self._emit(kind, out, response=self.response)
        self.state = State.DONE

    def _ref(self) -> Event:
        return {"item_id": self.item_id, "output_index": len(self.output)}

    def _add(self, item: Event, out: list[Event]) -> None:
        self._emit("response.output_item.added", out, output_index=len(self.output), item=item)

    def _done(self, item: Event, out: list[Event]) -> None:
        self._emit("response.output_item.done", out, output_index=len(self.output), item=item)
        self.output.append(item)

    def _open(self, state: State, prefix: str) -> None:
        self.state, self.item_id, self.parts, self.signature = state, self.new_item_id(prefix), [], None

    def _close(self, out: list[Event]) -> None:
        text = "".join(self.parts)
        if self.state is State.MESSAGE:
            ref = {**self._ref(), "content_index": 0}
            self._emit("response.output_text.done", out, **ref, text=text, logprobs=[])
            self._emit("response.content_part.done", out, **ref, part=_output_text(text))
            self._done({"id": self.item_id, "type": "message", "status": "completed",
                        "content": [_output_text(text)], "role": "assistant"}, out)
        elif self.state is State.REASONING:
            ref = {**self._ref(), "summary_index": 0}
            self._emit("response.reasoning_summary_text.done", out, **ref, text=text)
            self._emit("response.reasoning_summary_part.done", out, **ref, part=_summary_text(text))
            self._done(_reasoning(self.item_id, [text], self.signature), out)
        else:
            return
        self.state = State.IDLE

    def _seal(self) -> str:
        """The thinking a signature seals; later thoughts belong to the next one."""
        thinking, self.thinking = "".join(self.thinking), []
        return thinking

    def _carry(self, signature: str, out: list[Event]) -> None:
        """Put a signature into a reasoning item: the open one, else a new one with no summary."""
        if self.state is State.REASONING:
            self.signature = signature
            self._close(out)  # signed, it is complete: later thoughts open another item
            return
        self._close(out)
        item = _reasoning(self.new_item_id("rs"), [], signature)
        self._add(item, out)
        self._done(item, out)


def _output_text(text: str) -> Event:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _summary_text(text: str) -> Event:
    return {"type": "summary_text", "text": text}


def _reasoning(item_id: str, summary: list[str], signature: str | None) -> Event:
    return {"id": item_id, "type": "reasoning", "summary": [_summary_text(t) for t in summary],
            "encrypted_content": signature}


# --- transitions (state, event) → handler ----------------------------------------------


def _text(m: ResponsesStream, e: TextDelta, out: list[Event]) -> None:
    if not e.text:
        return  # never open a message for nothing
    if m.state is not State.MESSAGE:
        m._close(out)
        m._open(State.MESSAGE, "msg")
        m._add({"id": m.item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}, out)
        m._emit("response.content_part.added", out, **m._ref(), content_index=0, part=_output_text(""))
    m.parts.append(e.text)
    m._emit("response.output_text.delta", out, **m._ref(), content_index=0, delta=e.text, logprobs=[])


def _thought(m: ResponsesStream, e: ThoughtDelta, out: list[Event]) -> None:
    m.thinking.append(e.text)
    if not m.reasoning or not e.text:
        return
    if m.state is not State.REASONING:
        m._close(out)
        m._open(State.REASONING, "rs")
        m._add(_reasoning(m.item_id, [], None), out)
        m._emit("response.reasoning_summary_part.added", out, **m._ref(), summary_index=0, part=_summary_text(""))
    m.parts.append(e.text)
    m._emit("response.reasoning_summary_text.delta", out, **m._ref(), summary_index=0, delta=e.text)


def _signature(m: ResponsesStream, e: ThoughtSignature, out: list[Event]) -> None:
    thinking = m._seal()
    m.signatures.append((None, e.signature, thinking))
    m.pending = (e.signature, thinking)  # the next call follows this signature
    m._carry(e.signature, out)


def _tool_call(m: ResponsesStream, e: ToolCall, out: list[Event]) -> None:
    call_id = e.id if e.id and e.id not in m.call_ids else m.new_call_id()  # outputs are matched by call_id
    m.call_ids.add(call_id)
    if e.signature:
        # Gemini signs the call, not the thought: the reasoning item before the call carries it.
        m.signatures.append((call_id, e.signature, m._seal()))
        m._carry(e.signature, out)
    elif m.pending:
        m.signatures.append((call_id, *m.pending))
    m.pending = None
    m._close(out)
    name, kind = m.tools.get(e.name, (e.name, "function"))
    args = client_arguments(e.args)
    CALL_ITEMS.get(kind, _function_call)(m, call_id, name, args, out)


def _streamed_call(m: ResponsesStream, item: Event, key: str, value: str, out: list[Event], **done: Any) -> None:
    """A call item whose `key` string streams as one delta."""
    m._add(item, out)
    ref = {"item_id": item["id"], "output_index": len(m.output)}
    prefix = "response.function_call_arguments" if key == "arguments" else "response.custom_tool_call_input"
    m._emit(prefix + ".delta", out, **ref, delta=value)
    m._emit(prefix + ".done", out, **ref, **{key: value}, **done)
    m._done({**item, "status": "completed", key: value}, out)


def _function_call(m: ResponsesStream, call_id: str, name: str, args: Event, out: list[Event]) -> None:
    item = {"id": m.new_item_id("fc"), "type": "function_call", "status": "in_progress", "arguments": "",
            "call_id": call_id, "name": name}
    _streamed_call(m, item, "arguments", orjson.dumps(args).decode(), out, name=name)


def _custom_call(m: ResponsesStream, call_id: str, name: str, args: Event, out: list[Event]) -> None:
    # A freeform tool is declared upstream with one string property `input`: its raw text.
    raw = args.get("input", "")
    item = {"id": m.new_item_id("ctc"), "type": "custom_tool_call", "status": "in_progress", "call_id": call_id,
            "name": name, "input": ""}
    _streamed_call(m, item, "input", raw if isinstance(raw, str) else orjson.dumps(raw).decode(), out)


def _local_shell_call(m: ResponsesStream, call_id: str, name: str, args: Event, out: list[Event]) -> None:
    command = args.get("command")
    if isinstance(command, str):
        argv = ["bash", "-lc", command]  # the model sent a command line, not argv
    else:
        argv = [str(c) for c in command] if isinstance(command, list) else []
    action: Event = {"type": "exec", "command": argv, "env": {}}  # env: required by the SDK type
    if args.get("workdir"):
        action["working_directory"] = args["workdir"]
    if args.get("timeout_ms") is not None:
        action["timeout_ms"] = args["timeout_ms"]
    item = {"type": "local_shell_call", "id": m.new_item_id("lsc"), "call_id": call_id, "status": "in_progress",
            "action": action}
    m._add(item, out)  # no delta events exist for this item
    m._done({**item, "status": "completed"}, out)


CALL_ITEMS: dict[str, Callable[[ResponsesStream, str, str, Event, list[Event]], None]] = {
    "function": _function_call, "custom": _custom_call, "local_shell": _local_shell_call,
}


def _image(m: ResponsesStream, e: InlineImage, out: list[Event]) -> None:
    _text(m, TextDelta(image_markdown(e)), out)


def _usage(m: ResponsesStream, e: Usage, out: list[Event]) -> None:
    m.usage = e


def _finish(m: ResponsesStream, e: Finish, out: list[Event]) -> None:
    m._close(out)
    m.usage = e.usage
    reason = INCOMPLETE_REASONS.get(ending(e, called=bool(m.call_ids)))
    if reason is None:
        m._end("response.completed", "completed", out)
    else:
        m._end("response.incomplete", "incomplete", out, incomplete_details={"reason": reason})


INCOMPLETE_REASONS = {Ending.REFUSED: "content_filter", Ending.MAX_TOKENS: "max_output_tokens"}
_LIVE = (State.FRESH, State.IDLE, State.MESSAGE, State.REASONING)
TRANSITIONS: dict[tuple[State, type], Callable[[ResponsesStream, Any, list[Event]], None]] = {
    **{(state, TextDelta): _text for state in _LIVE},
    **{(state, ThoughtDelta): _thought for state in _LIVE},
    **{(state, ThoughtSignature): _signature for state in _LIVE},
    **{(state, ToolCall): _tool_call for state in _LIVE},
    **{(state, InlineImage): _image for state in _LIVE},
    **{(state, Usage): _usage for state in _LIVE},
    **{(state, Finish): _finish for state in _LIVE},
}

PROTOCOL = "responses"  # its name in the request monitor and the metrics
HEARTBEAT = b": keep-alive\n\n"  # an SSE comment: the SDK and Codex skip it


def encode(events: list[Event]) -> bytes:
    return b"".join(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
                    for event in events)


class Accumulator:
    """The non-stream response: the terminal event's response already holds every item and the usage."""

    def __init__(self) -> None:
        self.body: Event | None = None

    def apply(self, events: list[Event]) -> None:
        for event in events:
            if event["type"] in TERMINAL:
                self.body = event["response"]
