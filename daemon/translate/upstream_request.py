"""A Conversation → the upstream (Gemini-shaped) request (pure).

Rules from client-protocols.md §7 and the upstream doc §4, in one place for every client
protocol: consecutive same-role turns merge; the first turn is the user's; system text
loses the client identity lines that make the upstream answer a fake 429; tool names are
sanitised with a reverse map; results follow their calls in call order, and a call left
without one gets a synthetic result; signatures go only to the family that issued them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from ..upstream import models
from . import thinking as thinking_plan
from .conversation import Call, Conversation, Media, Part, Result, Text, Thought, Turn, invalid
from .schema import sanitize_function_name, sanitize_schema

SKIP_SIGNATURE = "skip_thought_signature_validator"  # Gemini's documented bypass (upstream doc §4.6)
INTERRUPTED = "[Tool call was interrupted.]"
# System lines the upstream answers with a fake bare 429 (client-protocols.md §7.2): Claude
# Code's per-request billing header is dropped, known identity sentences are reworded.
BILLING_HEADER = "x-anthropic-billing-header:"
IDENTITY_REWRITES: tuple[tuple[str, str], ...] = (
    ("You are a Claude agent, built on Anthropic's Claude Agent SDK.", "You are a coding agent."),
    ("You are Codex, an agent based on GPT-5.", "You are a coding agent."),
)


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


def build(conversation: Conversation, *, model: str, session_key: str, signatures: SignatureLookup,
          rewrites: tuple[tuple[str, str], ...] = ()) -> Translated:
    """`rewrites`: the user's own identity rewrites, applied after the built-in ones."""
    family = models.family(model)
    tool_names: dict[str, str] = {}  # upstream → client
    declarations = _declarations(conversation, family, tool_names)
    upstream_names = {client: upstream for upstream, client in tool_names.items()}
    contents = _Contents(family, upstream_names, signatures).build(conversation.turns)
    if family == "claude" and contents[-1]["role"] == "model":
        raise invalid("this model does not support assistant message prefill: the conversation must end with a user message")

    plan = _plan(conversation, model)
    if family == "claude" and plan.config is not None and _unsigned_tool_loop(contents):
        # Claude refuses a thinking request whose open tool loop has no signed thinking, and
        # none could be restored: this one turn goes without thinking (client-protocols.md §7.8).
        plan = _plan(conversation, model, requested="disabled")
    request: dict[str, Any] = {"contents": contents, "generationConfig": _generation_config(conversation, plan, family)}
    system = [{"text": text} for text in (system_text(t, rewrites) for t in conversation.system) if text]
    if system:
        request["systemInstruction"] = {"role": "user", "parts": system}
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
        request["toolConfig"] = {"functionCallingConfig": _tool_choice(conversation, family, upstream_names)}
    request["sessionId"] = session_id(session_key)
    return Translated(model, request, conversation.stream, plan.show_thoughts, tool_names, conversation.stop_sequences)


def session_id(key: str) -> str:
    """A stable upstream sessionId per conversation, in the native client's shape (upstream doc §4.8)."""
    return "-%d" % (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1)


def system_text(text: str, rewrites: tuple[tuple[str, str], ...] = ()) -> str:
    if not text.strip() or text.startswith(BILLING_HEADER):
        return ""
    for old, new in (*IDENTITY_REWRITES, *rewrites):
        if old in text:
            text = text.replace(old, new)
    return text


# --- turns ---------------------------------------------------------------------------------


