"""The official anthropic SDK against the daemon and the fake upstream."""

from __future__ import annotations

import dataclasses

import anthropic
import pytest

from tests.checkers import anthropic as anthropic_checker
from tests.fakes import scripts as s
from tests.support import running_daemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(upstream_settings):
    return upstream_settings


def client(listener) -> anthropic.AsyncAnthropic:
    """A client with its own connection pool (closed by `async with`), so no test reuses
    connections from another test's event loop."""
    host, port = listener.address
    return anthropic.AsyncAnthropic(base_url=f"http://{host}:{port}", api_key="test-key", max_retries=0,
                                    http_client=anthropic.DefaultAsyncHttpxClient())


async def test_non_stream_text(settings, fake):
    fake.script(s.stream_reply(s.text("Hel", "lo"), s.usage(prompt=12, candidates=2)))
    async with running_daemon(settings) as (listener, _app, _routes):
        message = await client(listener).messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12 and message.usage.output_tokens == 2
    assert message.model == "claude-sonnet-4-6"
    assert fake.generation_requests[0].path == "/v1internal:generateContent"  # one body, no thinking


async def test_stream_text_follows_the_grammar(settings, fake):
    fake.script(s.stream_reply(s.text("Hello", " world"), s.usage(prompt=5, candidates=2)))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener).messages.stream(
                model="claude-opus-5-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join([chunk async for chunk in stream.text_stream])
            final = await stream.get_final_message()
        raw = await client(listener).messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=100, stream=True, messages=[{"role": "user", "content": "hi"}])
        body = await raw.http_response.aread()
    assert text == "Hello world"
    assert final.stop_reason == "end_turn"
    anthropic_checker.check_anthropic_stream(body)
    request = fake.generation_requests[0]
    assert request.json["model"] == "claude-opus-4-6-thinking"  # Claude Code's default name, mapped


async def test_tool_use_with_thinking_round_trip(settings, fake):
    fake.script(s.stream_reply(s.thinking("Plan the call", signature="sig-" + "a" * 60),
                               s.function_call("get_weather", {"city": "Paris"}, id="toolu_vrtx_1")))
    fake.script(s.stream_reply(s.text("It is sunny.")))
    tools = [{"name": "get_weather", "description": "weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string", "default": "Paris"}}, "required": ["city"],
        "additionalProperties": False, "$schema": "https://json-schema.org/draft/2020-12/schema"}}]
    async with running_daemon(settings) as (listener, _app, _routes):
        api = client(listener)
        first = await api.messages.create(model="claude-sonnet-4-6", max_tokens=2000, tools=tools,
                                          thinking={"type": "enabled", "budget_tokens": 1024},
                                          messages=[{"role": "user", "content": "weather in Paris?"}])
        assert [b.type for b in first.content] == ["thinking", "tool_use"]
        assert first.stop_reason == "tool_use"
        call = first.content[1]
        assert call.name == "get_weather" and call.input == {"city": "Paris"}
        second = await api.messages.create(
            model="claude-sonnet-4-6", max_tokens=2000, tools=tools, thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "weather in Paris?"},
                      {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert second.content[0].text == "It is sunny."
    assert fake.generation_requests[0].path == "/v1internal:streamGenerateContent"  # thinking always streams
    replay = fake.generation_requests[1].json["request"]["contents"]
    assert replay[1]["role"] == "model"
    assert replay[1]["parts"][0]["thought"] is True and replay[1]["parts"][0]["thoughtSignature"].startswith("sig-")
    assert replay[2]["parts"][0]["functionResponse"] == {"id": call.id, "name": "get_weather", "response": {"result": "sunny"}}


async def test_rate_limit_becomes_rate_limit_error(settings, fake):
    fake.script(s.quota_exhausted(reset_after=30, model="claude-sonnet-4-6"))
    async with running_daemon(settings) as (listener, _app, _routes):
        with pytest.raises(anthropic.RateLimitError) as info:
            await client(listener).messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == "30"


async def test_unknown_model_is_a_404_not_found(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        with pytest.raises(anthropic.NotFoundError) as info:
            await client(listener).messages.create(model="gpt-4o", max_tokens=10,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert "gpt-4o" in str(info.value)


async def test_a_cut_mid_stream_becomes_an_error_event(settings, fake):
    fake.script(s.stream_reply(s.text("partial"), s.cut_mid_event()))
    async with running_daemon(settings) as (listener, _app, _routes):
        raw = await client(listener).messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=100, stream=True, messages=[{"role": "user", "content": "hi"}])
        body = await raw.http_response.aread()
    assert b"event: error" in body
    summary = anthropic_checker.check_anthropic_stream(body)
    assert summary is not None


async def test_count_tokens(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        counted = await client(listener).messages.count_tokens(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "The quick brown fox jumps over the lazy dog."}])
    assert 8 <= counted.input_tokens <= 14


async def test_client_keys_are_required_when_configured(make_settings, fake):
    settings = make_settings(AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_API_KEYS="team=sk-team-0123456789")
    async with running_daemon(settings) as (listener, _app, _routes):
        host, port = listener.address
        with pytest.raises(anthropic.AuthenticationError):
            async with anthropic.AsyncAnthropic(base_url=f"http://{host}:{port}", api_key="wrong-key-123",
                                                max_retries=0) as api:
                await api.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])
        async with anthropic.AsyncAnthropic(base_url=f"http://{host}:{port}", auth_token="sk-team-0123456789",
                                            max_retries=0) as api:
            counted = await api.messages.count_tokens(model="claude-sonnet-4-6",
                                                      messages=[{"role": "user", "content": "x"}])
    assert counted.input_tokens >= 1


