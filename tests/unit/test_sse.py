"""The SSE decoder: every split point, byte at a time, random re-chunking, CR/LF/CRLF, limits."""

from __future__ import annotations

import re
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.sse import SSEDecoder, SSEError, SSEEvent, comment, encode

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "upstream"


def recorded_upstream_stream(name: str, line_end: bytes = b"\r\n") -> tuple[bytes, list[dict]]:
    """A recorded Gemini stream wrapped as the upstream sends it (doc §4.11): one
    `data: {"response": …}` line per event; Google front ends end lines with CRLF."""
    elements = orjson.loads((FIXTURES / f"inner-stream.gemini.{name}.recorded.json").read_bytes())["response"]
    envelopes = [{"response": element, "traceId": "0123abcd"} for element in elements]
    raw = b"".join(b"data: " + orjson.dumps(env) + line_end + line_end for env in envelopes)
    return raw, envelopes


RECORDED = [
    "thought-functioncall-signature",
    "text-functioncall-with-id-signature",
    "empty-final-cached-tokens",
    "functioncall-signature.block-tool",
    "text-only.before-model",
    "functioncall-with-id.persistent-session-2",
]


def decode_chunks(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"])
def test_every_split_point_of_a_recorded_stream_gives_the_same_events(name: str, line_end: bytes) -> None:
    raw, envelopes = recorded_upstream_stream(name, line_end)
    whole = decode_chunks([raw])
    assert [orjson.loads(event.data) for event in whole] == envelopes
    for index in range(len(raw) + 1):
        assert decode_chunks([raw[:index], raw[index:]]) == whole, f"split at {index}"


@pytest.mark.parametrize("name", RECORDED)
def test_byte_at_a_time_gives_the_same_events(name: str) -> None:
    raw, _ = recorded_upstream_stream(name)
    assert decode_chunks([raw[i : i + 1] for i in range(len(raw))]) == decode_chunks([raw])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_rechunking_gives_the_same_events(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(RECORDED))
    raw, envelopes = recorded_upstream_stream(name, data.draw(st.sampled_from([b"\r\n", b"\n", b"\r"])))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=40)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    events = decode_chunks(chunks)
    assert events == decode_chunks([raw])
    assert [orjson.loads(event.data) for event in events] == envelopes  # not merely the same wrong answer twice


def test_seeded_multiway_rechunking_of_all_recordings() -> None:
    rng = random.Random(20261121)
    for name in RECORDED:
        raw, envelopes = recorded_upstream_stream(name)
        for _ in range(50):
            cuts = sorted(rng.sample(range(len(raw)), k=min(len(raw) - 1, rng.randint(1, 30))))
            chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
            assert [orjson.loads(e.data) for e in decode_chunks(chunks)] == envelopes


def test_cr_at_the_end_of_one_chunk_and_lf_at_the_start_of_the_next_is_one_line_end() -> None:
    assert decode_chunks([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent(b"a"), SSEEvent(b"b")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode_chunks([b"data: one\ndata: two\ndata:three\n\n"]) == [SSEEvent(b"one\ntwo\nthree")]


def test_fields_event_id_retry_and_unknown_ones() -> None:
    events = decode_chunks([b"event: message_start\nid: 7\nretry: 1500\nfoo: bar\ndata: {}\n\n"])
    assert events == [SSEEvent(b"{}", "message_start", "7", 1500)]


def test_comments_and_blank_heartbeats_yield_nothing() -> None:
    assert decode_chunks([b": keep-alive\n\n\n\n: ping\n\n"]) == []


def test_a_final_event_without_its_blank_line_is_delivered_by_finish() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"done": true}') == []
    assert decoder.finish() == [SSEEvent(b'{"done": true}')]


def test_data_without_space_after_colon_is_accepted() -> None:
    assert decode_chunks([b"data:{}\r\n\r\n"]) == [SSEEvent(b"{}")]


def test_event_type_resets_after_each_event() -> None:
    events = decode_chunks([b"event: ping\ndata: 1\n\ndata: 2\n\n"])
    assert [e.event for e in events] == ["ping", ""]


def test_an_unterminated_line_beyond_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    decoder.feed(b"data: " + b"x" * 1000)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 100)


