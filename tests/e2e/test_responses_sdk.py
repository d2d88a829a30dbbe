"""The official openai SDK's Responses API (what Codex speaks) against the daemon and the fake upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.checkers.responses import check_responses_stream
from tests.e2e.test_openai_sdk import client, sdk_generators_closed, system_text
from tests.fakes import scripts as s
from tests.support import RawClient, running_daemon

pytestmark = pytest.mark.e2e

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather in a city", "strict": False,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False}}
CODEX_IDENTITY = "You are Codex, an agent based on GPT-5."


@pytest.fixture
def settings(upstream_settings):
    return upstream_settings


async def test_function_call_round_trip_streamed(settings, fake):
    fake.script(s.stream_reply(s.text("Checking."), s.function_call("get_weather", {"city": "Rome"}),
                               s.usage(prompt=20, candidates=6)))
    fake.script(s.stream_reply(s.function_call("get_weather", {"city": "Paris"})))
    fake.script(s.stream_reply(s.text("It is ", "sunny."), s.usage(prompt=30, candidates=3)))
    question = {"role": "user", "content": "weather in Paris?"}
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            raw = await api.responses.with_raw_response.create(
                model="gemini-3-flash", instructions="Answer briefly.", input=[question], tools=[WEATHER_TOOL],
                stream=True)
            summary = check_responses_stream(await raw.http_response.aread())
            events = [event async for event in await api.responses.create(
                model="gemini-3-flash", instructions="Answer briefly.", input=[question], tools=[WEATHER_TOOL],
                stream=True)]
            await sdk_generators_closed()
            (call,) = [e.item for e in events if e.type == "response.output_item.done"]
            history = [question,
                       {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
                       {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 C"}]
            async with api.responses.stream(model="gemini-3-flash", instructions="Answer briefly.", input=history,
                                            tools=[WEATHER_TOOL]) as stream:
                deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
                final = await stream.get_final_response()
            await sdk_generators_closed()
    # the raw bytes of the first turn
    assert summary["status"] == "completed"
    assert [it["type"] for it in summary["items"]] == ["message", "function_call"]
    assert summary["text"] == "Checking."
    assert summary["items"][1]["name"] == "get_weather" and summary["items"][1]["parsed"] == {"city": "Rome"}
    assert summary["usage"]["input_tokens"] == 20 and summary["usage"]["output_tokens"] == 6
    # the same turn through the SDK's own event types
    assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed" and events[-1].response.status == "completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert [item.type for item in events[-1].response.output] == ["function_call"]
    # the function_call_output turn
    assert "".join(deltas) == "It is sunny." and final.output_text == "It is sunny."
    assert final.status == "completed" and final.id.startswith("resp_")
    assert final.usage.input_tokens == 30 and final.usage.output_tokens == 3 and final.usage.total_tokens == 33
    first, _second, third = fake.generation_requests
    assert system_text(first).startswith("Answer briefly.")
    assert [d["name"] for d in first.json["request"]["tools"][0]["functionDeclarations"]] == ["get_weather"]
    contents = third.json["request"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][-1]["functionCall"]["name"] == "get_weather"
    assert contents[1]["parts"][-1]["functionCall"]["args"] == {"city": "Paris"}
    assert contents[2]["parts"] == [{"functionResponse": {
        "id": call.call_id, "name": "get_weather", "response": {"result": "sunny, 24 C"}}}]


async def test_non_stream_create_returns_output_text(settings, fake):
    fake.script(s.stream_reply(s.text("Hel", "lo"), s.usage(prompt=12, candidates=2)))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            response = await api.responses.create(model="claude-sonnet-4-6", input="hi", max_output_tokens=100)
    assert response.output_text == "Hello" and response.status == "completed"
    assert response.object == "response" and response.id.startswith("resp_") and response.model == "claude-sonnet-4-6"
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 2, 14)
    (request,) = fake.generation_requests
    assert request.json["model"] == "claude-sonnet-4-6"
    assert request.json["request"]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert request.json["request"]["generationConfig"]["maxOutputTokens"] == 100


async def test_instructions_and_developer_messages_become_the_system_instruction(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            await api.responses.create(model="gemini-3-flash", instructions="First rule.", input=[
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Second rule."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}])
    (request,) = fake.generation_requests
    system = system_text(request)
    assert system.index("First rule.") < system.index("Second rule.")  # instructions first
    assert request.json["request"]["contents"] == [{"role": "user", "parts": [{"text": "go"}]}]


async def test_previous_response_id_prepends_the_stored_turn(settings, fake):
    fake.script(s.stream_reply(s.text("Nice to meet you, Ada.")))
    fake.script(s.stream_reply(s.text("Your name is Ada.")))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            first = await api.responses.create(model="gemini-3-flash", input="My name is Ada.", store=True)
            second = await api.responses.create(model="gemini-3-flash", input="What is my name?",
                                                previous_response_id=first.id)
            with pytest.raises(openai.BadRequestError) as info:
                await api.responses.create(model="gemini-3-flash", input="again?",
                                           previous_response_id="resp_does_not_exist_0123456789")
    assert second.output_text == "Your name is Ada."
    assert second.previous_response_id == first.id
    contents = fake.generation_requests[1].json["request"]["contents"]
    assert contents == [{"role": "user", "parts": [{"text": "My name is Ada."}]},
                        {"role": "model", "parts": [{"text": "Nice to meet you, Ada."}]},
                        {"role": "user", "parts": [{"text": "What is my name?"}]}]
    assert info.value.param == "previous_response_id" and info.value.type == "invalid_request_error"
    assert len(fake.generation_requests) == 2  # the unknown id never reached upstream


async def test_codex_identity_sentence_is_rewritten_before_upstream(settings, fake):
    fake.script(s.stream_reply(s.text("Done.")))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            response = await api.responses.create(
                model="gemini-3-flash", instructions=f"{CODEX_IDENTITY} Keep answers short.", input="hello")
    assert response.output_text == "Done."  # the fake answers the bare 429 to the sentence itself
    assert fake.identity_rejections == []
    system = system_text(fake.generation_requests[0])
    assert CODEX_IDENTITY not in system and "Keep answers short." in system


async def test_upstream_429_is_a_rate_limit_error(settings, fake):
    fake.script(s.quota_exhausted(reset_after=30, model="gemini-3-flash"))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            with pytest.raises(openai.RateLimitError) as info:
                await api.responses.create(model="gemini-3-flash", input="hi", stream=True)
    assert info.value.response.headers["retry-after"] == "30"


async def test_a_websocket_upgrade_is_refused_with_426(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        raw = await RawClient.connect(listener.address)
        try:
            raw.send_request("GET", "/v1/responses", headers=[
                ("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("authorization", "Bearer test-key")])
            reply = await raw.read_reply()
        finally:
            raw.close()
    assert reply.status == 426
    assert reply.headers.get(b"connection") == b"close"
    assert "error" in json.loads(reply.body)