@pytest.mark.parametrize(("model", "family"), [("claude-sonnet-4-6", "claude"), ("gemini-3-flash", "gemini")])
async def test_three_turn_tool_loop_survives_dropped_signatures_and_a_restart(settings, fake, model, family):
    sig = {n: f"{family}-sig-{n}-" + "s" * 60 for n in (1, 2)}

    def turn(n: int):  # Claude signs the thinking; Gemini signs the call (upstream doc §4.6)
        if family == "claude":
            return s.stream_reply(s.thinking(f"thought {n}", signature=sig[n]),
                                  s.function_call("step", {"n": n}, id=f"toolu_vrtx_{n}"))
        return s.stream_reply(s.thinking(f"thought {n}"), s.function_call("step", {"n": n}, id=f"call{n}", signature=sig[n]))

    fake.script(turn(1))
    fake.script(turn(2))
    fake.script(s.stream_reply(s.text("all done")))
    tools = [{"name": "step", "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}]
    thinking = {"type": "enabled", "budget_tokens": 2048}
    history: list[dict] = [{"role": "user", "content": "do two steps"}]

    def without_signatures(message) -> dict:  # what a client that drops thinking sends back
        return {"role": "assistant", "content": [b.model_dump() for b in message.content if b.type == "tool_use"]}

    async with running_daemon(settings) as (listener, _app, _routes):
        api = client(listener)
        for _ in range(2):
            reply = await api.messages.create(model=model, max_tokens=4096, tools=tools, thinking=thinking, messages=history)
            call = next(b for b in reply.content if b.type == "tool_use")
            history += [without_signatures(reply),
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "ok"}]}]
    async with running_daemon(settings) as (listener, _app, _routes):  # a restarted daemon, same data dir
        final = await client(listener).messages.create(model=model, max_tokens=4096, tools=tools, thinking=thinking,
                                                       messages=history)
    assert final.content[-1].text == "all done"
    model_turns = [c["parts"] for c in fake.generation_requests[2].json["request"]["contents"] if c["role"] == "model"]
    assert len(model_turns) == 2
    for n, parts in enumerate(model_turns, 1):
        if family == "claude":
            assert parts[0] == {"text": f"thought {n}", "thought": True, "thoughtSignature": sig[n]}
        else:
            call_part = next(p for p in parts if "functionCall" in p)
            assert call_part["thoughtSignature"] == sig[n]


async def test_parallel_tool_calls_and_an_image_in_a_tool_result(settings, fake):
    fake.script(s.stream_reply(s.chunk(s.function_call("look", {"at": "a"}, id="c1", signature="g" * 60),
                                       s.function_call("look", {"at": "b"}, id="c2"))))
    fake.script(s.stream_reply(s.text("two pictures")))
    tools = [{"name": "look", "input_schema": {"type": "object", "properties": {"at": {"type": "string"}}}}]
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    async with running_daemon(settings) as (listener, _app, _routes):
        api = client(listener)
        first = await api.messages.create(model="gemini-3-flash", max_tokens=500, tools=tools,
                                          messages=[{"role": "user", "content": "look at a and b"}])
        calls = [b for b in first.content if b.type == "tool_use"]
        assert [c.input for c in calls] == [{"at": "a"}, {"at": "b"}] and first.stop_reason == "tool_use"
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": [
            {"type": "text", "text": f"picture of {c.input['at']}"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}]} for c in calls]
        await api.messages.create(model="gemini-3-flash", max_tokens=500, tools=tools, messages=[
            {"role": "user", "content": "look at a and b"},
            {"role": "assistant", "content": [c.model_dump() for c in calls]},
            {"role": "user", "content": results}])
    parts = fake.generation_requests[1].json["request"]["contents"][-1]["parts"]
    kinds = ["functionResponse" if "functionResponse" in p else "inlineData" for p in parts]
    assert kinds == ["functionResponse", "functionResponse", "inlineData", "inlineData"]  # responses contiguous
    assert [p["functionResponse"]["id"] for p in parts[:2]] == ["c1", "c2"]
    model_parts = fake.generation_requests[1].json["request"]["contents"][1]["parts"]
    assert model_parts[0]["thoughtSignature"] == "g" * 60 and "thoughtSignature" not in model_parts[1]


