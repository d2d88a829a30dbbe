"""Gemini `streamGenerateContent?alt=sse` stream checker (client-protocols.md 1.1, 5.4, 5.5, 6)."""

from __future__ import annotations

from typing import Any

from . import guarded, is_int, load_json, one_of, parse_sse, want

TOP_KEYS = {"candidates", "promptFeedback", "usageMetadata", "modelVersion", "responseId", "createTime",
            "modelStatus"}
LEAKS = {"response", "traceId", "metadata"}  # the v1internal envelope (UP 4.10) must be unwrapped
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult"}
PART_EXTRA = {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
FINISH_REASONS = {"FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "LANGUAGE", "OTHER",
                  "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL", "IMAGE_SAFETY",
                  "UNEXPECTED_TOOL_CALL", "IMAGE_PROHIBITED_CONTENT", "NO_IMAGE", "IMAGE_RECITATION",
                  "IMAGE_OTHER", "TOO_MANY_TOOL_CALLS", "MISSING_THOUGHT_SIGNATURE"}
BLOCK_REASONS = {"BLOCKED_REASON_UNSPECIFIED", "SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT",
                 "IMAGE_SAFETY", "MODEL_ARMOR", "JAILBREAK"}
COUNTS = ("promptTokenCount", "candidatesTokenCount", "totalTokenCount", "thoughtsTokenCount",
          "cachedContentTokenCount", "toolUsePromptTokenCount")


def _part(i: int, part: Any, summary: dict | None) -> None:
    want(i, isinstance(part, dict), "part-shape", "part must be an object")
    data_keys = set(part) & PART_DATA
    want(i, len(data_keys) == 1, "part-shape", f"part needs exactly one of {sorted(PART_DATA)}, has {sorted(part)}")
    extra = set(part) - PART_DATA - PART_EXTRA
    want(i, not extra, "part-shape", f"unknown part keys {sorted(extra)}")
    want(i, isinstance(part.get("thought", False), bool), "part-shape", "thought must be a boolean")
    sig = part.get("thoughtSignature")
    want(i, sig is None or isinstance(sig, str) and sig, "part-shape", "thoughtSignature must be a non-empty string")
    if "text" in part:
        want(i, isinstance(part["text"], str), "part-shape", "text must be a string")
    if "functionCall" in part:
        call = part["functionCall"]
        want(i, isinstance(call, dict) and isinstance(call.get("name"), str) and call["name"], "function-call",
             "functionCall needs a name")
        want(i, isinstance(call.get("args", {}), dict), "function-call", "functionCall.args must be an object")
        want(i, isinstance(call.get("id", ""), str), "function-call", "functionCall.id must be a string")
    if summary is None:
        return
    if sig:
        summary["thought_signatures"].append(sig)
    if "text" in part:
        summary["thoughts" if part.get("thought") else "text"] += part["text"]
    elif "functionCall" in part:
        call = part["functionCall"]
        summary["function_calls"].append({"name": call["name"], "args": call.get("args", {}),
                                          "id": call.get("id"), "thought_signature": sig})


def _usage(i: int, usage: Any, previous: dict | None) -> dict:
    want(i, isinstance(usage, dict), "usage", "usageMetadata must be an object")
    for key in COUNTS:
        want(i, key not in usage or is_int(usage[key]), "usage", f"usageMetadata.{key} must be an integer")
    if previous:
        for key in ("candidatesTokenCount", "thoughtsTokenCount"):
            want(i, usage.get(key, 0) >= previous.get(key, 0), "usage-cumulative",
                 f"usageMetadata.{key} went down ({previous.get(key)} -> {usage.get(key)}); it is cumulative")
    return usage


@guarded
def check_gemini_stream(body: bytes) -> dict[str, Any]:
    """Check one Gemini SSE body (what google-genai's `_iter_response_stream` reads); return a summary."""
    events = parse_sse(body, fields=("data",), comments=False)
    want(0, events, "empty", "stream has no events")
    out: dict[str, Any] = {"text": "", "thoughts": "", "function_calls": [], "thought_signatures": [],
                           "finish_reason": None, "block_reason": None, "usage": None, "model_version": None,
                           "response_id": None, "candidates": 0, "error": None, "chunks": 0}
    finished: dict[int, str] = {}
    seen: set[int] = set()
    ended = False
    for ev in events:
        i = ev.index
        want(i, ev.data != "[DONE]", "no-done", "Gemini streams have no [DONE]")
        want(i, not ended, "after-end", "chunk after the final (finish / block / error) chunk")
        chunk = load_json(i, ev.data)
        want(i, isinstance(chunk, dict), "chunk-shape", "chunk must be a JSON object")
        if "error" in chunk:
            err = chunk["error"]
            want(i, set(chunk) == {"error"} and isinstance(err, dict), "error-shape",
                 "error chunk is {\"error\": {...}}")
            want(i, isinstance(err.get("code"), int) and 400 <= err["code"] <= 599, "error-shape", "error.code 4xx/5xx")
            want(i, isinstance(err.get("message"), str) and isinstance(err.get("status"), str), "error-shape",
                 "error needs message and status")
            out["error"], ended = err, True
            continue
        want(i, not set(chunk) & LEAKS, "envelope-leak", f"upstream envelope keys leaked: {sorted(set(chunk) & LEAKS)}")
        want(i, set(chunk) <= TOP_KEYS, "chunk-shape", f"unknown keys {sorted(set(chunk) - TOP_KEYS)}")
        want(i, set(chunk) & {"candidates", "promptFeedback", "usageMetadata"}, "chunk-shape",
             "chunk carries no candidates, promptFeedback or usageMetadata")
        out["chunks"] += 1
        for key, name in (("modelVersion", "model_version"), ("responseId", "response_id")):
            if key in chunk:
                want(i, isinstance(chunk[key], str), "chunk-shape", f"{key} must be a string")
                out[name] = chunk[key]
        if "usageMetadata" in chunk:
            out["usage"] = _usage(i, chunk["usageMetadata"], out["usage"])
        block = (chunk.get("promptFeedback") or {}).get("blockReason")
        if block is not None:
            want(i, one_of(block, BLOCK_REASONS), "block-reason", f"invalid blockReason {block!r}")
            want(i, not chunk.get("candidates"), "block-reason", "blocked prompt with candidates")
            out["block_reason"], ended = block, True
            continue
        candidates = chunk.get("candidates", [])
        want(i, isinstance(candidates, list), "candidates", "candidates must be a list")
        for cand in candidates:
            want(i, isinstance(cand, dict), "candidates", "candidate must be an object")
            idx = cand.get("index", 0)
            want(i, is_int(idx), "candidates", "candidate index must be an integer")
            want(i, idx not in finished, "after-finish", f"candidate {idx} continues after its finishReason")
            seen.add(idx)
            content = cand.get("content")
            if content is not None:
                want(i, isinstance(content, dict) and content.get("role") == "model", "content-shape",
                     "candidate content needs role model")
                parts = content.get("parts", [])
                want(i, isinstance(parts, list), "content-shape", "content.parts must be a list")
                want(i, parts or "finishReason" in cand, "content-shape", "content with no parts outside the finish")
                for part in parts:
                    _part(i, part, out if idx == 0 else None)
            reason = cand.get("finishReason")
            if reason is not None:
                want(i, one_of(reason, FINISH_REASONS), "finish-reason", f"invalid finishReason {reason!r}")
                finished[idx] = reason
                if idx == 0:
                    out["finish_reason"] = reason
        if seen and len(finished) == len(seen):
            ended = True
    out["candidates"] = len(seen)
    want(events[-1].index, ended, "truncated", "stream ended without finishReason, blockReason or an error chunk")
    return out
