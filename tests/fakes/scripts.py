"""Scripted replies for the fake Cloud Code upstream (pure data, no sockets).

A test enqueues replies on a running fake::

    from tests.fakes import scripts as s

    fake.script(s.stream_reply(s.thinking("Let me think", signature="sig-1"),
                               s.text("Hel", "lo"),
                               s.usage(prompt=10, candidates=2, thoughts=3)))
    fake.script(s.error("429.QUOTA_EXHAUSTED.claude-opus-4-6-thinking"), model="claude-opus-4-6-thinking")

Every reply serves both generation endpoints: `:streamGenerateContent?alt=sse` sends one SSE
event per content step, `:generateContent` sends the aggregate of the same events as a
single body (parts merged in order, adjacent text merged, last usage, the finishReason).

Step builders (each returns one step or a list of steps; `stream_reply` flattens them):
  text(*deltas, signature=None)          one event per text delta
  thinking(*deltas, signature=None, separate_signature=False)
                                         `"thought": true` parts; signature on the last one
  function_call(name, args, id=None, signature=None)
                                         signature is a SIBLING of functionCall (doc §4.2)
  image()                                the real gemini-3-pro-image output part (fixture)
  chunk(*parts_or_steps)                 one event holding several parts (parallel calls)
  finish(reason="STOP", signature=None, separate=False)
  usage(prompt=, candidates=, thoughts=, cached=)   final cumulative usage
  pause(seconds) / gate(release, reached=None) / flush_headers()
  cut_mid_event() / end_without_finish()
Whole replies:
  stream_reply(*steps), default_reply(), recorded(name), version_unsupported(),
  error(fixture_name), error_status(status, body), rate_limited(), quota_exhausted(),
  unauthenticated(), validation_required(), tos_disabled()
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import math
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import orjson

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"

DEFAULT_TEXT = "Hello from the fake upstream."
VERSION_UNSUPPORTED_TEXT = (
    "This version of Antigravity is no longer supported. Please update to receive the latest features!"
)
IMAGE_FIXTURE = "generateContent.image.gemini-3-pro-image.real.json"


# --------------------------------------------------------------------------- fixtures


def fixture_path(name: str) -> Path:
    """Path of a file in tests/fixtures/upstream (the name must exist there)."""
    path = FIXTURES_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no upstream fixture {name!r} in {FIXTURES_DIR}")
    return path


@functools.lru_cache(maxsize=None)
def fixture_bytes(name: str) -> bytes:
    """Raw bytes of a fixture, cached (the image fixture is 3.3 MB)."""
    return fixture_path(name).read_bytes()


@functools.lru_cache(maxsize=None)
def _fixture_json_cached(name: str) -> Any:
    return orjson.loads(fixture_bytes(name))


def fixture_json(name: str) -> Any:
    """Parsed fixture; a deep copy, so callers may mutate it."""
    return copy.deepcopy(_fixture_json_cached(name))


def fixture_names(prefix: str, suffix: str) -> list[str]:
    """The names of the fixtures `prefix*suffix`, sorted."""
    return sorted(p.name for p in FIXTURES_DIR.glob(f"{prefix}*{suffix}"))


def _resolve(prefix: str, suffix: str, name: str) -> str:
    """Find the one fixture `prefix*suffix` whose name equals or contains `name`."""
    candidates = fixture_names(prefix, suffix)
    for full in (name, f"{prefix}{name}", f"{prefix}{name}{suffix}", f"{name}{suffix}"):
        if full in candidates:
            return full
    matches = [c for c in candidates if name in c]
    if len(matches) == 1:
        return matches[0]
    what = "ambiguous" if matches else "unknown"
    raise KeyError(f"{what} fixture name {name!r}; choose one of {candidates}")


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Content:
    """One SSE event carrying these parts."""

    parts: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RawChunk:
    """One complete inner Gemini response object, sent verbatim (recorded replays)."""

    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str = "STOP"
    signature: str | None = None
    separate: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    prompt: int | None = None
    candidates: int | None = None
    thoughts: int | None = None
    cached: int | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True, eq=False)
class Gate:
    release: threading.Event
    reached: threading.Event | None = None


@dataclass(frozen=True, slots=True)
class FlushHeaders:
    """Send the status line and headers now (before any event)."""


@dataclass(frozen=True, slots=True)
class CutMidEvent:
    """Write half of the next `data:` line, then reset the TCP connection."""


@dataclass(frozen=True, slots=True)
class EndWithoutFinish:
    """End the stream cleanly here; no event carries a finishReason."""


Step = Union[Content, RawChunk, Finish, Usage, Pause, Gate, FlushHeaders, CutMidEvent, EndWithoutFinish]
CONTROL_STEPS = (Pause, Gate, FlushHeaders, CutMidEvent)


def text(*deltas: str, signature: str | None = None) -> list[Content]:
    """Text deltas, one event each; `signature` goes on the last delta (Gemini style)."""
    if not deltas:
        raise ValueError("text() needs at least one delta")
    parts = [{"text": d} for d in deltas]
    if signature is not None:
        parts[-1]["thoughtSignature"] = signature
    return [Content((p,)) for p in parts]


def thinking(*deltas: str, signature: str | None = None, separate_signature: bool = False) -> list[Content]:
    """Thought parts (`"thought": true`), one event each.

    The signature rides on the last thought chunk, or (`separate_signature=True`) on a
    trailing signature-only part `{"text": "", "thought": true, "thoughtSignature": ...}`.
    Whether that trailing part carries `thought: true` is not documented (doc §4.6 only says
    "signature-only part (empty text)"); we set it so clients see it as part of the thinking.
    """
    if not deltas:
        raise ValueError("thinking() needs at least one delta")
    parts = [{"text": d, "thought": True} for d in deltas]
    steps = [Content((p,)) for p in parts]
    if signature is not None:
        if separate_signature:
            steps.append(Content(({"text": "", "thought": True, "thoughtSignature": signature},)))
        else:
            parts[-1]["thoughtSignature"] = signature
    return steps


def function_call(
    name: str, args: dict[str, Any] | None = None, *, id: str | None = None, signature: str | None = None
) -> Content:
    """A functionCall part; `signature` is a sibling of `functionCall`, never inside it."""
    call: dict[str, Any] = {"name": name, "args": dict(args or {})}
    if id is not None:
        call["id"] = id
    part: dict[str, Any] = {"functionCall": call}
    if signature is not None:
        part["thoughtSignature"] = signature
    return Content((part,))


def image() -> Content:
    """The real image part (inlineData JPEG + its 2.25 MB thoughtSignature) from the fixture."""
    parts = _fixture_json_cached(IMAGE_FIXTURE)["response"]["candidates"][0]["content"]["parts"]
    return Content(tuple(copy.deepcopy(parts)))


def chunk(*items: dict[str, Any] | Content | list[Content]) -> Content:
    """One event with several parts: raw part dicts and/or the parts of other steps."""
    parts: list[dict[str, Any]] = []
    for item in _flatten(items):
        if isinstance(item, Content):
            parts.extend(copy.deepcopy(list(item.parts)))
        elif isinstance(item, dict):
            parts.append(copy.deepcopy(item))
        else:
            raise TypeError(f"chunk() takes part dicts or content steps, not {item!r}")
    return Content(tuple(parts))


def finish(reason: str = "STOP", *, signature: str | None = None, separate: bool = False) -> Finish:
    """The finishReason. Attached to the last content event, unless `separate` (or a
    `signature` is given): then a final `{"text": ""[, "thoughtSignature": sig]}` event carries it."""
    return Finish(reason, signature, separate or signature is not None)


def usage(
    prompt: int | None = None, candidates: int | None = None, thoughts: int | None = None, cached: int | None = None
) -> Usage:
    """Final cumulative usage; earlier events get proportional cumulative values.
    Anything left None is estimated (prompt from the request, output from the text)."""
    return Usage(prompt, candidates, thoughts, cached)


def pause(seconds: float) -> Pause:
    """Silence for `seconds`. Before the first event it also delays the response headers."""
    return Pause(float(seconds))


def gate(release: threading.Event, *, reached: threading.Event | None = None) -> Gate:
    """Block here until the test sets `release` (the fake sets `reached` on arrival)."""
    return Gate(release, reached)


def flush_headers() -> FlushHeaders:
    """Send the 200 status and headers now, e.g. before a leading pause or gate."""
    return FlushHeaders()


def cut_mid_event() -> CutMidEvent:
    """Write part of the next `data:` line, then abort the TCP connection (RST, no last chunk).

    The real upstream has no in-band error event (doc §4.11, §9.4): failures after the 200
    show up as a reset/EOF without finishReason, which is what this produces."""
    return CutMidEvent()


def end_without_finish() -> EndWithoutFinish:
    """Clean end of stream (terminating chunk sent) whose last event has no finishReason."""
    return EndWithoutFinish()


def _flatten(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A successful (HTTP 200) generation reply: a sequence of steps."""

    steps: tuple[Step, ...]
    model_version: str | None = None
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A non-200 reply: the body is sent verbatim with a Content-Length."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return orjson.loads(self.body)


