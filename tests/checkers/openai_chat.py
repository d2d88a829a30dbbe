"""OpenAI Chat Completions stream checker (client-protocols.md 1.1, 3.4, 3.4.4, 6, 7.11)."""

from __future__ import annotations

from typing import Any

from . import guarded, is_int, load_json, one_of, parse_args_object, parse_sse, want

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}
DELTA_KEYS = {"role", "content", "reasoning_content", "reasoning", "refusal", "tool_calls", "images"}
TEXT_KEYS = ("content", "reasoning_content", "reasoning", "refusal")


def _usage(i: int, usage: Any) -> dict:
    want(i, isinstance(usage, dict), "usage", "usage chunk needs a usage object")
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        want(i, is_int(usage.get(key)), "usage", f"usage.{key} must be a non-negative integer")
    want(i, usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], "usage",
         "total_tokens != prompt_tokens + completion_tokens")
    return usage


def _tool_calls(i: int, entries: Any, calls: list[dict]) -> None:
    want(i, isinstance(entries, list) and entries, "tool-call", "delta.tool_calls must be a non-empty list")
    for entry in entries:
        want(i, isinstance(entry, dict) and is_int(entry.get("index")), "tool-call", "tool call entry needs index")
        k, fn = entry["index"], entry.get("function")
        want(i, isinstance(fn, dict) and isinstance(fn.get("arguments", ""), str), "tool-call",
             f"tool call {k}: function must be an object with string arguments")
        if k == len(calls):  # first delta of a new call
            want(i, isinstance(entry.get("id"), str) and entry["id"], "tool-call-first", f"call {k} needs an id")
            want(i, entry.get("type") == "function", "tool-call-first", f"call {k} first delta needs type function")
            want(i, isinstance(fn.get("name"), str) and fn["name"], "tool-call-first", f"call {k} needs function.name")
            want(i, entry["id"] not in {c["id"] for c in calls}, "tool-call-id", f"call id {entry['id']!r} reused")
            calls.append({"index": k, "id": entry["id"], "name": fn["name"], "arguments": fn.get("arguments", "")})
            continue
        want(i, k < len(calls), "tool-call-index", f"tool call index {k} skips ahead (have {len(calls)} calls)")
        want(i, k == len(calls) - 1, "tool-call-order", f"arguments for call {k} after call {len(calls) - 1} began")
        want(i, set(entry) <= {"index", "function"} and set(fn) <= {"arguments"}, "tool-call-repeat",
             f"call {k}: id/type/name may only appear in the call's first delta (accumulate_delta doubles them)")
        calls[k]["arguments"] += fn.get("arguments", "")


