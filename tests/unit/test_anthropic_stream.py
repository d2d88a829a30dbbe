"""Upstream decoder + Anthropic stream machine on recorded upstream streams: any re-chunking
gives the same events, every output satisfies the independent grammar checker, and every
(state, event) pair is either defined or refused."""

from __future__ import annotations

import itertools
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ErrorKind, ProxyError
from daemon.sse import SSEDecoder
from daemon.translate.anthropic_stream import (
    TRANSITIONS,
    AnthropicStream,
    Block,
    Accumulator,
    TranslatorError,
    encode,
)
from daemon.upstream.decode import StreamDecoder
from daemon.upstream.events import (
    Finish,
    InlineImage,
    TextDelta,
    ThoughtDelta,
    ThoughtSignature,
    ToolCall,
    Usage,
)
from tests.checkers.anthropic import check_anthropic_stream
from tests.machines import RECORDED, assert_defined_or_refused, recorded_responses

pytestmark = pytest.mark.unit



def upstream_bytes(name: str) -> bytes:
    elements = recorded_responses(name)
    return b"".join(b"data: " + orjson.dumps({"response": e, "traceId": "t"}) + b"\r\n\r\n" for e in elements)


def machine(thinking: bool = True) -> AnthropicStream:
    ids = itertools.count()
    return AnthropicStream(message_id="msg_test", model="claude-sonnet-4-6", thinking=thinking,
                           tool_names={}, new_tool_id=lambda: f"toolu_{next(ids):04d}")


def translate(chunks: list[bytes], thinking: bool = True) -> list[dict]:
    sse, decoder, m = SSEDecoder(), StreamDecoder(), machine(thinking)
    out: list[dict] = []
    for chunk in chunks:
        for event in sse.feed(chunk):
            for neutral in decoder.feed(orjson.loads(event.data)):
                out += m.feed(neutral)
    for event in sse.finish():
        for neutral in decoder.feed(orjson.loads(event.data)):
            out += m.feed(neutral)
    return out + m.feed(decoder.end())


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("thinking", [True, False])
def test_recorded_streams_translate_to_valid_anthropic_streams(name: str, thinking: bool) -> None:
    events = translate([upstream_bytes(name)], thinking)
    summary = check_anthropic_stream(encode(events))
    if not thinking:
        assert all(block["type"] != "thinking" for block in summary["blocks"])
    accumulator = Accumulator()
    accumulator.apply(events)
    assert [b["type"] for b in accumulator.body["content"]] == [b["type"] for b in summary["blocks"]]


@pytest.mark.parametrize("name", RECORDED)
def test_every_split_point_gives_the_same_events(name: str) -> None:
    raw = upstream_bytes(name)
    whole = translate([raw])
    for index in range(0, len(raw) + 1, 7):
        assert translate([raw[:index], raw[index:]]) == whole


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_rechunking_gives_the_same_events(data: st.DataObject) -> None:
    raw = upstream_bytes(data.draw(st.sampled_from(RECORDED)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30)))
    assert translate([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]) == translate([raw])


def test_the_signature_on_a_call_signs_the_thinking_before_it() -> None:
    summary = check_anthropic_stream(encode(translate([upstream_bytes("thought-functioncall-signature")])))
    thinking, call = summary["blocks"]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("CiQB")
    assert call == {"type": "tool_use", "id": "toolu_0000", "name": "write_file",
                    "input": {"content": "Approved content", "file_path": "approved.txt"}}
    assert summary["stop_reason"] == "tool_use"


def test_usage_maps_cached_tokens_out_of_input() -> None:
    summary = check_anthropic_stream(encode(translate([upstream_bytes("functioncall-with-id.persistent-session-2")])))
    assert summary["usage"]["input_tokens"] == 8627 - 8066
    assert summary["usage"]["cache_read_input_tokens"] == 8066
    assert summary["usage"]["output_tokens"] == 18 + 97


def test_empty_text_never_opens_a_block() -> None:
    m = machine()
    events = m.feed(TextDelta("")) + m.feed(TextDelta("")) + m.feed(Finish("STOP", Usage(prompt=3)))
    summary = check_anthropic_stream(encode(events))
    assert summary["blocks"] == [] and summary["stop_reason"] == "end_turn"


def test_max_tokens_and_refusal_stop_reasons() -> None:
    m = machine()
    assert m.feed(TextDelta("cut"))
    assert m.feed(Finish("MAX_TOKENS", Usage(candidates=1)))[-2]["delta"]["stop_reason"] == "max_tokens"
    blocked = machine().feed(Finish("SAFETY", Usage(), blocked=True))
    assert blocked[-2]["delta"]["stop_reason"] == "refusal"


def test_a_failure_after_the_start_is_an_error_event_and_the_end() -> None:
    m = machine()
    events = m.feed(TextDelta("partial")) + m.fail(ProxyError(ErrorKind.OVERLOADED, "busy"))
    summary = check_anthropic_stream(encode(events))
    assert summary["error"] == {"type": "overloaded_error", "message": "busy"}
    with pytest.raises(TranslatorError):
        m.feed(TextDelta("more"))


EVENT_SAMPLES = [TextDelta("x"), ThoughtDelta("t"), ThoughtSignature("s" * 60), ToolCall(None, "f", {}),
                 InlineImage("image/png", "AAAA"), Usage(), Finish("STOP", Usage())]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(Block, EVENT_SAMPLES)))
def test_every_state_and_event_pair_is_defined_or_refused(state: Block, event: object) -> None:
    m = machine()
    m.started = True
    m.block = state
    if state in (Block.TEXT, Block.THINKING):
        m.index = 0
    assert_defined_or_refused(m, state, TRANSITIONS, event)


def test_seeded_event_sequences_always_satisfy_the_grammar() -> None:
    rng = random.Random(7)
    content = EVENT_SAMPLES[:5]
    for _ in range(500):
        m = machine(thinking=rng.random() < 0.7)
        events: list[dict] = []
        for _ in range(rng.randint(0, 12)):
            events += m.feed(rng.choice(content))
        events += m.feed(Finish(rng.choice(["STOP", "MAX_TOKENS"]), Usage(prompt=5, candidates=3)))
        check_anthropic_stream(encode(events))


def test_the_empty_schema_placeholder_never_reaches_the_client() -> None:
    from daemon.translate.schema import PLACEHOLDER_PROPERTY

    m = machine()
    events = m.feed(ToolCall("t1", "noop", {PLACEHOLDER_PROPERTY: True})) + m.feed(Finish("STOP", Usage(candidates=1)))
    (call,) = check_anthropic_stream(encode(events))["blocks"]
    assert call["input"] == {}


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abST OP", max_size=40), cuts=st.lists(st.integers(0, 40), max_size=6))
def test_stop_sequences_match_wherever_the_text_is_split(text: str, cuts: list[int]) -> None:
    from daemon.translate.stops import StopSequences

    stops = StopSequences(("STOP", "ab"))
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)])]
    passed = "".join(e.text for piece in pieces for e in stops.feed([TextDelta(piece)]) if isinstance(e, TextDelta))
    passed += "".join(e.text for e in stops.feed([Finish("STOP", Usage())]) if isinstance(e, TextDelta))
    hits = [i for i in (text.find("STOP"), text.find("ab")) if i >= 0]
    assert passed == (text[: min(hits)] if hits else text)
    assert (stops.matched is not None) == bool(hits)