Reply = Union[StreamReply, ErrorReply]


def stream_reply(*steps: Step | list[Step], model_version: str | None = None, response_id: str | None = None) -> StreamReply:
    """Combine steps into a reply. Without finish()/end_without_finish()/cut_mid_event()
    a STOP finishReason is attached to the last content event."""
    flat = tuple(_flatten(steps))
    for step in flat:
        if not isinstance(step, Step.__args__):  # type: ignore[attr-defined]
            raise TypeError(f"not a reply step: {step!r}")
    if sum(isinstance(s, Finish) for s in flat) > 1:
        raise ValueError("at most one finish() per reply")
    if any(isinstance(s, Finish) for s in flat) and any(isinstance(s, EndWithoutFinish) for s in flat):
        raise ValueError("finish() and end_without_finish() contradict each other")
    return StreamReply(flat, model_version, response_id)


def default_reply() -> StreamReply:
    """What the fake answers when nothing is scripted."""
    return stream_reply(text(DEFAULT_TEXT), finish("STOP"))


def version_unsupported() -> StreamReply:
    """The outdated-client answer: HTTP 200, a normal model text, finishReason STOP, 0 output tokens.

    Uncertain (doc §9.1): the real status/shape is unknown; users only saw it rendered as the
    assistant's reply with 0 tokens, so we send it as ordinary HTTP-200 model text."""
    return stream_reply(text(VERSION_UNSUPPORTED_TEXT), finish("STOP"), usage(candidates=0, thoughts=0))


