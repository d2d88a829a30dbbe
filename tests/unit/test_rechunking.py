"""Every protocol's Reader, fed the way the runner feeds it (SSE decoder → Reader.step per
upstream read → Reader.end): however the upstream bytes are cut into reads, and whatever
line ends the upstream uses, the client receives exactly the same bytes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.dispatch.translating import Translating
from daemon.sse import SSEDecoder
from daemon.translate import anthropic_stream, gemini_stream, openai_chat_stream, responses_stream
from tests.machines import RECORDED, recorded_responses

pytestmark = pytest.mark.unit


def _ids(prefix: str) -> Callable[..., str]:
    counter = itertools.count()
    return lambda *_: f"{prefix}{next(counter):04d}"


READERS: dict[str, tuple[Callable[[], object], Callable[[list], bytes]]] = {
    "anthropic": (lambda: Translating(anthropic_stream.AnthropicStream(
        message_id="msg_t", model="m", thinking=True, tool_names={}, new_tool_id=_ids("toolu_")), ()),
        anthropic_stream.encode),
    "openai-chat": (lambda: Translating(openai_chat_stream.ChatStream(
        completion_id="chatcmpl-t", model="m", created=0, reasoning=True, include_usage=True, tool_names={},
        new_call_id=_ids("call_")), ()), openai_chat_stream.encode),
    "responses": (lambda: Translating(responses_stream.ResponsesStream(
        response_id="resp_t", model="m", created=0, reasoning=True, tools={}, new_call_id=_ids("call_"),
        new_item_id=_ids("item_"), echo={}), ()), responses_stream.encode),
    "gemini": (gemini_stream.GeminiPassthrough, gemini_stream.encode),
}
LINE_ENDS = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r"}


def upstream_bytes(name: str, line_end: bytes) -> bytes:
    return b"".join(b"data: " + orjson.dumps({"response": e, "traceId": "t", "metadata": {}}) + line_end * 2
                    for e in recorded_responses(name))


def client_bytes(protocol: str, reads: list[bytes]) -> bytes:
    new_reader, encode = READERS[protocol]
    reader, sse = new_reader(), SSEDecoder()
    out: list = []
    for read in reads:
        events, _ = reader.step(event.data for event in sse.feed(read))  # type: ignore[attr-defined]
        out += events
    events, _ = reader.step(event.data for event in sse.finish())  # type: ignore[attr-defined]
    return encode(out + events + reader.end())  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", READERS)
@pytest.mark.parametrize("name", RECORDED)
def test_every_split_point_and_line_end_gives_the_same_bytes(protocol: str, name: str) -> None:
    whole = client_bytes(protocol, [upstream_bytes(name, b"\r\n")])
    assert whole
    for line_end in LINE_ENDS.values():
        raw = upstream_bytes(name, line_end)
        assert client_bytes(protocol, [raw]) == whole
        for index in range(0, len(raw) + 1, 11):
            assert client_bytes(protocol, [raw[:index], raw[index:]]) == whole


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_reads_give_the_same_bytes(data: st.DataObject) -> None:
    protocol = data.draw(st.sampled_from(sorted(READERS)))
    name = data.draw(st.sampled_from(RECORDED))
    raw = upstream_bytes(name, data.draw(st.sampled_from(sorted(LINE_ENDS.values()))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=40)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert client_bytes(protocol, reads) == client_bytes(protocol, [upstream_bytes(name, b"\r\n")])
