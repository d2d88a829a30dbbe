"""Anthropic Messages request → the upstream (Gemini-shaped) request (pure).

Rules from client-protocols.md §2.3 and §7 and the upstream doc §4: roles become
user/model with consecutive same-role turns merged; system text (including Claude Code's
`role: "system"` messages) becomes systemInstruction without the volatile billing header;
`cache_control` and every other client-only field is dropped because nothing is copied
blindly; tool results follow their calls in call order; signatures go only to the family
that issued them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ErrorKind, ProxyError
from ..upstream import models
from . import thinking as thinking_plan
from .schema import sanitize_function_name, sanitize_schema

BILLING_HEADER = "x-anthropic-billing-header:"  # changes every request; triggers fake 429s upstream
SKIP_SIGNATURE = "skip_thought_signature_validator"  # Gemini's documented bypass (upstream doc §4.6)
INTERRUPTED = "[Tool call was interrupted.]"



class Remembered(Protocol):
    family: str
    signature: str
    thinking: str


class SignatureLookup(Protocol):
    """What the daemon remembers of signatures the upstream issued (accounts/signatures.py)."""

    def for_tool(self, tool_id: str) -> Remembered | None:
        """The signature (and the thinking it seals) of the call with this id."""

    def family_of(self, signature: str) -> str | None:
        """The family that issued this signature, None when it was never seen."""


@dataclass(frozen=True, slots=True)
class Translated:
    model: str  # the upstream model id
    request: dict[str, Any]  # the envelope's "request" object
    stream: bool
    show_thoughts: bool
    tool_names: dict[str, str]  # upstream function name → the client's tool name
    stop_sequences: tuple[str, ...]


def invalid(message: str) -> ProxyError:
    return ProxyError(ErrorKind.INVALID_REQUEST, message)


def translate(body: Any, *, model: str, session_key: str, signatures: SignatureLookup) -> Translated:
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: must be a non-empty array")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid("max_tokens: must be a positive integer")
    family = models.family(model)

    tool_names: dict[str, str] = {}  # upstream → client
    declarations = _tools(body.get("tools"), family, tool_names)
    client_to_upstream = {client: upstream for upstream, client in tool_names.items()}

    system_parts = _system_parts(body.get("system"))
    contents = _contents(messages, family, client_to_upstream, signatures, system_parts)
    if family == "claude" and contents[-1]["role"] == "model":
        raise invalid("this model does not support assistant message prefill: the conversation must end with a user message")

    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    effort = (body.get("output_config") or {}).get("effort") if isinstance(body.get("output_config"), dict) else None
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    requested = str(thinking.get("type") or "disabled")
    if choice.get("type") in ("any", "tool"):
        requested = "disabled"  # forced tool use and extended thinking do not mix (§7.7)
    budget = thinking.get("budget_tokens") if isinstance(thinking.get("budget_tokens"), int) else None
    plan = thinking_plan.plan(model, requested, budget, effort, max_tokens)

    request: dict[str, Any] = {"contents": contents, "generationConfig": _generation_config(body, plan)}
    if system_parts:
        request["systemInstruction"] = {"role": "user", "parts": system_parts}
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
        request["toolConfig"] = {"functionCallingConfig": _tool_choice(choice, family, client_to_upstream)}
    request["sessionId"] = session_id(session_key)
    return Translated(model, request, body.get("stream") is True, plan.show_thoughts, tool_names, stop_sequences(body))


def session_id(key: str) -> str:
    """A stable upstream sessionId per conversation, in the native client's shape (upstream doc §4.8)."""
    return "-%d" % (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1)


# --- system ------------------------------------------------------------------------------