def recorded(name: str) -> StreamReply:
    """Replay tests/fixtures/upstream/inner-stream.<name>.recorded.json, one event per element.

    The recordings are bare Gemini responses; wrapping each in the v1internal envelope
    `{"response": ..., "traceId": ..., "metadata": {}}` is ours (fixtures SOURCES.md)."""
    fixture = _resolve("inner-stream.", ".recorded.json", name)
    elements = _fixture_json_cached(fixture)["response"]
    return StreamReply(tuple(RawChunk(copy.deepcopy(e)) for e in elements))


def error(fixture_name: str, *, headers: Iterable[tuple[str, str]] = ()) -> ErrorReply:
    """Replay an `error.<status>.<...>.json` fixture byte for byte (status from its name).

    `fixture_name` is the file name, with or without `error.`/`.json`, or any unique
    substring, e.g. "429.QUOTA_EXHAUSTED", "bare-no-details", "500.INTERNAL"."""
    fixture = _resolve("error.", ".json", fixture_name)
    status = int(fixture.split(".")[1])
    return ErrorReply(status, fixture_bytes(fixture), tuple(headers))


def error_status(status: int, body: Any, *, headers: Iterable[tuple[str, str]] = ()) -> ErrorReply:
    """Any status with any body (bytes/str sent as is, anything else JSON-encoded)."""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, (bytes, bytearray)):
        body = orjson.dumps(body)
    return ErrorReply(int(status), bytes(body), tuple(headers))


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A standard Google RPC error object (doc §7.1)."""
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def go_duration(seconds: float) -> str:
    """Go-style duration as Google prints it: '25h20m26.179915352s', '42s', '634.846608ms'."""
    if seconds < 1:
        return f"{seconds * 1000:.6f}ms"
    whole_h, rest = divmod(seconds, 3600)
    whole_m, secs = divmod(rest, 60)
    out = ""
    if whole_h:
        out += f"{int(whole_h)}h"
    if whole_h or whole_m:
        out += f"{int(whole_m)}m"
    secs_text = f"{secs:.9f}".rstrip("0").rstrip(".")
    return out + f"{secs_text}s"


def _short_duration(seconds: float) -> str:
    """The rounded form used in messages: 'after 25h20m26s', 'after 1s'."""
    total = int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"


def _timestamp(seconds_from_now: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_from_now)
    return when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_delay(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def rate_limited(delay: float = 1.5, *, model: str = "claude-opus-4-6-thinking") -> ErrorReply:
    """Short per-minute limit: 429 RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMIT_EXCEEDED with
    quotaResetDelay (e.g. "1.5s") and RetryInfo. Shape and message as pasted from real
    Antigravity replies (CLIProxyAPI issue #2650); the numbers are ours."""
    body = google_error(
        429,
        "RESOURCE_EXHAUSTED",
        f"You have exhausted your capacity on this model. Your quota will reset after {_short_duration(delay)}.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "cloudcode-pa.googleapis.com",
                "metadata": {
                    "uiMessage": "true",
                    "model": model,
                    "quotaResetDelay": go_duration(delay),
                    "quotaResetTimeStamp": _timestamp(delay),
                },
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _retry_delay(delay)},
        ],
    )
    return error_status(429, body)


