"""Anthropic Messages stream checker (client-protocols.md 1.1, 2.5, 2.5.5, 6)."""

from __future__ import annotations

import re
from typing import Any

from . import GrammarError, guarded, is_int, load_json, one_of, parse_args_object, parse_sse, want

STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                "model_context_window_exceeded"}
ERROR_TYPES = {"invalid_request_error", "authentication_error", "billing_error", "permission_error",
               "not_found_error", "request_too_large", "rate_limit_error", "api_error", "timeout_error",
               "overloaded_error"}
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
DELTA_FOR = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking",
             "input_json_delta": "tool_use"}
TOOL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _usage(i: int, usage: Any, where: str, required: tuple[str, ...]) -> dict:
    want(i, isinstance(usage, dict), "usage", f"{where}.usage must be an object")
    for key in required:
        want(i, usage.get(key) is not None, "usage", f"{where}.usage.{key} missing")
    for key in USAGE_KEYS:
        if key in usage and usage[key] is not None:
            want(i, is_int(usage[key]), "usage", f"{where}.usage.{key} must be a non-negative integer")
    return {k: usage[k] for k in USAGE_KEYS if usage.get(k) is not None}


def _start_block(i: int, index: Any, block: Any, n_blocks: int) -> dict:
    want(i, index == n_blocks and is_int(index), "index-order",
         f"content_block_start index {index!r}, expected {n_blocks} (0,1,2... with no gaps)")
    want(i, isinstance(block, dict), "block-shape", "content_block must be an object")
    kind = block.get("type")
    if kind == "text":
        want(i, block.get("text") == "", "block-shape", "text block must start with text \"\"")
        return {"type": "text", "text": ""}
    if kind == "thinking":
        want(i, block.get("thinking") == "" and block.get("signature", "") == "", "block-shape",
             "thinking block must start with thinking \"\" and signature \"\"")
        return {"type": "thinking", "thinking": "", "signature": None}
    if kind == "redacted_thinking":
        want(i, isinstance(block.get("data"), str) and block["data"], "block-shape", "redacted_thinking needs data")
        return {"type": "redacted_thinking", "data": block["data"]}
    if kind == "tool_use":
        want(i, isinstance(block.get("id"), str) and TOOL_ID.fullmatch(block["id"]), "block-shape",
             f"tool_use id must match [A-Za-z0-9_-]{{1,64}}: {block.get('id')!r}")
        want(i, isinstance(block.get("name"), str) and block["name"], "block-shape", "tool_use needs a name")
        want(i, block.get("input") == {}, "block-shape", "tool_use must start with input {}")
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": None, "_json": ""}
    raise GrammarError(i, "block-type", f"unknown content block type {kind!r}")


def _delta(i: int, block: dict, delta: Any) -> None:
    want(i, isinstance(delta, dict), "delta-shape", "delta must be an object")
    kind = delta.get("type")
    want(i, one_of(kind, set(DELTA_FOR)), "delta-type", f"unknown delta type {kind!r}")
    want(i, DELTA_FOR[kind] == block["type"], "delta-kind", f"{kind} inside a {block['type']} block")
    key = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature",
           "input_json_delta": "partial_json"}[kind]
    value = delta.get(key)
    want(i, isinstance(value, str), "delta-shape", f"{kind}.{key} must be a string")
    if kind == "text_delta":
        block["text"] += value
    elif kind == "input_json_delta":
        block["_json"] += value
    elif kind == "thinking_delta":
        want(i, block["signature"] is None, "signature-order", "thinking_delta after signature_delta")
        block["thinking"] += value
    else:
        want(i, block["signature"] is None, "signature-order", "second signature_delta in one block")
        want(i, value != "", "signature-order", "empty signature_delta")
        block["signature"] = value