class _Contents:
    """Turns → upstream contents, pairing every call with exactly one result."""

    def __init__(self, family: str, names: dict[str, str], signatures: SignatureLookup) -> None:
        self.family = family
        self.names = names  # client tool name → upstream name
        self.signatures = signatures
        self.call_names: dict[str, str] = {}  # call id → upstream function name, for the results
        self.pending: list[str] = []  # ids of the last model turn's calls still without a result
        self.contents: list[dict[str, Any]] = []

    def build(self, turns: list[Turn]) -> list[dict[str, Any]]:
        for turn in _merged(turns):
            if turn.role == "model":
                self._close_interrupted()
                self._append("model", self._model_parts(turn.parts))
            else:
                self._append("user", self._user_parts(turn.parts))
        if not self.contents:
            raise invalid("messages: there is no content to send")
        if self.contents[0]["role"] != "user":
            self.contents.insert(0, {"role": "user", "parts": [{"text": "."}]})  # the upstream wants a user turn first
        return self.contents

    def _append(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"] += parts
        else:
            self.contents.append({"role": role, "parts": parts})

    def _model_parts(self, parts: list[Part]) -> list[dict[str, Any]]:
        thoughts: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        calls: list[str] = []
        carried = ""  # the signature of this turn's thinking, for Gemini's first call
        first_call = next((part.id for part in parts if isinstance(part, Call)), "")
        for part in parts:
            if isinstance(part, Text) and part.text:
                others.append({"text": part.text})
            elif isinstance(part, Media):
                others.append(_inline(part))
            elif isinstance(part, Thought) and part.signature:
                carried = part.signature
                if self.family == "claude" and self._issued_by(part.signature, "claude"):
                    text = part.text or self._sealed_thinking(first_call, part.signature)
                    thoughts.append({"text": text, "thought": True, "thoughtSignature": part.signature})
            elif isinstance(part, Call):
                upstream_name = self.names.get(part.name) or sanitize_function_name(part.name or "tool", set())
                self.call_names[part.id] = upstream_name
                upstream: dict[str, Any] = {"functionCall": {"name": upstream_name, "args": part.args, "id": part.id}}
                if self.family == "gemini" and not calls:  # only the first call of a turn needs one
                    upstream["thoughtSignature"] = self._gemini_call_signature(part, carried)
                calls.append(part.id)
                others.append(upstream)
        if self.family == "claude" and calls and not thoughts:
            # The client dropped (or never had) the signed thinking of a tool turn; Claude with
            # thinking on refuses such a turn, so restore it from what the upstream issued.
            remembered = self.signatures.for_tool(calls[0])
            if remembered is not None and remembered.family == "claude" and remembered.thinking:
                thoughts.append({"text": remembered.thinking, "thought": True, "thoughtSignature": remembered.signature})
        self.pending = calls
        return thoughts + others  # Claude wants thinking first (upstream doc §4.6)

    def _sealed_thinking(self, call_id: str, signature: str) -> str:
        """The thinking a signature seals, when the client replayed the signature without it
        (a Responses reasoning item without a summary): Claude checks the pair."""
        remembered = self.signatures.for_tool(call_id) if call_id else None
        return remembered.thinking if remembered is not None and remembered.signature == signature else ""

    def _issued_by(self, signature: str, family: str) -> bool:
        """Whether a replayed signature may go to `family`: known ones must match; unknown
        ones are assumed to come from the family the conversation is using."""
        known = self.signatures.family_of(signature)
        return known is None or known == family

    def _gemini_call_signature(self, call: Call, carried: str) -> str:
        remembered = self.signatures.for_tool(call.id)
        if remembered is not None and remembered.family == "gemini":
            return remembered.signature
        for candidate in (call.signature, carried):
            if candidate and self._issued_by(candidate, "gemini"):
                return candidate
        return SKIP_SIGNATURE  # lost, or another family's: never hand Gemini a foreign signature

    def _user_parts(self, parts: list[Part]) -> list[dict[str, Any]]:
        responses: dict[str, dict[str, Any]] = {}
        media: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, Result):
                if part.call_id not in self.call_names:
                    others.append({"text": part.text or "(tool result)"})  # a result with no call: plain text
                    continue
                responses[part.call_id] = self._response(part.call_id, part.text, part.is_error)
                media += [_inline(m) for m in part.media]
            elif isinstance(part, Text) and part.text:
                others.append({"text": part.text})
            elif isinstance(part, Media):
                others.append(_inline(part))
        ordered = [responses.pop(t) if t in responses else self._response(t, INTERRUPTED) for t in self.pending]
        self.pending = []
        return ordered + list(responses.values()) + media + others  # responses first and contiguous

    def _close_interrupted(self) -> None:
        """Calls answered by no user turn before the next model turn get a synthetic result."""
        if self.pending:
            self._append("user", [self._response(t, INTERRUPTED) for t in self.pending])
            self.pending = []

    def _response(self, call_id: str, text: str, is_error: bool = False) -> dict[str, Any]:
        key = "error" if is_error else "result"
        return {"functionResponse": {"id": call_id, "name": self.call_names[call_id], "response": {key: text}}}