def quota_exhausted(reset_after: float = 91226.179915352, *, model: str = "claude-opus-4-6-thinking") -> ErrorReply:
    """Quota gone until a reset: the real QUOTA_EXHAUSTED fixture's shape with the numbers
    (delay, timestamp, retryDelay, message) recomputed from `reset_after` seconds."""
    body = fixture_json("error.429.QUOTA_EXHAUSTED.claude-opus-4-6-thinking.json")
    err = body["error"]
    err["message"] = (
        f"You have exhausted your capacity on this model. Your quota will reset after {_short_duration(reset_after)}."
    )
    for detail in err["details"]:
        if detail["@type"].endswith("ErrorInfo"):
            detail["metadata"].update(
                model=model, quotaResetDelay=go_duration(reset_after), quotaResetTimeStamp=_timestamp(reset_after)
            )
        elif detail["@type"].endswith("RetryInfo"):
            detail["retryDelay"] = _retry_delay(reset_after)
    return error_status(429, body)


UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def unauthenticated() -> ErrorReply:
    """401 UNAUTHENTICATED with the real message (doc §7.2; its tail after '…' is Google's
    standard devconsole-project sentence)."""
    return error_status(
        401,
        google_error(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE),
        headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"')],
    )


FAKE_VALIDATION_URL = (
    "https://accounts.google.com/signin/continue?sarp=1&scc=1&continue=https://developers.google.com/"
    "gemini-code-assist/auth/auth_success_gemini&plt=FAKE-PLT-TOKEN&flowName=GlifWebSignIn&authuser"
)