@guarded
def check_openai_chat_stream(body: bytes, *, include_usage: bool | None = None) -> dict[str, Any]:
    """Check one Chat Completions SSE body; return a summary dict.

    `include_usage`: True = the request set stream_options.include_usage (usage chunk required),
    False = it did not (no chunk may carry usage), None = accept either.
    """
    events = parse_sse(body, fields=("data",), comments=True)
    want(0, events, "empty", "stream has no events")
    out: dict[str, Any] = {"id": None, "model": None, "created": None, "content": "", "reasoning_content": "",
                           "refusal": None, "tool_calls": [], "finish_reason": None, "usage": None,
                           "error": None, "chunks": 0, "heartbeats": 0}
    calls: list[dict] = out["tool_calls"]
    done = False
    for ev in events:
        i = ev.index
        if ev.heartbeat:
            want(i, not done and out["error"] is None, "after-end", "comment after [DONE] / error chunk")
            out["heartbeats"] += 1
            continue
        want(i, not done, "done-last", "event after data: [DONE]")
        want(i, out["error"] is None, "after-error", "event after the error chunk")
        if ev.data is not None and ev.data.startswith("[DONE]"):
            want(i, ev.data == "[DONE]", "done-exact", f"expected 'data: [DONE]', got {ev.data!r}")
            want(i, out["finish_reason"] is not None, "finish-once", "[DONE] without a finish_reason chunk")
            want(i, include_usage is not True or out["usage"] is not None, "usage-chunk",
                 "include_usage requested but no usage chunk came")
            done = True
            continue
        chunk = load_json(i, ev.data)
        want(i, isinstance(chunk, dict), "chunk-shape", "chunk must be a JSON object")
        if chunk.get("error"):
            err = chunk["error"]
            want(i, isinstance(err, dict) and isinstance(err.get("message"), str), "error-shape",
                 "error chunk needs error.message")
            out["error"] = err
            continue
        out["chunks"] += 1
        want(i, chunk.get("object") == "chat.completion.chunk", "object", f"object is {chunk.get('object')!r}")
        want(i, isinstance(chunk.get("id"), str) and chunk["id"].startswith("chatcmpl-"), "id",
             f"id {chunk.get('id')!r} must start with chatcmpl-")
        want(i, isinstance(chunk.get("model"), str) and chunk["model"], "model", "model missing")
        want(i, is_int(chunk.get("created")), "created", "created must be an integer")
        if out["id"] is None:
            out.update(id=chunk["id"], model=chunk["model"], created=chunk["created"])
        for key in ("id", "model", "created"):
            want(i, chunk[key] == out[key], "same-" + key, f"{key} changed: {chunk[key]!r} != {out[key]!r}")
        choices = chunk.get("choices")
        want(i, isinstance(choices, list), "choices", "choices must be a list")
        if not choices:  # the usage chunk
            want(i, include_usage is not False, "usage-chunk", "usage chunk without include_usage")
            want(i, out["finish_reason"] is not None, "usage-chunk", "usage chunk before the finish_reason chunk")
            want(i, out["usage"] is None, "usage-chunk", "second usage chunk")
            out["usage"] = _usage(i, chunk.get("usage"))
            continue
        want(i, chunk.get("usage") is None, "usage-null", "usage must be null/absent on chunks with choices")
        want(i, out["finish_reason"] is None, "finish-once", "chunk with choices after the finish_reason chunk")
        want(i, len(choices) == 1 and isinstance(choices[0], dict) and choices[0].get("index") == 0, "choices",
             "exactly one choice with index 0")
        choice = choices[0]
        delta, finish = choice.get("delta"), choice.get("finish_reason")
        want(i, isinstance(delta, dict), "delta", "choice.delta must be an object")
        want(i, set(delta) <= DELTA_KEYS, "delta", f"unknown delta keys {sorted(set(delta) - DELTA_KEYS)}")
        if out["chunks"] == 1:
            want(i, delta.get("role") == "assistant", "role-first", "first chunk must carry role assistant")
            want(i, delta.get("content") in ("", None), "role-first", "first chunk content must be '' or null")
        else:
            want(i, "role" not in delta, "role-once", "role repeated after the first chunk")
        if finish is not None:
            want(i, one_of(finish, FINISH_REASONS), "finish-reason", f"invalid finish_reason {finish!r}")
            want(i, delta == {}, "finish-delta", "finish_reason chunk must have delta {}")
            want(i, finish != "tool_calls" or calls, "finish-reason", "finish_reason tool_calls without calls")
            want(i, not calls or finish in ("tool_calls", "content_filter"), "finish-reason",
                 f"tool calls but finish_reason {finish!r} (section 6)")
            for call in calls:
                call["parsed"] = parse_args_object(i, call["arguments"], "tool-json")
            out["finish_reason"] = finish
            continue
        for key in TEXT_KEYS:
            want(i, delta.get(key) is None or isinstance(delta[key], str), "delta", f"delta.{key} must be a string")
        out["content"] += delta.get("content") or ""
        out["reasoning_content"] += delta.get("reasoning_content") or delta.get("reasoning") or ""
        if delta.get("refusal"):
            out["refusal"] = (out["refusal"] or "") + delta["refusal"]
        if "tool_calls" in delta:
            _tool_calls(i, delta["tool_calls"], calls)
    want(events[-1].index, done or out["error"] is not None, "done-last",
         "stream must end with data: [DONE] (or an error chunk)")
    return out
