"""Upstream decoder + Responses machine: recorded streams and random event sequences always
satisfy the independent Responses grammar checker."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

import orjson
import pytest

from daemon.errors import ErrorKind, ProxyError
from daemon.translate.turn_end import TranslatorError
from daemon.translate.responses_stream import (
    HEARTBEAT,
    TRANSITIONS,
    Accumulator,
    ResponsesStream,
    State,
    encode,
)
from daemon.translate.schema import PLACEHOLDER_PROPERTY
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
from tests.checkers.responses import check_responses_stream
from tests.machines import RECORDED, assert_defined_or_refused, recorded_responses

pytestmark = pytest.mark.unit

TOOLS = {"invoke_agent": ("mcp__browser.invoke-agent", "function"), "apply_patch": ("apply_patch", "custom"),
         "local_shell": ("local_shell", "local_shell")}


def machine(reasoning: bool = True, tools: Mapping[str, tuple[str, str]] = TOOLS,
            echo: Mapping[str, object] | None = None) -> ResponsesStream:
    calls, items = itertools.count(), itertools.count()
    return ResponsesStream(response_id="resp_test", model="gemini-3-flash", created=1767225600, reasoning=reasoning,
                           tools=tools, new_call_id=lambda: f"call_{next(calls):04d}",
                           new_item_id=lambda prefix: f"{prefix}_{next(items):04d}", echo=echo or {})


def translate(name: str, m: ResponsesStream | None = None) -> list[dict]:
    decoder, m = StreamDecoder(), m or machine()
    out: list[dict] = []
    for element in recorded_responses(name):
        for event in decoder.feed({"response": element}):
            out += m.feed(event)
    return out + m.feed(decoder.end())


def feed_all(m: ResponsesStream, *events: object) -> list[dict]:
    return [out for event in events for out in m.feed(event)]


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("reasoning", [True, False])
def test_recorded_streams_follow_the_responses_grammar(name: str, reasoning: bool) -> None:
    m = machine(reasoning)
    events = translate(name, m)
    summary = check_responses_stream(encode(events))
    accumulator = Accumulator()
    accumulator.apply(events)
    response = accumulator.body
    assert response is not None and response is m.response
    assert response["status"] == summary["status"] == "completed"
    assert [(o["type"], o["id"]) for o in response["output"]] == [(it["type"], it["id"]) for it in summary["items"]]
    assert response["usage"] == summary["usage"]
    text = "".join(c["text"] for o in response["output"] if o["type"] == "message" for c in o["content"])
    assert text == summary["text"]
    if not reasoning:
        assert all(it["summary"] == [] for it in summary["items"] if it["type"] == "reasoning")


def test_a_tool_call_keeps_the_upstream_id_and_restores_the_client_name() -> None:
    summary = check_responses_stream(encode(translate("text-functioncall-with-id-signature")))
    message, reasoning, call = summary["items"]
    assert message["type"] == "message" and message["text"].startswith("I will invoke the browser agent")
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("EpgD")
    assert call["type"] == "function_call" and call["call_id"] == "1zgnzmz8"
    assert call["name"] == "mcp__browser.invoke-agent"
    assert call["parsed"] == {"prompt": "Navigate to example.com and return the page title.",
                              "agent_name": "browser_agent"}
    assert summary["status"] == "completed"


def test_usage_counts_cached_input_and_thoughts_as_output() -> None:
    summary = check_responses_stream(encode(translate("functioncall-with-id.persistent-session-2")))
    assert summary["usage"] == {
        "input_tokens": 8627, "input_tokens_details": {"cached_tokens": 8066, "cache_write_tokens": 0},
        "output_tokens": 18 + 97, "output_tokens_details": {"reasoning_tokens": 97}, "total_tokens": 8627 + 18 + 97}


def test_a_call_without_an_id_gets_a_generated_call_id_and_no_placeholder() -> None:
    m = machine()
    events = feed_all(m, ToolCall(None, "noop", {PLACEHOLDER_PROPERTY: True}), Finish("STOP", Usage(candidates=1)))
    (call,) = check_responses_stream(encode(events))["items"]
    assert call["call_id"] == "call_0000" and call["name"] == "noop" and call["parsed"] == {}


def test_a_repeated_upstream_call_id_is_replaced() -> None:
    # The openai SDK's stream helper and Codex both match call items by call_id.
    events = feed_all(machine(), ToolCall("dup", "f"), ToolCall("dup", "f"), Finish("STOP", Usage()))
    assert [it["call_id"] for it in check_responses_stream(encode(events))["items"]] == ["dup", "call_0000"]


@pytest.mark.parametrize("name", RECORDED)
def test_terminal_responses_validate_as_the_sdk_response_type(name: str) -> None:
    from openai.types.responses import Response

    m = machine()
    translate(name, m)
    feed_all(shell := machine(), ToolCall("s1", "local_shell", {"command": ["ls"]}), Finish("STOP", Usage()))
    for response in (m.response, shell.response):
        assert Response.model_validate(response).id == "resp_test"


def test_a_custom_tool_call_streams_its_raw_input() -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    events = feed_all(machine(), ToolCall("c1", "apply_patch", {"input": patch}), Finish("STOP", Usage()))
    (call,) = check_responses_stream(encode(events))["items"]
    assert call["type"] == "custom_tool_call" and call["id"].startswith("ctc_")
    assert (call["call_id"], call["name"], call["input"]) == ("c1", "apply_patch", patch)
    assert "response.custom_tool_call_input.delta" in [e["type"] for e in events]


def test_a_local_shell_call_is_one_complete_item_with_no_deltas() -> None:
    m = machine()
    events = feed_all(m, ToolCall("s1", "local_shell", {"command": ["ls", "-la"], "workdir": "/tmp",
                                                        "timeout_ms": 5000}), Finish("STOP", Usage()))
    # The checker knows no local_shell_call item (§4.4 lists none), so the shape is checked here.
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.output_item.added",
                                           "response.output_item.done", "response.completed"]
    added, done = events[2]["item"], events[3]["item"]
    assert added["status"] == "in_progress" and added["id"].startswith("lsc_")
    assert done == {"type": "local_shell_call", "id": added["id"], "call_id": "s1", "status": "completed",
                    "action": {"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/tmp",
                               "timeout_ms": 5000}}
    assert events[-1]["response"]["output"] == [done]
    shell = feed_all(machine(), ToolCall("s2", "local_shell", {"command": "echo hi"}))[-1]["item"]
    assert shell["action"] == {"type": "exec", "command": ["bash", "-lc", "echo hi"], "env": {}}


def test_the_signature_on_a_call_becomes_the_encrypted_content_before_it() -> None:
    m = machine()
    summary = check_responses_stream(encode(translate("thought-functioncall-signature", m)))
    reasoning, call = summary["items"]
    assert reasoning["summary"][0].startswith("**Formulating the Write Operation**")
    assert reasoning["encrypted_content"].startswith("CiQB")
    assert call["call_id"] == "call_0000" and call["parsed"]["file_path"] == "approved.txt"
    ((call_id, signature, thinking),) = m.signatures
    assert (call_id, signature) == ("call_0000", reasoning["encrypted_content"])
    assert thinking == reasoning["summary"][0]


def test_the_signature_travels_even_when_reasoning_is_hidden() -> None:
    m = machine(reasoning=False)
    summary = check_responses_stream(encode(translate("text-only.before-model", m)))
    reasoning, message = summary["items"]
    assert reasoning["summary"] == [] and reasoning["encrypted_content"].startswith("CiQB")
    assert message["text"] == "The security hook modified this request successfully."
    ((call_id, signature, thinking),) = m.signatures
    assert call_id is None and signature == reasoning["encrypted_content"]
    assert thinking.startswith("**Initiating String Output**")  # the store keeps the thinking it seals


def test_a_call_after_a_signature_claims_it_once() -> None:
    m = machine(reasoning=False)
    events = feed_all(m, ThoughtDelta("plan"), ThoughtSignature("sig-1"), ToolCall("a", "f"), ToolCall("b", "f"),
                      Finish("STOP", Usage()))
    items = check_responses_stream(encode(events))["items"]
    assert [it["type"] for it in items] == ["reasoning", "function_call", "function_call"]
    assert m.signatures == [(None, "sig-1", "plan"), ("a", "sig-1", "plan")]


def test_thought_after_a_signed_reasoning_item_opens_another() -> None:
    m = machine()
    events = feed_all(m, ThoughtDelta("one"), ThoughtSignature("s1"), ThoughtDelta("two"), TextDelta("hi"),
                      Finish("STOP", Usage()))
    items = check_responses_stream(encode(events))["items"]
    assert [(it["type"], it.get("summary"), it.get("encrypted_content")) for it in items] == [
        ("reasoning", ["one"], "s1"), ("reasoning", ["two"], None), ("message", None, None)]


def test_an_image_becomes_markdown_text() -> None:
    events = feed_all(machine(), TextDelta("see "), InlineImage("image/png", "AAAA"), Finish("STOP", Usage()))
    assert check_responses_stream(encode(events))["text"] == "see ![image](data:image/png;base64,AAAA)"


def test_max_tokens_is_incomplete_unless_the_turn_called_a_tool() -> None:
    cut = check_responses_stream(encode(feed_all(machine(), TextDelta("cut"), Finish("MAX_TOKENS", Usage()))))
    assert (cut["status"], cut["incomplete_reason"]) == ("incomplete", "max_output_tokens")
    called = feed_all(machine(), ToolCall("a", "f"), Finish("MAX_TOKENS", Usage()))
    assert check_responses_stream(encode(called))["status"] == "completed"


@pytest.mark.parametrize("finish", [Finish("SAFETY", Usage(), blocked=True), Finish("SAFETY", Usage()),
                                    Finish("RECITATION", Usage())])
def test_refusals_are_incomplete_content_filter(finish: Finish) -> None:
    summary = check_responses_stream(encode(feed_all(machine(), TextDelta("x"), finish)))
    assert (summary["status"], summary["incomplete_reason"]) == ("incomplete", "content_filter")


def test_every_response_object_echoes_the_request() -> None:
    echo = {"instructions": "be brief", "tools": [{"type": "function", "name": "f"}], "store": False,
            "reasoning": {"effort": "high", "summary": "auto"}, "max_output_tokens": 100}
    events = feed_all(machine(echo=echo), TextDelta("x"), Finish("STOP", Usage()))
    responses = [e["response"] for e in events if "response" in e]
    assert len(responses) == 3
    for response in responses:
        assert {k: response[k] for k in echo} == echo
        assert response["tool_choice"] == "auto" and response["truncation"] == "disabled"
        assert response["text"] == {"format": {"type": "text"}} and response["previous_response_id"] is None
        assert response["created_at"] == 1767225600 and response["model"] == "gemini-3-flash"


@pytest.mark.parametrize(("kind", "code"), [(ErrorKind.RATE_LIMITED, "rate_limit_exceeded"),
                                            (ErrorKind.OVERLOADED, "server_is_overloaded"),
                                            (ErrorKind.UNAVAILABLE, "server_is_overloaded"),
                                            (ErrorKind.INVALID_REQUEST, "invalid_prompt"),
                                            (ErrorKind.UPSTREAM, "server_error")])
def test_a_failure_after_the_start_is_response_failed_and_the_end(kind: ErrorKind, code: str) -> None:
    m = machine()
    events = m.feed(TextDelta("partial")) + m.fail(ProxyError(kind, "cut"))
    summary = check_responses_stream(encode(events))
    assert summary["status"] == "failed" and summary["error"] == {"code": code, "message": "cut"}
    assert m.response is not None and m.response["status"] == "failed"
    assert m.fail(ProxyError(kind, "again")) == []
    with pytest.raises(TranslatorError):
        m.feed(TextDelta("more"))


def test_a_failure_before_anything_still_starts_the_response() -> None:
    summary = check_responses_stream(encode(machine().fail(ProxyError(ErrorKind.UPSTREAM, "early"))))
    assert summary["status"] == "failed" and summary["items"] == []


def test_the_first_event_of_any_kind_starts_the_response() -> None:
    events = machine().feed(Usage(prompt=3))
    assert [(e["type"], e["sequence_number"]) for e in events] == [("response.created", 0),
                                                                    ("response.in_progress", 1)]
    assert events[0]["response"]["output"] == [] and events[0]["response"]["status"] == "in_progress"


def test_keep_alive_and_encoding_are_what_the_checker_reads() -> None:
    events = feed_all(machine(), TextDelta("hi"), Finish("STOP", Usage()))
    body = encode(events[:2]) + HEARTBEAT + encode(events[2:])
    assert check_responses_stream(body)["heartbeats"] == 1
    first = encode(events[:1]).split(b"\n")
    assert first[0] == b"event: response.created" and orjson.loads(first[1].removeprefix(b"data: ")) == events[0]


def test_the_accumulator_gives_the_terminal_response() -> None:
    m, accumulator = machine(), Accumulator()
    for event in (ThoughtDelta("hm"), TextDelta("a"), TextDelta("b"), Finish("STOP", Usage(prompt=2, candidates=1))):
        accumulator.apply(m.feed(event))
    assert accumulator.body is not None
    reasoning, message = accumulator.body["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "hm"}]
    assert message["content"] == [{"type": "output_text", "text": "ab", "annotations": [], "logprobs": []}]
    assert accumulator.body["usage"]["total_tokens"] == 3


REACH: dict[State, list[object]] = {State.FRESH: [], State.IDLE: [Usage()], State.MESSAGE: [TextDelta("x")],
                                    State.REASONING: [ThoughtDelta("t")], State.DONE: [Finish("STOP", Usage())]}
SAMPLES = [TextDelta("x"), ThoughtDelta("t"), ThoughtSignature("s" * 60), ToolCall(None, "f", {"a": 1}),
           InlineImage("image/png", "AAAA"), Usage(prompt=3)]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, [*SAMPLES, Finish("STOP", Usage())])))
def test_every_state_and_event_pair_is_defined_or_refused(state: State, event: object) -> None:
    m = machine()
    feed_all(m, *REACH[state])
    assert m.state is state
    assert_defined_or_refused(m, state, TRANSITIONS, event)


RANDOM_EVENTS = [*SAMPLES, TextDelta(""), ThoughtDelta(""), ToolCall("c9", "invoke_agent", {"p": "q"}, "sig-call"),
                 ToolCall(None, "apply_patch", {"input": "patch"})]


def test_seeded_event_sequences_always_satisfy_the_grammar() -> None:
    rng = random.Random(13)
    for _ in range(500):
        m = machine(reasoning=rng.random() < 0.7)
        events: list[dict] = []
        for _ in range(rng.randint(0, 12)):
            events += m.feed(rng.choice(RANDOM_EVENTS))
        if rng.random() < 0.1:
            events += m.fail(ProxyError(rng.choice(list(ErrorKind)), "boom"))
        else:
            reason = rng.choice(["STOP", "MAX_TOKENS", "SAFETY", "OTHER"])
            events += m.feed(Finish(reason, Usage(prompt=5, candidates=3, thoughts=2, cached=1)))
        summary = check_responses_stream(encode(events))
        numbers = [e["sequence_number"] for e in events]
        assert numbers == list(range(len(events)))
        assert m.response is events[-1]["response"] and summary["status"] == m.response["status"]