def validation_required(url: str = FAKE_VALIDATION_URL) -> ErrorReply:
    """403 PERMISSION_DENIED, ErrorInfo VALIDATION_REQUIRED (metadata validation_url & co)
    plus a Help detail with the same link (doc §7.2; key set as pasted in user reports)."""
    body = google_error(
        403,
        "PERMISSION_DENIED",
        "Verify your account to continue.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "VALIDATION_REQUIRED",
                "domain": "cloudcode-pa.googleapis.com",
                "metadata": {
                    "validation_error_message": "Verify your account to continue.",
                    "validation_url_link_text": "Verify your account",
                    "validation_url": url,
                    "validation_learn_more_link_text": "Learn more",
                    "validation_learn_more_url": "https://support.google.com/accounts?p=al_alert",
                },
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {"description": "Verify your account", "url": url},
                    {"description": "Learn more", "url": "https://support.google.com/accounts?p=al_alert"},
                ],
            },
        ],
    )
    return error_status(403, body)


TOS_DISABLED_MESSAGE = (
    "This service has been disabled in this account for violation of Terms of Service. "
    "Please submit an appeal to continue using this product."
)


def tos_disabled() -> ErrorReply:
    """403 for a banned account. The message is the one users quote; whether the real body
    carries details is unknown, so it has none."""
    return error_status(403, google_error(403, "PERMISSION_DENIED", TOS_DISABLED_MESSAGE))


# --------------------------------------------------------------------------- rendering


@dataclass(slots=True)
class RenderContext:
    """What rendering needs to know about the request being answered."""

    model: str
    prompt_tokens: int


def _estimate_tokens(text_value: str) -> int:
    return math.ceil(len(text_value) / 4) if text_value else 0


def _part_tokens(part: dict[str, Any]) -> tuple[int, int]:
    """(output tokens, thought tokens) a part stands for, crudely."""
    if "text" in part:
        n = _estimate_tokens(part["text"])
        return (0, n) if part.get("thought") else (n, 0)
    if "inlineData" in part:
        return (1000, 0)
    return (_estimate_tokens(orjson.dumps(part).decode()), 0)


def _usage_metadata(prompt: int, cached: int, candidates: int, thoughts: int) -> dict[str, Any]:
    # proto3 JSON omits zero counters (the recorded fixtures do too)
    meta: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        meta["candidatesTokenCount"] = candidates
    meta["totalTokenCount"] = prompt + candidates + thoughts
    if cached:
        meta["cachedContentTokenCount"] = cached
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def new_response_id(model: str) -> str:
    if model.startswith("claude"):
        return "req_vrtx_" + secrets.token_hex(12)
    return base64.urlsafe_b64encode(secrets.token_bytes(17)).decode().rstrip("=")


RenderItem = Union[dict, Pause, Gate, FlushHeaders, CutMidEvent]


