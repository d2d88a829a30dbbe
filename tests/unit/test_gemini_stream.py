"""The native Gemini passthrough: upstream envelopes → the inner responses, byte for byte where
the upstream is compact; recorded streams satisfy the independent Gemini stream checker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ErrorKind, ProxyError
from daemon.translate.gemini_stream import (
    HEARTBEAT,
    Accumulator,
    GeminiPassthrough,
    encode,
    unwrap,
)
from daemon.upstream.decode import VERSION_REJECTED
from tests.checkers import GrammarError
from tests.checkers.gemini import check_gemini_stream
from tests.machines import RECORDED, UPSTREAM_FIXTURES, recorded_responses

pytestmark = pytest.mark.unit

SDK_STREAMS = Path(__file__).parent.parent / "fixtures" / "sdk-streams" / "gemini"
CREDITS = [{"creditType": "GOOGLE_ONE_AI", "creditAmount": "12"}]


def wrapped(inner: Any, style: str) -> bytes:
    """One upstream event, in the shapes the upstream (or a fake of it) sends."""
    if style == "trace":
        return orjson.dumps({"response": inner, "traceId": "abc", "metadata": {}})
    if style == "credits":
        return orjson.dumps({"response": inner, "traceId": "abc", "metadata": {},
                             "consumedCredits": CREDITS, "remainingCredits": CREDITS})
    if style == "only":
        return orjson.dumps({"response": inner})
    if style == "trace-alone":  # as the real unary body has it
        return orjson.dumps({"response": inner, "traceId": "abc"})
    if style == "reordered":
        return orjson.dumps({"response": inner, "metadata": {"a": [1]}, "traceId": "abc"})
    if style == "credits-first":
        return orjson.dumps({"response": inner, "consumedCredits": CREDITS, "traceId": "abc"})
    if style == "metadata-only":
        return orjson.dumps({"response": inner, "metadata": {}})
    if style == "pretty":
        return orjson.dumps({"response": inner, "traceId": "abc"}, option=orjson.OPT_INDENT_2)
    if style == "trace-first":
        return orjson.dumps({"traceId": "abc", "response": inner})
    assert style == "bare"
    return orjson.dumps(inner)


STYLES = ["trace", "credits", "only", "trace-alone", "reordered", "credits-first", "metadata-only", "pretty",
          "trace-first", "bare"]


def run(documents: list[bytes]) -> list[bytes]:
    reader = GeminiPassthrough()
    events, _ = reader.step(documents)
    return events + reader.end()


# --- unwrap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", RECORDED)
def test_unwrap_recorded(name: str, style: str) -> None:
    for inner in recorded_responses(name):
        out = unwrap(wrapped(inner, style))
        assert orjson.loads(out) == inner
        assert b"traceId" not in out and b"metadata" not in out


RAW_INNER = b'{"candidates": [{"content": {"parts": [{"text": "caf\\u00e9 1.0e5"}], "role": "model"}}], "x": 1.0e5}'
RAW_TAILS = {  # wrapper tail → whether the fast path may cut it
    "trace": (b',"traceId":"abc","metadata":{}}', True),
    "trace-alone": (b',"traceId":"abc"}', True),
    "credits": (b',"traceId":"abc","metadata":{},"consumedCredits":[{"creditAmount":"1"}],"remainingCredits":[]}', True),
    "only": (b"}", True),
    "metadata-first": (b',"metadata":{"traceId":"x"},"traceId":"abc"}', False),
    "credits-first": (b',"consumedCredits":[],"traceId":"abc"}', False),
    "metadata-only": (b',"metadata":{}}', False),
}


@pytest.mark.parametrize("tail", RAW_TAILS)
def test_unwrap_cuts_without_reencoding(tail: str) -> None:
    wrapper, fast = RAW_TAILS[tail]
    out = unwrap(b'{"response":' + RAW_INNER + wrapper)
    assert orjson.loads(out) == orjson.loads(RAW_INNER)
    assert (out == RAW_INNER) is fast  # orjson would have rewritten \u00e9 and 1.0e5: the fallback ran


TRICKY_STRINGS = [',"traceId":', ',"metadata":{}}', '"},"traceId":"x"}', ',\\"traceId\\":', '}}', '{"response":']


def tricky_response() -> dict[str, Any]:
    args = {"traceId": "t1", "metadata": {"traceId": ',"traceId":"x"}'}, "consumedCredits": [],
            "remainingCredits": {"k": '"},"remainingCredits":[]}'}, "list": TRICKY_STRINGS}
    return {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": args}, "thoughtSignature": "c2ln"},
        {"text": "".join(TRICKY_STRINGS)}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1}, "traceId": "inner"}


@pytest.mark.parametrize("style", STYLES)
def test_unwrap_wrapper_keys_inside_the_response(style: str) -> None:
    inner = tricky_response()
    out = unwrap(wrapped(inner, style))
    assert orjson.loads(out) == inner


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text() | st.sampled_from(TRICKY_STRINGS),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text() | st.sampled_from(["traceId", "metadata", "consumedCredits", "remainingCredits",
                                                    "response"]), children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text() | st.sampled_from(["traceId", "metadata", "candidates"]), json_values,
                               max_size=5)


@settings(max_examples=400, deadline=None)
@given(inner=json_objects, style=st.sampled_from(STYLES))
def test_unwrap_any_object(inner: dict[str, Any], style: str) -> None:
    if style == "bare" and "response" in inner:
        return  # a bare response has no "response" key: such an object reads as an envelope
    out = unwrap(wrapped(inner, style))
    assert orjson.loads(out) == inner


def test_a_multi_line_document_is_reencoded_on_one_line() -> None:
    inner = recorded_responses("text-only.before-model")[0]
    document = orjson.dumps({"response": inner, "traceId": "abc"}).replace(b'"candidates":', b'"candidates":\n')
    out = unwrap(document)
    assert b"\n" not in out and orjson.loads(out) == inner


@pytest.mark.parametrize("document", [b'{"response":{"candidates":[]', b"not json", b"[1]", b'{"response":3}'])
def test_unwrap_refuses_what_is_no_response(document: bytes) -> None:
    with pytest.raises(ProxyError) as caught:
        unwrap(document)
    assert caught.value.kind is ErrorKind.UPSTREAM


# --- the reader and the stream -----------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", RECORDED)
def test_recorded_streams_pass_the_checker(name: str, style: str) -> None:
    responses = recorded_responses(name)
    events = run([wrapped(r, style) for r in responses])
    assert [orjson.loads(e) for e in events] == responses
    summary = check_gemini_stream(encode(events))
    parts = [p for r in responses for p in r["candidates"][0]["content"].get("parts", [])]
    assert summary["text"] == "".join(p.get("text", "") for p in parts if not p.get("thought"))
    assert summary["thoughts"] == "".join(p.get("text", "") for p in parts if p.get("thought"))
    assert summary["finish_reason"] == responses[-1]["candidates"][0]["finishReason"]
    assert summary["usage"] == responses[-1]["usageMetadata"]


@pytest.mark.parametrize("name", sorted(p.name for p in SDK_STREAMS.glob("*.sse")))
def test_real_gemini_streams_come_back_byte_for_byte(name: str) -> None:
    body = (SDK_STREAMS / name).read_bytes()
    payloads = [block.removeprefix(b"data: ") for block in body.split(b"\r\n\r\n") if block]
    events = run([b'{"response":' + p + b',"traceId":"ea302a9a71cac620","metadata":{}}' for p in payloads])
    assert encode(events) == body
    check_gemini_stream(encode(events))


def test_heartbeats_between_events_pass_the_checker() -> None:
    events = run([wrapped(r, "trace") for r in recorded_responses("text-functioncall-with-id-signature")])
    body = HEARTBEAT + HEARTBEAT.join(encode([e]) for e in events) + HEARTBEAT
    assert check_gemini_stream(body)["function_calls"]


def test_meaningful_means_candidates_or_prompt_feedback() -> None:
    reader = GeminiPassthrough()
    assert reader.step([wrapped({"usageMetadata": {"promptTokenCount": 3}}, "trace")]) == (
        [b'{"usageMetadata":{"promptTokenCount":3}}'], False)
    events, meaningful = reader.step([wrapped(recorded_responses("text-functioncall-with-id-signature")[0], "trace")])
    assert meaningful and len(events) == 1
    assert reader.done is False and reader.signatures == []


def test_an_end_without_finish_is_an_error() -> None:
    reader = GeminiPassthrough()
    responses = recorded_responses("text-functioncall-with-id-signature")
    reader.step([wrapped(r, "trace") for r in responses[:-1]])
    with pytest.raises(ProxyError) as caught:
        reader.end()
    assert caught.value.kind is ErrorKind.UPSTREAM
    with pytest.raises(ProxyError):
        GeminiPassthrough().end()  # nothing at all


def test_fail_is_an_error_chunk_the_sdk_raises_on() -> None:
    reader = GeminiPassthrough()
    responses = recorded_responses("text-functioncall-with-id-signature")
    events, _ = reader.step([wrapped(r, "trace") for r in responses])  # the finish chunk is held
    events += reader.fail(ProxyError(ErrorKind.UPSTREAM, "the upstream stream broke: reset"))
    assert events[-1].startswith(b'{"error":')
    error = check_gemini_stream(encode(events))["error"]
    assert error == {"code": 502, "message": "the upstream stream broke: reset", "status": "INTERNAL"}


def test_a_usage_chunk_after_the_finish_joins_it() -> None:
    text, finish = recorded_responses("text-functioncall-with-id-signature")[0], {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "."}]}, "finishReason": "STOP", "index": 0}]}
    usage = {"usageMetadata": {**text["usageMetadata"], "candidatesTokenCount": 99}, "responseId": "r1"}
    events = run([wrapped(r, "trace") for r in (text, finish, usage)])
    assert len(events) == 2
    summary = check_gemini_stream(encode(events))
    assert summary["usage"] == usage["usageMetadata"] and summary["response_id"] == "r1"
    assert summary["text"].endswith(".")


@pytest.mark.parametrize("candidates", [{}, {"candidates": []}])
def test_a_blocked_prompt_passes_through(candidates: dict[str, Any]) -> None:
    blocked = {**candidates, "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
               "usageMetadata": {"promptTokenCount": 4}}
    reader = GeminiPassthrough()
    events, meaningful = reader.step([wrapped(blocked, "credits")])
    events += reader.end()
    assert meaningful
    assert check_gemini_stream(encode(events))["block_reason"] == "PROHIBITED_CONTENT"


def rejected(text: str) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}


def test_the_version_rejection_on_http_200_is_an_error() -> None:
    with pytest.raises(ProxyError) as caught:
        GeminiPassthrough().step([wrapped(rejected(VERSION_REJECTED + ". Please update."), "trace")])
    assert caught.value.kind is ErrorKind.UPSTREAM and "AGPROXY_CLIENT_VERSION" in caught.value.message


def test_the_rejection_text_later_in_an_answer_is_just_text() -> None:
    first = recorded_responses("text-functioncall-with-id-signature")[0]
    quoted = rejected("It said: " + VERSION_REJECTED)
    later = rejected(VERSION_REJECTED)
    assert len(run([wrapped(r, "trace") for r in (quoted,)])) == 1
    events = run([wrapped(first, "trace"), wrapped(later, "trace")])
    assert check_gemini_stream(encode(events))["text"].endswith(VERSION_REJECTED)


@pytest.mark.parametrize("compact", [False, True])
def test_a_real_unary_body_unwraps_and_aggregates_to_itself(compact: bool) -> None:
    body = (UPSTREAM_FIXTURES / "generateContent.image.gemini-3-pro-image.real.json").read_bytes()
    if compact:
        body = orjson.dumps(orjson.loads(body))  # traceId alone: the fast path (as pretty-printed: the fallback)
    events = run([body])
    accumulator = Accumulator()
    accumulator.apply(events)
    assert accumulator.body == orjson.loads(body)["response"]


# --- the non-stream aggregate ---------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDED)
def test_the_accumulator_of_recorded_streams(name: str) -> None:
    responses = recorded_responses(name)
    accumulator = Accumulator()
    for event in run([wrapped(r, "trace") for r in responses]):
        accumulator.apply([event])
    result = accumulator.body
    parts = result["candidates"][0]["content"].get("parts", [])
    summary = check_gemini_stream(encode([orjson.dumps(result)]))  # one chunk that is the whole answer
    stream = check_gemini_stream(encode(run([wrapped(r, "trace") for r in responses])))
    assert (summary["text"], summary["thoughts"]) == (stream["text"], stream["thoughts"])
    assert summary["function_calls"] == stream["function_calls"]
    assert summary["thought_signatures"] == stream["thought_signatures"]
    assert result["usageMetadata"] == responses[-1]["usageMetadata"]
    assert result["candidates"][0]["finishReason"] == responses[-1]["candidates"][0]["finishReason"]
    assert all(p.get("text") != "" or "thoughtSignature" in p for p in parts[1:])  # empty parts folded away


@pytest.mark.parametrize("name", RECORDED)
def test_the_accumulator_of_one_event_is_that_event(name: str) -> None:
    for response in recorded_responses(name):
        accumulator = Accumulator()
        accumulator.apply([orjson.dumps(response)])
        assert accumulator.body == response


def chunk(*parts: dict[str, Any], top: dict[str, Any] | None = None, **fields: Any) -> bytes:
    candidate = {"content": {"role": "model", "parts": list(parts)}, "index": 0, **fields}
    return orjson.dumps({"candidates": [candidate], **(top or {})})


def aggregate(*chunks: bytes) -> list[dict[str, Any]]:
    accumulator = Accumulator()
    accumulator.apply(list(chunks))
    return accumulator.body["candidates"][0]["content"]["parts"]


def test_text_joins_across_chunks_by_thought_flag() -> None:
    parts = aggregate(chunk({"text": "a", "thought": True}), chunk({"text": "b", "thought": True}),
                      chunk({"text": "c"}), chunk({"text": "d", "thought": False}), chunk({"text": ""}))
    assert parts == [{"text": "ab", "thought": True}, {"text": "cd"}]


def test_signatures_stay_where_they_came() -> None:
    call = {"functionCall": {"name": "f", "args": {}}}
    assert aggregate(chunk({"text": "a", "thought": True}), chunk({"text": "", "thoughtSignature": "s1"}),
                     chunk({"text": "b"})) == [
        {"text": "a", "thought": True, "thoughtSignature": "s1"}, {"text": "b"}]
    assert aggregate(chunk({"text": "a", "thoughtSignature": "s1"}), chunk({"text": "b"}),
                     chunk({"text": "", "thoughtSignature": "s2"})) == [
        {"text": "a", "thoughtSignature": "s1"}, {"text": "b", "thoughtSignature": "s2"}]
    assert aggregate(chunk({**call, "thoughtSignature": "s1"}), chunk({"text": "", "thoughtSignature": "s2"})) == [
        {**call, "thoughtSignature": "s1"}, {"text": "", "thoughtSignature": "s2"}]
    assert aggregate(chunk({"text": "a"}), chunk({"text": "b", "thoughtSignature": "s1"})) == [
        {"text": "ab", "thoughtSignature": "s1"}]


def test_calls_and_images_are_kept_and_splits_inside_a_chunk_stay() -> None:
    call = {"functionCall": {"name": "f", "args": {"a": 1}}}
    image = {"inlineData": {"mimeType": "image/png", "data": "AA"}}
    chunks = chunk({"text": "a"}, {"text": "b"}), chunk(call), chunk(call), chunk(image), chunk({"text": "c"})
    assert aggregate(*chunks) == [{"text": "a"}, {"text": "b"}, call, call, image, {"text": "c"}]


def test_the_last_fields_stand_and_prompt_feedback_is_kept() -> None:
    accumulator = Accumulator()
    accumulator.apply([
        orjson.dumps({"promptFeedback": {"safetyRatings": []}, "usageMetadata": {"promptTokenCount": 1},
                      "modelVersion": "m1", "responseId": "r"}),
        chunk({"text": "a"}),
        chunk({"text": "b"}, finishReason="MAX_TOKENS",
              top={"usageMetadata": {"promptTokenCount": 2}, "modelVersion": "m2"}),
    ])
    candidate = {"content": {"role": "model", "parts": [{"text": "ab"}]}, "index": 0, "finishReason": "MAX_TOKENS"}
    assert accumulator.body == {
        "promptFeedback": {"safetyRatings": []}, "usageMetadata": {"promptTokenCount": 2}, "modelVersion": "m2",
        "responseId": "r", "candidates": [candidate],
    }


def test_the_checker_rejects_a_leaked_envelope() -> None:
    """The checker really looks: the raw upstream event would not pass."""
    with pytest.raises(GrammarError):
        check_gemini_stream(encode([wrapped(recorded_responses("empty-final-cached-tokens")[0], "trace")]))
