"""Upstream generation responses → neutral model events (pure).

Settled here once for every client protocol (upstream doc §4.6, §4.10-4.13):
- each event is `{"response": {...}}` (the envelope) or, from some hosts, the bare response;
- `usageMetadata` is cumulative: only the last one counts;
- a thoughtSignature can ride on a thought part, a text part, a trailing empty part or a
  functionCall (where it is a sibling of `functionCall`);
- `finishReason` may come before a last usage-only chunk, so Finish is decided at the end;
- a stream that ends without any finishReason is an error, never a silent end;
- an HTTP-200 answer whose text says the client version is no longer supported is an error.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorKind, ProxyError
from .events import Finish, InlineImage, ModelEvent, TextDelta, ThoughtDelta, ThoughtSignature, ToolCall, Usage

VERSION_REJECTED = "This version of Antigravity is no longer supported"
# Finish reasons that mean the model failed to produce a usable turn.
FAILED_GENERATION = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


class StreamDecoder:
    __slots__ = ("_finish_reason", "_blocked", "_usage", "_produced", "_first_text")

    def __init__(self) -> None:
        self._finish_reason = ""
        self._blocked = False
        self._usage: dict[str, Any] | None = None  # the last usageMetadata, converted only when needed
        self._produced = False  # any content part seen
        self._first_text = True

    def feed(self, document: dict[str, Any]) -> list[ModelEvent]:
        """One parsed upstream event (or a whole unary body)."""
        response = document.get("response", document)
        if not isinstance(response, dict):
            raise ProxyError(ErrorKind.UPSTREAM, "the upstream sent an event that is not an object")
        events: list[ModelEvent] = []
        usage = response.get("usageMetadata")
        if isinstance(usage, dict):
            if self._usage is None:
                events.append(usage_of(usage))  # the prompt size, for the start of the answer
            self._usage = usage
        candidates = response.get("candidates")
        if not candidates:
            block = (response.get("promptFeedback") or {}).get("blockReason")
            if block:
                self._finish_reason, self._blocked = str(block), True
            return events
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            self._part(part, events)
        if candidate.get("finishReason"):
            self._finish_reason = str(candidate["finishReason"])
        return events

    @property
    def usage(self) -> Usage | None:
        """The last usage the upstream reported (cumulative), None before any."""
        return usage_of(self._usage) if self._usage is not None else None

    def end(self) -> Finish:
        """The upstream body ended; raises ProxyError when that end is not a real finish."""
        if not self._finish_reason:
            raise ProxyError(ErrorKind.UPSTREAM, "the upstream stream ended before the model finished")
        if self._finish_reason in FAILED_GENERATION and not self._produced:
            raise ProxyError(ErrorKind.UPSTREAM, f"the model failed to answer ({self._finish_reason})")
        return Finish(self._finish_reason, usage_of(self._usage or {}), self._blocked)

    def cut(self, stop_sequence: str) -> Finish:
        """The daemon ended the turn on a client stop sequence (the upstream is abandoned)."""
        return Finish("STOP", usage_of(self._usage or {}), stop_sequence=stop_sequence)

    def _part(self, part: dict[str, Any], events: list[ModelEvent]) -> None:
        signature = part.get("thoughtSignature")
        call = part.get("functionCall")
        if call is not None:
            self._produced = True
            args = call.get("args")
            events.append(ToolCall(call.get("id") or None, str(call.get("name") or ""),
                                   args if isinstance(args, dict) else {}, signature or None))
            return
        text = part.get("text")
        if part.get("thought"):
            if text:
                self._produced = True
                events.append(ThoughtDelta(text))
            if signature:
                events.append(ThoughtSignature(signature))
            return
        if signature:
            # A signature on a visible part closes the thinking before it.
            events.append(ThoughtSignature(signature))
        if text:
            if self._first_text and text.startswith(VERSION_REJECTED):
                raise ProxyError(ErrorKind.UPSTREAM, "the upstream rejected the client version: "
                                 "raise AGPROXY_CLIENT_VERSION (it said: %s)" % text[:200])
            self._first_text = False
            self._produced = True
            events.append(TextDelta(text))
            return
        inline = part.get("inlineData")
        if isinstance(inline, dict) and inline.get("data"):
            self._produced = True
            events.append(InlineImage(str(inline.get("mimeType") or "image/png"), str(inline["data"])))


def usage_of(meta: dict[str, Any]) -> Usage:
    """A usageMetadata object as neutral Usage."""
    return Usage(
        prompt=int(meta.get("promptTokenCount") or 0),
        candidates=int(meta.get("candidatesTokenCount") or 0),
        thoughts=int(meta.get("thoughtsTokenCount") or 0),
        cached=int(meta.get("cachedContentTokenCount") or 0),
    )