def _merged(turns: list[Turn]) -> list[Turn]:
    """Consecutive turns of one role as one turn: all results to one model turn sit together."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, merged[-1].parts + turn.parts)
        else:
            merged.append(Turn(turn.role, list(turn.parts)))
    return merged


def _inline(media: Media) -> dict[str, Any]:
    return {"inlineData": {"mimeType": media.mime_type, "data": media.data}}


# --- tools --------------------------------------------------------------------------------


def _declarations(conversation: Conversation, family: str, tool_names: dict[str, str]) -> list[dict[str, Any]]:
    declarations = []
    for tool in conversation.tools:
        name = sanitize_function_name(tool.name, set(tool_names))
        tool_names[name] = tool.name
        declaration: dict[str, Any] = {"name": name, "parameters": sanitize_schema(tool.schema or {"type": "object"},
                                                                                   for_claude=family == "claude")}
        if tool.description:
            declaration["description"] = tool.description
        declarations.append(declaration)
    return declarations


def _tool_choice(conversation: Conversation, family: str, names: dict[str, str]) -> dict[str, Any]:
    kind = conversation.tool_choice
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "tool":
        return {"mode": "ANY", "allowedFunctionNames": [names.get(conversation.forced_tool, conversation.forced_tool)]}
    if kind == "none":
        return {"mode": "NONE"}  # tools stay declared so history with calls remains valid
    return {"mode": "VALIDATED" if family == "claude" else "AUTO"}  # peers force VALIDATED for Claude


# --- thinking and sampling -----------------------------------------------------------------


def _unsigned_tool_loop(contents: list[dict[str, Any]]) -> bool:
    """The answer is awaited for calls whose model turn does not start with signed thinking."""
    if len(contents) < 2 or contents[-2]["role"] != "model":
        return False
    parts = contents[-2]["parts"]
    return any("functionCall" in part for part in parts) and not parts[0].get("thought")


def _plan(conversation: Conversation, model: str, requested: str | None = None) -> thinking_plan.ThinkingPlan:
    thinking = conversation.thinking
    requested = requested or thinking.requested
    if requested == "default":
        requested = "adaptive" if model.endswith("-thinking") else "disabled"
    if conversation.tool_choice in ("any", "tool"):
        requested = "disabled"  # forced tool use and extended thinking do not mix (§7.7)
    max_tokens = conversation.max_tokens or thinking_plan.MAX_OUTPUT[models.family(model)]
    return thinking_plan.plan(model, requested, thinking.budget, thinking.effort, max_tokens)


def _generation_config(conversation: Conversation, plan: thinking_plan.ThinkingPlan, family: str) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": plan.max_output_tokens}
    if plan.config is not None:
        config["thinkingConfig"] = plan.config
    c = conversation
    temperature, top_p, top_k = c.temperature, c.top_p, c.top_k
    if family == "claude" and temperature is not None:
        temperature = min(temperature, 1.0)  # OpenAI's range is 0-2, Claude's 0-1
    if plan.restrict_sampling:
        temperature, top_k = None, None
        top_p = top_p if top_p is not None and top_p >= 0.95 else None
    sampling = [("temperature", temperature), ("topP", top_p), ("topK", top_k)]
    if family == "gemini":  # Claude has no such settings
        sampling += [("seed", c.seed), ("presencePenalty", c.presence_penalty), ("frequencyPenalty", c.frequency_penalty)]
    config.update((key, value) for key, value in sampling if value is not None)
    if c.json_output or c.response_schema is not None:
        config["responseMimeType"] = "application/json"
    if c.response_schema is not None:
        config["responseSchema"] = sanitize_schema(c.response_schema, for_claude=family == "claude")
    return config  # stop sequences are enforced by the daemon itself (translate/stops.py)
