"""The official openai SDK's Chat Completions and model list against the daemon and the fake upstream."""

from __future__ import annotations

import asyncio
import base64
import json

import openai
import pytest

from tests.checkers.openai_chat import check_openai_chat_stream
from tests.fakes import scripts as s
from tests.support import TestRoutes, running_daemon

pytestmark = pytest.mark.e2e

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


@pytest.fixture
def settings(upstream_settings):
    return upstream_settings


def client(listener, prefix: str = "/v1", api_key: str = "test-key") -> openai.AsyncOpenAI:
    """A client with its own connection pool, so no test reuses another event loop's connections."""
    host, port = listener.address
    return openai.AsyncOpenAI(base_url=f"http://{host}:{port}{prefix}", api_key=api_key, max_retries=0,
                              http_client=openai.DefaultAsyncHttpxClient())


async def sdk_generators_closed() -> None:
    """Let the loop finish closing the SSE generators the openai SDK abandons (after `[DONE]` or an
    error chunk it drops its event iterator unclosed; the loop's finalizer then schedules its aclose()),
    so no such task is still pending when the test ends."""
    for _ in range(5):
        await asyncio.sleep(0)


def system_text(request) -> str:
    return "".join(p.get("text", "") for p in request.json["request"]["systemInstruction"]["parts"])


@pytest.mark.parametrize("prefix", ["/v1", ""])
async def test_non_stream_text_with_system_messages(settings, fake, prefix):
    fake.script(s.stream_reply(s.text("Hel", "lo"), s.usage(prompt=12, candidates=2)))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener, prefix) as api:
            completion = await api.chat.completions.create(model="gemini-3-flash", messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]}])
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "gemini-3-flash"
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == "Hello"
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 2, 14)
    (request,) = fake.generation_requests
    assert request.json["model"] == "gemini-3-flash"
    assert [c["role"] for c in request.json["request"]["contents"]] == ["user"]
    assert request.json["request"]["contents"][0]["parts"] == [{"text": "hi"}]
    system = system_text(request)
    assert system.index("Be brief.") < system.index("Answer in English.")  # in message order


async def test_stream_with_usage_follows_the_grammar(settings, fake):
    fake.script(s.stream_reply(s.text("Hello", " world"), s.usage(prompt=5, candidates=2)))
    fake.script(s.stream_reply(s.text("Second", " answer")))
    messages = [{"role": "user", "content": "hi"}]
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            raw = await api.chat.completions.with_raw_response.create(
                model="gemini-3-flash", messages=messages, stream=True, stream_options={"include_usage": True})
            body = await raw.http_response.aread()
            assert raw.http_response.headers["content-type"].startswith("text/event-stream")
            async with api.chat.completions.stream(model="gemini-3-flash", messages=messages) as stream:
                final = await stream.get_final_completion()  # the SDK's accumulate_delta helper
            await sdk_generators_closed()
    summary = check_openai_chat_stream(body, include_usage=True)
    assert summary["content"] == "Hello world" and summary["finish_reason"] == "stop"
    assert summary["usage"]["prompt_tokens"] == 5 and summary["usage"]["completion_tokens"] == 2
    assert summary["model"] == "gemini-3-flash"
    assert final.choices[0].message.content == "Second answer"
    assert final.choices[0].message.role == "assistant"  # "assistantassistant" if the role repeated
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is None  # include_usage was not asked for the second stream


async def test_stream_without_include_usage_has_no_usage_chunk(settings, fake):
    fake.script(s.stream_reply(s.text("Hi")))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            raw = await api.chat.completions.with_raw_response.create(
                model="gemini-3-flash", messages=[{"role": "user", "content": "hi"}], stream=True)
            body = await raw.http_response.aread()
    summary = check_openai_chat_stream(body, include_usage=False)
    assert summary["content"] == "Hi" and summary["usage"] is None