def render(reply: StreamReply, ctx: RenderContext) -> list[RenderItem]:
    """Turn a reply into inner Gemini response dicts (one per SSE event) and control steps."""
    items: list[RenderItem] = []
    synthesized: list[tuple[dict[str, Any], int, int]] = []  # chunk, cumulative out, cumulative thoughts
    model_version = reply.model_version or ctx.model
    response_id = reply.response_id or new_response_id(ctx.model)
    final_usage = Usage()
    finish_step: Finish | None = None
    no_finish = False
    cum_out = cum_thought = 0
    last_content: dict[str, Any] | None = None
    ends_with_cut = False

    def new_chunk(parts: list[dict[str, Any]]) -> dict[str, Any]:
        nonlocal cum_out, cum_thought
        for p in parts:
            o, t = _part_tokens(p)
            cum_out, cum_thought = cum_out + o, cum_thought + t
        body = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": model_version,
            "responseId": response_id,
        }
        synthesized.append((body, cum_out, cum_thought))
        return body

    for step in reply.steps:
        if isinstance(step, Content):
            last_content = new_chunk(copy.deepcopy(list(step.parts)))
            items.append(last_content)
        elif isinstance(step, RawChunk):
            items.append(copy.deepcopy(step.response))
            last_content = None
        elif isinstance(step, Usage):
            final_usage = step
        elif isinstance(step, Finish):
            finish_step = step
            if step.separate or last_content is None:
                part: dict[str, Any] = {"text": ""}
                if step.signature is not None:
                    part["thoughtSignature"] = step.signature
                last_content = new_chunk([part])
                items.append(last_content)
            _set_finish(last_content, step.reason)
        elif isinstance(step, EndWithoutFinish):
            no_finish = True
            break
        elif isinstance(step, CutMidEvent):
            # keep rendering: the cut writes half of the event that follows it
            items.append(step)
            ends_with_cut = True
        else:
            items.append(step)

    only_raw = any(isinstance(s, RawChunk) for s in reply.steps) and not synthesized
    if finish_step is None and not no_finish and not ends_with_cut and not only_raw:
        if last_content is None or not synthesized or synthesized[-1][0] is not last_content:
            last_content = new_chunk([{"text": ""}])
            items.append(last_content)
        _set_finish(last_content, "STOP")

    if synthesized:
        prompt = final_usage.prompt if final_usage.prompt is not None else ctx.prompt_tokens
        cached = final_usage.cached or 0
        total_out, total_thought = synthesized[-1][1], synthesized[-1][2]
        out_final = final_usage.candidates if final_usage.candidates is not None else total_out
        thought_final = final_usage.thoughts if final_usage.thoughts is not None else total_thought
        for index, (body, c_out, c_thought) in enumerate(synthesized):
            last = index == len(synthesized) - 1
            o = out_final if last else _scaled(out_final, c_out, total_out)
            t = thought_final if last else _scaled(thought_final, c_thought, total_thought)
            tail = {k: body.pop(k) for k in ("modelVersion", "responseId")}
            body["usageMetadata"] = _usage_metadata(prompt, cached, o, t)
            body.update(tail)  # key order as in real chunks: candidates, usageMetadata, modelVersion, ...
    return items


def _set_finish(body: dict[str, Any], reason: str) -> None:
    candidate = body["candidates"][0]
    index = candidate.pop("index", 0)
    candidate["finishReason"] = reason
    candidate["index"] = index


def _scaled(final: int, cumulative: int, total: int) -> int:
    if total <= 0:
        return 0
    return min(final, math.floor(final * cumulative / total))


def aggregate(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The unary body for a stream: parts in order, adjacent text merged, last usage, finishReason."""
    parts: list[dict[str, Any]] = []
    finish_reason = None
    usage_meta = None
    extra: dict[str, Any] = {}
    for body in chunks:
        candidates = body.get("candidates") or [{}]
        cand = candidates[0]
        for part in (cand.get("content") or {}).get("parts", []):
            _merge_part(parts, copy.deepcopy(part))
        if cand.get("finishReason"):
            finish_reason = cand["finishReason"]
        if "usageMetadata" in body:
            usage_meta = body["usageMetadata"]
        for key in ("modelVersion", "responseId"):
            if key in body:
                extra[key] = body[key]
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    candidate: dict[str, Any] = {"content": content}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    candidate["index"] = 0
    out: dict[str, Any] = {"candidates": [candidate]}
    if usage_meta is not None:
        out["usageMetadata"] = copy.deepcopy(usage_meta)
    out.update(extra)
    return out


_TEXT_KEYS = {"text", "thought", "thoughtSignature"}


def _merge_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    if parts and "text" in part and set(part) <= _TEXT_KEYS:
        prev = parts[-1]
        if (
            "text" in prev
            and set(prev) <= _TEXT_KEYS
            and bool(prev.get("thought")) == bool(part.get("thought"))
            and "thoughtSignature" not in prev
        ):
            prev["text"] += part["text"]
            if "thoughtSignature" in part:
                prev["thoughtSignature"] = part["thoughtSignature"]
            return
    parts.append(part)


@dataclass(slots=True)
class ScriptEntry:
    """A queued reply and the calls it may answer."""

    reply: Reply
    model: str | None = None
    account: str | None = None

    def matches(self, model: str, account: str | None) -> bool:
        return (self.model is None or self.model == model) and (self.account is None or self.account == account)