def test_an_event_made_of_many_lines_beyond_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"y" * 600 + b"\ndata: " + b"y" * 600 + b"\n")


def test_a_two_megabyte_line_split_in_small_chunks_is_decoded_in_linear_time() -> None:
    payload = b'{"sig": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    raw = b"data: " + payload + b"\r\n\r\n"
    chunks = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    assert decode_chunks(chunks) == [SSEEvent(payload)]


def test_encoder_round_trips_through_the_decoder() -> None:
    frames = encode(b'{"a":1}', b"message_start") + encode(b"line one\nline two") + comment(b"keep-alive")
    assert decode_chunks([frames]) == [SSEEvent(b'{"a":1}', "message_start"), SSEEvent(b"line one\nline two")]
    assert encode(b"{}") == b"data: {}\n\n"
    assert encode(b"{}", b"ping") == b"event: ping\ndata: {}\n\n"


def reference_events(stream: bytes) -> list[SSEEvent]:
    """The WHATWG event-stream rules, line by line, with no fast paths (and finish's final event)."""
    events: list[SSEEvent] = []
    data: list[bytes] = []
    kind, last_id, retry = "", None, None
    for line in re.split(rb"\r\n|\r|\n", stream):
        if not line:
            if data:
                events.append(SSEEvent(b"\n".join(data), kind, last_id, retry))
            data, kind, retry = [], "", None
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"data":
            data.append(value)
        elif name == b"event":
            kind = value.decode()
        elif name == b"id":
            last_id = value.decode()
        elif name == b"retry" and value.isdigit():
            retry = int(value)
    if data:
        events.append(SSEEvent(b"\n".join(data), kind, last_id, retry))
    return events


LINES = st.sampled_from([b"data: {\"a\":1}", b"data: x", b"data:y", b"event: e", b"id: 7", b"retry: 30", b": ping",
                         b"", b"data: ", b"field: z"])
ENDS = st.sampled_from([b"\r\n", b"\n", b"\r"])


@settings(max_examples=500, deadline=None)
@given(lines=st.lists(LINES, max_size=30), data=st.data())
def test_any_mix_of_line_ends_and_reads_matches_the_reference_rules(lines: list[bytes], data: st.DataObject) -> None:
    mixed = data.draw(st.booleans())  # one style throughout (the upstream's case, and the fast path), or any mix
    ends = [data.draw(ENDS) for _ in lines] if mixed else [data.draw(ENDS)] * len(lines)
    stream = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    decoder, events = SSEDecoder(), []
    points = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=8))))
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        events += decoder.feed(stream[start:end])
    events += decoder.finish()
    assert events == reference_events(stream)


@pytest.mark.parametrize("end", [b"\n", b"\r\n"])
def test_an_event_begun_in_one_read_and_ended_in_the_next_keeps_all_its_lines(end: bytes) -> None:
    decoder = SSEDecoder()
    first = decoder.feed(b"event: e" + end + b"data: a" + end)
    assert first == []
    assert decoder.feed(b"data: b" + end + end + b"data: c" + end + end) == [SSEEvent(b"a\nb", "e"), SSEEvent(b"c")]


def test_seeded_streams_and_reads_match_the_reference_rules() -> None:
    """Hypothesis favours short lists and small cuts; plain random cases reach the read
    boundaries inside multi-line events that the fast path must not take whole."""
    rng = random.Random(5)
    choices = [b"data: {\"a\":1}", b"data: x", b"data:y", b"event: e", b"id: 7", b"retry: 30", b": ping", b"", b"data: "]
    for _ in range(2000):
        lines = [rng.choice(choices) for _ in range(rng.randint(0, 30))]
        ends = [rng.choice([b"\n", b"\r\n", b"\r"]) for _ in lines] if rng.random() < 0.3 else [rng.choice([b"\n", b"\r\n"])] * len(lines)
        stream = b"".join(line + end for line, end in zip(lines, ends, strict=True))
        points = sorted({rng.randint(0, len(stream)) for _ in range(rng.randint(0, 8))})
        decoder, events = SSEDecoder(), []
        for start, end in zip([0, *points], [*points, len(stream)], strict=True):
            events += decoder.feed(stream[start:end])
        assert events + decoder.finish() == reference_events(stream), (stream, points)