@guarded
def check_anthropic_stream(body: bytes, *, allow_empty_text: bool = False,
                           allow_unterminated: bool = False) -> dict[str, Any]:
    """Check one Anthropic Messages SSE body; return a summary dict.

    `allow_empty_text` / `allow_unterminated` exist only for SDK fixtures that break rules the
    daemon itself must keep (an empty text block; no blank line after the last event).
    """
    events = parse_sse(body, fields=("event", "data"), comments=False, allow_unterminated=allow_unterminated)
    want(0, events, "empty", "stream has no events")
    out: dict[str, Any] = {"id": None, "model": None, "blocks": [], "stop_reason": None, "stop_sequence": None,
                           "usage": {}, "error": None, "pings": 0, "events": len(events)}
    blocks: list[dict] = out["blocks"]
    started = delta_seen = stopped = False
    open_block: dict | None = None
    for ev in events:
        i = ev.index
        want(i, not stopped and out["error"] is None, "after-end",
             "event after message_stop" if stopped else "event after an error event")
        want(i, ev.event is not None, "event-line", "every event needs an 'event:' line")
        data = load_json(i, ev.data)
        want(i, isinstance(data, dict) and data.get("type") == ev.event, "event-name",
             f"event name {ev.event!r} != data.type {data.get('type') if isinstance(data, dict) else data!r}")
        kind = ev.event
        if kind == "ping":
            out["pings"] += 1
            continue
        if kind == "error":
            err = data.get("error")
            want(i, isinstance(err, dict) and isinstance(err.get("message"), str), "error-shape",
                 "error event needs error.type and error.message")
            want(i, one_of(err.get("type"), ERROR_TYPES), "error-shape", f"unknown error type {err.get('type')!r}")
            out["error"] = {"type": err["type"], "message": err["message"]}
            continue
        if kind == "message_start":
            want(i, not started, "message-start", "message_start sent twice")
            msg = data.get("message")
            want(i, isinstance(msg, dict), "message-start", "message_start.message must be an object")
            want(i, isinstance(msg.get("id"), str) and msg["id"].startswith("msg_"), "message-start",
                 f"message id {msg.get('id')!r} must start with msg_")
            for key, value in (("type", "message"), ("role", "assistant"), ("content", []),
                               ("stop_reason", None), ("stop_sequence", None)):
                want(i, key in msg and msg[key] == value, "message-start", f"message.{key} must be {value!r}")
            want(i, isinstance(msg.get("model"), str) and msg["model"], "message-start", "message.model missing")
            out["usage"] = _usage(i, msg.get("usage"), "message", ("input_tokens", "output_tokens"))
            out["id"], out["model"], started = msg["id"], msg["model"], True
            continue
        want(i, started, "message-start", f"{kind} before message_start")
        if kind == "content_block_start":
            want(i, not delta_seen, "after-message-delta", "content block after message_delta")
            want(i, open_block is None, "one-open-block",
                 f"block {len(blocks)} started while block {len(blocks) - 1} is open")
            open_block = _start_block(i, data.get("index"), data.get("content_block"), len(blocks))
            blocks.append(open_block)
        elif kind in ("content_block_delta", "content_block_stop"):
            idx = data.get("index")
            want(i, open_block is not None and idx == len(blocks) - 1, "delta-closed-block",
                 f"{kind} for index {idx!r}; open block: {len(blocks) - 1 if open_block else None}")
            assert open_block is not None
            if kind == "content_block_delta":
                want(i, open_block["type"] != "redacted_thinking", "delta-kind", "delta for redacted_thinking")
                _delta(i, open_block, data.get("delta"))
                continue
            if open_block["type"] == "text" and not allow_empty_text:
                want(i, open_block["text"] != "", "empty-text-block", f"text block {idx} had no text")
            if open_block["type"] == "tool_use":
                open_block["input"] = parse_args_object(i, open_block.pop("_json"), "tool-json", empty_ok=True)
            open_block = None
        elif kind == "message_delta":
            want(i, not delta_seen, "message-delta-once", "second message_delta")
            want(i, open_block is None, "one-open-block", "message_delta while a block is open")
            delta = data.get("delta")
            want(i, isinstance(delta, dict), "message-delta", "message_delta.delta must be an object")
            reason, seq = delta.get("stop_reason"), delta.get("stop_sequence")
            want(i, one_of(reason, STOP_REASONS), "stop-reason", f"invalid stop_reason {reason!r}")
            if reason == "stop_sequence":
                want(i, isinstance(seq, str) and seq, "stop-sequence", "stop_sequence reason needs the sequence")
            else:
                want(i, seq is None, "stop-sequence", f"stop_sequence must be null with {reason}")
            usage = _usage(i, data.get("usage"), "message_delta", ("output_tokens",))
            produced = any(b.get("text") or b.get("thinking") or b["type"] in ("tool_use", "redacted_thinking")
                           for b in blocks)
            want(i, not produced or 0 < usage["output_tokens"] >= out["usage"]["output_tokens"], "usage-cumulative",
                 "message_delta output_tokens must be the cumulative total (>0, >= message_start's)")
            tools = any(b["type"] == "tool_use" for b in blocks)
            want(i, reason != "tool_use" or tools, "stop-reason", "stop_reason tool_use without a tool_use block")
            want(i, not tools or reason in ("tool_use", "refusal"), "stop-reason",
                 f"tool_use blocks but stop_reason {reason!r} (section 6)")
            out["usage"].update(usage)
            out["stop_reason"], out["stop_sequence"], delta_seen = reason, seq, True
        elif kind == "message_stop":
            want(i, delta_seen, "message-delta-once", "message_stop without message_delta")
            stopped = True
        else:
            raise GrammarError(i, "event-type", f"unknown event {kind!r}")
    last = events[-1].index
    want(last, stopped or out["error"] is not None, "truncated", "stream ended without message_stop or error")
    for block in blocks:
        block.pop("_json", None)
    return out
