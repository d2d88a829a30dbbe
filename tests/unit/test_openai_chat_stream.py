"""Upstream decoder + OpenAI chat machine: recorded streams and random event sequences
always satisfy the independent chat-chunk grammar checker."""

from __future__ import annotations

import itertools
import random

import pytest

from daemon.errors import ErrorKind, ProxyError
from daemon.translate.turn_end import TranslatorError
from daemon.translate.openai_chat_stream import (
    TRANSITIONS,
    ChatStream,
    Accumulator,
    State,
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
from tests.checkers.openai_chat import check_openai_chat_stream
from tests.machines import RECORDED, assert_defined_or_refused, recorded_responses

pytestmark = pytest.mark.unit



def machine(include_usage: bool = True, reasoning: bool = True) -> ChatStream:
    ids = itertools.count()
    return ChatStream(completion_id="chatcmpl-test", model="gemini-3-flash", created=1767225600, reasoning=reasoning,
                      include_usage=include_usage, tool_names={}, new_call_id=lambda: f"call_{next(ids):04d}")


def translate(name: str, **options: bool) -> list[dict]:
    elements = recorded_responses(name)
    decoder, m = StreamDecoder(), machine(**options)
    out: list[dict] = []
    for element in elements:
        for event in decoder.feed({"response": element}):
            out += m.feed(event)
    return out + m.feed(decoder.end())


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("include_usage", [True, False])
def test_recorded_streams_follow_the_chat_grammar(name: str, include_usage: bool) -> None:
    events = translate(name, include_usage=include_usage)
    summary = check_openai_chat_stream(encode(events), include_usage=include_usage)
    accumulator = Accumulator()
    accumulator.apply(events)
    choice = accumulator.body["choices"][0]
    assert choice["finish_reason"] == summary["finish_reason"]
    assert (choice["message"]["content"] or "") == summary["content"]
    assert len(choice["message"].get("tool_calls", [])) == len(summary["tool_calls"])


def test_a_tool_call_keeps_its_id_and_arguments() -> None:
    summary = check_openai_chat_stream(encode(translate("text-functioncall-with-id-signature")))
    (call,) = summary["tool_calls"]
    assert call["id"] == "1zgnzmz8" and call["name"] == "invoke_agent"
    assert call["parsed"]["agent_name"] == "browser_agent"
    assert summary["finish_reason"] == "tool_calls"
    assert summary["usage"]["prompt_tokens_details"]["cached_tokens"] == 8126


def test_thoughts_become_reasoning_content_only_when_asked() -> None:
    shown = check_openai_chat_stream(encode(translate("text-only.before-model")))
    hidden = check_openai_chat_stream(encode(translate("text-only.before-model", reasoning=False)))
    assert shown["reasoning_content"].startswith("**Initiating String Output**")
    assert not hidden["reasoning_content"]
    assert shown["content"] == hidden["content"] == "The security hook modified this request successfully."


def test_an_error_after_the_start_ends_the_stream_without_done() -> None:
    m = machine()
    events = m.feed(TextDelta("partial")) + m.fail(ProxyError(ErrorKind.UPSTREAM, "cut"))
    summary = check_openai_chat_stream(encode(events))
    assert summary["error"]["message"] == "cut"
    assert not encode(events).endswith(b"data: [DONE]\n\n")
    with pytest.raises(TranslatorError):
        m.feed(TextDelta("more"))


SAMPLES = [TextDelta("x"), ThoughtDelta("t"), ThoughtSignature("s" * 60), ToolCall(None, "f", {"a": 1}),
           InlineImage("image/png", "AAAA"), Usage(prompt=3)]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, [*SAMPLES, Finish("STOP", Usage())])))
def test_every_state_and_event_pair_is_defined_or_refused(state: State, event: object) -> None:
    m = machine()
    m.state = state
    assert_defined_or_refused(m, state, TRANSITIONS, event)


def test_seeded_event_sequences_always_satisfy_the_grammar() -> None:
    rng = random.Random(11)
    for _ in range(500):
        include_usage = rng.random() < 0.5
        m = machine(include_usage=include_usage, reasoning=rng.random() < 0.7)
        events: list[dict] = []
        for _ in range(rng.randint(0, 10)):
            events += m.feed(rng.choice(SAMPLES))
        events += m.feed(Finish(rng.choice(["STOP", "MAX_TOKENS", "SAFETY"]), Usage(prompt=5, candidates=3)))
        check_openai_chat_stream(encode(events), include_usage=include_usage)