def _system_parts(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return _system_text(system)
    if not isinstance(system, list):
        raise invalid("system: must be a string or an array of text blocks")
    parts: list[dict[str, Any]] = []
    for block in system:
        if isinstance(block, dict) and block.get("type") == "text":
            parts += _system_text(str(block.get("text") or ""))
    return parts


def _system_text(text: str) -> list[dict[str, Any]]:
    if not text.strip() or text.startswith(BILLING_HEADER):
        return []
    return [{"text": text}]


# --- messages ------------------------------------------------------------------------------


def _contents(
    messages: list[Any],
    family: str,
    names: dict[str, str],
    signatures: SignatureLookup,
    system_parts: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_use id → upstream function name, for the results
    pending_calls: list[str] = []  # ids of the last model turn's calls still without a result
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise invalid(f"messages.{index}.role: must be user or assistant")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise invalid(f"messages.{index}.content: must be a string or an array of blocks")
        if message["role"] == "system":  # Claude Code 2.1 sends these inside messages
            system_parts += _system_parts(blocks)
            continue
        if message["role"] == "assistant":
            _close_interrupted(contents, pending_calls, call_names)
            parts, pending_calls = _assistant_parts(blocks, family, names, signatures, call_names)
            _append(contents, "model", parts)
        else:
            parts = _user_parts(blocks, call_names, pending_calls, index)
            _append(contents, "user", parts)
    if not contents:
        raise invalid("messages: there is no content to send")
    if contents[0]["role"] != "user":
        contents.insert(0, {"role": "user", "parts": [{"text": "."}]})  # the upstream wants a user turn first
    return contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"] += parts
    else:
        contents.append({"role": role, "parts": parts})


def _assistant_parts(
    blocks: list[Any], family: str, names: dict[str, str], signatures: SignatureLookup, call_names: dict[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    thoughts: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    calls: list[str] = []
    carried = ""  # the signature of this turn's thinking, for Gemini's first call
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and block.get("text"):
            others.append({"text": block["text"]})
        elif kind == "thinking" and block.get("signature"):
            carried = block["signature"]
            if family == "claude" and _issued_by(signatures, block["signature"], "claude"):
                thoughts.append({"text": block.get("thinking") or "", "thought": True, "thoughtSignature": block["signature"]})
        elif kind == "tool_use":
            tool_id = str(block.get("id") or "")
            upstream_name = names.get(str(block.get("name")), sanitize_function_name(str(block.get("name") or "tool"), set()))
            call_names[tool_id] = upstream_name
            part: dict[str, Any] = {"functionCall": {"name": upstream_name, "args": block.get("input") or {}, "id": tool_id}}
            if family == "gemini" and not calls:  # only the first call of a turn needs one
                part["thoughtSignature"] = _gemini_call_signature(signatures, tool_id, carried)
            calls.append(tool_id)
            others.append(part)
    if family == "claude" and calls and not thoughts:
        # The client dropped (or never kept) the signed thinking of a tool turn; Claude with
        # thinking on refuses such a turn, so restore it from what the upstream issued.
        remembered = signatures.for_tool(calls[0])
        if remembered is not None and remembered.family == "claude" and remembered.thinking:
            thoughts.append({"text": remembered.thinking, "thought": True, "thoughtSignature": remembered.signature})
    return thoughts + others, calls  # Claude wants thinking first (upstream doc §4.6)


def _issued_by(signatures: SignatureLookup, signature: str, family: str) -> bool:
    """Whether a replayed signature may go to `family`: known ones must match; unknown
    ones are assumed to come from the family the conversation is using."""
    known = signatures.family_of(signature)
    return known is None or known == family


def _gemini_call_signature(signatures: SignatureLookup, tool_id: str, carried: str) -> str:
    remembered = signatures.for_tool(tool_id)
    if remembered is not None and remembered.family == "gemini":
        return remembered.signature
    if carried and _issued_by(signatures, carried, "gemini"):
        return carried
    return SKIP_SIGNATURE  # lost, or another family's: never hand Gemini a foreign signature


def _user_parts(blocks: list[Any], call_names: dict[str, str], pending: list[str], index: int) -> list[dict[str, Any]]:
    responses: dict[str, dict[str, Any]] = {}
    media: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise invalid(f"messages.{index}.content.{position}: must be an object")
        kind = block.get("type")
        if kind == "tool_result":
            tool_id = str(block.get("tool_use_id") or "")
            text, images = _result_content(block.get("content"), index, position)
            if tool_id not in call_names:
                others.append({"text": text or "(tool result)"})  # a result with no call: plain text
                continue
            key = "error" if block.get("is_error") else "result"
            responses[tool_id] = {"functionResponse": {"id": tool_id, "name": call_names[tool_id], "response": {key: text}}}
            media += images
        else:
            others += _content_part(block, index, position)
    ordered = [responses.pop(tool_id) for tool_id in pending if tool_id in responses]
    ordered += [{"functionResponse": {"id": t, "name": call_names[t], "response": {"result": INTERRUPTED}}}
                for t in pending if t not in {p["functionResponse"]["id"] for p in ordered}]
    pending.clear()
    return ordered + list(responses.values()) + media + others  # responses first and contiguous


def _close_interrupted(contents: list[dict[str, Any]], pending: list[str], call_names: dict[str, str]) -> None:
    """Calls answered by no user turn before the next assistant turn get a synthetic result."""
    if pending:
        parts = [{"functionResponse": {"id": t, "name": call_names[t], "response": {"result": INTERRUPTED}}} for t in pending]
        _append(contents, "user", parts)
        pending.clear()


def _result_content(content: Any, index: int, position: int) -> tuple[str, list[dict[str, Any]]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise invalid(f"messages.{index}.content.{position}.content: must be a string or an array")
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif isinstance(block, dict):
            media += _content_part(block, index, position)
    return "\n".join(texts), media


def _content_part(block: dict[str, Any], index: int, position: int) -> list[dict[str, Any]]:
    kind = block.get("type")
    where = f"messages.{index}.content.{position}"
    if kind == "text":
        return [{"text": block["text"]}] if block.get("text") else []
    if kind in ("image", "document"):
        source = block.get("source") if isinstance(block.get("source"), dict) else {}
        if source.get("type") == "base64" and source.get("data"):
            return [{"inlineData": {"mimeType": str(source.get("media_type") or ""), "data": source["data"]}}]
        if source.get("type") == "text" and source.get("data"):
            return [{"text": str(source["data"])}]
        raise invalid(f"{where}.source: expected a base64, url or text source")
    if kind in ("thinking", "redacted_thinking", "tool_use"):
        return []  # not meaningful in a user turn
    return []  # server-tool blocks and unknown kinds carry nothing the upstream accepts


# --- tools --------------------------------------------------------------------------------


def _tools(tools: Any, family: str, tool_names: dict[str, str]) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools: must be an array")
    declarations = []
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict) or not tool.get("name"):
            raise invalid(f"tools.{position}: must be an object with a name")
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, bash …) cannot be combined with functions upstream
        name = sanitize_function_name(str(tool["name"]), set(tool_names))
        tool_names[name] = str(tool["name"])
        declaration = {"name": name, "parameters": sanitize_schema(tool.get("input_schema") or {"type": "object"},
                                                                  for_claude=family == "claude")}
        if tool.get("description"):
            declaration["description"] = str(tool["description"])
        declarations.append(declaration)
    return declarations


def _tool_choice(choice: dict[str, Any], family: str, names: dict[str, str]) -> dict[str, Any]:
    kind = choice.get("type", "auto")
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "tool":
        return {"mode": "ANY", "allowedFunctionNames": [names.get(str(choice.get("name")), str(choice.get("name")))]}
    if kind == "none":
        return {"mode": "NONE"}
    return {"mode": "VALIDATED" if family == "claude" else "AUTO"}  # peers force VALIDATED for Claude


# --- sampling ------------------------------------------------------------------------------


def _generation_config(body: dict[str, Any], plan: thinking_plan.ThinkingPlan) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": plan.max_output_tokens}
    if plan.config is not None:
        config["thinkingConfig"] = plan.config
    temperature, top_p, top_k = body.get("temperature"), body.get("top_p"), body.get("top_k")
    if plan.restrict_sampling:
        temperature, top_k = None, None
        top_p = top_p if isinstance(top_p, (int, float)) and top_p >= 0.95 else None
    for key, value in (("temperature", temperature), ("topP", top_p), ("topK", top_k)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            config[key] = value
    return config  # stop sequences are enforced by the daemon itself (translate/stops.py)


def stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    stops = body.get("stop_sequences")
    if stops is None:
        return ()
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop_sequences: must be an array of strings")
    return tuple(s for s in stops if s)
