"""Upstream v1internal events → native Gemini events: a byte-level passthrough (pure).

The upstream wraps every GenerateContentResponse as `{"response": {…}, "traceId": "…",
"metadata": {}, …}` (upstream doc §4.10); a Gemini client must get exactly the inner object
(client-protocols.md §5.4). This runs once per event for every native client, so it cuts bytes
instead of parsing and re-encoding: only the small wrapper tail is parsed, to prove the cut.
Finish reasons pass through as they are, failed generations (decode.FAILED_GENERATION) included:
Gemini clients know them (§6). Only an end without any finish is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ..errors import ErrorKind, ProxyError
from ..upstream.decode import VERSION_REJECTED, StreamDecoder, usage_of
from ..upstream.events import Usage
from ..upstream.failures import error_in_answer
from .client_errors import gemini_error

Response = dict[str, Any]

_HEAD = b'{"response":{'  # compact, as the upstream sends it
# The wrapper's keys besides "response" (upstream doc §4.10): traceId (a string, first), metadata
# (the only object), consumedCredits and remainingCredits (arrays).
_TRACE = b',"traceId":'
_METADATA = b',"metadata":'
_REJECTED = VERSION_REJECTED.encode()
_TEXT_KEYS = frozenset({"text", "thought", "thoughtSignature"})

# google-genai feeds every non-blank line that is not `data: …` (an SSE comment included) to
# json.loads and raises; it skips blank lines, so only a bare blank line may keep the stream alive.
PROTOCOL = "gemini"  # its name in the request monitor and the metrics
HEARTBEAT = b"\r\n"


def unwrap(document: bytes) -> bytes:
    """The inner GenerateContentResponse of one upstream event, a unary body or a bare response."""
    cut = _wrapper_cut(document, b"")
    return document[12:cut] if cut is not None else orjson.dumps(_parsed_response(document))


def _parsed_response(document: bytes) -> Response:
    """The slow path: a bare response, another key order, pretty-printed (unary bodies are), an error."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "the upstream sent an event that is not JSON") from None
    error = error_in_answer(parsed)  # an error can arrive on a 200 answer (never on the fast path)
    if error is not None:
        raise error
    inner = parsed.get("response", parsed) if isinstance(parsed, dict) else parsed
    if not isinstance(inner, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "the upstream sent an event that is not an object")
    return inner


def _wrapper_cut(document: bytes, known_tail: bytes) -> int | None:
    """Where the response ends in a compact `{"response":{…},"traceId":…}` event; None otherwise.
    `known_tail`: a wrapper tail already proven on this stream (its traceId repeats)."""
    # A line feed means a multi-line `data:` event: never forward it, as it would break the framing.
    if not document.startswith(_HEAD) or document.find(b"\n") >= 0:
        return None
    if known_tail and document.endswith(known_tail):
        cut = len(document) - len(known_tail)
        if _nothing_between(document, cut, known_tail):
            return cut  # the same bytes already parsed as the wrapper's tail: no second parse
    cut = document.rfind(_TRACE)
    if cut > 0 and _response_ends_at(document, cut):
        return cut
    if cut < 0 and document.endswith(b"}}") and document.rfind(_METADATA) < 0:
        return len(document) - 1  # `{"response":{…}}`: the last entry is an object, not metadata
    return None


def _response_ends_at(document: bytes, cut: int) -> bool:
    """Whether the response ends where the last `,"traceId":` starts. Why that is sound: in JSON a
    quote inside a string is always escaped, so the match is an object key, and the last one is the
    wrapper's own when the wrapper has one. `{` + the bytes after the comma parses only if that key
    is at the wrapper's top level: a cut inside the response leaves its closers unbalanced."""
    try:
        orjson.loads(b"{" + document[cut + 1:])
    except orjson.JSONDecodeError:
        return False  # a traceId key inside the response, none in the wrapper
    return _nothing_between(document, cut, document[cut:])


def _nothing_between(document: bytes, cut: int, tail: bytes) -> bool:
    """No other wrapper entry sits between the response and a proven tail: it would end right
    before the cut, in `]` for the credit arrays, in `}` only for metadata, which is then looked for."""
    return document[cut - 1] == 0x7D and (_METADATA in tail or document.rfind(_METADATA, 0, cut) < 0)