async def test_parallel_tool_calls_stream_and_results_are_matched_by_id(settings, fake):
    fake.script(s.stream_reply(s.chunk(s.function_call("get_weather", {"city": "Paris"}, id="c1", signature="g" * 60),
                                       s.function_call("get_weather", {"city": "Rome"}, id="c2"))))
    fake.script(s.stream_reply(s.text("Paris is sunny, Rome is rainy.")))
    first_messages = [{"role": "user", "content": "weather in Paris and Rome?"}]
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            raw = await api.chat.completions.with_raw_response.create(
                model="gemini-3-flash", messages=first_messages, tools=[WEATHER_TOOL], stream=True)
            summary = check_openai_chat_stream(await raw.http_response.aread())
            calls = summary["tool_calls"]
            assert [(c["name"], c["parsed"]) for c in calls] == [("get_weather", {"city": "Paris"}),
                                                                  ("get_weather", {"city": "Rome"})]
            assert summary["finish_reason"] == "tool_calls" and calls[0]["id"] != calls[1]["id"]
            assistant = {"role": "assistant", "content": None, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls]}
            results = [{"role": "tool", "tool_call_id": c["id"], "content": f"weather for {c['parsed']['city']}"}
                       for c in reversed(calls)]  # answered out of order
            second = await api.chat.completions.create(model="gemini-3-flash", tools=[WEATHER_TOOL],
                                                       messages=[*first_messages, assistant, *results])
    assert second.choices[0].message.content == "Paris is sunny, Rome is rainy."
    contents = fake.generation_requests[1].json["request"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model_calls = [p["functionCall"] for p in contents[1]["parts"]]
    assert [(c["name"], c["args"]) for c in model_calls] == [("get_weather", {"city": "Paris"}),
                                                              ("get_weather", {"city": "Rome"})]
    responses = [p["functionResponse"] for p in contents[2]["parts"]]
    assert responses == [  # one per call, in call order, each with its own call's id
        {"id": calls[0]["id"], "name": "get_weather", "response": {"result": "weather for Paris"}},
        {"id": calls[1]["id"], "name": "get_weather", "response": {"result": "weather for Rome"}}]
    declarations = fake.generation_requests[0].json["request"]["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather"]


async def test_non_stream_tool_call(settings, fake):
    fake.script(s.stream_reply(s.text("Let me check."), s.function_call("get_weather", {"city": "Oslo"})))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            completion = await api.chat.completions.create(
                model="claude-sonnet-4-6", tools=[WEATHER_TOOL], tool_choice="required",
                messages=[{"role": "user", "content": "weather in Oslo?"}])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert call.id and len(call.id) <= 64
    config = fake.generation_requests[0].json["request"]["toolConfig"]["functionCallingConfig"]
    assert config["mode"] == "ANY"


async def test_gemini3_thought_signature_survives_an_openai_round_trip(settings, fake):
    signature = "gemini-sig-" + "q" * 60
    fake.script(s.stream_reply(s.thinking("I need the weather tool."),
                               s.function_call("get_weather", {"city": "Paris"}, id="8hd01vsf", signature=signature)))
    fake.script(s.stream_reply(s.text("It is sunny.")))
    history: list[dict] = [{"role": "user", "content": "weather in Paris?"}]
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            first = await api.chat.completions.create(model="gemini-3-flash", tools=[WEATHER_TOOL], messages=history,
                                                      reasoning_effort="high")
            (call,) = first.choices[0].message.tool_calls
            # What a plain client sends back: only the standard fields, no reasoning, no extra_content.
            history += [{"role": "assistant", "content": None, "tool_calls": [
                            {"id": call.id, "type": "function",
                             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
                        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
            second = await api.chat.completions.create(model="gemini-3-flash", tools=[WEATHER_TOOL], messages=history,
                                                       reasoning_effort="high")
    assert second.choices[0].message.content == "It is sunny."
    model_turn = fake.generation_requests[1].json["request"]["contents"][1]
    assert model_turn["role"] == "model"
    call_part = next(p for p in model_turn["parts"] if "functionCall" in p)
    assert call_part["thoughtSignature"] == signature
    assert call_part["functionCall"]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_effort_sets_thinking_and_shows_reasoning_content(settings, fake, stream):
    fake.script(s.stream_reply(s.thinking("Weigh the ", "options."), s.text("Blue."),
                               s.usage(prompt=7, candidates=1, thoughts=4)))
    fake.script(s.stream_reply(s.text("ok")))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            kwargs = {"model": "gemini-3-flash", "reasoning_effort": "high",
                      "messages": [{"role": "user", "content": "pick a colour"}]}
            if stream:
                raw = await api.chat.completions.with_raw_response.create(
                    stream=True, stream_options={"include_usage": True}, **kwargs)
                body = await raw.http_response.aread()
                summary = check_openai_chat_stream(body, include_usage=True)
                assert b'"reasoning_content"' in body  # the delta key, not only the peer-variant "reasoning"
                content, reasoning, usage = summary["content"], summary["reasoning_content"], summary["usage"]
                reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
                completion_tokens = usage["completion_tokens"]
            else:
                completion = await api.chat.completions.create(**kwargs)
                message = completion.choices[0].message
                content, reasoning = message.content, message.model_extra.get("reasoning_content")
                reasoning_tokens = completion.usage.completion_tokens_details.reasoning_tokens
                completion_tokens = completion.usage.completion_tokens
            await api.chat.completions.create(model="claude-sonnet-4-6", reasoning_effort="medium",
                                              messages=[{"role": "user", "content": "hi"}])
    assert content == "Blue." and reasoning == "Weigh the options."  # thoughts never leak into content
    assert reasoning_tokens == 4 and completion_tokens == 5  # candidates + thoughts
    gemini, claude = (r.json["request"]["generationConfig"]["thinkingConfig"] for r in fake.generation_requests)
    assert gemini["includeThoughts"] is True and gemini["thinkingLevel"].lower() == "high"
    assert "thinkingBudget" not in gemini
    assert claude["includeThoughts"] is True and claude["thinkingBudget"] > 0 and "thinkingLevel" not in claude


async def test_response_format_json_schema(settings, fake):
    fake.script(s.stream_reply(s.text('{"name": "Paris"}')))
    schema = {"type": "object", "properties": {"name": {"type": "string", "description": "city name"}},
              "required": ["name"], "additionalProperties": False}
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            completion = await api.chat.completions.create(
                model="gemini-3-flash", messages=[{"role": "user", "content": "name a city"}],
                response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    assert json.loads(completion.choices[0].message.content) == {"name": "Paris"}
    config = fake.generation_requests[0].json["request"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    sent = config["responseSchema"]
    assert sent["type"].lower() == "object" and sent["required"] == ["name"]
    assert sent["properties"]["name"]["type"].lower() == "string"


async def test_image_parts_from_a_data_url_and_a_fetched_url(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        host, port = listener.address
        async with client(listener) as api:
            await api.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": [
                {"type": "text", "text": "compare these"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": f"http://{host}:{port}/test/pixel.png", "detail": "low"}}]}])
            with pytest.raises(openai.BadRequestError) as info:
                await api.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": f"http://{host}:{port}/nothing-here.png"}}]}])
    (request,) = fake.generation_requests
    parts = request.json["request"]["contents"][0]["parts"]
    assert parts == [{"text": "compare these"},
                     {"inlineData": {"mimeType": "image/png", "data": PNG}},
                     {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(TestRoutes.PIXEL).decode()}}]
    assert "404" in str(info.value)


async def test_n_above_one_is_a_400_naming_n(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            with pytest.raises(openai.BadRequestError) as info:
                await api.chat.completions.create(model="gemini-3-flash", n=2,
                                                  messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 400 and info.value.param == "n"
    assert info.value.type == "invalid_request_error"
    assert fake.generation_requests == []


async def test_upstream_429_is_a_rate_limit_error(settings, fake):
    fake.script(s.quota_exhausted(reset_after=30, model="gemini-3-flash"))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            with pytest.raises(openai.RateLimitError) as info:
                await api.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "30"


async def test_unknown_model_is_a_404_model_not_found(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            with pytest.raises(openai.NotFoundError) as info:
                await api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
    assert "gpt-4o" in info.value.message
    assert fake.generation_requests == []


async def test_a_cut_mid_stream_becomes_an_error_chunk(settings, fake):
    fake.script(s.stream_reply(s.text("partial"), s.cut_mid_event()))
    fake.script(s.stream_reply(s.text("partial"), s.cut_mid_event()))
    messages = [{"role": "user", "content": "hi"}]
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            raw = await api.chat.completions.with_raw_response.create(model="gemini-3-flash", messages=messages,
                                                                      stream=True)
            body = await raw.http_response.aread()
            received = ""
            with pytest.raises(openai.APIError) as raised:  # the SDK raises on the in-band error chunk
                async for chunk in await api.chat.completions.create(model="gemini-3-flash", messages=messages,
                                                                     stream=True):
                    received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            await sdk_generators_closed()
    summary = check_openai_chat_stream(body)
    assert summary["error"] is not None and summary["content"] == "partial"
    assert summary["finish_reason"] is None and b"data: [DONE]" not in body
    assert received == "partial"
    # the in-band error chunk itself, not a connection failure (APIConnectionError is an APIError too)
    assert type(raised.value) is openai.APIError and "the upstream stream broke" in raised.value.message


async def test_models_list_has_the_openai_shape(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener) as api:
            page = await api.models.list()
            raw = await api.models.with_raw_response.list()
    ids = [m.id for m in page.data]
    assert "gemini-3-flash" in ids and "claude-sonnet-4-6" in ids
    assert all(m.object == "model" for m in page.data)
    body = json.loads(raw.http_response.content)
    assert body["object"] == "list"
    assert all(set(entry) >= {"id", "object", "created", "owned_by"} for entry in body["data"])


async def test_bearer_keys_are_required_when_configured(make_settings, fake):
    from tests.support import seed_account

    settings = make_settings(AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_OAUTH_TOKEN_URL=fake.token_url,
                             AGPROXY_USERINFO_URL=fake.userinfo_url, AGPROXY_API_KEYS="team=sk-team-0123456789")
    seed_account(settings.data_dir, fake)
    async with running_daemon(settings) as (listener, _app, _routes):
        async with client(listener, api_key="wrong-key-123") as api:
            with pytest.raises(openai.AuthenticationError) as info:
                await api.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": "hi"}])
        async with client(listener, api_key="sk-team-0123456789") as api:
            completion = await api.chat.completions.create(model="gemini-3-flash",
                                                           messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "invalid_api_key"
    assert completion.choices[0].message.content == s.DEFAULT_TEXT
    assert len(fake.generation_requests) == 1