async def test_max_tokens_stop(settings, fake):
    fake.script(s.stream_reply(s.text("cut sh"), s.finish("MAX_TOKENS")))
    async with running_daemon(settings) as (listener, _app, _routes):
        message = await client(listener).messages.create(model="claude-sonnet-4-6", max_tokens=5,
                                                         messages=[{"role": "user", "content": "long story"}])
    assert message.stop_reason == "max_tokens" and message.content[0].text == "cut sh"


async def test_pings_keep_a_silent_stream_alive(settings, fake):
    fake.script(s.stream_reply(s.text("thinking hard"), s.pause(1.2), s.text(" done")))  # ~5 heartbeats of 0.2 s
    async with running_daemon(settings) as (listener, _app, _routes):
        raw = await client(listener).messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=100, stream=True, messages=[{"role": "user", "content": "hi"}])
        body = await raw.http_response.aread()
        assert raw.http_response.headers["x-accel-buffering"] == "no"
    summary = anthropic_checker.check_anthropic_stream(body)
    assert summary["pings"] >= 2
    assert summary["blocks"][0]["text"] == "thinking hard done"


async def test_an_http_200_version_rejection_is_an_error(settings, fake):
    fake.min_client_version = "99.0.0"
    async with running_daemon(settings) as (listener, _app, _routes):
        with pytest.raises(anthropic.InternalServerError) as info:
            await client(listener).messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert "AGPROXY_CLIENT_VERSION" in str(info.value)


async def test_upstream_capacity_is_retried_then_an_overloaded_error(settings, fake):
    for _ in range(3):  # the first attempt and two backed-off retries on the one account
        fake.script(s.error("503.MODEL_CAPACITY_EXHAUSTED"))
    async with running_daemon(dataclasses.replace(settings, max_wait=0.05)) as (listener, _app, _routes):
        with pytest.raises(anthropic.APIStatusError) as info:
            await client(listener).messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                                   messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529
    assert len(fake.generation_requests) == 3 and fake.pending_scripts == 0


async def test_upstream_capacity_once_is_invisible_to_the_client(settings, fake):
    fake.script(s.error("503.MODEL_CAPACITY_EXHAUSTED"))
    fake.script(s.stream_reply(s.text("fine")))
    async with running_daemon(dataclasses.replace(settings, max_wait=0.05)) as (listener, _app, _routes):
        message = await client(listener).messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                                         messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "fine"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stop_sequence_cuts_the_text_even_across_events(settings, fake, stream):
    fake.script(s.stream_reply(s.text("one two ST", "OP three"), s.usage(prompt=4, candidates=5)))
    async with running_daemon(settings) as (listener, _app, _routes):
        api = client(listener)
        kwargs = dict(model="claude-sonnet-4-6", max_tokens=50, stop_sequences=["STOP", "never"],
                      messages=[{"role": "user", "content": "count"}])
        if stream:
            async with api.messages.stream(**kwargs) as events:
                message = await events.get_final_message()
        else:
            message = await api.messages.create(**kwargs)
    assert message.content[0].text == "one two "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"
    assert "stopSequences" not in fake.generation_requests[0].json["request"]["generationConfig"]


async def test_image_urls_are_fetched_and_inlined(settings, fake):
    import base64

    from tests.support import TestRoutes

    async with running_daemon(settings) as (listener, _app, _routes):
        host, port = listener.address
        await client(listener).messages.create(model="gemini-3-flash", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": f"http://{host}:{port}/test/pixel.png"}},
            {"type": "text", "text": "what is this?"}]}])
        with pytest.raises(anthropic.BadRequestError) as info:
            await client(listener).messages.create(model="gemini-3-flash", max_tokens=50, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": f"http://{host}:{port}/nothing-here.png"}}]}])
    (part, _) = fake.generation_requests[0].json["request"]["contents"][0]["parts"]
    assert part["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(TestRoutes.PIXEL).decode()}
    assert "HTTP 404" in str(info.value)