class GeminiPassthrough:
    """The Reader of the native Gemini endpoints: each upstream event → its inner response bytes.

    The chunk that finishes the answer is held until the next event or the end: the upstream can
    send a usage-only chunk after it (upstream doc §4.11), which Gemini streams never do, so that
    chunk is folded into the finish chunk (parsed once per stream, never per event).
    """

    def __init__(self) -> None:
        self.done = False  # stopSequences go upstream: nothing is cut locally on this path
        self.signatures: list[tuple[str | None, str, str]] = []  # Gemini clients send theirs back themselves
        self.finished = False
        self._held: bytes | None = None
        self._content = False
        self._tail = b""  # the wrapper tail of the last event, proven once: it repeats on a stream
        self.usage: Usage | None = None  # the total, from the finish chunk and what was folded into it

    def step(self, documents: Iterable[bytes]) -> tuple[list[bytes], bool]:
        out: list[bytes] = []
        meaningful = False
        for document in documents:
            cut = _wrapper_cut(document, self._tail)
            response: Response | None = None  # parsed only when it has to be, at most once
            if cut is None:
                response = _parsed_response(document)
                inner, self._tail = orjson.dumps(response), b""
            else:
                inner, self._tail = document[12:cut], document[cut:]
            # Byte checks: a quoted name cannot hide in a string (quotes are escaped there), so a hit is
            # a key; one inside functionCall args is still inside candidates, and a false finish hit
            # only costs one parse. The upstream puts candidates first, so startswith usually decides.
            # (rfind: CPython searches bytes backwards faster than `in` does forwards.)
            content = (inner.startswith(b'{"candidates":') or inner.rfind(b'"candidates"') >= 0
                       or inner.rfind(b'"promptFeedback"') >= 0)
            if not self._content and inner.rfind(_REJECTED) >= 0:
                StreamDecoder().feed(response or orjson.loads(inner))  # raises when the answer starts with that notice
            self._content = self._content or content
            meaningful = meaningful or content
            if self._held is not None:
                if not content:
                    merged = {**orjson.loads(self._held), **(response or orjson.loads(inner))}
                    self._held, self.usage = orjson.dumps(merged), _usage(merged)
                    continue
                out.append(self._held)  # more candidates after a finish: not ours to reorder
                self._held = None
            if inner.rfind(b'Reason"') >= 0:  # finishReason, blockReason (or a false hit: one parse)
                response = response or orjson.loads(inner)
                if _finishes(response):
                    self.finished = True
                    self._held, self.usage = inner, _usage(response)
                    continue
            out.append(inner)
        return out, meaningful

    def end(self) -> list[bytes]:
        """The upstream body ended; raises ProxyError when no event finished the answer."""
        if not self.finished:
            raise ProxyError(ErrorKind.UPSTREAM, "the upstream stream ended before the model finished")
        held, self._held = self._held, None
        return [] if held is None else [held]

    def fail(self, error: ProxyError) -> list[bytes]:
        """An in-band error: google-genai raises on a chunk that starts with `{"error":`."""
        self._held = None  # nothing may follow a finish chunk, and the error must reach the client
        return [orjson.dumps(gemini_error(error))]


def _finishes(response: Response) -> bool:
    candidates = response.get("candidates") or ()
    return any(isinstance(c, dict) and c.get("finishReason") for c in candidates) or bool(
        (response.get("promptFeedback") or {}).get("blockReason"))


def _usage(response: Response) -> Usage | None:
    meta = response.get("usageMetadata")
    return usage_of(meta) if isinstance(meta, dict) else None


def encode(events: list[bytes]) -> bytes:
    if not events:
        return b""
    return b"data: " + b"\r\n\r\ndata: ".join(events) + b"\r\n\r\n"  # CRLF, like the real service


class Accumulator:
    """The non-stream GenerateContentResponse, merged from the stream's chunks."""

    def __init__(self) -> None:
        self.body: Response = {}
        self._candidates: dict[int, Response] = {}

    def apply(self, events: list[bytes]) -> None:
        for event in events:
            for key, value in orjson.loads(event).items():
                if key != "candidates":
                    self.body[key] = value  # the last usageMetadata is the total (it is cumulative)
                    continue
                self.body.setdefault("candidates", [])
                for candidate in value:
                    self._candidate(candidate)

    def _candidate(self, chunk: Response) -> None:
        index = chunk.get("index", 0)
        mine = self._candidates.get(index)
        if mine is None:
            mine = self._candidates[index] = {}
            self.body["candidates"].append(mine)
        for key, value in chunk.items():
            if key != "content":
                mine[key] = value  # finishReason and the rest: the last one stands
                continue
            content = mine.setdefault("content", {})
            for name, field in value.items():
                if name == "parts":
                    _append(content.setdefault("parts", []), field)
                else:
                    content[name] = field


def _append(parts: list[Response], new: list[Response]) -> None:
    """Only a chunk's first part may continue the part before it: the split at a chunk boundary
    is the stream's, a split inside one chunk is the model's own (so a unary body stays as it is)."""
    for n, part in enumerate(new):
        if not (n == 0 and parts and _continues(parts[-1], part)):
            parts.append(part)


def _continues(last: Response, part: Response) -> bool:
    """Fold `part` into `last` when it continues it; False when it stays a part of its own."""
    if "text" not in part or not part.keys() <= _TEXT_KEYS:
        return False  # functionCall, inlineData, …: kept as they are
    signature = part.get("thoughtSignature")
    if not part["text"]:
        if signature and "thoughtSignature" in last:
            return False  # two signatures: each stays on its own part
        if signature:
            last["thoughtSignature"] = signature  # the trailing signature of the part before it
        return True  # an empty part carries nothing else
    if ("text" not in last or not last.keys() <= _TEXT_KEYS or "thoughtSignature" in last
            or bool(last.get("thought")) != bool(part.get("thought"))):
        return False  # a signed part is closed; thoughts and visible text never mix
    last["text"] += part["text"]
    if signature:
        last["thoughtSignature"] = signature
    return True
